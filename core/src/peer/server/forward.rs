//! The application's sends and reads without a copy in between: a packet put straight to a
//! target, a received packet forwarded from the inbox to one or many peers, and a packet read
//! in place; and the packets held for the application in their connections (`inbox.rs`).

use alloc::vec::Vec;
use rand_core::CryptoRng;

use super::Server;
use super::inbox::Front;
use crate::peer::{MultiplayerPeer, Packet, PeerId, Protocol, PutError, Target};
use crate::ws::{MessageKind, SendError};

/// Largest scratch buffer kept between forwards of held packets; a larger one is freed.
const SCRATCH_KEPT: usize = 64 * 1024;
/// Largest packet `forward_packet` copies aside before sending it; a larger one is sent from
/// the inbox, which is moved out and back around the send (a few hundred bytes of state, and
/// most of the user-space work of forwarding a 20-byte packet).
const COPY_MAX: usize = 512;

impl<R: CryptoRng> Server<R> {
    /// `put_packet` to `target` without changing the target peer (Godot: `set_target_peer`
    /// then `put_packet`, in one call): the server's own packet, copied once into each
    /// target's send queue (once in all for a broadcast under Godot 4, whose frame is shared).
    ///
    /// # Errors
    /// As `put_packet`.
    pub fn put_packet_to(&mut self, target: Target, data: &[u8]) -> Result<(), PutError> {
        self.timeless = true;
        let result = self.send_to(target, data);
        self.timeless = false;
        result
    }

    /// Sends the oldest received packet to `target` (one peer, everyone, or everyone but one)
    /// as the server's own packet and removes it; returns whether there was one.
    ///
    /// The payload goes from where it was received straight into the targets' send queues: no
    /// copy through the application, as `get_packet` and `put_packet` would need. A large
    /// packet echoed to its sender under Godot 4 is not copied at all when nothing else is
    /// queued either way: its receive buffer becomes its send buffer. Godot has no such call.
    ///
    /// # Errors
    /// As [`put_packet_to`](Self::put_packet_to); the packet then stays queued.
    pub fn forward_packet(&mut self, target: Target) -> Result<bool, PutError> {
        if let Target::Peer(peer) = target.normalized() {
            if let Some(sent) = self.forward_to_peer(peer) {
                sent?;
                return Ok(true);
            }
        }
        match self.inbox.front() {
            None => return Ok(false),
            Some(Front::Held { index, .. }) => self.forward_held(index, target)?,
            Some(Front::Here { from, index, data }) if data.len() <= COPY_MAX => {
                // A small packet is copied aside: cheaper than moving the inbox out and back.
                let mut scratch = core::mem::take(&mut self.scratch);
                scratch.clear();
                scratch.extend_from_slice(data);
                self.forward_copy(target, scratch, Some((from, index)))?;
            }
            Some(Front::Here { .. }) => self.forward_in_place(target)?,
        }
        Ok(true)
    }

    /// [`forward_packet`](Self::forward_packet) of a packet in the inbox to one peer, sent from
    /// the inbox: only the target's connection is written, so the inbox stays borrowed, with
    /// no copy aside and nothing moved. `None` when this way does not apply (no packet, or one
    /// held in its connection; an unknown peer; the target's connection out of its slot; the
    /// server closed): the caller goes the general way, which also reports the errors.
    fn forward_to_peer(&mut self, peer: PeerId) -> Option<Result<(), PutError>> {
        if self.closed {
            return None;
        }
        let max = self.max_packet_size();
        let header = super::routing::server_header(Target::Peer(peer));
        let protocol = self.config.protocol;
        // The packet stays borrowed from the inbox while the target's connection (another
        // field of the server) is written.
        let Some(Front::Here { from, index: came_from, data }) = self.inbox.front() else { return None };
        let index = self.peer_index(peer, Some((from, came_from)))?;
        let c = self.slots[index as usize].conn.as_mut()?;
        if data.len() > max {
            return Some(Err(PutError::TooLarge { max }));
        }
        let both = [&header[..], data];
        let sent = super::routing::send_parts_to(c, super::routing::packet_parts(protocol, &both));
        self.timeless = true;
        let result = match sent {
            Ok(sent) => {
                self.delivered(index, sent);
                self.timeless = false;
                self.pop_packet();
                return Some(Ok(()));
            }
            Err(PutError::Full) => {
                self.mark_stalled(index);
                Err(PutError::Full)
            }
            Err(e) => Err(e),
        };
        self.timeless = false;
        Some(result)
    }

