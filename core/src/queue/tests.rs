//! Model test: [`PacketQueue`] against a `VecDeque<(u8, Vec<u8>)>` under random operations and
//! limits, on heap storage and on fixed storage small enough to run out.

use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::buffer::Fixed;

#[derive(Debug, Clone)]
enum Op {
    Push(u8, Vec<u8>),
    /// `push_parts` of the payload cut in two at the given point.
    PushParts(u8, Vec<u8>, usize),
    /// `push_with`, the payload written by the closure.
    PushWith(u8, Vec<u8>),
    Begin(u8),
    Extend(Vec<u8>),
    Commit,
    Abort,
    Pop,
    PopInto(usize),
    /// New limits at least the current usage plus these margins.
    SetLimits(usize, usize),
    Clear,
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..40)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), payload()).prop_map(|(m, p)| Op::Push(m, p)),
        2 => (any::<u8>(), payload(), 0usize..40).prop_map(|(m, p, cut)| Op::PushParts(m, p, cut)),
        2 => (any::<u8>(), payload()).prop_map(|(m, p)| Op::PushWith(m, p)),
        2 => any::<u8>().prop_map(Op::Begin),
        4 => payload().prop_map(Op::Extend),
        2 => Just(Op::Commit),
        1 => Just(Op::Abort),
        3 => Just(Op::Pop),
        2 => (0usize..50).prop_map(Op::PopInto),
        1 => (0usize..60, 0usize..3).prop_map(|(b, p)| Op::SetLimits(b, p)),
        1 => Just(Op::Clear),
    ]
}

/// Header bytes the queue stores per packet (its length and metadata).
const RECORD: usize = 5;

/// What the queue should hold.
struct Model {
    packets: VecDeque<(u8, Vec<u8>)>,
    open: Option<(u8, Vec<u8>)>,
    limits: QueueLimits,
    /// Fixed storage: its size.
    capacity: Option<usize>,
    /// The largest physical bound (payload plus records) any limits in force allowed: heap
    /// storage may keep what it grew to under them.
    peak: usize,
}

impl Model {
    fn payload(&self) -> usize {
        self.packets.iter().map(|(_, p)| p.len()).sum::<usize>()
            + self.open.as_ref().map_or(0, |(_, p)| p.len())
    }

    fn slots_used(&self) -> usize {
        self.packets.len() + usize::from(self.open.is_some())
    }

    /// Bytes the queue's storage holds: a record per packet, the open one included.
    fn stored(&self) -> usize {
        self.payload() + RECORD * self.slots_used()
    }

    fn space_left(&self) -> usize {
        self.limits.max_bytes.saturating_sub(self.payload())
    }

    fn packets_full(&self) -> Result<(), QueueFull> {
        if self.open.is_some() || self.slots_used() >= self.limits.max_packets {
            return Err(QueueFull::Packets { limit: self.limits.max_packets });
        }
        Ok(())
    }

    /// Whether `n` more stored bytes fit in fixed storage (heap storage grows to the limits,
    /// which the byte and packet checks already keep it under).
    fn storage(&self, n: usize) -> Result<(), QueueFull> {
        match self.capacity {
            Some(cap) if self.stored() + n > cap => {
                Err(QueueFull::Storage(CapacityError { requested: self.stored() + n }))
            }
            _ => Ok(()),
        }
    }

    fn bytes_fit(&self, n: usize) -> Result<(), QueueFull> {
        if n > self.space_left() {
            return Err(QueueFull::Bytes { needed: n, free: self.space_left() });
        }
        Ok(())
    }
}

fn check<B: Buffer>(q: &PacketQueue<B>, m: &Model) {
    assert_eq!(q.len(), m.packets.len());
    assert_eq!(q.is_empty(), m.packets.is_empty());
    assert_eq!(q.payload_len(), m.payload());
    assert_eq!(q.space_left(), m.space_left());
    assert_eq!(q.packets_space_left(), m.limits.max_packets.saturating_sub(m.slots_used()));
    assert_eq!(q.is_open(), m.open.is_some());
    assert_eq!(q.limits(), m.limits);
    match &m.open {
        Some((_, p)) => {
            assert_eq!(q.open_len(), p.len());
            assert_eq!(q.open_payload(), &p[..]);
        }
        None => assert_eq!(q.open_len(), 0),
    }
    let front = m.packets.front().map(|(meta, p)| Packet { meta: *meta, payload: p });
    assert_eq!(q.front(), front);
    // Every complete packet in order, across the wrap, and no more than asked for.
    let mut all = [Packet { meta: 0, payload: &[] }; 8];
    let n = q.front_packets(&mut all);
    let expected: Vec<Packet<'_>> =
        m.packets.iter().take(all.len()).map(|(meta, p)| Packet { meta: *meta, payload: p }).collect();
    assert_eq!(&all[..n], &expected[..]);
    assert!(q.iter().eq(m.packets.iter().map(|(meta, p)| Packet { meta: *meta, payload: p })));
    let mut two = [Packet { meta: 0, payload: &[] }; 2];
    assert_eq!(q.front_packets(&mut two), m.packets.len().min(2));
    for n in [0, 1, 7, 40] {
        let fits = m.packets_full().is_ok() && m.bytes_fit(n).is_ok();
        assert_eq!(q.fits(n), fits, "fits({n})");
    }
    let bound = m.capacity.unwrap_or(m.peak);
    assert!(q.footprint() <= bound, "footprint {} over {bound}", q.footprint());
}

