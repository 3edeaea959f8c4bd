//! Rust ↔ Rust WebRTC meshes on loopback, through str0m and real UDP sockets: standalone
//! signalling carried by the test, and signalling through the `lobby_server` binary.
#![cfg(feature = "webrtc")]

use core::time::Duration;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use multipeer::mesh::Signal;
use multipeer::peer::{DropReason, Event, PeerId, PutError, Target, TransferMode};
use multipeer::queue::QueueLimits;
use multipeer_std::webrtc::{IceServer, IceTiming, WebRtcConfig, WebRtcMultiplayerPeer};

fn id(n: u32) -> PeerId {
    PeerId::new(n).unwrap()
}

/// Carries every signal of `from` to `to` (the test is the signalling channel).
fn carry(from: &mut WebRtcMultiplayerPeer, to: &mut WebRtcMultiplayerPeer) {
    let me = from.unique_id().unwrap();
    while let Some(signal) = from.poll_signal() {
        match signal {
            Signal::Description { kind, sdp, .. } => to.set_remote_description(me, kind, &sdp).unwrap(),
            Signal::Candidate { mid, index, candidate, .. } => {
                to.add_ice_candidate(me, &mid, index, &candidate).unwrap();
            }
            other => panic!("unexpected signal {other:?}"),
        }
    }
}

