//! Where each received message goes, and fan-out to peers.
//!
//! Godot 4 with relay: SceneMultiplayer `RELAY(target, inner)` packets are forwarded as
//! `RELAY(sender, inner)`; the server application also receives `inner` for broadcasts, except
//! when the target is −1 ("everyone but the server"). Godot 3: the 9-byte header's target
//! decides, and relayed messages are forwarded byte for byte. Everything Godot drops silently
//! (short packets, spoofed senders, client system messages, unknown targets) is dropped with an
//! [`Event::PacketDropped`](crate::peer::Event::PacketDropped).
//!
//! A message that would reach the application waits in its connection while the inbox is
//! full, so the connection stops being read: back-pressure instead of loss. A peer whose own
//! outbound queue overflows while others send to it is cut off with a reason, so a peer that
//! never reads stalls nobody.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::cluster::REMOTE;
use super::{Server, inbox};
use crate::peer::godot3::{self, MessageType};
use crate::peer::scene::{self, SysCommand};
use crate::peer::{DisconnectReason, DropReason, Event, PeerId, Protocol, PutError, Target};
use crate::ws::{self, CloseCode, MessageKind, SendError, SharedFrame};

/// From this payload size a fan-out shares one encoded frame between its targets instead of
/// copying the payload into each target's queue; below it a copy costs less than the
/// bookkeeping and keeps each queue one contiguous write.
const SHARE_THRESHOLD: usize = 512;

/// Where a relayed message goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Dest {
    One(PeerId),
    /// Every peer except the sender and, if given, one more.
    AllExcept(Option<PeerId>),
}

/// What to do with one received message.
enum Route<'a> {
    Drop(DropReason),
    Deliver {
        /// Bytes for the server application, if any.
        app: Option<&'a [u8]>,
        /// Bytes to forward, and to whom.
        relay: Option<(Dest, Forward<'a>)>,
    },
}

/// The bytes a relay forwards.
#[derive(Clone, Copy)]
enum Forward<'a> {
    /// Godot 3: the message as received.
    Original(&'a [u8]),
    /// Godot 4: `RELAY(sender, inner)`.
    Rewrite(&'a [u8]),
}

impl Forward<'_> {
    /// Bytes of the forwarded message.
    fn len(self) -> usize {
        match self {
            Self::Original(message) => message.len(),
            Self::Rewrite(inner) => scene::SYS_HEADER_LEN + inner.len(),
        }
    }
}

fn peer_from(raw: i32) -> Option<PeerId> {
    u32::try_from(raw).ok().and_then(PeerId::new)
}

/// Godot 4: the target of a relay request, or why it is dropped.
fn relay_dest(sender: PeerId, target: i32) -> Result<(Dest, bool), DropReason> {
    match target {
        1 => Err(DropReason::RelayToServer),
        0 => Ok((Dest::AllExcept(None), true)),
        t if t > 0 => match peer_from(t) {
            Some(p) if p == sender => Err(DropReason::TargetIsSender),
            Some(p) => Ok((Dest::One(p), false)),
            None => Err(DropReason::UnknownTarget(t)),
        },
        // −1 is "everyone but the server": the server does not process it.
        t => match t.checked_neg().and_then(peer_from) {
            Some(excluded) => Ok((Dest::AllExcept(Some(excluded)), !excluded.is_server())),
            None => Err(DropReason::UnknownTarget(t)),
        },
    }
}

fn classify_godot4(sender: PeerId, message: &[u8], relay: bool) -> Route<'_> {
    if message.is_empty() {
        return Route::Drop(DropReason::Empty);
    }
    if !relay || !scene::is_sys(message) {
        return Route::Deliver { app: Some(message), relay: None };
    }
    let sys = match scene::decode(message) {
        Ok(sys) => sys,
        Err(scene::SysError::TooShort) => return Route::Drop(DropReason::TooShort),
        Err(scene::SysError::UnknownCommand(_)) => return Route::Drop(DropReason::UnknownMessage),
    };
    if sys.command != SysCommand::Relay {
        return Route::Drop(DropReason::ClientSysMessage);
    }
    match relay_dest(sender, sys.id) {
        Ok((dest, to_app)) => Route::Deliver {
            app: to_app.then_some(sys.payload),
            relay: Some((dest, Forward::Rewrite(sys.payload))),
        },
        Err(reason) => Route::Drop(reason),
    }
}

