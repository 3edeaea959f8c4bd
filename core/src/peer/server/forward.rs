//! The application's sends and reads without a copy in between: a packet put straight to a
//! target, a received packet forwarded from the inbox to one or many peers, and a packet read
//! in place.

use rand_core::CryptoRng;

use super::{FROM_LEN, Server};
use crate::peer::{MultiplayerPeer, Packet, PeerId, PutError, Target};

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
    /// The payload goes from the inbox straight into the targets' send queues: no copy through
    /// the application, as `get_packet` and `put_packet` would need. Godot has no such call.
    ///
    /// # Errors
    /// As [`put_packet_to`](Self::put_packet_to); the packet then stays queued.
    pub fn forward_packet(&mut self, target: Target) -> Result<bool, PutError> {
        // The inbox is set aside while its front packet is sent (sending never reads or writes
        // the inbox: only the routing of received messages does), so that it can be borrowed
        // while the connections are written.
        let inbox = core::mem::take(&mut self.inbox);
        let result = match inbox.front() {
            Some(packet) => {
                let data = packet.payload.get(FROM_LEN..).unwrap_or_default();
                self.put_packet_to(target, data).map(|()| true)
            }
            None => Ok(false),
        };
        let stand_in = core::mem::replace(&mut self.inbox, inbox);
        debug_assert!(stand_in.is_empty() && !stand_in.is_open(), "sending touched the inbox");
        if result == Ok(true) {
            self.pop_packet();
        }
        result
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
