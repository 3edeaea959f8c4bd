//! Our unreliable lane drops instead of retransmitting: two Rust mesh peers talk through a
//! lossy, delaying UDP relay of our own (loopback), and each lane's deliveries and latencies
//! are measured.
//!
//! The relay sits between the peers by rewriting the addresses in the signalling (each side
//! sees the relay's socket as the other's host candidate). Once the peers are connected it drops
//! `LOSS_PERCENT` of the datagrams in each direction (seeded) and delays the rest by
//! `ONE_WAY_DELAY`. Peer A then sends `COUNT` messages on the reliable lane (stream 1) and on the
//! unreliable lane (stream 3, unordered, `maxPacketLifetime` 1 ms), one per lane every 2 ms,
//! each stamped with its send time. Expected, and asserted:
//!
//! * reliable: every message arrives, in order, some only after retransmissions (latency well
//!   above the one-way delay);
//! * unreliable: about (1 − loss) of the messages arrive, none twice and none as late as a
//!   retransmission would make it: a message is sent once and abandoned. (Its latency still
//!   exceeds the one-way delay by tens of ms at times: it shares the association's congestion
//!   window with the reliable lane's retransmissions.)
//!
//! Run with `--nocapture` to see the table.
#![cfg(feature = "webrtc")]

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::collections::VecDeque;
use std::net::UdpSocket;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use multipeer::mesh::Signal;
use multipeer::peer::{Event, PeerId, Target, TransferMode};
use multipeer_std::webrtc::WebRtcMultiplayerPeer;

const LOSS_PERCENT: u64 = 10;
const ONE_WAY_DELAY: Duration = Duration::from_millis(10);
const COUNT: u32 = 500;

/// A UDP relay between `a` and `b` with seeded loss (once armed) and a fixed delay.
struct Relay {
    /// The relay's socket that A talks to (B's face toward A).
    face_a: SocketAddr,
    /// The relay's socket that B talks to.
    face_b: SocketAddr,
    lossy: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<(u64, u64)>>,
}

impl Relay {
    fn start(a: SocketAddr, b: SocketAddr) -> Self {
        let sa = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sb = UdpSocket::bind("127.0.0.1:0").unwrap();
        sa.set_nonblocking(true).unwrap();
        sb.set_nonblocking(true).unwrap();
        let (face_a, face_b) = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
        let lossy = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (Arc::clone(&lossy), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            // xorshift64*: seeded, so the loss pattern is the same on every run.
            let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
            let mut roll = move || {
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                seed.wrapping_mul(0x2545_F491_4F6C_DD1D) % 100
            };
            let mut queue: VecDeque<(Instant, bool, Vec<u8>)> = VecDeque::new();
            let (mut forwarded, mut dropped) = (0u64, 0u64);
            let mut buf = [0u8; 2048];
            let deadline = Instant::now() + Duration::from_secs(60);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                for (socket, to_b) in [(&sa, true), (&sb, false)] {
                    while let Ok((n, _)) = socket.recv_from(&mut buf) {
                        if l.load(Ordering::Relaxed) && roll() < LOSS_PERCENT {
                            dropped += 1;
                        } else {
                            queue.push_back((Instant::now() + ONE_WAY_DELAY, to_b, buf[..n].to_vec()));
                        }
                    }
                }
                while queue.front().is_some_and(|(due, _, _)| *due <= Instant::now()) {
                    let Some((_, to_b, data)) = queue.pop_front() else { break };
                    let _ = if to_b { sb.send_to(&data, b) } else { sa.send_to(&data, a) };
                    forwarded += 1;
                }
                thread::sleep(Duration::from_micros(100));
            }
            (forwarded, dropped)
        });
        Self { face_a, face_b, lossy, stop, thread: Some(thread) }
    }

    fn finish(&mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map(|t| t.join().unwrap()).unwrap_or_default()
    }
}

