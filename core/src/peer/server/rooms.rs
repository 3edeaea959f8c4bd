//! Rooms: independent multiplayer worlds on one server, chosen by the request path.
//!
//! A client names its room in the URL it connects to (`ws://host:9080/<room>`, Godot's
//! `create_client(url)`); `/` is the default room. Each room has its own members, relay,
//! `ADD_PEER`/`DEL_PEER` announcements and limits: a peer sees and reaches only the peers of its
//! room. Peer ids are drawn unique across the whole server, so the application (peer 1 of
//! every room) names any peer by its id alone; a client cannot tell, as it only ever sees the
//! ids of its own room.
//!
//! The room is decided in the accept-or-reject step, before the upgrade is answered, so a
//! refused client gets a plain HTTP status: 400 for a malformed room name, 404 for a path
//! outside [`RoomConfig::prefix`] or a room not declared (with [`RoomMode::Declared`]), 503
//! when [`RoomConfig::max_rooms`] rooms exist or the room holds
//! [`RoomConfig::max_peers_per_room`] connections.
//!
//! Room names are 1 to [`MAX_ROOM_NAME_LEN`] bytes of ASCII letters, digits, `-`, `_` and `.`,
//! not starting with `.`: nothing a log line, a JSON string or a shell needs to escape, and no
//! path component that means anything to a file system. The query string (`?...`) is not part
//! of the name.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::peer::PeerId;

/// Longest room name, in bytes.
pub const MAX_ROOM_NAME_LEN: usize = 64;

/// Index of a room in the table; `NO_ROOM` for a connection that has none (yet).
pub(super) const NO_ROOM: u32 = u32::MAX;

/// How a server maps request paths to rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RoomMode {
    /// One world for every client, whatever the path (Godot's server: it ignores the path).
    #[default]
    Single,
    /// The path names the room; a room exists while it has connections (or is declared).
    ByPath,
    /// The path names the room, and only declared rooms exist: others are refused with 404.
    Declared,
}

/// Rooms of a server (Godot has none: one `WebSocketMultiplayerPeer` is one world).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomConfig {
    /// How paths map to rooms.
    pub mode: RoomMode,
    /// A path prefix (`/play`) every request must start with, for a deployment behind a
    /// path-routing proxy: `/play` and `/play/` are the default room, `/play/a` is room `a`,
    /// other paths get 404. Empty: none.
    pub prefix: String,
    /// Rooms that always exist (room names, `""` for the default room); with
    /// [`RoomMode::Declared`], the only ones. Invalid names are ignored (check them with
    /// [`validate_room_name`]).
    pub declared: Vec<String>,
    /// Most rooms at once, declared ones included; a request for a new room beyond it gets 503.
    pub max_rooms: usize,
    /// Most connections in one room (handshaking or joined); beyond it a request gets 503.
    /// `None`: only [`ServerConfig::max_peers`](super::ServerConfig::max_peers) bounds it.
    pub max_peers_per_room: Option<usize>,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            mode: RoomMode::Single,
            prefix: String::new(),
            declared: Vec::new(),
            max_rooms: 4096,
            max_peers_per_room: None,
        }
    }
}

/// Why a room name or prefix is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomNameError {
    /// Longer than [`MAX_ROOM_NAME_LEN`].
    TooLong,
    /// A byte outside ASCII letters, digits, `-`, `_` and `.`, or a leading `.`.
    InvalidCharacter,
    /// Empty where a name is needed (a prefix segment).
    Empty,
}

impl fmt::Display for RoomNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong => write!(f, "room name longer than {MAX_ROOM_NAME_LEN} bytes"),
            Self::InvalidCharacter => {
                f.write_str("room names use ASCII letters, digits, '-', '_' and '.' (not first)")
            }
            Self::Empty => f.write_str("empty room name"),
        }
    }
}

impl core::error::Error for RoomNameError {}

/// Checks a room name: `""` (the default room) or 1 to [`MAX_ROOM_NAME_LEN`] bytes of ASCII
/// letters, digits, `-`, `_`, `.`, not starting with `.`.
///
/// # Errors
/// [`RoomNameError`].
pub fn validate_room_name(name: &str) -> Result<(), RoomNameError> {
    if name.len() > MAX_ROOM_NAME_LEN {
        return Err(RoomNameError::TooLong);
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if name.starts_with('.') || !name.bytes().all(allowed) {
        return Err(RoomNameError::InvalidCharacter);
    }
    Ok(())
}

/// Checks a path prefix: `""`, or `/` followed by valid, non-empty room-name segments
/// separated by `/` (`/play`, `/eu/play`), without a trailing `/`.
///
/// # Errors
/// [`RoomNameError`].
pub fn validate_room_prefix(prefix: &str) -> Result<(), RoomNameError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let Some(rest) = prefix.strip_prefix('/') else { return Err(RoomNameError::InvalidCharacter) };
    for segment in rest.split('/') {
        if segment.is_empty() {
            return Err(RoomNameError::Empty);
        }
        validate_room_name(segment)?;
    }
    Ok(())
}

