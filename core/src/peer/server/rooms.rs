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

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::cluster::REMOTE;
use crate::peer::PeerId;

/// Longest room name, in bytes.
pub const MAX_ROOM_NAME_LEN: usize = 64;

/// Most rooms the table makes room for up front (more still fit, by growing).
const MAX_PRESIZED_ROOMS: usize = 1 << 16;

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
    /// Most members of one room: this server's connections (handshaking or joined) and, in a
    /// cluster, the members other instances announced; beyond it a request gets 503. Across
    /// instances the bound is as good as what this instance knows: two joins at the same
    /// moment on two instances may both pass it. `None`: only
    /// [`ServerConfig::max_peers`](super::ServerConfig::max_peers) bounds it.
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
    /// The room holds [`RoomConfig::max_peers_per_room`] members, local or remote (503).
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
    /// Unique over the server's life: a room that goes and comes back gets a new one (to tell
    /// its traffic counters, which start again from zero, apart).
    pub serial: u64,
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
    /// Kept in the room, not in an allocation of its own: small allocations per room, made
    /// among the connections' transient handshake buffers, keep the pages those free resident.
    name: heapless::String<MAX_ROOM_NAME_LEN>,
    serial: u64,
    declared: bool,
    /// Joined peers and their slot indexes, in ascending id order (the order Godot announces
    /// peers in). A sorted vector: rooms are mostly small, and every join or leave is
    /// announced to each member anyway.
    members: Members,
    conns: u32,
    pub(super) stats: RoomStats,
}

/// The rooms of a server: a slab indexed by the small id each connection keeps.
#[derive(Default)]
pub(super) struct Rooms {
    slots: Vec<Option<Room>>,
    free: Vec<u32>,
    /// Slab indexes in name order, for lookups by name: four bytes a room (a map keyed by name
    /// would hold every name twice, and a tree node per few rooms).
    by_name: Vec<u32>,
    created: u64,
}

impl Rooms {
    /// The table for `config`, with its declared rooms (and, in single mode, the one room).
    pub(super) fn new(config: &RoomConfig) -> Self {
        let mut rooms = Self::default();
        if config.mode != RoomMode::Single {
            // The room table is sized once for its limit (under a MiB of address space for the
            // default 4096, its pages touched only as rooms come): growing it by doubling would
            // leave the outgrown copies resident.
            let most = config.max_rooms.min(MAX_PRESIZED_ROOMS);
            rooms.slots.reserve_exact(most);
            rooms.by_name.reserve_exact(most);
        }
        if config.mode == RoomMode::Single {
            rooms.create("", true);
            return rooms;
        }
        for name in &config.declared {
            let name = name.strip_prefix('/').unwrap_or(name);
            if validate_room_name(name).is_ok() && rooms.find(name).is_err() {
                rooms.create(name, true);
            }
        }
        rooms
    }

