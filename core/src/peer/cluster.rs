//! The messages instances of a cluster exchange through the broker (CLUSTER.md): who joined and
//! left which room, relayed packets, re-synchronisation requests and heartbeats.
//!
//! Godot has no cluster; this is multipeer's own small binary codec, carried by NATS (or any
//! broker that delivers one publisher's messages on one subject in order). Every message starts
//! with a 14-byte header: magic `b"MP"`, version 1, the kind, the sender's node index `k` and
//! its 64-bit epoch (little endian). Decoding checks every length against the buffer and the
//! bounds here before anything is used, borrows from the input, and never allocates: a forged
//! or truncated message is an error, never a panic.

use core::fmt;

use super::PeerId;
use super::server::{MAX_ROOM_NAME_LEN, validate_room_name};

/// Largest node index plus one: peer ids are drawn with `id % MAX_NODES == k`.
pub const MAX_NODES: u8 = 64;
/// Longest node name (the `--node NAME` of a heartbeat), in bytes.
pub const MAX_NODE_NAME_LEN: usize = 64;
/// Bytes of the header every message starts with.
pub const HEADER_LEN: usize = 14;
/// Largest payload of a [`ClusterMessage::Packet`]: a Godot packet as large as one WebSocket
/// message may be by default, plus room for the relay header.
pub const MAX_PAYLOAD_LEN: usize = 1 << 20;

const MAGIC: [u8; 2] = *b"MP";
const VERSION: u8 = 1;

const KIND_JOIN: u8 = 1;
const KIND_LEAVE: u8 = 2;
const KIND_PACKET: u8 = 3;
const KIND_SYNC: u8 = 4;
const KIND_HEARTBEAT: u8 = 5;

const DEST_ONE: u8 = 0;
const DEST_ALL_EXCEPT: u8 = 1;
const DEST_ALL: u8 = 2;

/// Who sent a message: a node index and the epoch of that node's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStamp {
    /// The node index, `0..MAX_NODES`.
    pub index: u8,
    /// Drawn at each process start, larger for a later start: a newer epoch of the same index
    /// replaces everything an older one had announced.
    pub epoch: u64,
}

/// The peers a relayed packet is for, as the sender's `RELAY` target named them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketDest {
    /// One peer.
    One(PeerId),
    /// Every member of the room but the sender and this peer.
    AllExcept(PeerId),
    /// Every member of the room but the sender.
    All,
}

/// One cluster message, borrowing its room name, node name and payload from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterMessage<'a> {
    /// `peer` (of the sending node) is a member of `room`.
    Join {
        /// The room (`""`: the default room).
        room: &'a str,
        /// The peer.
        peer: PeerId,
    },
    /// `peer` left `room`.
    Leave {
        /// The room.
        room: &'a str,
        /// The peer.
        peer: PeerId,
    },
    /// A packet `from` a peer of the sending node, relayed to `dest` among the room's members.
    Packet {
        /// The room.
        room: &'a str,
        /// The sender peer.
        from: PeerId,
        /// Its targets.
        dest: PacketDest,
        /// Per sender, from 0, one more for each packet: a gap is a loss.
        seq: u64,
        /// What the receiving instances deliver to their members, as they would for a local
        /// sender (Godot 4: the `RELAY` inner payload; Godot 3: the message as received).
        payload: &'a [u8],
    },
    /// Asks every node to announce (`Join`) its members of `room` again.
    Sync {
        /// The room.
        room: &'a str,
    },
    /// The sending node is alive.
    Heartbeat {
        /// Its name (`--node NAME`), for logs and status.
        name: &'a str,
    },
}

/// Why a cluster message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterDecodeError {
    /// Shorter than its fields.
    Truncated,
    /// Not this codec or not this version.
    BadHeader,
    /// An unknown kind or destination.
    UnknownKind,
    /// A node index of `MAX_NODES` or more.
    BadNode,
    /// A peer id outside 2..2^31, or not drawn by the sending node (`id % 64 != k`).
    BadPeer,
    /// A room or node name that is too long or not valid.
    BadName,
    /// A payload over [`MAX_PAYLOAD_LEN`].
    TooLarge,
    /// Bytes after the last field.
    TrailingBytes,
}

