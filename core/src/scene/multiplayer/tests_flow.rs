//! Flow control of the machine's relay, over the core server and clients in memory: a
//! receiver that stops reading holds only the senders that write to it, loses nothing, and is
//! evicted alone after the slow-peer timeout.

use core::time::Duration;
use std::vec;
use std::vec::Vec;

use super::net::World;
use crate::peer::{PeerId, ServerConfig, Target, TransferMode};
use crate::scene::{Refusal, SceneConfig, SceneEvent, SendError};
use crate::ws;

const SECOND: Duration = Duration::from_secs(1);
const LEN: usize = 500;
const TOTAL: u32 = 1000;

/// Small queues everywhere, so that a stalled receiver fills them in a few hundred packets:
/// the server's inbox and the machine's room for held packets alike (a sender's packets
/// already in the inbox when it is held wait in the machine, so that the others go on).
fn small() -> (SceneConfig, ServerConfig) {
    let ws = ws::Config {
        max_message_size: 4000,
        outbound_buffer_size: 1000,
        outbound_queue_size: Some(4000),
        ..ServerConfig::default().ws
    };
    let scene = SceneConfig {
        max_queued_packets: 64,
        max_queued_bytes: 8000,
        max_held_packets: 64,
        max_held_bytes: 16_000,
        ..SceneConfig::default()
    };
    let inbox = crate::queue::QueueLimits { max_bytes: 16_000, max_packets: 64 };
    let transport =
        ServerConfig { ws, inbox, slow_peer_timeout: Some(10 * SECOND), ..ServerConfig::default() };
    (scene, transport)
}

/// Four clients: a floods b (which stalls), c writes to d.
fn world() -> (World, [usize; 4], [PeerId; 4]) {
    let (scene, transport) = small();
    let mut world = World::with(scene, transport);
    let ends = [(); 4].map(|()| world.connect(scene));
    let ids = ends.map(|e| world.client_id(e));
    (world, ends, ids)
}

fn numbered(n: u32) -> Vec<u8> {
    let mut p = vec![0x5a; LEN];
    p[..4].copy_from_slice(&n.to_le_bytes());
    p
}

fn received(world: &World, end: usize, from: PeerId) -> Vec<u32> {
    world.clients[end]
        .events
        .iter()
        .filter_map(|e| match e {
            SceneEvent::PeerPacket { from: f, data } if *f == from => {
                Some(u32::from_le_bytes([data[0], data[1], data[2], data[3]]))
            }
            _ => None,
        })
        .collect()
}

/// `send_bytes` from `end` to `to` through the server's relay until its own queue is full;
/// returns the next number to send.
fn offer(world: &mut World, end: usize, to: PeerId, mut next: u32) -> u32 {
    while next < TOTAL {
        match world.clients[end].mp.send_bytes(Target::Peer(to), &numbered(next), TransferMode::Reliable, 0) {
            Ok(()) => next += 1,
            // Full: it waits; UnknownPeer: the server announced that `to` left.
            Err(SendError::Full | SendError::UnknownPeer(_)) => break,
            Err(e) => panic!("send_bytes: {e}"),
        }
    }
    next
}

/// Both senders offer and the network settles, `rounds` times, 10 ms apart.
fn flood(world: &mut World, ends: [usize; 4], ids: [PeerId; 4], next: &mut [u32; 2], rounds: usize) {
    let [a, _, c, _] = ends;
    for _ in 0..rounds {
        next[0] = offer(world, a, ids[1], next[0]);
        next[1] = offer(world, c, ids[3], next[1]);
        world.advance(Duration::from_millis(10));
    }
}

#[test]
fn a_stalled_receiver_holds_only_its_sender_and_loses_nothing() {
    let (mut world, ends, ids) = world();
    let [a, b, _, d] = ends;
    world.clients[b].stalled = true;
    let mut next = [0; 2];
    flood(&mut world, ends, ids, &mut next, 100);

    // The bystanders' relay went on, complete and in order, while b read nothing.
    assert_eq!(received(&world, d, ids[2]), (0..TOTAL).collect::<Vec<_>>());
    assert!(received(&world, b, ids[0]).is_empty());
    // The flooder waits: its input is held at the server, and its own sends were refused.
    let stats = world.mp.stats();
    assert_eq!(stats.held_senders, 1, "{stats:?}");
    assert!(stats.relay_waits >= 1);
    assert!(next[0] < TOTAL / 2, "a offered {} packets to a receiver that reads nothing", next[0]);
    assert!(world.server.connection(ids[0]).is_some_and(|c| c.peek_message().is_some()), "a's input waits");

    // b reads again: everything a sent reaches it, in order, and nobody was evicted.
    world.clients[b].stalled = false;
    flood(&mut world, ends, ids, &mut next, 100);
    assert_eq!(next[0], TOTAL);
    assert_eq!(received(&world, b, ids[0]), (0..TOTAL).collect::<Vec<_>>());
    let stats = world.mp.stats();
    assert_eq!((stats.held_senders, stats.slow_peers_evicted, stats.refused), (0, 0, 0), "{stats:?}");
    assert_eq!(world.server.stats().slow_consumers, 0);
    assert!(world.clients[a].events.iter().all(|e| !matches!(e, SceneEvent::PeerDisconnected(_))));
}

