//! Outbound queues and relay flow control of the machine: the cost of a receiver that cannot
//! keep up falls on it and on the sender that outruns it, never on bystanders, and nothing
//! accepted is dropped (the transport's rules, `peer/server/flow.rs`).
//!
//! Packets to send wait in one queue per transport peer (Godot 3: one for all, since a 3.x
//! packet may address several peers at once and the 3.x transport relays), bounded in packets
//! and bytes ([`SceneConfig::max_queued_packets`](super::SceneConfig::max_queued_packets),
//! [`max_queued_bytes`](super::SceneConfig::max_queued_bytes)). A full transport queue stops
//! only the machine's queue to that peer; a command that finds its target's queue full fails
//! with [`SendError::Full`](super::SendError::Full).
//!
//! A client's `RELAY` is queued for every one of its targets or for none. When a target has
//! no room, the packet waits in the machine with every later packet of its sender, and the
//! transport is asked to hold that sender's input
//! ([`MultiplayerPeer::hold_peer`]): its connection stops being read and TCP slows it down.
//! Waiting senders are served round robin, one packet each per turn, as their targets drain.
//! Each queue keeps room for the server's own messages (`ADD_PEER`, `DEL_PEER`,
//! `CONFIRM_PATH`). A receiver that stays full is evicted by the transport: every packet it
//! refuses to the machine starts its slow-peer clock (`ServerConfig::slow_peer_timeout`,
//! 1008 "slow peer: outbound queue full, not draining"); its queue is then dropped with it.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use super::{Refusal, SceneEvent, SceneMultiplayer, Transmit};
use crate::peer::{MultiplayerPeer, PeerId, PutError, Target};
use crate::time::Instant;

/// Room a relayed packet leaves in a queue for the server's own messages: this many packets
/// and this many bytes (an eighth of the queue when that is less).
const RESERVED_PACKETS: usize = 64;
const RESERVED_BYTES: usize = 4096;

/// The machine's queue to one transport peer (`None`: Godot 3's single queue).
pub(super) type Link = Option<PeerId>;

/// Packets waiting for one transport peer, with their global order (for `poll_transmit`).
#[derive(Default)]
pub(super) struct Outbox {
    packets: VecDeque<(u64, Transmit)>,
    bytes: usize,
}

/// Packets of a sender that wait because the first of them is a relay without room.
pub(super) struct Held {
    packets: VecDeque<Vec<u8>>,
    /// The target without room for the first packet, and the bytes it needs there.
    waiting_on: PeerId,
    need: usize,
    /// Since when the sender waits.
    since: Instant,
}

impl SceneMultiplayer {
    /// The queue a packet for `to` goes into.
    pub(super) fn link(&self, to: Target) -> Link {
        match to {
            Target::Peer(p) if self.config.version.is_godot4() => Some(p),
            _ => None,
        }
    }

    /// The queue a packet for the peer `to` goes into (a client reaches relayed peers through
    /// the server).
    pub(super) fn link_to(&self, to: PeerId) -> Link {
        let relayed = !self.is_server() && self.peers.get(&to).is_some_and(|s| s.relayed);
        self.link(Target::Peer(if relayed { PeerId::SERVER } else { to }))
    }

    fn free(&self, link: Link) -> (usize, usize) {
        let (packets, bytes) = self.outboxes.get(&link).map_or((0, 0), |o| (o.packets.len(), o.bytes));
        (
            self.config.max_queued_packets.saturating_sub(packets),
            self.config.max_queued_bytes.saturating_sub(bytes),
        )
    }

    /// Whether every `(peer, packets, bytes)` need fits its queue (needs of one queue add up;
    /// a `RELAY` header more per packet when a client reaches the peer through the server).
    pub(super) fn fits(&self, needs: impl IntoIterator<Item = (PeerId, usize, usize)>) -> bool {
        let mut sum: BTreeMap<Link, (usize, usize)> = BTreeMap::new();
        for (peer, packets, bytes) in needs {
            let link = self.link_to(peer);
            let bytes = if link == Some(peer) || link.is_none() {
                bytes
            } else {
                bytes.saturating_add(packets.saturating_mul(crate::peer::scene::SYS_HEADER_LEN))
            };
            let e = sum.entry(link).or_default();
            *e = (e.0.saturating_add(packets), e.1.saturating_add(bytes));
        }
        sum.into_iter().all(|(link, (packets, bytes))| {
            let (free_packets, free_bytes) = self.free(link);
            packets <= free_packets && bytes <= free_bytes
        })
    }

