//! Numbered relay floods over raw sockets, in both wire protocols: what a flooding client
//! sends, and what a receiver makes of each message (a numbered packet from a sender, a peer
//! joining or leaving), so a test can check that every packet arrives, in order, exactly once.
//!
//! A numbered packet's payload (what a game would see) is [`TAG`], a little-endian `u32`
//! sequence number, and filler up to its size. Honest peers
//! ([`Honest::start_accepting_floods`](super::honest::Honest::start_accepting_floods)) count
//! them too.

use std::collections::BTreeMap;
use std::time::Instant;

use super::raw::{READ_LIMIT, Raw, header};

/// First byte of a numbered flood payload.
pub const TAG: u8 = 0xf1;

/// The sequence number of a numbered flood payload.
#[must_use]
pub fn sequence(payload: &[u8]) -> Option<u32> {
    match payload {
        [TAG, a, b, c, d, ..] => Some(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// The wire protocol of `multipeer serve` (`--protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Godot 4: SceneMultiplayer's relay (`SYS RELAY(target, inner)`).
    Godot4,
    /// Godot 3: the 9-byte header (`type, from, to`), relayed as received.
    Godot3,
}

/// What one message from the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A relayed packet.
    Packet {
        /// Its sender.
        from: u32,
        /// Its payload's sequence number (`None`: not a flood packet).
        seq: Option<u32>,
        /// Its payload's length.
        len: usize,
    },
    /// A peer joined (`ADD_PEER` / `SYS_ADD`).
    Joined(u32),
    /// A peer left (`DEL_PEER` / `SYS_DEL`).
    Left(u32),
    /// Anything else.
    Other(Vec<u8>),
}

fn id_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

impl Wire {
    /// `multipeer serve` arguments selecting this protocol.
    #[must_use]
    pub fn serve_args(self) -> &'static [&'static str] {
        match self {
            Self::Godot4 => &[],
            Self::Godot3 => &["--protocol", "godot3"],
        }
    }

    /// The protocol for multipeer's own clients.
    #[must_use]
    pub fn protocol(self) -> multipeer::peer::Protocol {
        match self {
            Self::Godot4 => multipeer::peer::Protocol::Godot4,
            Self::Godot3 => multipeer::peer::Protocol::Godot3,
        }
    }

    /// Upgrades `raw` and reads the greeting; returns it joined, with its id.
    ///
    /// # Panics
    /// If the server does not greet it as the protocol says.
    #[must_use]
    pub fn join(self, raw: Raw) -> (Raw, u32) {
        match self {
            Self::Godot4 => Raw::joined_godot4_from(raw),
            Self::Godot3 => {
                let mut raw = raw;
                raw.send(&super::raw::request(&[])).expect("request sent");
                let (status, head) = raw.read_head(READ_LIMIT).expect("a response head");
                assert_eq!(status, 101, "{head}");
                let id_msg = raw.read_frame(READ_LIMIT).expect("SYS_ID");
                assert_eq!((id_msg.payload.len(), id_msg.payload[0]), (13, 3), "{id_msg:?}");
                let id = id_at(&id_msg.payload, 9).expect("an id");
                let add = raw.read_frame(READ_LIMIT).expect("SYS_ADD(1)");
                assert_eq!(self.parse(&add.payload), Seen::Joined(1), "{add:?}");
                (raw, id)
            }
        }
    }

    /// A whole client frame relaying numbered packet `seq` of `size` payload bytes from `from`
    /// to `to` (0: everyone). The mask key is zero (legal, and the payload needs no XOR, so a
    /// debug-built flooder is not slowed by masking).
    #[must_use]
    pub fn packet(self, from: u32, to: i32, seq: u32, size: usize) -> Vec<u8> {
        let mut message = match self {
            Self::Godot4 => {
                let mut m = vec![7, 3];
                m.extend_from_slice(&to.to_le_bytes());
                m
            }
            Self::Godot3 => {
                let mut m = vec![0];
                m.extend_from_slice(&from.to_le_bytes());
                m.extend_from_slice(&to.to_le_bytes());
                m
            }
        };
        let start = message.len();
        message.push(TAG);
        message.extend_from_slice(&seq.to_le_bytes());
        message.resize(start + size.max(5), 0x5a);
        let mut frame = header(true, 0, 0x2, Some([0; 4]), message.len() as u64);
        frame.extend_from_slice(&message);
        frame
    }

    /// What a binary message from the server is.
    #[must_use]
    pub fn parse(self, payload: &[u8]) -> Seen {
        let other = || Seen::Other(payload.to_vec());
        match self {
            Self::Godot4 => match payload {
                [7, 3, ..] if payload.len() > 6 => match id_at(payload, 2) {
                    Some(from) => Seen::Packet { from, seq: sequence(&payload[6..]), len: payload.len() - 6 },
                    None => other(),
                },
                [7, 1, ..] => id_at(payload, 2).map_or_else(other, Seen::Joined),
                [7, 2, ..] => id_at(payload, 2).map_or_else(other, Seen::Left),
                _ => other(),
            },
            Self::Godot3 if payload.len() >= 9 => {
                let from = id_at(payload, 1).unwrap_or_default();
                match payload[0] {
                    0 => Seen::Packet { from, seq: sequence(&payload[9..]), len: payload.len() - 9 },
                    1 => id_at(payload, 9).map_or_else(other, Seen::Joined),
                    2 => id_at(payload, 9).map_or_else(other, Seen::Left),
                    _ => other(),
                }
            }
            Self::Godot3 => other(),
        }
    }
}