fn classify_godot3(sender: PeerId, message: &[u8]) -> Route<'_> {
    let Some((header, payload)) = godot3::Header::decode(message) else {
        return Route::Drop(DropReason::TooShort);
    };
    match MessageType::from_byte(header.kind) {
        Some(MessageType::Data) => {}
        Some(_) => return Route::Drop(DropReason::ClientSysMessage),
        None => return Route::Drop(DropReason::UnknownMessage),
    }
    if header.from != sender.get() {
        return Route::Drop(DropReason::SpoofedSender { claimed: header.from });
    }
    let forward = Forward::Original(message);
    match header.to {
        1 => Route::Deliver { app: Some(payload), relay: None },
        0 => Route::Deliver { app: Some(payload), relay: Some((Dest::AllExcept(None), forward)) },
        t if t > 0 => match peer_from(t) {
            Some(p) if p == sender => Route::Drop(DropReason::TargetIsSender),
            Some(p) => Route::Deliver { app: None, relay: Some((Dest::One(p), forward)) },
            None => Route::Drop(DropReason::UnknownTarget(t)),
        },
        // Unlike Godot 3, −1 really excludes the server.
        t => match t.checked_neg().and_then(peer_from) {
            Some(excluded) => Route::Deliver {
                app: (!excluded.is_server()).then_some(payload),
                relay: Some((Dest::AllExcept(Some(excluded)), forward)),
            },
            None => Route::Drop(DropReason::UnknownTarget(t)),
        },
    }
}

impl<R: CryptoRng> Server<R> {
    /// Routes every complete message of the connection at `index`, as far as room allows.
    pub(super) fn route(&mut self, index: u32) {
        self.route_some(index, usize::MAX);
    }