    /// Where `name` is in `by_name` (or would be inserted).
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.by_name.binary_search_by(|&i| self.name(i).unwrap_or("").cmp(name))
    }

    pub(super) fn lookup(&self, name: &str) -> Option<u32> {
        self.find(name).ok().map(|at| self.by_name[at])
    }

    fn create(&mut self, name: &str, declared: bool) -> u32 {
        self.created += 1;
        let room = Room {
            name: heapless::String::try_from(name).unwrap_or_default(),
            serial: self.created,
            declared,
            members: Members::Inline(heapless::Vec::new()),
            conns: 0,
            stats: RoomStats::default(),
        };
        let at = self.find(name).unwrap_or_else(|at| at);
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
        self.by_name.insert(at, index);
        index
    }

    /// Rooms that exist now.
    pub(super) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Counts a connection in the room a request for `path` names, creating the room if it
    /// may exist; returns the room's index, or why the request is refused.
    pub(super) fn enter(&mut self, config: &RoomConfig, path: &str) -> Result<u32, RoomRefusal> {
        let index = if config.mode == RoomMode::Single {
            0
        } else {
            let name = room_from_path(path, &config.prefix)?;
            match self.lookup(name) {
                Some(index) => index,
                None if config.mode == RoomMode::Declared => return Err(RoomRefusal::NotDeclared),
                None if self.len() >= config.max_rooms => return Err(RoomRefusal::TooManyRooms),
                None if config.max_peers_per_room == Some(0) => return Err(RoomRefusal::RoomFull),
                None => self.create(name, false),
            }
        };
        let room = self.get_mut(index).ok_or(RoomRefusal::NotDeclared)?;
        // Remote members count too: the limit is the room's, whichever instance holds them.
        let remote = room.members.as_slice().iter().filter(|m| m.1 == REMOTE).count();
        if config.max_peers_per_room.is_some_and(|max| room.conns as usize + remote >= max) {
            return Err(RoomRefusal::RoomFull);
        }
        room.conns += 1;
        Ok(index)
    }

    /// A connection of the room at `index` was released; an undeclared room left empty goes
    /// (then `true`).
    pub(super) fn exit(&mut self, index: u32) -> bool {
        let Some(room) = self.get_mut(index) else { return false };
        room.conns = room.conns.saturating_sub(1);
        if room.conns > 0 || room.declared {
            return false;
        }
        if let Some(at) = self.get(index).and_then(|r| self.find(&r.name).ok()) {
            self.by_name.remove(at);
        }
        self.slots[index as usize] = None;
        self.free.push(index);
        true
    }

    pub(super) fn get(&self, index: u32) -> Option<&Room> {
        self.slots.get(index as usize)?.as_ref()
    }

    pub(super) fn get_mut(&mut self, index: u32) -> Option<&mut Room> {
        self.slots.get_mut(index as usize)?.as_mut()
    }

    /// The members of the room at `index`, in ascending id order (none for `NO_ROOM`).
    pub(super) fn members(&self, index: u32) -> &[(PeerId, u32)] {
        self.get(index).map_or(&[], |r| r.members.as_slice())
    }

    /// The slot of `peer` if it is a member of the room at `index`.
    pub(super) fn member(&self, index: u32, peer: PeerId) -> Option<u32> {
        let members = self.members(index);
        members.binary_search_by_key(&peer, |m| m.0).ok().map(|at| members[at].1)
    }

    pub(super) fn add_member(&mut self, index: u32, peer: PeerId, slot: u32) {
        let Some(room) = self.get_mut(index) else { return };
        if let Err(at) = room.members.as_slice().binary_search_by_key(&peer, |m| m.0) {
            room.members.insert(at, (peer, slot));
            room.stats.joined += 1;
        }
    }

    pub(super) fn remove_member(&mut self, index: u32, peer: PeerId) {
        let Some(room) = self.get_mut(index) else { return };
        if let Ok(at) = room.members.as_slice().binary_search_by_key(&peer, |m| m.0) {
            room.members.remove(at);
        }
    }

    pub(super) fn name(&self, index: u32) -> Option<&str> {
        self.get(index).map(|r| &*r.name)
    }

    /// Every room, in name order.
    pub(super) fn iter(&self) -> impl Iterator<Item = RoomInfo<'_>> + '_ {
        self.by_name.iter().filter_map(|&i| self.get(i)).map(|r| RoomInfo {
            name: &r.name,
            serial: r.serial,
            declared: r.declared,
            peers: r.members.as_slice().len(),
            connections: r.conns as usize,
            stats: r.stats,
        })
    }
}

/// Members that fit in the room itself.
const INLINE_MEMBERS: usize = 4;

/// A room's joined peers and their slot indexes, in ascending id order: in the room while a
/// few (most rooms), in an allocation of their own beyond.
enum Members {
    Inline(heapless::Vec<(PeerId, u32), INLINE_MEMBERS>),
    Heap(Vec<(PeerId, u32)>),
}

impl Members {
    fn as_slice(&self) -> &[(PeerId, u32)] {
        match self {
            Self::Inline(members) => members,
            Self::Heap(members) => members,
        }
    }

    fn insert(&mut self, at: usize, member: (PeerId, u32)) {
        match self {
            Self::Inline(members) => {
                if members.insert(at, member).is_err() {
                    let mut heap = Vec::with_capacity(2 * INLINE_MEMBERS);
                    heap.extend_from_slice(members);
                    heap.insert(at, member);
                    *self = Self::Heap(heap);
                }
            }
            Self::Heap(members) => members.insert(at, member),
        }
    }

    fn remove(&mut self, at: usize) {
        match self {
            Self::Inline(members) => {
                members.remove(at);
            }
            Self::Heap(members) => {
                members.remove(at);
                // A room that was busy once keeps no allocation while it is small again.
                if let Ok(inline) = heapless::Vec::from_slice(members) {
                    *self = Self::Inline(inline);
                }
            }
        }
    }
}