impl fmt::Display for ClusterDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "truncated cluster message",
            Self::BadHeader => "not a multipeer cluster message (v1)",
            Self::UnknownKind => "unknown cluster message kind",
            Self::BadNode => "node index out of range",
            Self::BadPeer => "peer id not of the sending node",
            Self::BadName => "invalid room or node name",
            Self::TooLarge => "cluster packet too large",
            Self::TrailingBytes => "trailing bytes in cluster message",
        })
    }
}

impl core::error::Error for ClusterDecodeError {}

/// The broker subject of room `name` in cluster `cluster`: `mp.<cluster>.room.r<hex(name)>`
/// (room names may hold `.`, the NATS token separator, so the name is hex-encoded).
#[must_use]
pub fn room_subject(cluster: &str, name: &str) -> alloc::string::String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut subject = alloc::format!("mp.{cluster}.room.r");
    for b in name.bytes() {
        subject.push(char::from(HEX[usize::from(b >> 4)]));
        subject.push(char::from(HEX[usize::from(b & 15)]));
    }
    subject
}

/// The broker subject every instance of `cluster` receives (heartbeats): `mp.<cluster>.node`.
#[must_use]
pub fn node_subject(cluster: &str) -> alloc::string::String {
    alloc::format!("mp.{cluster}.node")
}

/// Whether `peer` is an id node `index` may have drawn.
#[must_use]
pub fn peer_of_node(peer: PeerId, index: u8) -> bool {
    peer.0.get() >= 2 && peer.0.get() % u32::from(MAX_NODES) == u32::from(index)
}

/// A cursor over a message, every read checked.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ClusterDecodeError> {
        if self.rest.len() < n {
            return Err(ClusterDecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, ClusterDecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, ClusterDecodeError> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, ClusterDecodeError> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    /// A name: one length byte, at most `max` bytes of text accepted by `valid`.
    fn name(&mut self, max: usize, valid: fn(&str) -> bool) -> Result<&'a str, ClusterDecodeError> {
        let len = usize::from(self.u8()?);
        if len > max {
            return Err(ClusterDecodeError::BadName);
        }
        let bytes = self.take(len)?;
        let name = core::str::from_utf8(bytes).map_err(|_| ClusterDecodeError::BadName)?;
        if !valid(name) {
            return Err(ClusterDecodeError::BadName);
        }
        Ok(name)
    }

    fn room(&mut self) -> Result<&'a str, ClusterDecodeError> {
        self.name(MAX_ROOM_NAME_LEN, |n| validate_room_name(n).is_ok())
    }

    /// A peer id that node `node` drew.
    fn peer(&mut self, node: u8) -> Result<PeerId, ClusterDecodeError> {
        let peer = PeerId::new(self.u32()?).ok_or(ClusterDecodeError::BadPeer)?;
        if !peer_of_node(peer, node) {
            return Err(ClusterDecodeError::BadPeer);
        }
        Ok(peer)
    }

    /// Any client peer id (a target may live on any node).
    fn any_peer(&mut self) -> Result<PeerId, ClusterDecodeError> {
        PeerId::new(self.u32()?).filter(|p| !p.is_server()).ok_or(ClusterDecodeError::BadPeer)
    }

    fn end(&self) -> Result<(), ClusterDecodeError> {
        if self.rest.is_empty() { Ok(()) } else { Err(ClusterDecodeError::TrailingBytes) }
    }
}

/// Node names: printable ASCII without spaces, so a log line needs no escaping.
fn valid_node_name(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_graphic())
}