    /// Routes up to `limit` messages of the connection at `index`; returns whether it has more
    /// that it could route now (it neither ran out nor has to wait).
    pub(super) fn route_some(&mut self, index: u32, limit: usize) -> bool {
        // Most calls come after a write or a timer, with nothing received: return before
        // moving the connection out of its slot and back (two copies of a kilobyte-sized
        // struct, which were most of a relay's copying per delivery).
        let idle = self.slots[index as usize].conn.as_ref().is_none_or(|c| {
            c.ws.peek_message().is_none() || (c.peer.is_some() && (c.flow.is_held() || c.held))
        });
        if idle || self.routing.is_some() || !self.may_route_past_hold(index) {
            return false;
        }
        let Some(mut src) = self.slots[index as usize].conn.take() else { return false };
        self.routing = Some(index);
        self.routing_from = src.peer;
        let mut popped = false;
        let mut routed = 0;
        let relays = self.config.relay || self.config.protocol == Protocol::Godot3;
        if let Some(sender) = src.peer {
            while let Some(message) = src.ws.peek_message() {
                if routed == limit {
                    break;
                }
                let data = message.data;
                if !self.within_rate(&mut src.flow) {
                    break;
                }
                let route = match self.config.protocol {
                    Protocol::Godot4 => classify_godot4(sender, data, self.config.relay),
                    Protocol::Godot3 => classify_godot3(sender, data),
                };
                match route {
                    Route::Drop(reason) => {
                        self.stats.dropped += 1;
                        self.report(Event::PacketDropped { from: Some(sender), reason });
                    }
                    Route::Deliver { app, relay } => {
                        // A large packet stays in its connection until the application
                        // reads it (`inbox.rs`): on a relaying server only when it is alone
                        // there (what follows may be for other peers, which must not wait).
                        // The application's bytes are a suffix of the message.
                        let hold = app
                            .filter(|a| {
                                a.len() >= inbox::HOLD_MIN
                                    && (src.ws.available_messages() == 1 || !relays)
                                    && src.ws.state() == ws::State::Open
                                    && !src.leaving
                            })
                            .and_then(|a| u8::try_from(data.len() - a.len()).ok());
                        let fits = match (app, hold) {
                            (_, Some(_)) => self.inbox.fits_held(),
                            (Some(a), None) => self.inbox.fits_copy(a.len()),
                            (None, None) => true,
                        };
                        if !fits {
                            if !src.routing_blocked {
                                src.routing_blocked = true;
                                self.routing_blocked.push_back(index);
                            }
                            break;
                        }
                        if let Some((dest, forward)) = relay {
                            if let Some(full) = self.relay_blocker(src.room, sender, dest, forward.len()) {
                                self.wait_on(&mut src.flow, index, full);
                                break;
                            }
                            self.relay(src.room, sender, dest, forward);
                        }
                        match (app, hold) {
                            (Some(_), Some(offset)) => {
                                let generation = self.slots[index as usize].generation;
                                self.inbox.push_held(index, generation);
                                src.app_hold = Some(offset);
                            }
                            (Some(app), None) => self.inbox.push_copy(sender, index, app),
                            (None, _) => {}
                        }
                    }
                }
                self.stats.packets_in += 1;
                self.stats.bytes_in += data.len() as u64;
                if let Some(room) = self.rooms.get_mut(src.room) {
                    room.stats.packets_in += 1;
                    room.stats.bytes_in += data.len() as u64;
                }
                Self::charge_rate(&mut src.flow, data.len());
                if src.app_hold.is_some() {
                    // Routed; it leaves the connection when the application reads it.
                    break;
                }
                src.ws.pop_message_in_batch();
                popped = true;
                routed += 1;
            }
            if popped {
                src.ws.end_pop_batch();
            }
        }
        if let (None, Some(former), None) = (src.peer, src.former, src.app_hold) {
            // Kicked or cut off while its packets were in flight: they go nowhere, visibly,
            // and stop holding back its Close reply (those behind a packet it holds for the
            // application once that is read).
            while src.ws.pop_message() {
                self.stats.dropped += 1;
                self.report(Event::PacketDropped { from: Some(former), reason: DropReason::SenderLeft });
                popped = true;
            }
        }
        if popped && src.input_blocked {
            src.input_blocked = false;
            self.resume.push_back(self.conn_id(index));
        }
        let more = src.peer.is_some()
            && !src.flow.is_held()
            && !src.held
            && !src.routing_blocked
            && src.app_hold.is_none()
            && src.ws.peek_message().is_some();
        let left = (src.leaving && src.ws.peek_message().is_none()).then(|| {
            let info = src.ws.close_info().cloned().map(|i| crate::peer::presented(i, self.config.protocol));
            info.map_or(DisconnectReason::Kicked, DisconnectReason::Closed)
        });
        self.slots[index as usize].conn = Some(src);
        self.routing = None;
        self.routing_from = None;
        for message in core::mem::take(&mut self.for_routing) {
            self.deliver_or_cut(index, &[&message]);
        }
        if let Some(reason) = left {
            // Everything it sent before closing went out; now its departure.
            self.leave(index, reason);
            self.schedule(index);
        }
        more
    }

    /// The first target of a relayed packet without room for it, if any: the packet then waits
    /// in its sender for all of its targets, so each gets it, in order, or none yet.
    fn relay_blocker(&mut self, room: u32, sender: PeerId, dest: Dest, len: usize) -> Option<u32> {
        match dest {
            Dest::One(peer) => {
                let index = self.rooms.member(room, peer).filter(|&i| i != REMOTE)?;
                (!self.has_relay_room(index, len)).then_some(index)
            }
            Dest::AllExcept(except) => {
                let mut targets = core::mem::take(&mut self.fanout);
                targets.clear();
                targets.extend(
                    self.rooms
                        .members(room)
                        .iter()
                        .filter(|&&(p, i)| p != sender && Some(p) != except && i != REMOTE)
                        .map(|(_, i)| *i),
                );
                let full = self.first_without_room(&targets, len);
                self.fanout = targets;
                full
            }
        }
    }

    /// Forwards a packet of `sender` to `dest` among the members of its room.
    fn relay(&mut self, room: u32, sender: PeerId, dest: Dest, forward: Forward<'_>) {
        let header = scene::header(SysCommand::Relay, sender.get());
        let rewrite;
        let parts: &[&[u8]] = match forward {
            Forward::Original(message) => {
                rewrite = [message];
                &rewrite
            }
            Forward::Rewrite(inner) => &[&header, inner],
        };
        // Members on other instances get it through the broker, once for all of them.
        let payload = match forward {
            Forward::Original(message) | Forward::Rewrite(message) => message,
        };
        self.cluster_relay(room, sender, dest, payload);
        match dest {
            // A peer of another room is as unknown as one that never existed.
            Dest::One(peer) => match self.rooms.member(room, peer) {
                Some(REMOTE) => {}
                Some(index) => self.deliver_or_cut(index, parts),
                None => {
                    // The target left while the message was in flight.
                    self.stats.dropped += 1;
                    self.report(Event::PacketDropped {
                        from: Some(sender),
                        reason: DropReason::UnknownTarget(peer.get()),
                    });
                }
            },
            Dest::AllExcept(except) => self.fan_out(Some(room), Some(sender), except, parts),
        }
    }

