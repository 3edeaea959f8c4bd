//! Multiplayer in the deterministic simulation: a `peer::Server` and N `peer::Client`s over
//! seeded TCP-like links (latency, jitter, partial reads and writes, windows), in both protocols
//! (Godot 4 with the SceneMultiplayer relay, Godot 3). Joins with staggered starts; traffic with
//! every target kind against a reference model; leaves of every kind (clean close, kicks, cut,
//! partition); handshake, id and close timers; back-pressure end to end; determinism.
//!
//! The server is driven by `sim::Star`, a strict adapter: it writes only connections the server
//! named, reads a held-back connection again only once `poll_resume` names it, and closes a
//! transport only when `poll_release` names it. The applications run every tick: they drain
//! events first (packets behind system messages appear only then), read packets, and send.

use core::time::Duration;
use std::collections::{BTreeSet, VecDeque};

use chacha20::ChaCha8Rng;
use multipeer::peer::{
    Client, ClientConfig, ConnectFailure, ConnectionStatus, DisconnectReason, DropReason, Event,
    MultiplayerPeer, PeerId, Protocol, ServerConfig, Target,
};
use multipeer::queue::QueueLimits;
use multipeer::rand_core::SeedableRng;
use multipeer::ws::{self, CloseCode, HandshakeError, Initiator};
use multipeer::{Instant, VecStorage};
use multipeer_tests::sim::{LinkConfig, Outcome, Pair};

pub(crate) type TestClient = Client<VecStorage, ChaCha8Rng>;

const PROTOCOLS: [Protocol; 2] = [Protocol::Godot4, Protocol::Godot3];
/// How often the applications run.
pub(crate) const TICK: Duration = Duration::from_millis(10);
const MS: Duration = Duration::from_millis(1);
pub(crate) const US: Duration = Duration::from_micros(1);

mod model;
mod world;

use model::{Sent, Traffic, check_deliveries, kind, random_target};
use world::{Far, Silent, World, below, just_before, pick, server_config};

// ----- 1. joins ----------------------------------------------------------------------------

#[test]
fn joins_with_staggered_starts() {
    for protocol in PROTOCOLS {
        for seed in 0..32 {
            let ctx = format!("{protocol:?} seed {seed}");
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n = 3 + below(&mut rng, 18) as usize;
            let mut world = World::new(seed, server_config(protocol, ws::Config::GODOT), ws::Config::GODOT);
            let starts = world.join_all(&mut rng, seed, n, Duration::from_millis(400), |k| {
                LinkConfig::random(seed * 64 + k as u64)
            });
            let ids: Vec<PeerId> = (0..n).map(|k| world.id(k)).collect();
            let unique: BTreeSet<PeerId> = ids.iter().copied().collect();
            assert_eq!(unique.len(), n, "{ctx}: ids are unique");
            assert!(!unique.contains(&PeerId::SERVER), "{ctx}");

            // The server saw each join once, and nothing else.
            let server_joins: Vec<PeerId> = world
                .server_seen
                .events
                .iter()
                .map(|(_, e)| match e {
                    Event::PeerConnected(id) => *id,
                    e => panic!("{ctx}: server saw {e:?}"),
                })
                .collect();
            assert_eq!(server_joins.len(), n, "{ctx}");
            assert_eq!(server_joins.iter().copied().collect::<BTreeSet<_>>(), unique, "{ctx}");

            for k in 0..n {
                assert_eq!(world.star.server.peer_of(world.star.spoke(k).conn), Some(ids[k]), "{ctx}");
                let events = &world.seen[k].events;
                let first: Vec<&Event> = events.iter().take(2).map(|(_, e)| e).collect();
                assert_eq!(
                    first,
                    [&Event::PeerConnected(PeerId::SERVER), &Event::ConnectionSucceeded],
                    "{ctx} c{k}"
                );
                let others: Vec<PeerId> = events[2..]
                    .iter()
                    .map(|(_, e)| match e {
                        Event::PeerConnected(id) => *id,
                        e => panic!("{ctx}: c{k} saw {e:?}"),
                    })
                    .collect();
                let mut want = unique.clone();
                want.remove(&ids[k]);
                assert_eq!(others.len(), n - 1, "{ctx}: c{k} hears of each other client once");
                assert_eq!(others.into_iter().collect::<BTreeSet<_>>(), want, "{ctx}: c{k}");
                // The upgrade request out, the response and the id back: one round trip at least.
                let joined_at = events[1].0;
                assert!(joined_at >= starts[k] + world.links[k].latency * 2, "{ctx}: c{k} at {joined_at:?}");
            }
        }
    }
}

