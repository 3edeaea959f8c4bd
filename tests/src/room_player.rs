//! A Godot-style client of one room of a `multipeer serve` (multipeer-std's
//! `WebSocketMultiplayerPeer`), as the rooms and cluster tests drive them: it joins by URL
//! path, remembers the peers it was told of and every packet it received.

use core::time::Duration;
use std::collections::BTreeSet;
use std::time::Instant;

use multipeer::peer::{Event, PeerId, Protocol, Target};
use multipeer_std::WebSocketMultiplayerPeer;

/// One client and what it has seen.
pub struct Player {
    /// The transport, for what the tests do beyond sending.
    pub peer: WebSocketMultiplayerPeer,
    /// Its own id, once the server gave one.
    pub id: PeerId,
    /// Peers it has been told of (the server included).
    pub peers: BTreeSet<PeerId>,
    /// Every packet received, with its sender, in arrival order.
    pub got: Vec<(PeerId, Vec<u8>)>,
}

impl Player {
    /// Connects to `ws://{addr}{room}` with `protocol` and waits (up to `limit`) for its id and
    /// the server's announcement.
    ///
    /// # Panics
    /// When the server does not answer in time (a test failure).
    #[must_use]
    pub fn join(addr: impl core::fmt::Display, protocol: Protocol, room: &str, limit: Duration) -> Self {
        let mut peer = match protocol {
            Protocol::Godot3 => WebSocketMultiplayerPeer::godot3(),
            _ => WebSocketMultiplayerPeer::new(),
        };
        peer.create_client_blocking(&format!("ws://{addr}{room}")).expect("create_client");
        let mut player = Self { peer, id: PeerId::SERVER, peers: BTreeSet::new(), got: Vec::new() };
        let end = Instant::now() + limit;
        while player.id == PeerId::SERVER {
            assert!(Instant::now() < end, "no id from the server for {room}");
            player.poll();
            if let Some(id) = u32::try_from(player.peer.get_unique_id()).ok().and_then(PeerId::new) {
                if player.peers.contains(&PeerId::SERVER) {
                    player.id = id;
                }
            }
        }
        player
    }

    /// Reads what arrived (events and packets), then sleeps 1 ms so that a polling loop leaves
    /// the server processes the CPU.
    ///
    /// # Panics
    /// When the transport fails.
    pub fn poll(&mut self) {
        self.peer.poll().expect("poll");
        while let Some(event) = self.peer.poll_event() {
            match event {
                Event::PeerConnected(p) => {
                    self.peers.insert(p);
                }
                Event::PeerDisconnected { peer, .. } => {
                    self.peers.remove(&peer);
                }
                _ => {}
            }
        }
        while let Some((data, info)) = self.peer.get_packet() {
            self.got.push((info.from, data));
        }
        std::thread::sleep(Duration::from_millis(1));
    }

    /// Sends `data` to `target` and polls once.
    ///
    /// # Panics
    /// When the transport refuses the packet.
    pub fn send(&mut self, target: Target, data: &[u8]) {
        self.peer.set_target_peer(target);
        self.peer.put_packet(data).expect("put_packet");
        self.poll();
    }

    /// The payloads received from `from`, in arrival order.
    #[must_use]
    pub fn from(&self, from: PeerId) -> Vec<Vec<u8>> {
        self.got.iter().filter(|(f, _)| *f == from).map(|(_, d)| d.clone()).collect()
    }
}

/// Polls every player until `done` holds.
///
/// # Panics
/// With `what` after `limit`.
pub fn settle(
    players: &mut [&mut Player],
    what: &str,
    limit: Duration,
    done: impl Fn(&[&mut Player]) -> bool,
) {
    let end = Instant::now() + limit;
    while !done(players) {
        assert!(Instant::now() < end, "{what}");
        for p in players.iter_mut() {
            p.poll();
        }
    }
}

/// Polls every player for `time` (to see that nothing more arrives).
pub fn idle(players: &mut [&mut Player], time: Duration) {
    let end = Instant::now() + time;
    while Instant::now() < end {
        for p in players.iter_mut() {
            p.poll();
        }
    }
}