/// Why a request was not admitted to a room; each is answered with an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomRefusal {
    /// The path does not name a valid room (400).
    InvalidName(RoomNameError),
    /// The path is outside the configured prefix (404).
    OutsidePrefix,
    /// The room is not declared and only declared rooms exist (404).
    NotDeclared,
    /// [`RoomConfig::max_rooms`] rooms exist (503).
    TooManyRooms,
    /// The room holds [`RoomConfig::max_peers_per_room`] connections (503).
    RoomFull,
}

impl RoomRefusal {
    /// The HTTP status the request is answered with.
    #[must_use]
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidName(_) => 400,
            Self::OutsidePrefix | Self::NotDeclared => 404,
            Self::TooManyRooms | Self::RoomFull => 503,
        }
    }

    /// The reason text of the HTTP answer (fixed: never an echo of the request).
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::InvalidName(_) => "invalid room name",
            Self::OutsidePrefix => "no rooms under this path",
            Self::NotDeclared => "no such room",
            Self::TooManyRooms => "too many rooms",
            Self::RoomFull => "room full",
        }
    }
}

impl fmt::Display for RoomRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName(e) => write!(f, "{} ({e})", self.reason()),
            _ => f.write_str(self.reason()),
        }
    }
}

impl core::error::Error for RoomRefusal {}

/// The room a request path names under `prefix`: `""` for the default room.
///
/// # Errors
/// [`RoomRefusal::OutsidePrefix`] or [`RoomRefusal::InvalidName`].
pub fn room_from_path<'p>(path: &'p str, prefix: &str) -> Result<&'p str, RoomRefusal> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let rest = path.strip_prefix(prefix).ok_or(RoomRefusal::OutsidePrefix)?;
    let name = match rest.strip_prefix('/') {
        Some(name) => name,
        // `/play` itself, or (no prefix) an empty path: the default room.
        None if rest.is_empty() => "",
        // `/player` under the prefix `/play`: another path.
        None => return Err(RoomRefusal::OutsidePrefix),
    };
    if name.contains('/') {
        return Err(RoomRefusal::InvalidName(RoomNameError::InvalidCharacter));
    }
    validate_room_name(name).map_err(RoomRefusal::InvalidName)?;
    Ok(name)
}

/// Traffic of one room since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomStats {
    /// Packets received from the room's peers.
    pub packets_in: u64,
    /// Payload bytes received from the room's peers.
    pub bytes_in: u64,
    /// Packets queued to the room's peers (relayed, announcements, the server's own).
    pub packets_out: u64,
    /// Payload bytes queued to the room's peers.
    pub bytes_out: u64,
    /// Peers that joined the room.
    pub joined: u64,
}

/// One room, as [`Server::rooms`](super::Server::rooms) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomInfo<'a> {
    /// The room's name; `""` is the default room (path `/`).
    pub name: &'a str,
    /// Declared in [`RoomConfig::declared`] (it exists even when empty).
    pub declared: bool,
    /// Joined peers.
    pub peers: usize,
    /// Connections in the room, handshaking, joined or closing.
    pub connections: usize,
    /// Traffic since the room was created.
    pub stats: RoomStats,
}

pub(super) struct Room {
    name: Box<str>,
    declared: bool,
    /// Joined peers and their slot indexes, in ascending id order (the order Godot announces
    /// peers in). A sorted vector: rooms are mostly small, and every join or leave is
    /// announced to each member anyway.
    members: Vec<(PeerId, u32)>,
    conns: u32,
    pub(super) stats: RoomStats,
}

/// The rooms of a server: a slab indexed by the small id each connection keeps.
#[derive(Default)]
pub(super) struct Rooms {
    slots: Vec<Option<Room>>,
    free: Vec<u32>,
    by_name: BTreeMap<Box<str>, u32>,
}

impl Rooms {
    /// The table for `config`, with its declared rooms (and, in single mode, the one room).
    pub(super) fn new(config: &RoomConfig) -> Self {
        let mut rooms = Self::default();
        if config.mode == RoomMode::Single {
            rooms.create("", true);
            return rooms;
        }
        for name in &config.declared {
            let name = name.strip_prefix('/').unwrap_or(name);
            if validate_room_name(name).is_ok() && !rooms.by_name.contains_key(name) {
                rooms.create(name, true);
            }
        }
        rooms
    }