/// Polls both until `done` holds (at most 10 s).
fn drive(
    a: &mut WebRtcMultiplayerPeer,
    b: &mut WebRtcMultiplayerPeer,
    mut done: impl FnMut(&mut WebRtcMultiplayerPeer, &mut WebRtcMultiplayerPeer) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(a, b) {
        assert!(Instant::now() < deadline, "timed out");
        a.poll().unwrap();
        b.poll().unwrap();
        carry(a, b);
        carry(b, a);
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn connected_pair() -> (WebRtcMultiplayerPeer, WebRtcMultiplayerPeer) {
    connected_pair_with(&WebRtcConfig::default())
}

fn connected_pair_with(config: &WebRtcConfig) -> (WebRtcMultiplayerPeer, WebRtcMultiplayerPeer) {
    connected_pair_living(config, 1)
}

/// A connected pair whose unreliable lanes keep a message for `lifetime` ms (Godot's is 1).
fn connected_pair_living(
    config: &WebRtcConfig,
    lifetime: u16,
) -> (WebRtcMultiplayerPeer, WebRtcMultiplayerPeer) {
    let mut a = WebRtcMultiplayerPeer::new(config.clone());
    let mut b = WebRtcMultiplayerPeer::new(config.clone());
    a.create_mesh(id(1), &[]).unwrap();
    b.create_mesh(id(2), &[]).unwrap();
    a.add_peer(id(2), lifetime).unwrap();
    b.add_peer(id(1), lifetime).unwrap();
    let mut up = (false, false);
    drive(&mut a, &mut b, |a, b| {
        while let Some(e) = a.poll_event() {
            up.0 |= e == Event::PeerConnected(id(2));
        }
        while let Some(e) = b.poll_event() {
            up.1 |= e == Event::PeerConnected(id(1));
        }
        up.0 && up.1
    });
    (a, b)
}

#[test]
fn two_rust_peers_exchange_on_all_three_lanes() {
    let started = Instant::now();
    let (mut a, mut b) = connected_pair();
    let connect_time = started.elapsed();
    let info = a.get_peer(id(2)).unwrap();
    assert!(info.connected);
    let ids: Vec<u16> = info.channels.iter().map(|(spec, open)| if *open { spec.id } else { 0 }).collect();
    assert_eq!(ids, [1, 2, 3], "Godot's negotiated streams, all open");

    for (mode, tag) in [
        (TransferMode::Reliable, b'r'),
        (TransferMode::UnreliableOrdered, b'o'),
        (TransferMode::Unreliable, b'u'),
    ] {
        a.set_transfer_mode(mode);
        b.set_transfer_mode(mode);
        for i in 0..20u8 {
            a.put_packet(&[tag, i]).unwrap();
            b.put_packet(&[tag, i, 0xff]).unwrap();
        }
    }
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    drive(&mut a, &mut b, |a, b| {
        while let Some((data, info)) = a.get_packet() {
            got_a.push((data, info));
        }
        while let Some((data, info)) = b.get_packet() {
            got_b.push((data, info));
        }
        got_a.len() == 60 && got_b.len() == 60
    });
    for (data, info) in &got_b {
        assert_eq!(info.from, id(1));
        let expected = match data[0] {
            b'r' => TransferMode::Reliable,
            b'o' => TransferMode::UnreliableOrdered,
            _ => TransferMode::Unreliable,
        };
        assert_eq!(info.mode, expected, "lane of {data:?}");
        assert_eq!(info.channel, 0);
    }
    let reliable: Vec<u8> = got_a.iter().filter(|(d, _)| d[0] == b'r').map(|(d, _)| d[1]).collect();
    assert_eq!(reliable, (0..20).collect::<Vec<_>>(), "reliable lane in order");
    for stats in [a.stats(), b.stats()] {
        assert!(stats.largest_datagram <= 1228, "UDP payload of {} bytes", stats.largest_datagram);
        assert!(stats.datagrams_sent > 0);
    }
    eprintln!("connected in {connect_time:?}; largest datagram {} B", a.stats().largest_datagram);
}

#[test]
fn large_messages_are_fragmented_within_the_mtu_and_limited_by_the_remote() {
    let (mut a, mut b) = connected_pair();
    // str0m advertises a=max-message-size:262144 (our default config).
    assert_eq!(a.get_peer_max_message_size(id(2)), Some(262_144));
    a.set_target_peer(Target::Peer(id(2)));
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    a.put_packet(&big).unwrap();
    assert_eq!(a.put_packet(&vec![0; 262_145]), Err(PutError::TooLarge { max: 262_144 }));
    assert_eq!(a.stats().refused_sends, 1);
    let mut got = None;
    drive(&mut a, &mut b, |_, b| {
        got = got.take().or_else(|| b.get_packet());
        got.is_some()
    });
    assert_eq!(got.unwrap().0, big);
    assert!(a.stats().largest_datagram <= 1228, "{} B", a.stats().largest_datagram);
    assert!(a.stats().largest_datagram >= 1000, "a 200 kB message fills datagrams");
}

/// sctp-proto bundles small chunks past its budget (padding is not counted); the engine's MTU
/// target leaves room for the worst case, 1-byte messages.
#[test]
fn bursts_of_tiny_messages_stay_within_the_browser_safe_payload() {
    let (mut a, mut b) = connected_pair();
    for mode in [TransferMode::Reliable, TransferMode::Unreliable] {
        a.set_transfer_mode(mode);
        for i in 0..600u32 {
            a.put_packet(&[i as u8]).unwrap();
        }
    }
    let mut got = 0;
    drive(&mut a, &mut b, |_, b| {
        while b.get_packet().is_some() {
            got += 1;
        }
        got >= 600
    });
    let largest = a.stats().largest_datagram;
    eprintln!("largest UDP payload for 1-byte bursts: {largest} B");
    assert!(largest <= 1228, "UDP payload of {largest} bytes");
    assert!(largest > 1000, "the burst was bundled ({largest} B)");
}

#[test]
fn a_full_reliable_lane_holds_the_peer_back_until_the_application_reads() {
    let (mut a, mut b) = connected_pair();
    b.mesh_mut().unwrap().set_lane_limits(QueueLimits { max_bytes: 1 << 20, max_packets: 8 });
    a.set_target_peer(Target::Peer(id(2)));
    for i in 0..200u32 {
        a.put_packet(&i.to_be_bytes()).unwrap();
    }
    // b does not read: the lane fills, the rest is held and b stops reading its socket.
    let until = Instant::now() + Duration::from_millis(300);
    drive(&mut a, &mut b, |_, _| Instant::now() > until);
    assert_eq!(b.get_available_packet_count(), 8);
    let (_, held) = b.get_peer_backlog(id(1));
    assert!(held >= 1, "messages beyond the lane are held, not dropped");
    // Reading makes room; everything arrives, in order, none lost.
    let mut got = Vec::new();
    drive(&mut a, &mut b, |_, b| {
        while let Some((data, _)) = b.get_packet() {
            got.push(u32::from_be_bytes(data.try_into().unwrap()));
        }
        got.len() == 200
    });
    assert_eq!(got, (0..200).collect::<Vec<_>>());
}

/// Peer 1 connected to peers 2 and 3, the test carrying each signal to the peer it names.
fn connected_star(config: &WebRtcConfig) -> [WebRtcMultiplayerPeer; 3] {
    let mut peers = [1, 2, 3].map(|n| {
        let mut p = WebRtcMultiplayerPeer::new(config.clone());
        p.create_mesh(id(n), &[]).unwrap();
        p
    });
    peers[0].add_peer(id(2), 1).unwrap();
    peers[0].add_peer(id(3), 1).unwrap();
    peers[1].add_peer(id(1), 1).unwrap();
    peers[2].add_peer(id(1), 1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut up = [0; 3];
    while up != [2, 1, 1] {
        assert!(Instant::now() < deadline, "the star did not connect: {up:?}");
        for k in 0..3 {
            peers[k].poll().unwrap();
            let me = peers[k].unique_id().unwrap();
            while let Some(signal) = peers[k].poll_signal() {
                match signal {
                    Signal::Description { peer, kind, sdp } => {
                        peers[peer.get() as usize - 1].set_remote_description(me, kind, &sdp).unwrap();
                    }
                    Signal::Candidate { peer, mid, index, candidate } => {
                        peers[peer.get() as usize - 1]
                            .add_ice_candidate(me, &mid, index, &candidate)
                            .unwrap();
                    }
                    other => panic!("unexpected signal {other:?}"),
                }
            }
            while let Some(e) = peers[k].poll_event() {
                up[k] += usize::from(matches!(e, Event::PeerConnected(_)));
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    peers
}

/// A broadcast goes to every target or to none: when one target's outbox is full, the
/// packet is refused for all, so a retry duplicates nothing and the others get exactly what
/// was accepted (Godot would send it to the others and drop it for the full one).
#[test]
fn a_broadcast_to_a_full_peer_is_refused_for_every_target() {
    // Room for 8 messages of 1000 bytes in str0m's send buffer and 4 in the outbox.
    let config = WebRtcConfig { sctp_send_buffer: 8 * 1024, outbox_limit: 4000, ..WebRtcConfig::default() };
    let [mut a, mut b, c] = connected_star(&config);
    a.set_target_peer(Target::Broadcast);
    // c is not driven: nothing it receives is acknowledged, so a's buffer for c fills.
    let mut accepted = 0u32;
    let mut got = Vec::new();
    let read = |b: &mut WebRtcMultiplayerPeer, got: &mut Vec<u32>| {
        while let Some((data, _)) = b.get_packet() {
            got.push(u32::from_be_bytes(data[..4].try_into().unwrap()));
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "never refused");
        let mut packet = vec![0u8; 1000];
        packet[..4].copy_from_slice(&accepted.to_be_bytes());
        match a.put_packet(&packet) {
            Ok(()) => accepted += 1,
            Err(e) => {
                assert_eq!(e, PutError::Full);
                break;
            }
        }
        a.poll().unwrap();
        b.poll().unwrap();
        read(&mut b, &mut got);
    }
    assert!(accepted >= 12, "{accepted}: the send buffer and the outbox of c filled first");
    // b, which reads, gets exactly the accepted packets: none that c was refused.
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        a.poll().unwrap();
        b.poll().unwrap();
        read(&mut b, &mut got);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(got, (0..accepted).collect::<Vec<_>>());
    assert!(c.unique_id().is_some());
}

/// Godot's unreliable lanes have `maxPacketLifetime` 1 ms. A message that waits in the
/// outbox for send-buffer room longer than that is abandoned there, as a browser's SCTP stack
/// abandons it, and counted; reliable messages behind it wait and all arrive.
#[test]
fn unreliable_messages_expire_in_the_outbox_while_reliable_ones_wait() {
    // Room for 8 messages of 1000 bytes in str0m's send buffer.
    let config = WebRtcConfig { sctp_send_buffer: 8 * 1024, ..WebRtcConfig::default() };
    let (mut a, mut b) = connected_pair_with(&config);
    a.set_target_peer(Target::Peer(id(2)));
    a.set_transfer_mode(TransferMode::Unreliable);
    for i in 0..50u8 {
        a.put_packet(&[i; 1000]).unwrap();
    }
    let (waiting, _) = a.get_peer_backlog(id(2));
    assert_eq!(waiting, 42, "8 fit in the send buffer, the rest wait");
    a.set_transfer_mode(TransferMode::Reliable);
    for i in 0..20u8 {
        a.put_packet(&[100 + i; 1000]).unwrap();
    }
    assert_eq!(a.get_peer_backlog(id(2)).0, 62);
    // Nobody drives a for longer than the lifetime.
    std::thread::sleep(Duration::from_millis(5));
    let (mut reliable, mut unreliable) = (Vec::new(), Vec::new());
    drive(&mut a, &mut b, |a, b| {
        while let Some((data, info)) = b.get_packet() {
            match info.mode {
                TransferMode::Reliable => reliable.push(data[0]),
                _ => unreliable.push(data[0]),
            }
        }
        reliable.len() == 20 && a.get_peer_backlog(id(2)).0 == 0
    });
    assert_eq!(a.stats().expired_sends, 42, "every waiting unreliable message expired");
    assert_eq!(reliable, (100..120).collect::<Vec<_>>(), "reliable ones waited and arrived in order");
    assert!(unreliable.iter().all(|&i| i < 8), "only the 8 str0m took may arrive: {unreliable:?}");
    // Once there is room again, unreliable messages flow as before.
    a.set_transfer_mode(TransferMode::Unreliable);
    a.put_packet(&[200; 10]).unwrap();
    drive(&mut a, &mut b, |_, b| b.get_packet().is_some_and(|(data, _)| data[0] == 200));
    assert_eq!(a.stats().expired_sends, 42);
}

/// An attacker that learned a peer's UDP port sprays it with datagrams shaped like STUN, DTLS
/// and garbage, half from its own address and half from the remote peer's (as an off-path
/// attacker spoofing the source would): none authenticates, so the connection and its traffic
/// go on untouched.
#[test]
fn garbage_datagrams_do_not_disturb_a_connected_peer() {
    let (mut a, mut b) = connected_pair();
    let target = a.get_peer_local_addrs(id(2))[0];
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let spoofed = b.udp_sockets()[0].try_clone().unwrap();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut sprayed = 0;
    for round in 0..1000u32 {
        let mut datagram: Vec<u8> = (0..1 + round % 1200)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        match round % 4 {
            // A STUN Binding request header with the magic cookie.
            0 if datagram.len() >= 20 => datagram[..8].copy_from_slice(&[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]),
            // A DTLS 1.2 handshake or application-data record header.
            1 if datagram.len() >= 13 => datagram[..3].copy_from_slice(&[0x16, 0xfe, 0xfd]),
            2 if datagram.len() >= 13 => datagram[..3].copy_from_slice(&[0x17, 0xfe, 0xfd]),
            _ => {}
        }
        let from = if round % 2 == 0 { &stranger } else { &spoofed };
        if from.send_to(&datagram, target).is_ok() {
            sprayed += 1;
        }
        if round % 100 == 0 {
            a.poll().unwrap();
        }
    }
    assert_eq!(sprayed, 1000);
    a.set_transfer_mode(TransferMode::Reliable);
    for i in 0..50u8 {
        a.put_packet(&[i]).unwrap();
        b.put_packet(&[i]).unwrap();
    }
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    drive(&mut a, &mut b, |a, b| {
        got_a.extend(core::iter::from_fn(|| a.get_packet()).map(|(d, _)| d[0]));
        got_b.extend(core::iter::from_fn(|| b.get_packet()).map(|(d, _)| d[0]));
        got_a.len() == 50 && got_b.len() == 50
    });
    assert_eq!(got_a, (0..50).collect::<Vec<_>>());
    assert_eq!(got_b, (0..50).collect::<Vec<_>>());
    assert!(a.get_peer(id(2)).unwrap().connected, "the peer is still connected");
    let events: Vec<Event> = core::iter::from_fn(|| a.poll_event()).collect();
    assert!(!events.iter().any(|e| matches!(e, Event::PeerDisconnected { .. })), "{events:?}");
    assert!(a.stats().datagrams_received >= 1000, "the spray was read: {:?}", a.stats());
}

/// A remote peer floods an unreliable lane that the application does not read: the lane keeps
/// its newest messages within its bound and every message it gives up is reported, so memory
/// stays bounded and nothing disappears unseen (Godot drops these silently).
#[test]
fn a_flooded_unreliable_lane_drops_its_oldest_visibly() {
    // A lifetime of a minute, so that SCTP abandons nothing on a loaded machine and every
    // drop is the lane's.
    let (mut a, mut b) = connected_pair_living(&WebRtcConfig::default(), 60_000);
    b.mesh_mut().unwrap().set_lane_limits(QueueLimits { max_bytes: 1 << 20, max_packets: 8 });
    a.set_target_peer(Target::Peer(id(2)));
    a.set_transfer_mode(TransferMode::UnreliableOrdered);
    for batch in 0..30u16 {
        for i in 0..10u16 {
            a.put_packet(&(batch * 10 + i).to_be_bytes()).unwrap();
        }
        let until = Instant::now() + Duration::from_millis(5);
        drive(&mut a, &mut b, |_, _| Instant::now() > until);
    }
    drive(&mut a, &mut b, |_, b| b.mesh().unwrap().dropped() + 8 == 300);
    let dropped = b.mesh().unwrap().dropped();
    let reported = core::iter::from_fn(|| b.poll_event())
        .filter(|e| matches!(e, Event::PacketDropped { reason: DropReason::QueueOverflow, from: Some(p) } if *p == id(1)))
        .count() as u64;
    assert_eq!(b.get_available_packet_count(), 8, "the lane holds its bound");
    assert_eq!(reported, dropped, "every drop is an event");
    let kept: Vec<u16> =
        core::iter::from_fn(|| b.get_packet()).map(|(d, _)| u16::from_be_bytes([d[0], d[1]])).collect();
    assert_eq!(kept, (292..300).collect::<Vec<_>>(), "the newest 8, in order");
}

/// A peer that vanishes without closing (its game froze or crashed, its network went away)
/// stops answering ICE checks; the other side reports it disconnected once the configured checks
/// go unanswered, instead of keeping it for ever. Takes 15 s: str0m keeps a pair the remote
/// itself checked within 15 s, whatever the timing.
#[test]
fn a_peer_that_stops_answering_is_reported_disconnected() {
    let timing = IceTiming {
        initial_rto: Duration::from_millis(100),
        max_rto: Duration::from_millis(200),
        max_retransmits: 4,
    };
    let config = WebRtcConfig { ice_timing: timing, ..WebRtcConfig::default() };
    // Peer 1 watches; peer 2 is never polled again: its sockets stay open and unread, like a
    // frozen process's.
    let (mut watcher, frozen) = connected_pair_with(&config);
    let frozen_at = Instant::now();
    let deadline = frozen_at + Duration::from_secs(40);
    let gone_after = loop {
        watcher.poll().unwrap();
        if let Some(e) = watcher.poll_event() {
            if matches!(e, Event::PeerDisconnected { peer, .. } if peer == id(2)) {
                break frozen_at.elapsed();
            }
        }
        assert!(Instant::now() < deadline, "the silent peer was never reported: {:?}", watcher.stats());
        std::thread::sleep(Duration::from_millis(1));
    };
    eprintln!("silent peer reported after {gone_after:?}");
    assert!(gone_after >= Duration::from_secs(14), "{gone_after:?}");
    // With the default timing this takes 21.5 s.
    assert!(gone_after < Duration::from_secs(20), "the short timing applied: {gone_after:?}");
    assert!(!watcher.has_peer(id(2)));
    drop(frozen);
}

#[test]
fn removing_a_peer_disconnects_it_on_both_sides() {
    let (mut a, mut b) = connected_pair();
    a.remove_peer(id(2)).unwrap();
    assert!(a.get_peers().is_empty());
    let mut gone = false;
    drive(&mut a, &mut b, |_, b| {
        while let Some(e) = b.poll_event() {
            gone |= matches!(e, Event::PeerDisconnected { peer, .. } if peer == id(1));
        }
        gone
    });
    assert!(!b.has_peer(id(1)));
}

#[test]
fn wildcard_local_address_is_refused_and_reported() {
    let config = WebRtcConfig::default().local_ips(["0.0.0.0".parse().unwrap()]);
    let mut a = WebRtcMultiplayerPeer::new(config);
    a.create_mesh(id(3), &[]).unwrap();
    a.add_peer(id(4), 1).unwrap();
    assert!(!a.has_peer(id(4)), "the peer failed and was removed");
    assert!(a.stats().last_error.as_deref().is_some_and(|e| e.contains("wildcard")));
}

// ----- the lobby server binary ---------------------------------------------------------------

struct Lobby {
    child: Child,
    url: String,
}

impl Lobby {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lobby_server"))
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening ").unwrap().to_string();
        Self { child, url: format!("ws://{addr}") }
    }
}

impl Drop for Lobby {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn three_rust_peers_mesh_through_the_lobby_server() {
    let lobby = Lobby::start();
    let mut host = WebRtcMultiplayerPeer::default();
    host.connect_lobby(&lobby.url, "", true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while host.lobby_name().is_none() {
        assert!(Instant::now() < deadline);
        host.poll().unwrap();
        host.wait(Duration::from_millis(1));
    }
    let name = host.lobby_name().unwrap().to_string();
    assert_eq!(host.unique_id(), Some(PeerId::SERVER), "the lobby's creator is 1");
    let mut peers = vec![host];
    for _ in 0..2 {
        let mut p = WebRtcMultiplayerPeer::default();
        p.connect_lobby(&lobby.url, &name, true).unwrap();
        peers.push(p);
    }
    let mut connected = [0usize; 3];
    while connected.iter().any(|c| *c < 2) {
        assert!(Instant::now() < deadline, "mesh incomplete: {connected:?}");
        for (i, p) in peers.iter_mut().enumerate() {
            p.poll().unwrap();
            while let Some(e) = p.poll_event() {
                if let Event::PeerConnected(_) = e {
                    connected[i] += 1;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    // Everyone broadcasts once on each lane; everyone hears everyone else.
    for p in &mut peers {
        let me = p.unique_id().unwrap().get();
        for mode in [TransferMode::Reliable, TransferMode::UnreliableOrdered, TransferMode::Unreliable] {
            p.set_transfer_mode(mode);
            p.put_packet(&me.to_be_bytes()).unwrap();
        }
    }
    let mut heard = [0usize; 3];
    while heard.iter().any(|h| *h < 6) {
        assert!(Instant::now() < deadline, "packets missing: {heard:?}");
        for (i, p) in peers.iter_mut().enumerate() {
            p.poll().unwrap();
            while let Some((data, info)) = p.get_packet() {
                assert_eq!(data, info.from.get().to_be_bytes());
                heard[i] += 1;
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

#[test]
fn stun_config_is_parsed_and_an_unreachable_server_does_not_block_the_mesh() {
    // Nothing listens on this port: the Binding requests go unanswered and host candidates
    // carry the connection anyway. The exchange with a real STUN server is in the interop run.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let stun = IceServer::stun(format!("stun:{}", silent.local_addr().unwrap()));
    let mut a = WebRtcMultiplayerPeer::new(WebRtcConfig::default().ice_server(stun.clone()));
    let mut b = WebRtcMultiplayerPeer::new(WebRtcConfig::default().ice_server(stun));
    a.create_mesh(id(1), &[]).unwrap();
    b.create_mesh(id(2), &[]).unwrap();
    a.add_peer(id(2), 1).unwrap();
    b.add_peer(id(1), 1).unwrap();
    let mut up = false;
    drive(&mut a, &mut b, |a, _| {
        while let Some(e) = a.poll_event() {
            up |= e == Event::PeerConnected(id(2));
        }
        up
    });
    let mut buf = [0u8; 64];
    let (n, _) = silent.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..2], &[0, 1], "a STUN Binding request");
    assert_eq!(n, 20);
    assert!(a.stats().stun_requests >= 1);
}