/// Decodes one message: who sent it and what it says.
///
/// # Errors
/// [`ClusterDecodeError`] for anything malformed or out of bounds.
pub fn decode(bytes: &[u8]) -> Result<(NodeStamp, ClusterMessage<'_>), ClusterDecodeError> {
    let mut r = Reader { rest: bytes };
    if r.take(2)? != MAGIC || r.u8()? != VERSION {
        return Err(ClusterDecodeError::BadHeader);
    }
    let kind = r.u8()?;
    let index = r.u8()?;
    if index >= MAX_NODES {
        return Err(ClusterDecodeError::BadNode);
    }
    if r.u8()? != 0 {
        return Err(ClusterDecodeError::BadHeader);
    }
    let epoch = r.u64()?;
    let message = match kind {
        KIND_JOIN => ClusterMessage::Join { room: r.room()?, peer: r.peer(index)? },
        KIND_LEAVE => ClusterMessage::Leave { room: r.room()?, peer: r.peer(index)? },
        KIND_PACKET => {
            let room = r.room()?;
            let from = r.peer(index)?;
            let dest = match r.u8()? {
                DEST_ONE => PacketDest::One(r.any_peer()?),
                // Godot's −1, "everyone but the server", excludes peer 1.
                DEST_ALL_EXCEPT => {
                    PacketDest::AllExcept(PeerId::new(r.u32()?).ok_or(ClusterDecodeError::BadPeer)?)
                }
                DEST_ALL => PacketDest::All,
                _ => return Err(ClusterDecodeError::UnknownKind),
            };
            let seq = r.u64()?;
            let len = r.u32()? as usize;
            if len > MAX_PAYLOAD_LEN {
                return Err(ClusterDecodeError::TooLarge);
            }
            let payload = r.take(len)?;
            ClusterMessage::Packet { room, from, dest, seq, payload }
        }
        KIND_SYNC => ClusterMessage::Sync { room: r.room()? },
        KIND_HEARTBEAT => ClusterMessage::Heartbeat { name: r.name(MAX_NODE_NAME_LEN, valid_node_name)? },
        _ => return Err(ClusterDecodeError::UnknownKind),
    };
    r.end()?;
    Ok((NodeStamp { index, epoch }, message))
}