    /// [`forward_packet`](Self::forward_packet) of the oldest packet, copied into `scratch`
    /// (the server's scratch buffer, taken) because it cannot stay borrowed while the targets
    /// are written. `sender` is where its sender's connection was, if known.
    fn forward_copy(
        &mut self,
        target: Target,
        scratch: Vec<u8>,
        sender: Option<(PeerId, u32)>,
    ) -> Result<(), PutError> {
        self.timeless = true;
        let result = self.send_to_hinted(target, &scratch, sender);
        self.timeless = false;
        if scratch.capacity() <= SCRATCH_KEPT {
            self.scratch = scratch;
        }
        result?;
        self.pop_packet();
        Ok(())
    }

    /// [`forward_packet`](Self::forward_packet) of a packet copied into the inbox, sent from
    /// there.
    fn forward_in_place(&mut self, target: Target) -> Result<(), PutError> {
        // The inbox is set aside while its front packet is sent (sending never reads or writes
        // the inbox: only the routing of received messages does), so that it can be borrowed
        // while the connections are written.
        let inbox = core::mem::take(&mut self.inbox);
        let result = match inbox.front() {
            Some(Front::Here { data, .. }) => self.put_packet_to(target, data),
            _ => Ok(()),
        };
        let stand_in = core::mem::replace(&mut self.inbox, inbox);
        debug_assert!(stand_in.is_empty(), "sending touched the inbox");
        result?;
        self.pop_packet();
        Ok(())
    }

    /// [`forward_packet`](Self::forward_packet) of a packet held by the connection at `index`.
    fn forward_held(&mut self, index: u32, target: Target) -> Result<(), PutError> {
        let to_sender = matches!(target.normalized(), Target::Peer(p) if self.peers.get(&p) == Some(&index));
        if to_sender && self.config.protocol == Protocol::Godot4 && !self.closed {
            if let Some(c) = self.slots[index as usize].conn.as_mut().filter(|c| c.app_hold == Some(0)) {
                let len = c.ws.peek_message().map_or(0, |m| m.data.len());
                // Sent from the connection's own receive queue (without a copy when it allows).
                let sent = c.ws.forward_message_as(MessageKind::Binary);
                let room = c.room;
                return match sent {
                    Ok(_) => {
                        c.app_hold = None;
                        self.count_out(room, len as u64);
                        self.timeless = true;
                        self.inbox.pop();
                        self.popped += 1;
                        self.after_hold(index, true);
                        self.unblock_routing();
                        self.serve_ready();
                        self.timeless = false;
                        Ok(())
                    }
                    Err(SendError::Full { .. }) => {
                        self.timeless = true;
                        self.mark_stalled(index);
                        self.timeless = false;
                        Err(PutError::Full)
                    }
                    Err(SendError::TooLarge { max }) => Err(PutError::TooLarge { max }),
                    Err(_) => Err(PutError::NotConnected),
                };
            }
        }
        // Anywhere else: copied out first, since the sending connection's queue cannot be read
        // while the targets' are written.
        let mut scratch = core::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(self.peek_packet().map_or(&[][..], |p| p.data));
        let sender = self.slots[index as usize].conn.as_ref().and_then(|c| c.peer).map(|p| (p, index));
        self.forward_copy(target, scratch, sender)
    }