    fn create(&mut self, name: &str, declared: bool) -> u32 {
        let room =
            Room { name: name.into(), declared, members: Vec::new(), conns: 0, stats: RoomStats::default() };
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(room);
                i
            }
            None => {
                self.slots.push(Some(room));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_name.insert(name.into(), index);
        index
    }

    /// Rooms that exist now.
    pub(super) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// The room a request for `path` joins, created if it may be; the caller then
    /// [`enter`](Self::enter)s it once the upgrade is accepted.
    pub(super) fn admit(&self, config: &RoomConfig, path: &str) -> Result<Admission, RoomRefusal> {
        if config.mode == RoomMode::Single {
            return Ok(Admission::Existing(0));
        }
        let name = room_from_path(path, &config.prefix)?;
        match self.by_name.get(name) {
            Some(&index) => {
                let full = config
                    .max_peers_per_room
                    .is_some_and(|max| self.get(index).is_some_and(|r| r.conns as usize >= max));
                if full { Err(RoomRefusal::RoomFull) } else { Ok(Admission::Existing(index)) }
            }
            None if config.mode == RoomMode::Declared => Err(RoomRefusal::NotDeclared),
            None if self.len() >= config.max_rooms => Err(RoomRefusal::TooManyRooms),
            None if config.max_peers_per_room == Some(0) => Err(RoomRefusal::RoomFull),
            None => Ok(Admission::New),
        }
    }

    /// Counts a connection in the room `admission` chose (creating it for `path`); returns the
    /// room's index.
    pub(super) fn enter(&mut self, config: &RoomConfig, admission: Admission, path: &str) -> u32 {
        let index = match admission {
            Admission::Existing(index) => index,
            Admission::New => {
                // `admit` validated this path a moment ago; the fallback never applies.
                let name = room_from_path(path, &config.prefix).unwrap_or("");
                match self.by_name.get(name) {
                    Some(&index) => index,
                    None => self.create(name, false),
                }
            }
        };
        if let Some(room) = self.get_mut(index) {
            room.conns += 1;
        }
        index
    }

    /// A connection of the room at `index` was released; an undeclared room left empty goes.
    pub(super) fn exit(&mut self, index: u32) {
        let Some(room) = self.get_mut(index) else { return };
        room.conns = room.conns.saturating_sub(1);
        if room.conns == 0 && !room.declared {
            if let Some(room) = self.slots[index as usize].take() {
                self.by_name.remove(&room.name);
                self.free.push(index);
            }
        }
    }

    pub(super) fn get(&self, index: u32) -> Option<&Room> {
        self.slots.get(index as usize)?.as_ref()
    }

    pub(super) fn get_mut(&mut self, index: u32) -> Option<&mut Room> {
        self.slots.get_mut(index as usize)?.as_mut()
    }

    /// The members of the room at `index`, in ascending id order (none for `NO_ROOM`).
    pub(super) fn members(&self, index: u32) -> &[(PeerId, u32)] {
        self.get(index).map_or(&[], |r| &r.members)
    }

    /// The slot of `peer` if it is a member of the room at `index`.
    pub(super) fn member(&self, index: u32, peer: PeerId) -> Option<u32> {
        let members = self.members(index);
        members.binary_search_by_key(&peer, |m| m.0).ok().map(|at| members[at].1)
    }

    pub(super) fn add_member(&mut self, index: u32, peer: PeerId, slot: u32) {
        let Some(room) = self.get_mut(index) else { return };
        if let Err(at) = room.members.binary_search_by_key(&peer, |m| m.0) {
            room.members.insert(at, (peer, slot));
            room.stats.joined += 1;
        }
    }

    pub(super) fn remove_member(&mut self, index: u32, peer: PeerId) {
        let Some(room) = self.get_mut(index) else { return };
        if let Ok(at) = room.members.binary_search_by_key(&peer, |m| m.0) {
            room.members.remove(at);
            if room.members.is_empty() {
                // A room that was busy once keeps no large allocation while it waits.
                room.members = Vec::new();
            }
        }
    }

    pub(super) fn name(&self, index: u32) -> Option<&str> {
        self.get(index).map(|r| &*r.name)
    }

    /// Every room, in name order.
    pub(super) fn iter(&self) -> impl Iterator<Item = RoomInfo<'_>> + '_ {
        self.by_name.values().filter_map(|&i| self.get(i)).map(|r| RoomInfo {
            name: &r.name,
            declared: r.declared,
            peers: r.members.len(),
            connections: r.conns as usize,
            stats: r.stats,
        })
    }
}

/// Where an admitted request goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Admission {
    Existing(u32),
    /// A room that does not exist yet, created when the upgrade is accepted.
    New,
}