#[test]
fn a_receiver_that_never_drains_is_evicted_alone_after_the_timeout() {
    let (mut world, ends, ids) = world();
    let [a, b, c, d] = ends;
    world.clients[b].stalled = true;
    let mut next = [0; 2];
    // 9 s of flooding: b is still a peer, a still waits on it.
    flood(&mut world, ends, ids, &mut next, 900);
    assert!(world.mp.peers().any(|p| p == ids[1]), "evicted before the timeout");
    assert_eq!(world.mp.stats().held_senders, 1);
    assert_eq!(received(&world, d, ids[2]), (0..TOTAL).collect::<Vec<_>>());

    // Past 10 s without b writing a byte: b alone is evicted with the transport's reason.
    flood(&mut world, ends, ids, &mut next, 150);
    assert!(!world.mp.peers().any(|p| p == ids[1]));
    assert!(world.events.contains(&SceneEvent::PeerDisconnected(ids[1])));
    let stats = world.mp.stats();
    assert_eq!((stats.slow_peers_evicted, stats.held_senders), (1, 0), "{stats:?}");
    assert_eq!(world.server.stats().slow_consumers, 1);
    for end in [a, c, d] {
        assert!(world.clients[end].client.close_info().is_none(), "bystander {end} cut off");
    }
    // a's packets for b that waited are refused visibly (b is gone), none silently.
    let refused = world
        .events
        .iter()
        .filter(
            |e| matches!(e, SceneEvent::Refused { from, reason: Refusal::BadRelay(_) } if *from == ids[0]),
        )
        .count();
    assert!(refused >= 1, "a's waiting relays to the departed b are reported");

    // b learns why when it reads: 1008 and the transport's slow-peer reason.
    world.clients[b].stalled = false;
    world.run();
    let close = world.clients[b].client.close_info().expect("b was closed");
    assert_eq!(close.code, ws::CloseCode::POLICY_VIOLATION);
    assert_eq!(close.reason.as_str(), "slow peer: outbound queue full, not draining");
    let got = received(&world, b, ids[0]);
    assert_eq!(got, (0..got.len() as u32).collect::<Vec<_>>(), "what b got is in order");
}

/// Two senders flooding one stalled receiver are served round robin once it reads again, and
/// the server's own sends to it fail visibly while it is full.
#[test]
fn waiting_senders_share_a_receiver_round_robin() {
    let (mut world, ends, ids) = world();
    let [a, b, c, _] = ends;
    world.clients[b].stalled = true;
    let mut next = [0u32; 2];
    for _ in 0..50 {
        next[0] = offer(&mut world, a, ids[1], next[0]);
        next[1] = offer(&mut world, c, ids[1], next[1]);
        world.advance(Duration::from_millis(10));
    }
    assert_eq!(world.mp.stats().held_senders, 2, "{:?}", world.mp.stats());
    // The server's own packets to b: refused once its queue is full, never dropped silently.
    let mut refused = None;
    for n in 0..1000 {
        if let Err(e) = world.mp.send_bytes(Target::Peer(ids[1]), &numbered(n), TransferMode::Reliable, 0) {
            refused = Some(e);
            break;
        }
    }
    assert_eq!(refused, Some(SendError::Full));

    world.clients[b].stalled = false;
    for _ in 0..200 {
        next[0] = offer(&mut world, a, ids[1], next[0]);
        next[1] = offer(&mut world, c, ids[1], next[1]);
        world.advance(Duration::from_millis(10));
    }
    assert_eq!(next, [TOTAL; 2]);
    assert_eq!(received(&world, b, ids[0]), (0..TOTAL).collect::<Vec<_>>());
    assert_eq!(received(&world, b, ids[2]), (0..TOTAL).collect::<Vec<_>>());
    // In the first half of what b got, each sender has about half.
    let order: Vec<PeerId> = world.clients[b]
        .events
        .iter()
        .filter_map(|e| match e {
            SceneEvent::PeerPacket { from, .. } if *from != PeerId::SERVER => Some(*from),
            _ => None,
        })
        .collect();
    let half = &order[..order.len() / 2];
    let share = half.iter().filter(|p| **p == ids[0]).count() as f64 / half.len() as f64;
    assert!((0.3..=0.7).contains(&share), "a's share of the first half: {share}");
    assert_eq!(world.mp.stats().slow_peers_evicted, 0);
}
