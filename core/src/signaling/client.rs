//! The client side of the demo protocol, and a session that drives a [`Mesh`] with it.
//!
//! [`MeshSession`] is what a game needs: it turns lobby messages into mesh operations (the
//! id creates the mesh in the mode the lobby asks for; each peer announced is added; offers,
//! answers and candidates reach their peer connection) and the mesh's own signalling back into
//! lobby messages. The adapter only moves text between a WebSocket and the session, and
//! commands and events between the mesh and its WebRTC engine.

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::message::{InvalidMessage, Message, MessageType};
use crate::mesh::{Mesh, SdpKind, Signal};
use crate::peer::{PeerId, TransferMode};

/// What a lobby message from the server means.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LobbyEvent {
    /// The lobby joined (its name, to share with friends).
    Joined(String),
    /// Our id in the lobby (1 for the host) and whether the lobby is a mesh.
    Id {
        /// Our id.
        id: PeerId,
        /// Mesh (everyone connects to everyone) or server/client (everyone connects to 1).
        mesh: bool,
    },
    /// A peer joined.
    PeerConnected(PeerId),
    /// A peer left.
    PeerDisconnected(PeerId),
    /// An offer from a peer.
    Offer {
        /// The sender.
        from: PeerId,
        /// The SDP.
        sdp: String,
    },
    /// An answer from a peer.
    Answer {
        /// The sender.
        from: PeerId,
        /// The SDP.
        sdp: String,
    },
    /// A candidate from a peer.
    Candidate {
        /// The sender.
        from: PeerId,
        /// Media id.
        mid: String,
        /// m-line index.
        index: u32,
        /// The `candidate:` line.
        candidate: String,
    },
    /// The host sealed the lobby; the server will close it soon.
    Sealed,
}

fn peer(id: i64) -> Result<PeerId, InvalidMessage> {
    u32::try_from(id).ok().and_then(PeerId::new).ok_or(InvalidMessage)
}

/// Reads a message from the lobby server.
///
/// # Errors
/// [`InvalidMessage`] for malformed JSON, ids out of range, or a malformed candidate.
pub fn parse_server_message(text: &str) -> Result<LobbyEvent, InvalidMessage> {
    let m = Message::decode(text)?;
    Ok(match m.kind {
        MessageType::Join => LobbyEvent::Joined(m.data),
        MessageType::Id => LobbyEvent::Id { id: peer(m.id)?, mesh: m.data == "true" },
        MessageType::PeerConnect => LobbyEvent::PeerConnected(peer(m.id)?),
        MessageType::PeerDisconnect => LobbyEvent::PeerDisconnected(peer(m.id)?),
        MessageType::Offer => LobbyEvent::Offer { from: peer(m.id)?, sdp: m.data },
        MessageType::Answer => LobbyEvent::Answer { from: peer(m.id)?, sdp: m.data },
        MessageType::Candidate => {
            // "\n<mid>\n<index>\n<candidate>", empty parts skipped as the demo does.
            let parts: Vec<&str> = m.data.split('\n').filter(|p| !p.is_empty()).collect();
            let [mid, index, candidate] = parts[..] else { return Err(InvalidMessage) };
            let index = index.parse().map_err(|_| InvalidMessage)?;
            LobbyEvent::Candidate {
                from: peer(m.id)?,
                mid: mid.to_string(),
                index,
                candidate: candidate.to_string(),
            }
        }
        MessageType::Seal => LobbyEvent::Sealed,
    })
}

/// The message that joins `lobby` ("" creates one), as a mesh or as server/client.
#[must_use]
pub fn join_message(lobby: &str, mesh: bool) -> String {
    Message::new(MessageType::Join, if mesh { 0 } else { 1 }, lobby).encode()
}

/// The message that seals the lobby (host only).
#[must_use]
pub fn seal_message() -> String {
    Message::new(MessageType::Seal, 0, "").encode()
}