// ----- 2. traffic with every target kind -------------------------------------------------

/// Joins `n` clients, then every application sends at random for `ticks` ticks (with targets
/// that must be dropped too); runs until everything is delivered.
fn traffic(protocol: Protocol, seed: u64) -> (World, Traffic, Vec<PeerId>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = 3 + below(&mut rng, 8) as usize;
    let mut world = World::new(seed, server_config(protocol, ws::Config::GODOT), ws::Config::GODOT);
    world.join_all(&mut rng, seed, n, Duration::from_millis(200), |k| {
        LinkConfig::random(seed * 64 + k as u64)
    });
    let ids: Vec<PeerId> = (0..n).map(|k| world.id(k)).collect();
    let mut traffic = Traffic::new(n);
    // About 150 packets in all: at most ~40 KB for any receiver, so no link is too slow.
    let per_tick = 150.0 / (40.0 * (n as f64 + 1.0));
    for _ in 0..40 {
        for sender in 0..=n {
            if (below(&mut rng, 1000) as f64) >= per_tick * 1000.0 {
                continue;
            }
            let (own, view) = match sender {
                0 => (PeerId::SERVER, &world.server_seen.peers),
                s => (ids[s - 1], &world.seen[s - 1].peers),
            };
            let target = random_target(&mut rng, own, view, true);
            let len =
                if below(&mut rng, 8) == 0 { 500 + below(&mut rng, 700) } else { 5 + below(&mut rng, 120) };
            let payload = traffic.payload(len as usize);
            traffic.outbox[sender].push_back((target, payload));
        }
        traffic.flush_all(&mut world);
        world.run_to(world.now() + TICK);
    }
    settle(&mut world, &mut traffic);
    (world, traffic, ids)
}

/// Runs until every outbox is empty and the network is idle after the applications ran.
fn settle(world: &mut World, traffic: &mut Traffic) {
    let deadline = world.now() + Duration::from_secs(60);
    loop {
        traffic.flush_all(world);
        let before = world.trace.len();
        let until = world.now() + TICK;
        let idle = world.sim.drive(&mut world.star, until) == Outcome::Idle;
        world.run_to(until);
        if idle && world.trace.len() == before && traffic.outbox.iter().all(VecDeque::is_empty) {
            return;
        }
        assert!(world.now() < deadline, "not settled by {deadline:?}");
    }
}

#[test]
fn traffic_with_every_target_kind_matches_the_model() {
    let (mut sizes, mut kinds) = (0, BTreeSet::new());
    for protocol in PROTOCOLS {
        for seed in 0..12 {
            let ctx = format!("{protocol:?} seed {seed}");
            let (world, traffic, ids) = traffic(protocol, seed);
            let everyone: BTreeSet<PeerId> = ids.iter().copied().chain([PeerId::SERVER]).collect();
            check_deliveries(&world, &traffic, &ids, (&everyone, &everyone), &ctx);
            // Every drop reported by the server, each once; nothing else happened anywhere.
            let mut want: Vec<(Option<PeerId>, DropReason)> =
                traffic.drops.iter().map(|(from, reason)| (Some(*from), *reason)).collect();
            let mut got = world.server_seen.drops();
            want.sort_by_key(|d| format!("{d:?}"));
            got.sort_by_key(|d| format!("{d:?}"));
            assert_eq!(got, want, "{ctx}: drops");
            let joins = ids.len();
            assert_eq!(world.server_seen.events.len(), joins + traffic.drops.len(), "{ctx}");
            for (k, seen) in world.seen.iter().enumerate() {
                assert_eq!(seen.events.len(), joins + 1, "{ctx}: c{k} saw only joins: {:?}", seen.events);
            }
            assert!(traffic.sent.len() > 100, "{ctx}: {} packets", traffic.sent.len());
            sizes += traffic.sent.iter().filter(|s| s.payload.len() >= 512).count();
            kinds.extend(traffic.sent.iter().map(|s| kind(s.from, s.target)));
        }
    }
    assert!(sizes > 50, "large packets took the shared-frame path: {sizes}");
    // Every kind of target from a client, every one the server may use (its errors aside).
    assert_eq!(kinds.len(), 7 + 4, "{kinds:?}");
}