/// Carries signals from `from` to `to`, showing `to` the relay's address instead of `from`'s.
fn carry(
    from: &mut WebRtcMultiplayerPeer,
    to: &mut WebRtcMultiplayerPeer,
    real: SocketAddr,
    shown: SocketAddr,
) {
    let me = from.unique_id().unwrap();
    let rewrite = |text: &str| {
        text.replace(
            &format!(" {} {} typ", real.ip(), real.port()),
            &format!(" {} {} typ", shown.ip(), shown.port()),
        )
    };
    while let Some(signal) = from.poll_signal() {
        match signal {
            Signal::Description { kind, sdp, .. } => {
                to.set_remote_description(me, kind, &rewrite(&sdp)).unwrap()
            }
            Signal::Candidate { mid, index, candidate, .. } => {
                to.add_ice_candidate(me, &mid, index, &rewrite(&candidate)).unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

struct Lane {
    delivered: Vec<u32>,
    latencies: Vec<Duration>,
}

impl Lane {
    fn summary(&self) -> String {
        let mut l = self.latencies.clone();
        l.sort();
        let pick = |q: usize| l.get((l.len().saturating_sub(1)) * q / 100).copied().unwrap_or_default();
        let mean = l.iter().sum::<Duration>().checked_div(l.len() as u32).unwrap_or_default();
        format!(
            "{:>4}/{COUNT} delivered, latency mean {:>6.1} ms, p50 {:>6.1} ms, p99 {:>7.1} ms, max {:>7.1} ms",
            self.delivered.len(),
            mean.as_secs_f64() * 1e3,
            pick(50).as_secs_f64() * 1e3,
            pick(99).as_secs_f64() * 1e3,
            l.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        )
    }
}

#[test]
fn unreliable_lane_drops_instead_of_retransmitting_under_loss() {
    let (ia, ib) = (PeerId::new(1).unwrap(), PeerId::new(2).unwrap());
    let mut a = WebRtcMultiplayerPeer::default();
    let mut b = WebRtcMultiplayerPeer::default();
    a.create_mesh(ia, &[]).unwrap();
    b.create_mesh(ib, &[]).unwrap();
    a.add_peer(ib, 1).unwrap();
    b.add_peer(ia, 1).unwrap();
    let addr_a = a.get_peer_local_addrs(ib)[0];
    let addr_b = b.get_peer_local_addrs(ia)[0];
    let mut relay = Relay::start(addr_a, addr_b);

    let epoch = Instant::now();
    let deadline = epoch + Duration::from_secs(30);
    let mut up = false;
    while !up {
        assert!(Instant::now() < deadline, "no connection through the relay");
        a.poll().unwrap();
        b.poll().unwrap();
        // A sees B at the relay's A face, and B sees A at the relay's B face.
        carry(&mut b, &mut a, addr_b, relay.face_a);
        carry(&mut a, &mut b, addr_a, relay.face_b);
        while let Some(e) = a.poll_event() {
            up |= e == Event::PeerConnected(ib);
        }
        thread::sleep(Duration::from_micros(200));
    }
    relay.lossy.store(true, Ordering::Relaxed);

    a.set_target_peer(Target::Peer(ib));
    let mut lanes = [
        Lane { delivered: Vec::new(), latencies: Vec::new() },
        Lane { delivered: Vec::new(), latencies: Vec::new() },
    ];
    let mut next_send = Instant::now();
    let mut sent = 0u32;
    let mut quiet_since = None;
    loop {
        let now = Instant::now();
        assert!(now < deadline, "reliable lane incomplete: {}", lanes[0].delivered.len());
        if sent < COUNT && now >= next_send {
            let stamp = u64::try_from(now.duration_since(epoch).as_micros()).unwrap();
            for mode in [TransferMode::Reliable, TransferMode::Unreliable] {
                a.set_transfer_mode(mode);
                let mut message = sent.to_be_bytes().to_vec();
                message.extend_from_slice(&stamp.to_be_bytes());
                a.put_packet(&message).unwrap();
            }
            sent += 1;
            next_send += Duration::from_millis(2);
        }
        a.poll().unwrap();
        b.poll().unwrap();
        while let Some((data, info)) = b.get_packet() {
            let seq = u32::from_be_bytes(data[..4].try_into().unwrap());
            let stamp = u64::from_be_bytes(data[4..12].try_into().unwrap());
            let latency = Instant::now().duration_since(epoch) - Duration::from_micros(stamp);
            let lane = &mut lanes[usize::from(info.mode != TransferMode::Reliable)];
            lane.delivered.push(seq);
            lane.latencies.push(latency);
        }
        // Done when the reliable lane is complete and nothing more arrived for 500 ms.
        if lanes[0].delivered.len() == COUNT as usize {
            let since = *quiet_since.get_or_insert(Instant::now());
            if since.elapsed() > Duration::from_millis(500) {
                break;
            }
        }
        thread::sleep(Duration::from_micros(100));
    }
    let (forwarded, dropped) = relay.finish();
    eprintln!(
        "relay: {LOSS_PERCENT}% loss each way, {} ms one-way delay; {forwarded} datagrams forwarded, {dropped} dropped",
        ONE_WAY_DELAY.as_millis()
    );
    eprintln!("reliable   (stream 1): {}", lanes[0].summary());
    eprintln!("unreliable (stream 3): {}", lanes[1].summary());
    eprintln!("largest UDP payload: A {} B, B {} B", a.stats().largest_datagram, b.stats().largest_datagram);

    assert_eq!(lanes[0].delivered, (0..COUNT).collect::<Vec<_>>(), "reliable: all, in order");
    // Unrepaired loss: with retransmissions nearly everything would arrive; without, about
    // (1 − loss) of it does (messages bundled in one datagram share its fate).
    let unreliable = lanes[1].delivered.len();
    let unrepaired = COUNT as usize * (100 - LOSS_PERCENT as usize / 2) / 100;
    assert!(unreliable < unrepaired, "unreliable delivered {unreliable}: losses were repaired");
    assert!(unreliable > COUNT as usize / 2, "unreliable delivered only {unreliable}");
    let mut seen = lanes[1].delivered.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), unreliable, "no duplicates");
    // Nothing arrives as late as a retransmission timeout would make it (the delays above the
    // one-way delay are queueing behind the reliable lane in the shared congestion window).
    let late = lanes[1].latencies.iter().filter(|l| **l > Duration::from_millis(200)).count();
    assert_eq!(late, 0, "an unreliable message arrived 200 ms late");
    let slowest = lanes[0].latencies.iter().max().copied().unwrap_or_default();
    assert!(
        slowest > Duration::from_millis(200),
        "reliable messages were retransmitted (slowest {slowest:?})"
    );
    assert!(a.stats().largest_datagram <= 1228 && b.stats().largest_datagram <= 1228);
}