    /// Sends to every joined peer of `room` (of every room: `None`) except `sender` and
    /// `except`; slow peers are cut off.
    pub(super) fn fan_out(
        &mut self,
        room: Option<u32>,
        sender: Option<PeerId>,
        except: Option<PeerId>,
        parts: &[&[u8]],
    ) {
        let mut targets = core::mem::take(&mut self.fanout);
        targets.clear();
        let keep = |p: PeerId| Some(p) != sender && Some(p) != except;
        match room {
            Some(room) => {
                let members = self.rooms.members(room).iter();
                targets.extend(members.filter(|&&(p, i)| keep(p) && i != REMOTE).map(|(_, i)| *i));
            }
            None => targets.extend(self.peers.iter().filter(|(p, _)| keep(**p)).map(|(_, i)| *i)),
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if targets.len() > 1 && len >= SHARE_THRESHOLD {
            let frame = SharedFrame::new(MessageKind::Binary, parts);
            for &index in &targets {
                self.deliver_shared_or_cut(index, &frame);
            }
        } else {
            for &index in &targets {
                self.deliver_or_cut(index, parts);
            }
        }
        self.fanout = targets;
    }

    /// Queues one binary message for the connection at `index`.
    fn deliver(&mut self, index: u32, parts: &[&[u8]]) -> Result<(), PutError> {
        let Some(c) = self.slots[index as usize].conn.as_mut() else {
            if self.routing == Some(index) {
                // Out of its slot while its messages are routed: queue it when it is back.
                self.for_routing.push(parts.concat());
                return Ok(());
            }
            return Err(PutError::NotConnected);
        };
        let sent = send_parts_to(c, parts)?;
        self.delivered(index, sent);
        Ok(())
    }

    /// Accounts for a message [`send_parts_to`] queued for the connection at `index`.
    pub(super) fn delivered(&mut self, index: u32, sent: Sent) {
        self.count_out(sent.room, sent.len);
        if sent.reschedule {
            self.schedule(index);
        }
    }

    /// Delivers to a peer that must not stall the sender: a full queue cuts the peer off; a
    /// packet larger than the peer accepts is dropped and reported (a misconfiguration, not the
    /// peer's fault).
    pub(super) fn deliver_or_cut(&mut self, index: u32, parts: &[&[u8]]) {
        match self.deliver(index, parts) {
            Err(PutError::Full) => self.cut_off(index),
            Err(PutError::TooLarge { max }) => self.too_large(parts.iter().map(|p| p.len()).sum(), max),
            _ => {}
        }
    }

    /// Counts a packet of `len` bytes queued to a peer of `room`.
    pub(super) fn count_out(&mut self, room: u32, len: u64) {
        self.stats.packets_out += 1;
        self.stats.bytes_out += len;
        if let Some(room) = self.rooms.get_mut(room) {
            room.stats.packets_out += 1;
            room.stats.bytes_out += len;
        }
    }

    fn too_large(&mut self, len: usize, max: usize) {
        self.stats.dropped += 1;
        let from = self.routing_from;
        self.report(Event::PacketDropped { from, reason: DropReason::TooLarge { len, max } });
    }

    fn deliver_shared_or_cut(&mut self, index: u32, frame: &SharedFrame) {
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
        match c.ws.send_shared(frame) {
            Ok(()) => {
                let room = c.room;
                self.count_out(room, frame.payload().len() as u64);
                self.schedule(index);
            }
            Err(SendError::Full { .. }) => self.cut_off(index),
            Err(SendError::TooLarge { max }) => self.too_large(frame.payload().len(), max),
            Err(_) => {}
        }
    }

    /// Ends a peer whose outbound queue overflowed, so that it alone pays for not reading.
    fn cut_off(&mut self, index: u32) {
        self.stats.slow_consumers += 1;
        let why = "outbound queue full";
        self.end_peer(index, DisconnectReason::SlowConsumer, CloseCode::POLICY_VIOLATION, why, false);
    }

    /// Routing that waited for inbox room resumes after the application read packets.
    pub(super) fn unblock_routing(&mut self) {
        for _ in 0..self.routing_blocked.len() {
            if !self.inbox.has_packet_room() {
                return;
            }
            let Some(index) = self.routing_blocked.pop_front() else { return };
            if let Some(c) = self.slots[index as usize].conn.as_mut() {
                c.routing_blocked = false;
            }
            self.route(index);
            self.schedule(index);
            // It filled the inbox again (and went to the back of the line): the others would
            // only find it full too, and each try moves a connection out of its slot and back
            // (callgrind: most of a 16 KiB echo's instructions were these copies).
            if self.slots[index as usize].conn.as_ref().is_some_and(|c| c.routing_blocked) {
                return;
            }
        }
    }

    // ----- joining and leaving ---------------------------------------------------------------

    /// The other members of the room of the connection at `index`, which is `peer`.
    fn others(&self, index: u32, peer: PeerId) -> Vec<(PeerId, u32)> {
        let room = self.slots[index as usize].conn.as_ref().map_or(super::rooms::NO_ROOM, |c| c.room);
        self.rooms.members(room).iter().filter(|(p, _)| *p != peer).copied().collect()
    }

    /// Godot 4: the id message, then (with relay) `ADD_PEER(new) → P, ADD_PEER(P) → new` for
    /// each peer P in ascending order, as SceneMultiplayer does.
    pub(super) fn join_godot4(&mut self, index: u32, id: PeerId) {
        if self.deliver(index, &[&id.get().to_le_bytes()]).is_err() {
            self.end_peer(index, DisconnectReason::SlowConsumer, CloseCode::INTERNAL_ERROR, "", true);
            return;
        }
        if !self.config.relay {
            return;
        }
        for (other, other_index) in self.others(index, id) {
            if other_index != REMOTE {
                self.deliver_or_cut(other_index, &[&scene::header(SysCommand::AddPeer, id.get())]);
            }
            self.deliver_or_cut(index, &[&scene::header(SysCommand::AddPeer, other.get())]);
        }
    }

    /// Godot 3: `SYS_ID(new)`, `SYS_ADD(1)` to the new peer, then `SYS_ADD(new) → P` and
    /// `SYS_ADD(P) → new` for each peer P in ascending order.
    pub(super) fn join_godot3(&mut self, index: u32, id: PeerId) {
        let greeting =
            [godot3::sys_message(MessageType::Id, id.get()), godot3::sys_message(MessageType::Add, 1)];
        for message in &greeting {
            if self.deliver(index, &[message]).is_err() {
                self.end_peer(index, DisconnectReason::SlowConsumer, CloseCode::INTERNAL_ERROR, "", true);
                return;
            }
        }
        for (other, other_index) in self.others(index, id) {
            if other_index != REMOTE {
                self.deliver_or_cut(other_index, &[&godot3::sys_message(MessageType::Add, id.get())]);
            }
            self.deliver_or_cut(index, &[&godot3::sys_message(MessageType::Add, other.get())]);
        }
    }

    /// Tells every remaining peer of `room` that `id` left (Godot 4 `DEL_PEER` with relay,
    /// Godot 3 `SYS_DEL`).
    pub(super) fn announce_departure(&mut self, room: u32, id: PeerId) {
        let room = Some(room);
        match self.config.protocol {
            Protocol::Godot4 if self.config.relay => {
                self.fan_out(room, None, None, &[&scene::header(SysCommand::DelPeer, id.get())]);
            }
            Protocol::Godot4 => {}
            Protocol::Godot3 => {
                self.fan_out(room, None, None, &[&godot3::sys_message(MessageType::Del, id.get())]);
            }
        }
    }

    /// The slot of `peer`'s connection: `hint`'s when it names the peer and its connection is
    /// still there, else looked up.
    pub(super) fn peer_index(&self, peer: PeerId, hint: Option<(PeerId, u32)>) -> Option<u32> {
        if let Some((hinted, index)) = hint.filter(|(p, _)| *p == peer) {
            let here = self.slots.get(index as usize).and_then(|s| s.conn.as_ref());
            // A connection names a peer exactly while the peer table maps it there.
            if here.is_some_and(|c| c.peer == Some(hinted)) {
                return Some(index);
            }
        }
        self.peers.get(&peer).copied()
    }

    /// The application's `put_packet` to `target`.
    pub(super) fn send_to(&mut self, target: Target, data: &[u8]) -> Result<(), PutError> {
        self.send_to_hinted(target, data, None)
    }

    /// [`send_to`](Self::send_to), told where a peer's connection may be (the slot a packet
    /// being answered came from), so that a reply to it skips the lookup by id.
    pub(super) fn send_to_hinted(
        &mut self,
        target: Target,
        data: &[u8],
        hint: Option<(PeerId, u32)>,
    ) -> Result<(), PutError> {
        use crate::peer::MultiplayerPeer as _;
        if self.closed {
            return Err(PutError::NotConnected);
        }
        if data.len() > self.max_packet_size() {
            return Err(PutError::TooLarge { max: self.max_packet_size() });
        }
        let header = server_header(target);
        let both = [&header[..], data];
        let parts = packet_parts(self.config.protocol, &both);
        let len = parts.iter().map(|p| p.len()).sum();
        let except = match target.normalized() {
            Target::Server => return Err(PutError::UnknownPeer(PeerId::SERVER)),
            Target::Peer(peer) => {
                let index = self.peer_index(peer, hint).ok_or(PutError::UnknownPeer(peer))?;
                let sent = self.deliver(index, parts);
                if sent == Err(PutError::Full) {
                    self.mark_stalled(index);
                }
                return sent;
            }
            Target::Broadcast => None,
            Target::AllExcept(peer) => Some(peer),
        };
        // All or none: a target without room refuses the whole broadcast, so the application
        // can try again later and no peer misses a packet the others got.
        let mut targets = core::mem::take(&mut self.fanout);
        targets.clear();
        targets.extend(self.peers.iter().filter(|(p, _)| Some(**p) != except).map(|(_, i)| *i));
        let full = self.first_without_room(&targets, len);
        self.fanout = targets;
        if let Some(index) = full {
            self.mark_stalled(index);
            return Err(PutError::Full);
        }
        self.fan_out(None, None, except, parts);
        Ok(())
    }
}

/// Godot 3's header on a packet the server sends to `target` (Godot 4's packets have none).
pub(super) fn server_header(target: Target) -> [u8; godot3::HEADER_LEN] {
    godot3::Header { kind: 0, from: 1, to: target.to_godot() }.encode()
}

/// The parts of the server's packet under `protocol`, from `[header, payload]`.
pub(super) fn packet_parts<'a>(protocol: Protocol, both: &'a [&'a [u8]; 2]) -> &'a [&'a [u8]] {
    match protocol {
        Protocol::Godot4 => &both[1..],
        Protocol::Godot3 => both,
    }
}

/// A message queued by [`send_parts_to`], to account for with [`Server::delivered`].
pub(super) struct Sent {
    room: u32,
    len: u64,
    /// Whether the connection's place in the transmit queue or its timers may have changed.
    reschedule: bool,
}

/// Queues one binary message made of `parts` on `c`: the part of a delivery that needs only
/// the connection, so that a caller may send from bytes the server holds elsewhere.
pub(super) fn send_parts_to(c: &mut super::Conn, parts: &[&[u8]]) -> Result<Sent, PutError> {
    // Output already waiting to be written only grows: the connection is in the transmit
    // queue, and a send behind waiting output starts no timer (the storage is looked at when
    // the output is written).
    let appended = c.in_transmit_queue && c.ws.poll_transmit().is_some();
    #[cfg(debug_assertions)]
    let timeout = c.ws.poll_timeout();
    match c.ws.send_parts(MessageKind::Binary, parts) {
        Ok(()) => {
            let len = parts.iter().map(|p| p.len() as u64).sum::<u64>();
            #[cfg(debug_assertions)]
            debug_assert!(
                !appended || c.ws.poll_timeout() == timeout,
                "a send behind waiting output moved a timer"
            );
            Ok(Sent { room: c.room, len, reschedule: !appended })
        }
        Err(SendError::Full { .. }) => Err(PutError::Full),
        Err(SendError::TooLarge { max }) => Err(PutError::TooLarge { max }),
        Err(_) => Err(PutError::NotConnected),
    }
}