fn run<B: Buffer + Default>(capacity: Option<usize>, limits: QueueLimits, ops: &[Op]) {
    let mut q = PacketQueue::<B>::new(limits);
    // Heap storage may grow half again past the records it holds (the ring's slack).
    let physical = |l: QueueLimits| {
        let records = l.max_bytes + RECORD * l.max_packets;
        records + records / 2
    };
    let mut m = Model { packets: VecDeque::new(), open: None, limits, capacity, peak: physical(limits) };
    for op in ops {
        match op {
            Op::Push(meta, p) => {
                let expected = m.packets_full().and(m.bytes_fit(p.len())).and(m.storage(RECORD + p.len()));
                assert_eq!(q.push(*meta, p), expected, "{op:?}");
                if expected.is_ok() {
                    m.packets.push_back((*meta, p.clone()));
                }
            }
            Op::PushParts(meta, p, cut) => {
                let expected = m.packets_full().and(m.bytes_fit(p.len())).and(m.storage(RECORD + p.len()));
                let (a, b) = p.split_at((*cut).min(p.len()));
                assert_eq!(q.push_parts(*meta, &[a, b]), expected, "{op:?}");
                if expected.is_ok() {
                    m.packets.push_back((*meta, p.clone()));
                }
            }
            Op::PushWith(meta, p) => {
                let expected = m.packets_full().and(m.bytes_fit(p.len())).and(m.storage(RECORD + p.len()));
                let mut called = false;
                let pushed = q.push_with(*meta, p.len(), |dst| {
                    called = true;
                    dst.copy_from_slice(p);
                });
                assert_eq!(pushed, expected, "{op:?}");
                assert_eq!(called, expected.is_ok(), "{op:?}: fill called on a refused push");
                if expected.is_ok() {
                    m.packets.push_back((*meta, p.clone()));
                }
            }
            Op::Begin(meta) => {
                let expected = m.packets_full().and(m.storage(RECORD));
                assert_eq!(q.begin(*meta), expected, "{op:?}");
                if expected.is_ok() {
                    m.open = Some((*meta, Vec::new()));
                }
            }
            Op::Extend(p) => {
                let expected = match m.open {
                    // Extending with no packet open is a caller mistake, reported like `begin`
                    // on an open packet.
                    None => Err(QueueFull::Packets { limit: m.limits.max_packets }),
                    Some(_) => m.bytes_fit(p.len()).and(m.storage(p.len())),
                };
                assert_eq!(q.extend(p), expected, "{op:?}");
                if expected.is_ok() {
                    m.open.as_mut().unwrap().1.extend_from_slice(p);
                }
            }
            Op::Commit => {
                q.commit();
                if let Some(open) = m.open.take() {
                    m.packets.push_back(open);
                }
            }
            Op::Abort => {
                q.abort();
                m.open = None;
            }
            Op::Pop => assert_eq!(q.pop(), m.packets.pop_front().is_some()),
            Op::PopInto(size) => {
                let mut dst = vec![0xee; *size];
                let expected = match m.packets.front() {
                    None => Err(ReadError::Empty),
                    Some((_, p)) if p.len() > *size => Err(ReadError::TooSmall { needed: p.len() }),
                    Some((meta, p)) => Ok((*meta, p.len())),
                };
                assert_eq!(q.pop_into(&mut dst), expected);
                if let Ok((_, len)) = expected {
                    assert_eq!(&dst[..len], &m.packets.pop_front().unwrap().1[..]);
                }
            }
            Op::SetLimits(bytes, packets) => {
                let limits =
                    QueueLimits { max_bytes: m.payload() + bytes, max_packets: m.slots_used() + packets };
                q.set_limits(limits);
                m.limits = limits;
                m.peak = m.peak.max(physical(limits));
            }
            Op::Clear => {
                q.clear();
                m.packets.clear();
                m.open = None;
            }
        }
        check(&q, &m);
    }
}