/// The lobby message carrying a mesh's signalling to its peer.
#[must_use]
pub fn signal_message(signal: &Signal) -> Option<String> {
    Some(match signal {
        Signal::Description { peer, kind, sdp } => {
            let kind = if *kind == SdpKind::Offer { MessageType::Offer } else { MessageType::Answer };
            Message::new(kind, i64::from(peer.get()), sdp).encode()
        }
        Signal::Candidate { peer, mid, index, candidate } => {
            let data = alloc::format!("\n{mid}\n{index}\n{candidate}");
            Message::new(MessageType::Candidate, i64::from(peer.get()), &data).encode()
        }
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

/// Lobby events kept for [`MeshSession::poll_lobby_event`]; beyond it they are counted in
/// [`MeshSession::unreported_events`], so a server that floods an application which never
/// reads them cannot grow the queue.
pub const MAX_LOBBY_EVENTS: usize = 1024;

/// A mesh driven by a lobby: Godot's demo `multiplayer_client.gd`, without the sockets.
pub struct MeshSession {
    mesh: Option<Mesh>,
    channels_config: Vec<TransferMode>,
    unreliable_lifetime: u16,
    lobby: Option<String>,
    sealed: bool,
    outgoing: VecDeque<String>,
    events: VecDeque<LobbyEvent>,
    unreported_events: u64,
}

impl MeshSession {
    /// A session that will join `lobby` ("" creates one) as a mesh or as server/client, with
    /// Godot's channels plus `channels_config`.
    #[must_use]
    pub fn new(lobby: &str, mesh: bool, channels_config: &[TransferMode], unreliable_lifetime: u16) -> Self {
        let mut outgoing = VecDeque::new();
        outgoing.push_back(join_message(lobby, mesh));
        Self {
            mesh: None,
            channels_config: channels_config.to_vec(),
            unreliable_lifetime,
            lobby: None,
            sealed: false,
            outgoing,
            events: VecDeque::new(),
            unreported_events: 0,
        }
    }

    /// The mesh, once the lobby gave us an id.
    #[must_use]
    pub fn mesh(&self) -> Option<&Mesh> {
        self.mesh.as_ref()
    }

    /// The mesh, mutably (to send, read, and exchange commands and events with the engine).
    pub fn mesh_mut(&mut self) -> Option<&mut Mesh> {
        self.mesh.as_mut()
    }

    /// The lobby's name, once joined.
    #[must_use]
    pub fn lobby(&self) -> Option<&str> {
        self.lobby.as_deref()
    }

    /// Whether the host sealed the lobby.
    #[must_use]
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Asks the server to seal the lobby (only the host may).
    pub fn seal(&mut self) {
        self.outgoing.push_back(seal_message());
    }

    /// A text message from the lobby server.
    ///
    /// # Errors
    /// [`InvalidMessage`] for a message that is not the lobby protocol, and for a second id
    /// (Godot refuses to initialize an active peer again): the session is unchanged.
    pub fn handle_text(&mut self, text: &str) -> Result<(), InvalidMessage> {
        let event = parse_server_message(text)?;
        match &event {
            LobbyEvent::Joined(name) => self.lobby = Some(name.clone()),
            LobbyEvent::Id { .. } if self.mesh.is_some() => return Err(InvalidMessage),
            LobbyEvent::Id { id, mesh } => {
                let created = if *mesh {
                    Mesh::create_mesh(*id, &self.channels_config).ok()
                } else if id.is_server() {
                    Some(Mesh::create_server(&self.channels_config))
                } else {
                    Mesh::create_client(*id, &self.channels_config).ok()
                };
                self.mesh = created;
            }
            LobbyEvent::PeerConnected(p) => {
                if let Some(m) = self.mesh.as_mut() {
                    // Server/client lobbies also announce other clients; only 1 is a peer then.
                    let _ = m.add_peer(*p, self.unreliable_lifetime);
                }
            }
            LobbyEvent::PeerDisconnected(p) => {
                if let Some(m) = self.mesh.as_mut() {
                    let _ = m.remove_peer(*p);
                }
            }
            LobbyEvent::Offer { from, sdp } => self.describe(*from, SdpKind::Offer, sdp),
            LobbyEvent::Answer { from, sdp } => self.describe(*from, SdpKind::Answer, sdp),
            LobbyEvent::Candidate { from, mid, index, candidate } => {
                if let Some(m) = self.mesh.as_mut() {
                    let _ = m.add_ice_candidate(*from, mid, *index, candidate);
                }
            }
            LobbyEvent::Sealed => self.sealed = true,
        }
        if self.events.len() < MAX_LOBBY_EVENTS {
            self.events.push_back(event);
        } else {
            self.unreported_events += 1;
        }
        Ok(())
    }

    /// Lobby events acted on but not kept for [`poll_lobby_event`](Self::poll_lobby_event)
    /// because [`MAX_LOBBY_EVENTS`] were waiting.
    #[must_use]
    pub fn unreported_events(&self) -> u64 {
        self.unreported_events
    }

    fn describe(&mut self, from: PeerId, kind: SdpKind, sdp: &str) {
        if let Some(m) = self.mesh.as_mut() {
            let _ = m.set_remote_description(from, kind, sdp);
        }
    }

    /// The next text message to send to the lobby server (the join, then the mesh's offers,
    /// answers and candidates).
    #[must_use]
    pub fn poll_text(&mut self) -> Option<String> {
        if let Some(text) = self.outgoing.pop_front() {
            return Some(text);
        }
        let signal = self.mesh.as_mut()?.poll_signal()?;
        signal_message(&signal)
    }

    /// The next lobby event (for display; the session already acted on it).
    #[must_use]
    pub fn poll_lobby_event(&mut self) -> Option<LobbyEvent> {
        self.events.pop_front()
    }
}