/// What a reader of numbered floods saw.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Numbered packets, all senders together (each sender's in order, without gaps or
    /// duplicates, or a problem is recorded).
    pub packets: u32,
    /// Payload bytes of those.
    pub bytes: u64,
    /// The next sequence number expected from each sender.
    pub next: BTreeMap<u32, u32>,
    /// Each numbered packet's sender and arrival, in order.
    pub arrivals: Vec<(u32, Instant)>,
    /// When the count reached each tenth of the expected total (index 0: 10%).
    pub tenths: Vec<Instant>,
    /// Peers that left, and when the reader learnt it.
    pub left: Vec<(u32, Instant)>,
    /// A gap, a duplicate, a reordering or a stray message.
    pub problems: Vec<String>,
    /// How the stream ended if it did (a Close code and reason).
    pub closed: Option<(Option<u16>, String)>,
}

impl Received {
    /// Records one message from the server; `expected` is the total the reader waits for.
    pub fn take(&mut self, wire: Wire, expected: u32, payload: &[u8]) {
        match wire.parse(payload) {
            Seen::Packet { from, seq: Some(seq), len } => {
                let next = self.next.entry(from).or_default();
                if seq != *next && self.problems.len() < 8 {
                    self.problems.push(format!("packet {seq} from {from} after {}", *next));
                }
                *next = seq.wrapping_add(1);
                self.packets += 1;
                self.bytes += len as u64;
                let now = Instant::now();
                self.arrivals.push((from, now));
                while self.tenths.len() < 10
                    && u64::from(self.packets) * 10 >= u64::from(expected) * (self.tenths.len() as u64 + 1)
                {
                    self.tenths.push(now);
                }
            }
            Seen::Left(id) => self.left.push((id, Instant::now())),
            Seen::Joined(_) => {}
            other => {
                if self.problems.len() < 8 {
                    self.problems.push(format!("unexpected {other:?}"));
                }
            }
        }
    }

    /// Packets from `sender` that arrived between `from` and `to`.
    #[must_use]
    pub fn between(&self, sender: u32, from: Instant, to: Instant) -> usize {
        self.arrivals.iter().filter(|(s, at)| *s == sender && (from..to).contains(at)).count()
    }
}
