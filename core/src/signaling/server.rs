//! The lobby server of Godot's `webrtc_signaling` demo protocol, as a sans-IO machine.
//!
//! It knows nothing of sockets or WebSocket: the adapter tells it about connections (by a key
//! it chooses), hands it each text message, and carries out what [`poll_output`] asks (send a
//! text message, close a connection with a code and reason). Behaviour follows the demo's
//! server: a client has 1 s to join a lobby; the lobby creator is the host and is presented as
//! id 1; offers, answers and candidates are relayed only within a lobby with the sender's id
//! put in; the host may seal the lobby, which is then closed after 10 s; when the host leaves,
//! everyone else is closed with 4000. Unlike the demo, ids are unique, not merely random.
//!
//! [`poll_output`]: LobbyServer::poll_output

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use rand_core::CryptoRng;

use super::message::{Message, MessageType};
use crate::time::{Instant, earliest};

/// Limits and timers of a lobby server (the demo's values by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LobbyConfig {
    /// Most connections at once.
    pub max_peers: usize,
    /// Most lobbies at once.
    pub max_lobbies: usize,
    /// Time a connection has to join a lobby.
    pub join_timeout: Duration,
    /// Time from sealing a lobby to closing it.
    pub seal_close_timeout: Duration,
}

impl Default for LobbyConfig {
    fn default() -> Self {
        Self {
            max_peers: 4096,
            max_lobbies: 1024,
            join_timeout: Duration::from_secs(1),
            seal_close_timeout: Duration::from_secs(10),
        }
    }
}

/// What the adapter must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LobbyOutput {
    /// Send `text` as a text message on `conn`.
    Send {
        /// The connection.
        conn: u64,
        /// The message.
        text: String,
    },
    /// Close `conn` with a Close frame carrying `code` and `reason`.
    Close {
        /// The connection.
        conn: u64,
        /// The close code (4000 for protocol errors, as the demo).
        code: u16,
        /// Why.
        reason: &'static str,
    },
}

const ERROR: u16 = 4000;

struct Client {
    id: i64,
    lobby: Option<String>,
    join_deadline: Instant,
}

struct Lobby {
    host: u64,
    mesh: bool,
    members: Vec<u64>,
    seal_deadline: Option<Instant>,
}

/// The lobby server.
pub struct LobbyServer<R: CryptoRng> {
    config: LobbyConfig,
    rng: R,
    clients: BTreeMap<u64, Client>,
    lobbies: BTreeMap<String, Lobby>,
    outputs: VecDeque<LobbyOutput>,
}

impl<R: CryptoRng> LobbyServer<R> {
    /// A server with no connections.
    #[must_use]
    pub fn new(config: LobbyConfig, rng: R) -> Self {
        Self { config, rng, clients: BTreeMap::new(), lobbies: BTreeMap::new(), outputs: VecDeque::new() }
    }