// ----- 3. leaves ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    Close,
    Kick,
    ForcedKick,
    Cut,
    Partition,
}

const LEAVES: [Leave; 5] = [Leave::Close, Leave::Kick, Leave::ForcedKick, Leave::Cut, Leave::Partition];
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Clients join by 1.5 s; from then on everyone sends small packets for 1.5 s while some
/// clients leave, each its own way; then the network runs quiet to 9.5 s.
struct LeaveRun {
    world: World,
    traffic: Traffic,
    ids: Vec<PeerId>,
    plan: Vec<(usize, Leave, Instant)>,
}

fn leaves(protocol: Protocol, seed: u64) -> LeaveRun {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = 4 + below(&mut rng, 7) as usize;
    let heartbeat = ws::Config { heartbeat_interval: Some(HEARTBEAT), ..ws::Config::GODOT };
    let mut world = World::new(seed, server_config(protocol, heartbeat), heartbeat);
    let t0 = Instant::from_millis(1500);
    // Leavers are spokes (join order); at least two clients stay.
    let m = 1 + below(&mut rng, (n as u64 - 2).min(5)) as usize;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, below(&mut rng, i as u64 + 1) as usize);
    }
    let plan: Vec<(usize, Leave, Instant)> = (0..m)
        .map(|i| (order[i], LEAVES[(seed as usize + i) % 5], t0 + MS * (100 + below(&mut rng, 900)) as u32))
        .collect();
    let link = |k: usize| {
        let mut link = LinkConfig::random(seed * 64 + k as u64);
        match plan.iter().find(|(j, ..)| *j == k) {
            Some((_, Leave::Cut, at)) => link.cut_at = Some(*at),
            Some((_, Leave::Partition, at)) => link.partition_at = Some(*at),
            _ => {}
        }
        link
    };
    world.join_all(&mut rng, seed, n, Duration::from_millis(300), link);
    assert!(world.now() <= t0, "seed {seed}: joined only at {:?}", world.now());
    world.run_until(t0);
    let ids: Vec<PeerId> = (0..n).map(|k| world.id(k)).collect();
    let mut traffic = Traffic::new(n);
    let mut done = vec![false; m];
    while world.now() < t0 + Duration::from_millis(1500) {
        // Each application sends from what it believes, then leaves are carried out.
        for sender in 0..=n {
            if below(&mut rng, 5) != 0 {
                continue;
            }
            let (own, view) = match sender {
                0 => (PeerId::SERVER, &world.server_seen.peers),
                s => (ids[s - 1], &world.seen[s - 1].peers),
            };
            let target = random_target(&mut rng, own, view, false);
            let payload = traffic.payload(5 + below(&mut rng, 50) as usize);
            traffic.outbox[sender].push_back((target, payload));
        }
        traffic.flush_all(&mut world);
        let now = world.now();
        for (i, &(k, how, at)) in plan.iter().enumerate() {
            if done[i] || at > now {
                continue;
            }
            done[i] = true;
            let id = ids[k];
            match how {
                Leave::Close => world.client(k).close(now),
                Leave::Kick => world.star.server.disconnect_peer(now, id, false).unwrap(),
                Leave::ForcedKick => world.star.server.disconnect_peer(now, id, true).unwrap(),
                Leave::Cut | Leave::Partition => {}
            }
        }
        world.run_to(now + TICK);
    }
    traffic.outbox.iter_mut().for_each(VecDeque::clear);
    while world.now() < t0 + Duration::from_secs(8) {
        world.run_to(world.now() + Duration::from_millis(50));
    }
    LeaveRun { world, traffic, ids, plan }
}