/// Appends the encoding of `message` from `stamp` to `out`; names longer than their bound are
/// cut to it (callers pass validated names), a payload over [`MAX_PAYLOAD_LEN`] is refused.
///
/// # Errors
/// [`ClusterDecodeError::TooLarge`] for a payload over [`MAX_PAYLOAD_LEN`].
pub fn encode(
    stamp: NodeStamp,
    message: &ClusterMessage<'_>,
    out: &mut alloc::vec::Vec<u8>,
) -> Result<(), ClusterDecodeError> {
    fn name(out: &mut alloc::vec::Vec<u8>, name: &str, max: usize) {
        let bytes = &name.as_bytes()[..name.len().min(max)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    let kind = match message {
        ClusterMessage::Join { .. } => KIND_JOIN,
        ClusterMessage::Leave { .. } => KIND_LEAVE,
        ClusterMessage::Packet { .. } => KIND_PACKET,
        ClusterMessage::Sync { .. } => KIND_SYNC,
        ClusterMessage::Heartbeat { .. } => KIND_HEARTBEAT,
    };
    if let ClusterMessage::Packet { payload, .. } = message {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(ClusterDecodeError::TooLarge);
        }
    }
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, kind, stamp.index, 0]);
    out.extend_from_slice(&stamp.epoch.to_le_bytes());
    match *message {
        ClusterMessage::Join { room, peer } | ClusterMessage::Leave { room, peer } => {
            name(out, room, MAX_ROOM_NAME_LEN);
            out.extend_from_slice(&peer.0.get().to_le_bytes());
        }
        ClusterMessage::Packet { room, from, dest, seq, payload } => {
            name(out, room, MAX_ROOM_NAME_LEN);
            out.extend_from_slice(&from.0.get().to_le_bytes());
            match dest {
                PacketDest::One(p) => {
                    out.push(DEST_ONE);
                    out.extend_from_slice(&p.0.get().to_le_bytes());
                }
                PacketDest::AllExcept(p) => {
                    out.push(DEST_ALL_EXCEPT);
                    out.extend_from_slice(&p.0.get().to_le_bytes());
                }
                PacketDest::All => out.push(DEST_ALL),
            }
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            out.extend_from_slice(payload);
        }
        ClusterMessage::Sync { room } => name(out, room, MAX_ROOM_NAME_LEN),
        ClusterMessage::Heartbeat { name: node } => name(out, node, MAX_NODE_NAME_LEN),
    }
    Ok(())
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use alloc::vec::Vec;

    use proptest::prelude::*;

    use super::*;

    fn peer(id: u32) -> PeerId {
        PeerId::new(id).unwrap()
    }

    const STAMP: NodeStamp = NodeStamp { index: 3, epoch: 0x0102_0304_0506_0708 };

    fn roundtrip(message: ClusterMessage<'_>) {
        let mut out = Vec::new();
        encode(STAMP, &message, &mut out).unwrap();
        assert_eq!(decode(&out), Ok((STAMP, message)));
        // Every strict prefix is refused, none panics.
        for cut in 0..out.len() {
            assert!(decode(&out[..cut]).is_err(), "prefix {cut} of {message:?} accepted");
        }
        out.push(0);
        assert_eq!(decode(&out), Err(ClusterDecodeError::TrailingBytes));
    }

    #[test]
    fn every_kind_roundtrips_and_every_prefix_is_refused() {
        roundtrip(ClusterMessage::Join { room: "a", peer: peer(64 + 3) });
        roundtrip(ClusterMessage::Leave { room: "", peer: peer(128 + 3) });
        for dest in [PacketDest::One(peer(7)), PacketDest::AllExcept(peer(1)), PacketDest::All] {
            roundtrip(ClusterMessage::Packet { room: "m.1", from: peer(67), dest, seq: 9, payload: b"xyz" });
        }
        roundtrip(ClusterMessage::Sync { room: "room_2" });
        roundtrip(ClusterMessage::Heartbeat { name: "node-a" });
    }

    #[test]
    fn a_peer_not_drawn_by_the_sender_is_refused() {
        let mut out = Vec::new();
        encode(STAMP, &ClusterMessage::Join { room: "a", peer: peer(64 + 4) }, &mut out).unwrap();
        assert_eq!(decode(&out), Err(ClusterDecodeError::BadPeer));
        out.clear();
        // Node 1 may not announce the server (id 1).
        let stamp = NodeStamp { index: 1, epoch: 1 };
        encode(stamp, &ClusterMessage::Join { room: "a", peer: PeerId::SERVER }, &mut out).unwrap();
        assert_eq!(decode(&out), Err(ClusterDecodeError::BadPeer));
    }

    #[test]
    fn claimed_lengths_are_bounded_before_use() {
        let mut out = Vec::new();
        let message =
            ClusterMessage::Packet { room: "a", from: peer(67), dest: PacketDest::All, seq: 0, payload: b"" };
        encode(STAMP, &message, &mut out).unwrap();
        let at = out.len() - 4;
        out[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&out), Err(ClusterDecodeError::TooLarge));
        out[at..].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(decode(&out), Err(ClusterDecodeError::Truncated));
        // A room name with a byte rooms refuse, and one over the length bound.
        let mut bad = Vec::new();
        encode(STAMP, &ClusterMessage::Sync { room: "a" }, &mut bad).unwrap();
        bad[HEADER_LEN + 1] = b'/';
        assert_eq!(decode(&bad), Err(ClusterDecodeError::BadName));
        bad[HEADER_LEN] = 200;
        assert_eq!(decode(&bad), Err(ClusterDecodeError::BadName));
        bad[2] = 2;
        assert_eq!(decode(&bad), Err(ClusterDecodeError::BadHeader));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_header_never_panic(
            kind in 0u8..8, index in 0u8..70, body in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            let mut bytes = Vec::from(*b"MP\x01");
            bytes.extend_from_slice(&[kind, index, 0]);
            bytes.extend_from_slice(&7u64.to_le_bytes());
            bytes.extend_from_slice(&body);
            if let Ok((stamp, message)) = decode(&bytes) {
                let mut again = Vec::new();
                encode(stamp, &message, &mut again).unwrap();
                prop_assert_eq!(again, bytes);
            }
        }
    }
}