fn limits() -> impl Strategy<Value = QueueLimits> {
    (0usize..120, 0usize..6).prop_map(|(max_bytes, max_packets)| QueueLimits { max_bytes, max_packets })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn heap_queue_matches_the_model(limits in limits(), ops in proptest::collection::vec(op(), 0..60)) {
        run::<Vec<u8>>(None, limits, &ops);
    }

    #[test]
    fn small_fixed_queue_matches_the_model(limits in limits(), ops in proptest::collection::vec(op(), 0..60)) {
        run::<Fixed<48>>(Some(48), limits, &ops);
    }

    #[test]
    fn fixed_queue_matches_the_model(limits in limits(), ops in proptest::collection::vec(op(), 0..60)) {
        run::<Fixed<160>>(Some(160), limits, &ops);
    }
}

/// Found by the model test: `extend` with no packet open tripped a debug assertion, and in
/// release builds appended bytes with no record header, which the next `pop` read as one.
#[test]
fn extend_without_an_open_packet_is_refused() {
    let mut q = PacketQueue::<Vec<u8>>::new(QueueLimits { max_bytes: 100, max_packets: 4 });
    q.push(1, b"first").unwrap();
    assert_eq!(q.extend(b"stray"), Err(QueueFull::Packets { limit: 4 }));
    assert_eq!(q.payload_len(), 5);
    assert!(q.pop());
    assert!(!q.pop());
    assert_eq!(q.payload_len(), 0);
}

/// Found by the model test: aborting the only packet left after a `pop` emptied the queue at
/// a nonzero offset; `clear` then gave the heap storage back, and the next `push` compacted
/// from that offset, outside the now empty storage, and panicked.
#[test]
fn clear_after_abort_at_an_offset_keeps_the_queue_usable() {
    let mut q = PacketQueue::<Vec<u8>>::new(QueueLimits { max_bytes: 35, max_packets: 2 });
    q.push(0, &[0; 9]).unwrap();
    q.begin(0).unwrap();
    assert!(q.pop());
    q.clear();
    assert_eq!(q.footprint(), 0);
    q.push(7, b"after").unwrap();
    assert_eq!(q.front(), Some(Packet { meta: 7, payload: b"after" }));
}

#[test]
fn packets_stay_contiguous_across_wraparound() {
    // Fill, drain half, refill: records move to the front instead of splitting.
    let mut q = PacketQueue::<Fixed<40>>::new(QueueLimits { max_bytes: 100, max_packets: 10 });
    for round in 0..20u8 {
        q.push(round, &[round; 12]).unwrap();
        if q.len() == 2 {
            assert!(q.pop());
        }
        assert_eq!(q.front().map(|p| p.payload.len()), Some(12));
    }
}

/// A queue kept full (a server inbox under load) is a ring: once its storage has grown, pushing
/// never moves the packets already queued and popping moves none; the oldest packet wraps to the
/// front of the storage again and again, and every packet comes out as it went in.
#[test]
fn a_full_queue_moves_no_queued_packet() {
    let limits = QueueLimits { max_bytes: 64 * 1024, max_packets: 64 };
    let mut q = PacketQueue::<Vec<u8>>::new(limits);
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    // Sizes up to 4 KiB from a fixed xorshift sequence, so the free space splits unevenly.
    let mut seed = 0x9e37_79b9_u32;
    let mut next_size = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        1 + (seed % 4096) as usize
    };
    let front_at = |q: &PacketQueue<Vec<u8>>| q.front().map(|p| p.payload.as_ptr() as usize);
    let (mut wraps, mut moves_after_warmup) = (0, 0);
    for round in 0..20_000u32 {
        let payload: Vec<u8> = (0..next_size()).map(|i| (i as u32 ^ round) as u8).collect();
        while !q.fits(payload.len()) {
            let before = front_at(&q);
            assert_eq!(q.front().map(|p| p.payload.to_vec()), model.pop_front());
            assert!(q.pop());
            if let (Some(before), Some(after)) = (before, front_at(&q)) {
                wraps += usize::from(after < before);
            }
        }
        let before = front_at(&q);
        let footprint = q.footprint();
        q.push(0, &payload).unwrap();
        model.push_back(payload);
        if round > 1000 && before.is_some() && before != front_at(&q) {
            moves_after_warmup += 1;
        }
        assert!(round < 1000 || q.footprint() == footprint, "storage still growing at round {round}");
    }
    assert!(wraps > 100, "only {wraps} wraps");
    assert_eq!(moves_after_warmup, 0);
    while let Some(expected) = model.pop_front() {
        assert_eq!(q.front().map(|p| p.payload), Some(&expected[..]));
        assert!(q.pop());
    }
}