#[test]
fn leaves_of_every_kind_converge_to_the_model() {
    let mut departed_drops = 0;
    for protocol in PROTOCOLS {
        for seed in 0..16 {
            let ctx = format!("{protocol:?} seed {seed}");
            let LeaveRun { world, traffic, ids, plan } = leaves(protocol, seed);
            let leavers: BTreeSet<PeerId> = plan.iter().map(|(k, ..)| ids[*k]).collect();
            let stable: BTreeSet<PeerId> =
                ids.iter().copied().filter(|p| !leavers.contains(p)).chain([PeerId::SERVER]).collect();
            let server = &world.server_seen;

            for &(k, how, at) in &plan {
                let id = ids[k];
                let ctx = format!("{ctx}: c{k} {how:?} at {at:?}");
                // The server: one departure, with the reason of the way it left.
                let left = server.left(id);
                assert_eq!(left.len(), 1, "{ctx}: {:?}", server.events);
                let (seen_at, reason) = left[0];
                let closed = |reason: &DisconnectReason| match reason {
                    DisconnectReason::Closed(info) => Some(info.clone()),
                    _ => None,
                };
                match how {
                    Leave::Close => {
                        let info = closed(reason).expect(&ctx);
                        assert!(
                            info.clean
                                && info.code == CloseCode::NORMAL
                                && info.initiator == Initiator::Remote,
                            "{ctx}: {info:?}"
                        );
                    }
                    Leave::Kick | Leave::ForcedKick => {
                        assert_eq!(*reason, DisconnectReason::Kicked, "{ctx}");
                        assert!(seen_at <= at + TICK * 2, "{ctx}: reported at once, not at {seen_at:?}");
                    }
                    Leave::Cut => {
                        let info = closed(reason).expect(&ctx);
                        assert_eq!(info.error, Some(ws::Error::ConnectionReset), "{ctx}");
                        assert!(seen_at <= at + TICK, "{ctx}: at {seen_at:?}");
                    }
                    Leave::Partition => {
                        // The heartbeat's next ping, or the one in flight, goes unanswered.
                        let info = closed(reason).expect(&ctx);
                        assert_eq!(info.error, Some(ws::Error::KeepaliveTimeout), "{ctx}");
                        let bound = at + HEARTBEAT * 2 + Duration::from_millis(50);
                        assert!(seen_at > at && seen_at <= bound, "{ctx}: at {seen_at:?}");
                    }
                }
                // The client itself knows it is out.
                let me = &world.seen[k];
                let client = world.client_ref(k);
                assert_eq!(client.connection_status(), ConnectionStatus::Disconnected, "{ctx}");
                assert!(!me.peers.contains(&PeerId::SERVER), "{ctx}");
                let lost = me.events.iter().find_map(|(_, e)| match e {
                    Event::ServerDisconnected(info) => Some(info.clone()),
                    _ => None,
                });
                match how {
                    Leave::Close => {
                        let mine = me.left(PeerId::SERVER);
                        let kicked = mine.len() == 1 && *mine[0].1 == DisconnectReason::Kicked;
                        assert!(kicked && lost.is_none(), "{ctx}: {:?}", me.events);
                    }
                    Leave::Kick => {
                        let info = lost.expect(&ctx);
                        assert!(
                            info.clean
                                && info.code == CloseCode::NORMAL
                                && info.initiator == Initiator::Remote,
                            "{ctx}: {info:?}"
                        );
                    }
                    Leave::ForcedKick | Leave::Cut => {
                        assert_eq!(lost.expect(&ctx).error, Some(ws::Error::ConnectionReset), "{ctx}");
                    }
                    Leave::Partition => {
                        assert_eq!(lost.expect(&ctx).error, Some(ws::Error::KeepaliveTimeout), "{ctx}");
                    }
                }
                // Both ends of its transport were released.
                let link = world.star.spoke(k).link;
                assert!(world.star.is_released(k) && world.sim.is_released(link, 1), "{ctx}: released");

                // Unicasts from those who stayed: every one sent after the server knew it left is
                // reported dropped; none is both delivered and reported.
                let departed = server.left_at[&id];
                for &from in ids.iter().filter(|p| stable.contains(p)) {
                    let unicasts: Vec<&Sent> = traffic
                        .sent
                        .iter()
                        .filter(|s| s.from == from && s.target == Target::Peer(id))
                        .collect();
                    let after = unicasts.iter().filter(|s| s.at >= departed).count();
                    let dropped = server
                        .drops()
                        .iter()
                        .filter(|d| **d == (Some(from), DropReason::UnknownTarget(id.get())))
                        .count();
                    let got = me
                        .from(from)
                        .into_iter()
                        .filter(|d| unicasts.iter().any(|s| s.payload == *d))
                        .count();
                    assert!(
                        dropped >= after && got + dropped <= unicasts.len(),
                        "{ctx}: {from:?}: {got} + {dropped} of {} ({after} late)",
                        unicasts.len()
                    );
                    departed_drops += dropped;
                }
            }

            // Those who stayed: everyone's view converged; each departure announced once.
            let clients: BTreeSet<PeerId> = stable.iter().copied().filter(|p| !p.is_server()).collect();
            assert_eq!(server.peers, clients, "{ctx}: the server's view");
            assert_eq!(world.star.server.connection_count(), clients.len(), "{ctx}");
            for (k, &id) in ids.iter().enumerate().filter(|(_, id)| clients.contains(id)) {
                let seen = &world.seen[k];
                let mut want = stable.clone();
                want.remove(&id);
                assert_eq!(seen.peers, want, "{ctx}: c{k}'s view");
                for &gone in &leavers {
                    assert_eq!(
                        seen.left(gone),
                        [(seen.left_at[&gone], &DisconnectReason::Announced)],
                        "{ctx}: c{k}"
                    );
                }
                assert!(!world.star.is_released(k), "{ctx}: c{k} stays connected");
            }
            let closers: BTreeSet<PeerId> =
                plan.iter().filter(|(_, how, _)| *how == Leave::Close).map(|(k, ..)| ids[*k]).collect();
            for (from, reason) in server.drops() {
                let to = match reason {
                    DropReason::UnknownTarget(t) => PeerId::new(t as u32).unwrap(),
                    // Packets a kicked or cut-off peer sent before it heard of it: reported, and
                    // never from a peer that closed cleanly (its Close came after its packets).
                    DropReason::SenderLeft => {
                        let from = from.expect("a sender");
                        assert!(leavers.contains(&from) && !closers.contains(&from), "{ctx}: {from:?}");
                        continue;
                    }
                    r => panic!("{ctx}: unexpected drop {r:?}"),
                };
                assert!(from.is_some() && leavers.contains(&to), "{ctx}: drop of a packet to {to:?}");
            }
            // A client that closed cleanly lost nothing it had sent: its Close came after.
            let closers = plan.iter().filter(|(_, how, _)| *how == Leave::Close).map(|(k, ..)| ids[*k]);
            let exact_from: BTreeSet<PeerId> = stable.iter().copied().chain(closers).collect();
            check_deliveries(&world, &traffic, &ids, (&exact_from, &stable), &ctx);
        }
    }
    assert!(departed_drops > 0, "some packets were relayed to peers that had just left");
}