    /// Whether a relayed packet of `len` bytes fits the queue of `peer` and leaves room for
    /// the server's own messages.
    pub(super) fn relay_room(&self, peer: PeerId, len: usize) -> bool {
        let (packets, bytes) = self.free(self.link_to(peer));
        let reserved_packets = (self.config.max_queued_packets / 8).min(RESERVED_PACKETS);
        let reserved_bytes = (self.config.max_queued_bytes / 8).min(RESERVED_BYTES);
        packets > reserved_packets && bytes >= len.saturating_add(reserved_bytes)
    }

    /// Queues a packet in the queue of its target; the caller checked the room.
    pub(super) fn push_transmit(&mut self, transmit: Transmit) {
        let link = self.link(transmit.to);
        let seq = self.next_seq;
        self.next_seq += 1;
        let outbox = self.outboxes.entry(link).or_default();
        outbox.bytes += transmit.data.len();
        outbox.packets.push_back((seq, transmit));
    }

    /// Packets queued to send, over every queue.
    #[must_use]
    pub fn queued_packets(&self) -> usize {
        self.outboxes.values().map(|o| o.packets.len()).sum()
    }

    /// The oldest queued packet over every queue (the order they were queued in).
    pub(super) fn pop_oldest(&mut self) -> Option<Transmit> {
        let link = *self.outboxes.iter().min_by_key(|(_, o)| o.packets.front().map_or(u64::MAX, |p| p.0))?.0;
        let outbox = self.outboxes.get_mut(&link)?;
        let (_, transmit) = outbox.packets.pop_front()?;
        outbox.bytes -= transmit.data.len();
        if outbox.packets.is_empty() {
            self.outboxes.remove(&link);
        }
        Some(transmit)
    }

    /// Hands each queue to the transport until it is empty or its peer is full; a full peer
    /// holds only its own queue.
    pub(super) fn send_queued<P: MultiplayerPeer + ?Sized>(&mut self, peer: &mut P) {
        let mut failed = Vec::new();
        for outbox in self.outboxes.values_mut() {
            while let Some((_, transmit)) = outbox.packets.front() {
                peer.set_target_peer(transmit.to);
                peer.set_transfer_mode(transmit.mode);
                peer.set_transfer_channel(transmit.channel);
                match peer.put_packet(&transmit.data) {
                    Ok(()) => {}
                    Err(PutError::Full) => {
                        // The transport's slow-peer clock for it runs from its first refusal.
                        self.stats.outbound_full += 1;
                        break;
                    }
                    Err(error) => failed.push((transmit.to, error)),
                }
                outbox.bytes -= transmit.data.len();
                outbox.packets.pop_front();
            }
        }
        self.outboxes.retain(|_, o| !o.packets.is_empty());
        for (to, error) in failed {
            self.push_event(SceneEvent::SendFailed { to, error });
        }
    }

    /// Whether a packet of `len` bytes may still be held back (`pump` stops taking packets
    /// from the transport beyond that, so that nothing is dropped).
    pub(super) fn can_hold(&self, len: usize) -> bool {
        // One packet always fits, so that limits below a packet's size cannot stop `pump`.
        self.held_packets == 0
            || (self.held_packets < self.config.max_held_packets
                && self.held_bytes.saturating_add(len) <= self.config.max_held_bytes)
    }

    /// Whether `from` has packets waiting (its next ones must wait behind them).
    pub(super) fn is_holding(&self, from: PeerId) -> bool {
        self.held.contains_key(&from)
    }