    /// Connections now.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.clients.len()
    }

    /// Lobbies now.
    #[must_use]
    pub fn lobbies(&self) -> usize {
        self.lobbies.len()
    }

    /// A WebSocket connection opened.
    pub fn connect(&mut self, now: Instant, conn: u64) {
        if self.clients.len() >= self.config.max_peers {
            self.outputs.push_back(LobbyOutput::Close {
                conn,
                code: ERROR,
                reason: "Too many peers connected",
            });
            return;
        }
        let id = loop {
            let id = i64::from(self.rng.next_u32() & 0x7fff_ffff);
            if id > 1 && !self.clients.values().any(|c| c.id == id) {
                break id;
            }
        };
        self.clients.insert(conn, Client { id, lobby: None, join_deadline: now + self.config.join_timeout });
    }

    /// A connection sent a binary message, which the protocol does not allow.
    pub fn binary(&mut self, conn: u64) {
        // As in `message`: a connection already closed (or never known) gets no second Close,
        // which could otherwise reach a new connection the adapter gave the same key.
        if !self.clients.contains_key(&conn) {
            return;
        }
        self.fail(conn, "Invalid transfer mode, must be text");
    }

    /// A connection sent a text message.
    pub fn message(&mut self, now: Instant, conn: u64, text: &str) {
        if !self.clients.contains_key(&conn) {
            return;
        }
        if let Err(reason) = self.handle(now, conn, text) {
            self.fail(conn, reason);
        }
    }

    /// A connection closed (for any reason).
    pub fn disconnect(&mut self, conn: u64) {
        self.leave(conn);
        self.clients.remove(&conn);
    }

    fn send(&mut self, conn: u64, kind: MessageType, id: i64, data: &str) {
        self.outputs.push_back(LobbyOutput::Send { conn, text: Message::new(kind, id, data).encode() });
    }

    fn fail(&mut self, conn: u64, reason: &'static str) {
        self.outputs.push_back(LobbyOutput::Close { conn, code: ERROR, reason });
        self.disconnect(conn);
    }

    /// The id `member` is known by in its lobby: 1 for the host.
    fn public_id(&self, lobby: &Lobby, member: u64) -> i64 {
        if member == lobby.host { 1 } else { self.clients.get(&member).map_or(0, |c| c.id) }
    }

    fn handle(&mut self, now: Instant, conn: u64, text: &str) -> Result<(), &'static str> {
        let message = Message::decode(text).map_err(|_| "Invalid message format")?;
        let lobby_name = self.clients.get(&conn).and_then(|c| c.lobby.clone());
        if message.kind == MessageType::Join {
            if lobby_name.is_some() {
                return Err("Already in a lobby");
            }
            return self.join(now, conn, &message.data, message.id == 0);
        }
        let name = lobby_name.ok_or("Invalid message when not in a lobby")?;
        let lobby = self.lobbies.get(&name).ok_or("Server error, lobby not found")?;
        match message.kind {
            MessageType::Seal => {
                if lobby.host != conn {
                    return Err("Only host can seal the lobby");
                }
                let members = lobby.members.clone();
                if let Some(l) = self.lobbies.get_mut(&name) {
                    l.seal_deadline = Some(now + self.config.seal_close_timeout);
                }
                for m in members {
                    self.send(m, MessageType::Seal, 0, "");
                }
                Ok(())
            }
            MessageType::Offer | MessageType::Answer | MessageType::Candidate => {
                let dest = if message.id == 1 {
                    Some(lobby.host)
                } else {
                    lobby
                        .members
                        .iter()
                        .copied()
                        .find(|m| self.clients.get(m).is_some_and(|c| c.id == message.id))
                };
                let dest = dest.ok_or("Invalid destination")?;
                let from = self.public_id(lobby, conn);
                self.send(dest, message.kind, from, &message.data);
                Ok(())
            }
            _ => Err("Invalid command"),
        }
    }

    fn join(&mut self, now: Instant, conn: u64, name: &str, mesh: bool) -> Result<(), &'static str> {
        let name = if name.is_empty() {
            if self.lobbies.len() >= self.config.max_lobbies {
                return Err("Too many lobbies open, disconnecting");
            }
            let name = self.lobby_name();
            self.lobbies
                .insert(name.clone(), Lobby { host: conn, mesh, members: Vec::new(), seal_deadline: None });
            name
        } else {
            String::from(name)
        };
        let lobby = self.lobbies.get(&name).ok_or("Lobby does not exists")?;
        if lobby.seal_deadline.is_some() {
            return Err("Lobby is sealed");
        }
        let _ = now;
        let assigned = self.public_id(lobby, conn);
        let mesh_flag = if lobby.mesh { "true" } else { "" };
        let members = lobby.members.clone();
        self.send(conn, MessageType::Id, assigned, mesh_flag);
        for m in members {
            let other = self.public_id(&self.lobbies[&name], m);
            self.send(m, MessageType::PeerConnect, assigned, "");
            self.send(conn, MessageType::PeerConnect, other, "");
        }
        if let Some(l) = self.lobbies.get_mut(&name) {
            l.members.push(conn);
        }
        if let Some(c) = self.clients.get_mut(&conn) {
            c.lobby = Some(name.clone());
        }
        self.send(conn, MessageType::Join, 0, &name);
        Ok(())
    }

    fn lobby_name(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        loop {
            let name: String = (0..16)
                .map(|_| char::from(ALPHABET[self.rng.next_u32() as usize % ALPHABET.len()]))
                .collect();
            if !self.lobbies.contains_key(&name) {
                return name;
            }
        }
    }

    fn leave(&mut self, conn: u64) {
        let Some(name) = self.clients.get_mut(&conn).and_then(|c| c.lobby.take()) else { return };
        let Some(lobby) = self.lobbies.get_mut(&name) else { return };
        lobby.members.retain(|m| *m != conn);
        if lobby.host == conn {
            // The host is gone: so is the lobby, and everyone in it.
            let members = core::mem::take(&mut lobby.members);
            self.lobbies.remove(&name);
            for m in members {
                if let Some(c) = self.clients.get_mut(&m) {
                    c.lobby = None;
                }
                self.outputs.push_back(LobbyOutput::Close {
                    conn: m,
                    code: ERROR,
                    reason: "Room host has disconnected",
                });
                self.clients.remove(&m);
            }
        } else {
            let id = self.clients.get(&conn).map_or(0, |c| c.id);
            for m in lobby.members.clone() {
                self.send(m, MessageType::PeerDisconnect, id, "");
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let joins = self.clients.values().filter(|c| c.lobby.is_none()).map(|c| c.join_deadline).min();
        let seals = self.lobbies.values().filter_map(|l| l.seal_deadline).min();
        earliest(joins, seals)
    }

    /// Closes connections that did not join in time and sealed lobbies whose time is up.
    pub fn handle_timeout(&mut self, now: Instant) {
        let late: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, c)| c.lobby.is_none() && now >= c.join_deadline)
            .map(|(k, _)| *k)
            .collect();
        for conn in late {
            self.outputs.push_back(LobbyOutput::Close {
                conn,
                code: ERROR,
                reason: "Have not joined lobby yet",
            });
            self.clients.remove(&conn);
        }
        let done: Vec<String> = self
            .lobbies
            .iter()
            .filter(|(_, l)| l.seal_deadline.is_some_and(|t| now >= t))
            .map(|(n, _)| n.clone())
            .collect();
        for name in done {
            if let Some(lobby) = self.lobbies.remove(&name) {
                for m in lobby.members {
                    self.outputs.push_back(LobbyOutput::Close {
                        conn: m,
                        code: 1000,
                        reason: "Seal complete",
                    });
                    self.clients.remove(&m);
                }
            }
        }
    }

    /// The next thing the adapter must do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<LobbyOutput> {
        self.outputs.pop_front()
    }
}