// ----- 4. timers ---------------------------------------------------------------------------

#[test]
fn a_silent_tcp_client_is_dropped_at_the_handshake_timeout() {
    for protocol in PROTOCOLS {
        for seed in 0..4 {
            let ctx = format!("{protocol:?} seed {seed}");
            let mut world = World::new(seed, server_config(protocol, ws::Config::GODOT), ws::Config::GODOT);
            let start = Instant::from_millis(100 + seed * 37);
            world.run_to(start);
            let silent = world.add(Far::Silent(Silent::default()), LinkConfig::random(seed));
            let client = world.join(seed, LinkConfig::random(seed + 100));
            let deadline = start + ws::Config::GODOT.handshake_timeout;
            world.run_until(just_before(deadline));
            assert!(
                world.server_seen.events.iter().all(|(_, e)| matches!(e, Event::PeerConnected(_))),
                "{ctx}"
            );
            assert!(!world.star.is_released(silent), "{ctx}");
            assert_eq!(world.star.server.connection_count(), 2, "{ctx}");
            world.run_to(deadline);
            let rejected: Vec<&Event> = world
                .server_seen
                .events
                .iter()
                .filter(|(_, e)| matches!(e, Event::ConnectionRejected(_)))
                .map(|(_, e)| e)
                .collect();
            assert_eq!(rejected, [&Event::ConnectionRejected(HandshakeError::Timeout)], "{ctx}");
            world.run_until(deadline + Duration::from_secs(1));
            // The server answered 408 and closed; the other client never noticed.
            let Far::Silent(s) = &world.star.spoke(silent).far else { unreachable!() };
            assert!(s.received.starts_with(b"HTTP/1.1 408") && s.eof, "{ctx}");
            assert!(world.star.is_released(silent), "{ctx}");
            assert_eq!(world.star.server.connection_count(), 1, "{ctx}");
            assert_eq!(world.star.server.stats().rejected, 1, "{ctx}");
            assert_eq!(world.client_ref(client).connection_status(), ConnectionStatus::Connected, "{ctx}");
        }
    }
}