    /// Whether the connection at `index` may route its messages: it holds no packet for the
    /// application, or it did and a relaying server copies that packet out so the messages
    /// behind it need not wait for the application (`inbox.rs`).
    pub(super) fn may_route_past_hold(&mut self, index: u32) -> bool {
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return true };
        let Some(offset) = c.app_hold else { return true };
        let relays = self.config.relay || self.config.protocol == Protocol::Godot3;
        // A departed sender's later messages are dropped once the packet is read: no hurry.
        if !relays || c.peer.is_none() || c.ws.available_messages() < 2 {
            return false;
        }
        let len = c.ws.peek_message().map_or(0, |m| m.data.len().saturating_sub(usize::from(offset)));
        if !self.inbox.fits_copy(len) {
            if !c.routing_blocked {
                c.routing_blocked = true;
                self.routing_blocked.push_back(index);
            }
            return false;
        }
        self.orphan_hold(index);
        true
    }

    /// Copies the packet the connection at `index` holds for the application into the inbox,
    /// so that the messages behind it can be relayed.
    fn orphan_hold(&mut self, index: u32) {
        let generation = self.slots[index as usize].generation;
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
        let Some(offset) = c.app_hold.take() else { return };
        let data = c.ws.peek_message().and_then(|m| m.data.get(usize::from(offset)..)).unwrap_or_default();
        let data = data.to_vec();
        let from = c.peer.or(c.former);
        c.ws.pop_message();
        match from {
            Some(from) => self.inbox.orphan(index, generation, from, data),
            None => debug_assert!(false, "a packet held by a connection that never was a peer"),
        }
        self.after_hold(index, false);
    }

    /// The connection at `index` let go of the packet it held; with `route_next`, the messages
    /// that waited behind it are routed now.
    fn after_hold(&mut self, index: u32, route_next: bool) {
        let id = self.conn_id(index);
        if let Some(c) = self.slots[index as usize].conn.as_mut() {
            if c.input_blocked {
                c.input_blocked = false;
                self.resume.push_back(id);
            }
        }
        if route_next {
            self.route(index);
        }
        self.schedule(index);
    }

    /// The inbox was emptied (`close`): every held packet is let go.
    pub(super) fn drop_holds(&mut self) {
        for index in 0..self.slots.len() as u32 {
            let Some(c) = self.slots[index as usize].conn.as_mut() else { continue };
            if c.app_hold.take().is_some() {
                c.ws.pop_message();
                self.after_hold(index, true);
            }
        }
    }

    /// The application read the packet held by the connection at slot `index`.
    pub(super) fn release_hold(&mut self, index: u32, generation: u32) {
        if self.slots[index as usize].generation != generation {
            return;
        }
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
        if c.app_hold.take().is_some() {
            c.ws.pop_message();
            self.after_hold(index, true);
        }
    }

    /// [`MultiplayerPeer::hold_peer`]: while `held`, the messages of `peer` stay in its
    /// connection instead of entering the inbox, so its input fills and the adapter stops
    /// reading it, as for a relayed packet that waits (`flow.rs`); packets of it already in
    /// the inbox stay there. Released, its messages are routed again, round robin with the
    /// other senders that may go on. Returns false for an unknown peer.
    pub(super) fn set_peer_held(&mut self, peer: PeerId, held: bool) -> bool {
        let Some(&index) = self.peers.get(&peer) else { return false };
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return false };
        if core::mem::replace(&mut c.held, held) && !held {
            self.timeless = true;
            self.ready.push_back(index);
            self.serve_ready();
            self.schedule(index);
            self.timeless = false;
        }
        true
    }

    /// Godot's `get_packet`, borrowed: hands the oldest received packet to `read` where it
    /// lies, removes it, and returns what `read` returned (`None` when no packet waits).
    pub fn get_packet_with<T>(&mut self, read: impl FnOnce(Packet<'_>) -> T) -> Option<T> {
        let value = read(self.peek_packet()?);
        self.pop_packet();
        Some(value)
    }
}