    /// Keeps `packet` of `from` behind its waiting ones (or as the first one, waiting on
    /// `blocked`: the target and the bytes it needs there).
    pub(super) fn hold(&mut self, from: PeerId, packet: &[u8], blocked: Option<(PeerId, usize)>) {
        if !self.can_hold(packet.len()) {
            return self.refuse(from, Refusal::OutboundFull);
        }
        match (self.held.get_mut(&from), blocked) {
            (Some(held), _) => held.packets.push_back(packet.to_vec()),
            (None, None) => return,
            (None, Some((waiting_on, need))) => {
                let packets = VecDeque::from([packet.to_vec()]);
                self.held.insert(from, Held { packets, waiting_on, need, since: self.now });
                self.waiting.push_back(from);
                self.holds.push_back((from, true));
                self.stats.relay_waits += 1;
                self.stats.held_senders += 1;
            }
        }
        self.held_packets += 1;
        self.held_bytes += packet.len();
    }

    /// Serves the waiting senders round robin, one packet each per turn, while their targets
    /// have room; returns whether any packet went.
    pub(super) fn serve_held(&mut self) -> bool {
        let mut any = false;
        loop {
            let mut progress = false;
            for _ in 0..self.waiting.len() {
                let Some(sender) = self.waiting.pop_front() else { break };
                let Some(&Held { waiting_on, need, .. }) = self.held.get(&sender) else { continue };
                if self.peers.contains_key(&waiting_on) && !self.relay_room(waiting_on, need) {
                    self.waiting.push_back(sender);
                    continue;
                }
                let Some(packet) = self.held.get_mut(&sender).and_then(|h| h.packets.pop_front()) else {
                    continue;
                };
                self.process(sender, &packet, false);
                let Some(held) = self.held.get_mut(&sender) else { continue };
                if let Some((target, need)) = self.blocked.take() {
                    // Still no room (another of its targets is full): it waits again, first.
                    held.packets.push_front(packet);
                    (held.waiting_on, held.need) = (target, need);
                    self.stats.relay_waits += 1;
                    self.waiting.push_back(sender);
                    continue;
                }
                progress = true;
                self.held_packets -= 1;
                self.held_bytes -= packet.len();
                if held.packets.is_empty() {
                    let since = held.since;
                    self.held.remove(&sender);
                    self.count_wait(since);
                    self.holds.push_back((sender, false));
                    self.stats.held_senders -= 1;
                } else {
                    self.waiting.push_back(sender);
                }
            }
            any |= progress;
            if !progress {
                return any;
            }
        }
    }

    /// A peer left: what was queued for it goes nowhere (counted), and what it sent that
    /// still waited is refused (it can no longer be relayed as its sender's).
    pub(super) fn forget_queues(&mut self, peer: PeerId) {
        if self.config.version.is_godot4() {
            if let Some(outbox) = self.outboxes.remove(&Some(peer)) {
                self.stats.unsent_to_departed += outbox.packets.len() as u64;
            }
        }
        if let Some(held) = self.held.remove(&peer) {
            self.stats.held_senders -= 1;
            self.count_wait(held.since);
            for packet in held.packets {
                self.held_packets -= 1;
                self.held_bytes -= packet.len();
                self.refuse(peer, Refusal::SenderLeft);
            }
        }
    }

    fn count_wait(&mut self, since: Instant) {
        self.stats.held_micros += self.now.saturating_duration_since(since).as_micros() as u64;
    }

    /// Hands the hold and release requests to the transport; returns whether a sender was
    /// released (its packets may be readable now).
    pub(super) fn apply_holds<P: MultiplayerPeer + ?Sized>(&mut self, peer: &mut P) -> bool {
        let mut released = false;
        while let Some((p, held)) = self.holds.pop_front() {
            // A transport that cannot hold leaves the packets coming: they wait here, up to
            // `max_held_*`, and then `pump` stops taking packets at all.
            let _ = peer.hold_peer(p, held);
            released |= !held;
        }
        released
    }

    /// The next input hold (`true`) or release (`false`) for the transport's
    /// [`hold_peer`](MultiplayerPeer::hold_peer); [`pump`](Self::pump) applies them. Godot has
    /// no such call: its SceneMultiplayer drops what does not fit.
    #[must_use]
    pub fn poll_hold(&mut self) -> Option<(PeerId, bool)> {
        self.holds.pop_front()
    }
}