#[test]
fn a_server_that_never_sends_the_id_fails_the_client_at_its_timeout() {
    type RawServer = ws::Connection<VecStorage>;
    for protocol in PROTOCOLS {
        for seed in 0..6 {
            let ctx = format!("{protocol:?} seed {seed}");
            let config = ClientConfig { protocol, ..ClientConfig::default() };
            let client =
                Client::create(Instant::ZERO, "ws://game.example/", config, ChaCha8Rng::seed_from_u64(seed));
            let server = RawServer::server(Instant::ZERO, ws::Config::GODOT);
            let mut p: Pair<TestClient, RawServer> =
                Pair::new(seed, client.unwrap(), server, LinkConfig::random(seed));
            // The bare server accepts the upgrade as soon as it arrives, and says nothing more.
            while p.b.poll_event() != Some(ws::Event::Request) {
                assert!(p.now() < Instant::from_secs(1), "{ctx}");
                let until = p.now() + MS;
                p.drive_until(until);
            }
            p.b.accept(p.now(), None, &[]).unwrap();
            let deadline = Instant::ZERO + ws::Config::GODOT.handshake_timeout;
            p.drive_until(just_before(deadline));
            assert_eq!(p.b.poll_event(), Some(ws::Event::Open), "{ctx}");
            assert_eq!(
                (p.a.poll_event(), p.a.connection_status()),
                (None, ConnectionStatus::Connecting),
                "{ctx}"
            );
            p.drive_until(deadline);
            assert_eq!(p.a.poll_event(), Some(Event::ConnectionFailed(ConnectFailure::IdTimeout)), "{ctx}");
            assert_eq!(p.a.connection_status(), ConnectionStatus::Disconnected, "{ctx}");
            // The client closes with 1000; the server echoes and both transports are released.
            p.drive_until(deadline + Duration::from_secs(1));
            match p.b.poll_event() {
                Some(ws::Event::Closed(info)) => assert!(
                    info.code == CloseCode::NORMAL && info.initiator == Initiator::Remote && info.clean,
                    "{ctx}: {info:?}"
                ),
                e => panic!("{ctx}: {e:?}"),
            }
            assert!(p.is_released(0) && p.is_released(1), "{ctx}");
            assert_eq!(p.a.poll_event(), None, "{ctx}");
        }
    }
}

#[test]
fn close_timeouts_release_transports() {
    // Both links are partitioned at 1 s. At 2 s the server kicks client 0 and client 1 closes:
    // neither Close is answered, and each side lets its transport go 3 s later.
    for protocol in PROTOCOLS {
        for seed in 0..4 {
            let ctx = format!("{protocol:?} seed {seed}");
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut world = World::new(seed, server_config(protocol, ws::Config::GODOT), ws::Config::GODOT);
            let cut = Instant::from_secs(1);
            world.join_all(&mut rng, seed, 2, Duration::from_millis(100), |k| LinkConfig {
                partition_at: Some(cut),
                ..LinkConfig::random(seed * 2 + k as u64)
            });
            assert!(world.now() < cut, "{ctx}");
            let (id0, id1) = (world.id(0), world.id(1));
            let kick = Instant::from_secs(2);
            world.run_until(kick);
            world.star.server.disconnect_peer(kick, id0, false).unwrap();
            world.client(1).close(kick);
            let expiry = kick + ws::Config::GODOT.close_timeout;
            world.run_until(just_before(expiry));
            let client_end = world.star.spoke(1).link;
            assert!(!world.star.is_released(0), "{ctx}: the server let go of the kicked client too early");
            assert!(!world.sim.is_released(client_end, 1), "{ctx}: the closing client let go too early");
            assert_eq!(world.star.server.connection_count(), 2, "{ctx}");
            world.run_to(expiry);
            assert!(world.star.is_released(0), "{ctx}: the server let go of the kicked client");
            assert!(world.sim.is_released(client_end, 1), "{ctx}: the closing client let go");
            // Without a heartbeat the server cannot know client 1 is gone; client 0 cannot know
            // it was kicked: a pulled cable is silent.
            assert!(world.star.server.has_peer(id1) && !world.star.server.has_peer(id0), "{ctx}");
            let left = world.server_seen.left(id0);
            assert!(left.len() == 1 && *left[0].1 == DisconnectReason::Kicked, "{ctx}: {left:?}");
            assert_eq!(world.client_ref(0).connection_status(), ConnectionStatus::Connected, "{ctx}");
        }
    }
}

// ----- 5. back-pressure end to end -------------------------------------------------------

/// A quick link: little latency, a 64 KiB window, chunks of at least 64 bytes.
fn quick_link(rng: &mut ChaCha8Rng) -> LinkConfig {
    LinkConfig {
        latency: US * below(rng, 10_000) as u32,
        jitter: US * below(rng, 5_000) as u32,
        max_write: pick(rng, &[64, 1500, usize::MAX]),
        max_read: pick(rng, &[64, 1500, usize::MAX]),
        window: 64 * 1024,
        ..LinkConfig::LAN
    }
}

/// A client that stops reading holds back whoever sends to it (the relay waits, nothing is
/// lost) until it has written nothing for the slow-peer timeout; then it alone is evicted and
/// the traffic it held back flows to everyone else.
#[test]
fn a_client_that_stops_reading_holds_its_senders_then_is_evicted_alone() {
    let timeout = Duration::from_secs(1);
    for protocol in PROTOCOLS {
        for seed in 0..6 {
            let ctx = format!("{protocol:?} seed {seed}");
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n = 4;
            let slow = below(&mut rng, n as u64) as usize;
            let links: Vec<LinkConfig> = (0..n)
                .map(|k| if k == slow { LinkConfig::random(seed) } else { quick_link(&mut rng) })
                .collect();
            let server_ws = ws::Config { outbound_queue_size: Some(64 * 1024), ..ws::Config::GODOT };
            let config =
                ServerConfig { slow_peer_timeout: Some(timeout), ..server_config(protocol, server_ws) };
            let mut world = World::new(seed, config, ws::Config::GODOT);
            world.join_all(&mut rng, seed, n, Duration::from_millis(100), |k| links[k]);
            let ids: Vec<PeerId> = (0..n).map(|k| world.id(k)).collect();
            let x = ids[slow];
            // Odd seeds: a client broadcasts through the relay; even seeds: the server does.
            let sender = (seed % 2 == 1).then_some((slow + 1) % n);
            world.reading[slow] = false;
            let mut traffic = Traffic::new(n);
            let started = world.now();
            let mut held_at = None;
            for _ in 0..2000 {
                if traffic.sent.len() < 1000 {
                    let payload = traffic.payload(1000);
                    traffic.outbox[sender.map_or(0, |k| k + 1)].push_back((Target::Broadcast, payload));
                }
                traffic.flush(&mut world, sender);
                world.run_to(world.now() + 2 * MS);
                // Held back: the server's own broadcast refused, or a relay made to wait.
                if held_at.is_none() && (traffic.full > 0 || world.star.server.stats().relay_waits > 0) {
                    held_at = Some(world.now());
                }
                if world.server_seen.left_at.contains_key(&x) && traffic.outbox.iter().all(VecDeque::is_empty)
                {
                    break;
                }
            }
            let held_at = held_at.unwrap_or_else(|| panic!("{ctx}: the sender was never held back"));
            let cut_seen = world.server_seen.left_at.get(&x).copied();
            let cut_seen = cut_seen.unwrap_or_else(|| panic!("{ctx}: never evicted"));
            assert!(cut_seen + 50 * MS >= held_at + timeout, "{ctx}: evicted early");
            // It may still take bytes for a while (its link's window) after the first wait.
            assert!(cut_seen <= held_at + timeout + Duration::from_secs(1), "{ctx}: evicted late");
            assert!(cut_seen > started + timeout, "{ctx}");
            assert_eq!(world.server_seen.left(x), [(cut_seen, &DisconnectReason::SlowConsumer)], "{ctx}");
            assert!(traffic.outbox.iter().all(VecDeque::is_empty), "{ctx}: everything went out in the end");
            // Its transport goes when the close timeout expires: the Close never got through.
            world.run_until(cut_seen + ws::Config::GODOT.close_timeout);
            assert!(world.star.is_released(slow), "{ctx}");
            let stats = world.star.server.stats();
            assert_eq!(
                (stats.slow_consumers, stats.dropped, stats.blocked_senders),
                (1, 0, 0),
                "{ctx}: {stats:?}"
            );
            // Everyone else received every broadcast, none lost, and heard that it left.
            let stable: BTreeSet<PeerId> =
                ids.iter().copied().filter(|p| *p != x).chain([PeerId::SERVER]).collect();
            check_deliveries(&world, &traffic, &ids, (&stable, &stable), &ctx);
            for k in (0..n).filter(|&k| k != slow) {
                assert_eq!(world.seen[k].left(x).len(), 1, "{ctx}: c{k} (sender {sender:?})");
            }
            // The slow client reads again: what reached it is a prefix, then the end.
            world.reading[slow] = true;
            world.run_until(world.now() + Duration::from_secs(2));
            check_deliveries(&world, &traffic, &ids, (&stable, &stable), &ctx);
            let got = world.seen[slow].packets.len();
            assert!(got > 0 && got < traffic.sent.len(), "{ctx}: got {got} of {}", traffic.sent.len());
            assert_eq!(world.client_ref(slow).connection_status(), ConnectionStatus::Disconnected, "{ctx}");
            assert!(
                world.seen[slow].events.iter().any(|(_, e)| matches!(e, Event::ServerDisconnected(_))),
                "{ctx}"
            );
        }
    }
}

#[test]
fn a_slow_server_application_makes_clients_wait_and_loses_nothing() {
    let (mut full, mut full_windows) = (0, 0);
    for protocol in PROTOCOLS {
        for seed in 0..6 {
            let ctx = format!("{protocol:?} seed {seed}");
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let inbox = QueueLimits { max_bytes: 4000, max_packets: 8 };
            let server_ws = ws::Config { max_queued_messages: 16, ..ws::Config::GODOT };
            let config = ServerConfig { inbox, ..server_config(protocol, server_ws) };
            let client_ws = ws::Config { outbound_buffer_size: 4096, ..ws::Config::GODOT };
            let mut world = World::new(seed, config, client_ws);
            world.server_reads = 3;
            let n = 3 + below(&mut rng, 3) as usize;
            let link = |k: usize| {
                let link = LinkConfig::random(seed * 64 + k as u64);
                LinkConfig { window: 2048 + link.window % 6144, ..link }
            };
            world.join_all(&mut rng, seed, n, Duration::from_millis(100), link);
            let ids: Vec<PeerId> = (0..n).map(|k| world.id(k)).collect();
            let mut traffic = Traffic::new(n);
            for (k, &own) in ids.iter().enumerate() {
                for _ in 0..100 {
                    let others: Vec<PeerId> = ids.iter().copied().filter(|p| *p != own).collect();
                    let target = match below(&mut rng, 10) {
                        0 | 1 => Target::Broadcast,
                        2 => Target::AllExcept(PeerId::SERVER),
                        3 => Target::Peer(pick(&mut rng, &others)),
                        _ => Target::Server,
                    };
                    let payload = traffic.payload(50 + below(&mut rng, 250) as usize);
                    traffic.outbox[k + 1].push_back((target, payload));
                }
            }
            let deadline = world.now() + Duration::from_secs(60);
            while traffic.outbox.iter().any(|o| !o.is_empty()) {
                assert!(world.now() < deadline, "{ctx}: clients still waiting");
                traffic.flush_all(&mut world);
                world.run_to(world.now() + TICK);
                assert!(world.star.server.available_packet_count() <= 8, "{ctx}: the inbox is bounded");
            }
            settle(&mut world, &mut traffic);
            let everyone: BTreeSet<PeerId> = ids.iter().copied().chain([PeerId::SERVER]).collect();
            check_deliveries(&world, &traffic, &ids, (&everyone, &everyone), &ctx);
            assert_eq!(traffic.sent.len(), 100 * n, "{ctx}");
            assert!(world.server_seen.drops().is_empty(), "{ctx}");
            let stats = world.star.stats();
            assert!(
                traffic.full > 0 && stats.held > 0 && stats.resumed > 0,
                "{ctx}: {} full, {stats:?}",
                traffic.full
            );
            full += traffic.full;
            full_windows += world.sim.full_windows();
        }
    }
    assert!(full > 100 && full_windows > 100, "{full} full sends, {full_windows} full windows");
}

// ----- 6. determinism ----------------------------------------------------------------------

#[test]
fn the_same_seed_gives_the_same_trace() {
    for protocol in PROTOCOLS {
        let run = |seed: u64| leaves(protocol, seed).world.finish_trace();
        let first = run(7);
        assert!(first.len() > 100, "{protocol:?}: a trace of {} lines", first.len());
        assert_eq!(first, run(7), "{protocol:?}");
        assert_ne!(first, run(8), "{protocol:?}: different seeds take different paths");
        let run = |seed: u64| traffic(protocol, seed).0.finish_trace();
        assert_eq!(run(3), run(3), "{protocol:?}");
    }
}
