//! Rooms spanning several `multipeer serve --cluster` instances through a real `nats-server`
//! (issue 16, CLUSTER.md), with Godot-style Rust clients (multipeer-std's
//! `WebSocketMultiplayerPeer`): one world across instances, per-sender order and zero loss,
//! a SIGKILLed instance's peers leaving everyone's view within the deadline, a restart, and
//! forged or malformed messages on the broker.
//!
//! They need the distribution's `nats-server` (`tests/cluster/run.sh` installs it; CI step
//! `cluster`), so they are ignored in a plain `cargo test`.

use core::time::Duration;
use std::collections::BTreeSet;
use std::time::Instant;

use multipeer::peer::{PeerId, Protocol, Target};
use multipeer_tests::cluster::Nats;
use multipeer_tests::hostile::serve::{Serve, cluster_binary};
use multipeer_tests::room_player::{self, Player};

const LIMIT: Duration = Duration::from_secs(15);
/// CLUSTER.md's failure deadline.
const DEADLINE: Duration = Duration::from_secs(3);

/// A Godot 4 client in `room` of an instance.
fn join(serve: &Serve, room: &str) -> Player {
    Player::join(serve.addr(), Protocol::Godot4, room, LIMIT)
}

/// Polls every player until `done` holds; panics with `what` after [`LIMIT`].
fn settle(players: &mut [&mut Player], what: &str, done: impl Fn(&[&mut Player]) -> bool) {
    room_player::settle(players, what, LIMIT, done);
}

fn set(ids: &[PeerId]) -> BTreeSet<PeerId> {
    ids.iter().copied().chain([PeerId::SERVER]).collect()
}

/// Starts an instance of the cluster behind `nats` and waits until it holds its node index.
fn instance(nats: &Nats, name: &str, extra: &[&str]) -> (Serve, u32) {
    let url = nats.url();
    let mut args = vec!["--cluster", &url, "--node", name];
    args.extend_from_slice(extra);
    let mut serve = Serve::start_binary(cluster_binary(), &args);
    let line = serve.wait_line("multipeer: cluster", LIMIT);
    let index = line.rsplit("index ").next().and_then(|k| k.trim().parse().ok()).expect("the node index");
    (serve, index)
}

/// `count` numbered packets from each sender, broadcast, interleaved, paced by polling.
fn broadcast_numbered(players: &mut [&mut Player], senders: &[usize], count: u16) {
    for n in 0..count {
        for &s in senders {
            let tag = [s as u8, (n >> 8) as u8, n as u8];
            players[s].send(Target::Broadcast, &tag);
        }
        for p in players.iter_mut() {
            p.poll();
        }
        if n % 32 == 31 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Every numbered packet of `sender` reached `receiver`, once each, in order.
fn all_in_order(receiver: &Player, sender_index: usize, sender: PeerId, count: u16) -> bool {
    let want: Vec<Vec<u8>> = (0..count).map(|n| vec![sender_index as u8, (n >> 8) as u8, n as u8]).collect();
    receiver.from(sender).into_iter().filter(|d| d.len() == 3).collect::<Vec<_>>() == want
}

#[test]
#[ignore = "needs nats-server: tests/cluster/run.sh (CI step cluster)"]
fn a_room_spread_over_three_instances_is_one_world_in_per_sender_order_without_loss() {
    let nats = Nats::start();
    let instances: Vec<(Serve, u32)> = (0..3).map(|k| instance(&nats, &format!("n{k}"), &[])).collect();
    let indexes: BTreeSet<u32> = instances.iter().map(|i| i.1).collect();
    assert_eq!(indexes.len(), 3, "each instance holds its own node index: {indexes:?}");
    let on = |k: usize| &instances[k].0;
    let mut a0 = join(on(0), "/a");
    let mut a1 = join(on(0), "/a");
    let mut a2 = join(on(1), "/a");
    let mut a3 = join(on(2), "/a");
    let mut b = join(on(1), "/b");
    for (player, k) in [(&a0, 0), (&a1, 0), (&a2, 1), (&a3, 2)] {
        assert_eq!(
            player.id.get() as u32 % 64,
            instances[k].1,
            "ids are drawn in the instance's residue class"
        );
    }
    let ids = [a0.id, a1.id, a2.id, a3.id];
    {
        let mut players = [&mut a0, &mut a1, &mut a2, &mut a3, &mut b];
        settle(&mut players, "every member of /a sees the three others, /b sees none of them", |p| {
            (0..4)
                .all(|i| p[i].peers == set(&ids.iter().copied().filter(|&x| x != ids[i]).collect::<Vec<_>>()))
                && p[4].peers == set(&[])
        });
    }
    const COUNT: u16 = 500;
    let mut players = [&mut a0, &mut a1, &mut a2, &mut a3, &mut b];
    broadcast_numbered(&mut players, &[0, 1, 2, 3], COUNT);
    players[0].send(Target::Peer(ids[3]), b"direct to an instance away");
    players[3].send(Target::Peer(ids[1]), b"direct back");
    let started = Instant::now();
    settle(&mut players, "every broadcast reached every other member, in order, once", |p| {
        (0..4).all(|r| (0..4).filter(|&s| s != r).all(|s| all_in_order(p[r], s, ids[s], COUNT)))
            && p[3].from(ids[0]).last().is_some_and(|d| d == b"direct to an instance away")
            && p[1].from(ids[3]).last().is_some_and(|d| d == b"direct back")
    });
    eprintln!("{} deliveries settled {:?} after the last send", 4 * 3 * u32::from(COUNT), started.elapsed());
    assert!(players[4].got.is_empty(), "nothing of /a reached /b");
    assert!(
        !players[2].from(ids[0]).iter().any(|d| d.starts_with(b"direct")),
        "a direct packet went to its target only"
    );
    for (serve, _) in instances {
        let (status, _) = serve.stop();
        assert_eq!(status.dropped, 0, "no instance dropped a packet");
    }
}

#[test]
#[ignore = "needs nats-server: tests/cluster/run.sh (CI step cluster)"]
fn a_killed_instance_leaves_everyone_view_within_the_deadline_and_a_restart_rejoins() {
    let nats = Nats::start();
    let (s0, _) = instance(&nats, "n0", &[]);
    let (s1, _) = instance(&nats, "n1", &[]);
    let (s2, _) = instance(&nats, "n2", &[]);
    let mut p0 = join(&s0, "/a");
    let mut p1 = join(&s1, "/a");
    let mut p2 = join(&s2, "/a");
    let mut p2b = join(&s2, "/a");
    let (i0, i1, i2, i2b) = (p0.id, p1.id, p2.id, p2b.id);
    settle(&mut [&mut p0, &mut p1, &mut p2, &mut p2b], "all four see each other", |p| {
        p[0].peers == set(&[i1, i2, i2b]) && p[1].peers == set(&[i0, i2, i2b]) && p[3].peers.len() == 4
    });
    // Killed first: a client closing its socket before would make the instance announce the
    // departure itself.
    s2.kill();
    let killed = Instant::now();
    drop((p2, p2b));
    // The survivors keep relaying while the dead instance's peers are timed out.
    const COUNT: u16 = 400;
    let mut gone_at = None;
    let mut n = 0u16;
    while gone_at.is_none() || n < COUNT {
        if n < COUNT {
            p0.send(Target::Broadcast, &[0, (n >> 8) as u8, n as u8]);
            p1.send(Target::Broadcast, &[1, (n >> 8) as u8, n as u8]);
            n += 1;
        }
        p0.poll();
        p1.poll();
        if gone_at.is_none() && p0.peers == set(&[i1]) && p1.peers == set(&[i0]) {
            gone_at = Some(killed.elapsed());
        }
        assert!(killed.elapsed() < LIMIT, "the dead instance's peers stayed: {:?} {:?}", p0.peers, p1.peers);
        std::thread::sleep(Duration::from_millis(10));
    }
    let gone = gone_at.expect("departure seen");
    eprintln!("the killed instance's peers left both views {gone:?} after SIGKILL");
    assert!(gone <= DEADLINE + Duration::from_millis(1500), "within the deadline: {gone:?}");
    assert!(gone >= DEADLINE - Duration::from_millis(1000), "by the deadline, not by chance: {gone:?}");
    settle(&mut [&mut p0, &mut p1], "the survivors' packets all arrived, in order", |p| {
        all_in_order(p[1], 0, i0, COUNT) && all_in_order(p[0], 1, i1, COUNT)
    });

    // A restart (the dead instance's index is still leased: it takes another) and new clients
    // in the same room.
    let (s3, _) = instance(&nats, "n2-restarted", &[]);
    let mut p3 = join(&s3, "/a");
    let i3 = p3.id;
    settle(&mut [&mut p0, &mut p1, &mut p3], "the new member and the survivors see each other", |p| {
        p[0].peers == set(&[i1, i3]) && p[1].peers == set(&[i0, i3]) && p[2].peers == set(&[i0, i1])
    });
    p3.send(Target::Broadcast, b"back");
    settle(&mut [&mut p0, &mut p1, &mut p3], "the new member reaches the others", |p| {
        p[0].from(i3) == [b"back".to_vec()] && p[1].from(i3) == [b"back".to_vec()]
    });
    for serve in [s0, s1, s3] {
        let (status, _) = serve.stop();
        assert_eq!(status.dropped, 0);
    }
}

#[test]
#[ignore = "needs nats-server: tests/cluster/run.sh (CI step cluster)"]
fn forged_and_malformed_broker_messages_crash_nothing_and_change_nothing() {
    let nats = Nats::start();
    let json = std::env::temp_dir().join(format!("cluster-hostile-{}.json", std::process::id()));
    let json_arg = json.to_str().expect("UTF-8 temp path").to_owned();
    let (s0, _) = instance(&nats, "n0", &["--stats-json", &json_arg]);
    let (s1, _) = instance(&nats, "n1", &[]);
    let mut p0 = join(&s0, "/a");
    let mut p1 = join(&s1, "/a");
    let (i0, i1) = (p0.id, p1.id);
    settle(&mut [&mut p0, &mut p1], "both see each other", |p| {
        p[0].peers == set(&[i1]) && p[1].peers == set(&[i0])
    });

    let room = multipeer::peer::cluster::room_subject("multipeer", "a");
    let node = multipeer::peer::cluster::node_subject("multipeer");
    let header = |kind: u8, k: u32| {
        let mut h = b"MP\x01".to_vec();
        h.extend_from_slice(&[kind, k as u8, 0]);
        h.extend_from_slice(&u64::MAX.to_le_bytes());
        h
    };
    let mut forged: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"hello".to_vec(),
        vec![0xff; 4096],
        vec![0; 900_000],
        header(1, 0),
        header(3, 200),
        header(9, 1),
    ];
    // A well-framed JOIN with a room length past the end, one with a peer of another residue
    // class, and a PACKET claiming a 4 GiB payload.
    let mut join = header(1, 5);
    join.extend_from_slice(&[60, b'a']);
    forged.push(join);
    let mut join = header(1, 5);
    join.extend_from_slice(&[1, b'a']);
    join.extend_from_slice(&(64 * 7 + 6u32).to_le_bytes());
    forged.push(join);
    let mut packet = header(3, 5);
    packet.extend_from_slice(&[1, b'a']);
    packet.extend_from_slice(&(64 * 7 + 5u32).to_le_bytes());
    packet.push(2);
    packet.extend_from_slice(&0u64.to_le_bytes());
    packet.extend_from_slice(&u32::MAX.to_le_bytes());
    forged.push(packet);
    for bytes in &forged {
        nats.forge(&room, bytes);
        nats.forge(&node, bytes);
    }
    // Random bytes after a valid header, every kind, from a node that does not exist. (A
    // well-formed message in a live node's name is indistinguishable from the real one: that is
    // what the broker's permissions are for, CLUSTER.md "Trust model".)
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..400u32 {
        let mut bytes = header((i % 6) as u8, 5);
        for _ in 0..(i % 40) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push(x as u8);
        }
        nats.forge(&room, &bytes);
    }
    // Both instances live on and still relay; nobody appeared or left.
    p0.send(Target::Peer(i1), b"after the storm");
    settle(&mut [&mut p0, &mut p1], "relaying goes on", |p| p[1].from(i0) == [b"after the storm".to_vec()]);
    std::thread::sleep(Duration::from_millis(1200));
    p0.poll();
    p1.poll();
    assert_eq!((p0.peers.clone(), p1.peers.clone()), (set(&[i1]), set(&[i0])), "no forged peer appeared");
    let stats = std::fs::read_to_string(&json).expect("the --stats-json file");
    let malformed: u64 = stats
        .split("\"malformed\":")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("a cluster section in the stats JSON");
    assert!(malformed >= forged.len() as u64, "malformed messages are counted: {malformed} in {stats}");
    for serve in [s0, s1] {
        let (status, _) = serve.stop();
        assert_eq!(status.dropped, 0);
    }
    let _ = std::fs::remove_file(&json);
}

#[test]
#[ignore = "needs nats-server: tests/cluster/run.sh (CI step cluster)"]
fn a_broker_outage_is_reported_local_relaying_goes_on_and_the_rooms_join_again() {
    let mut nats = Nats::start();
    let (mut s0, _) = instance(&nats, "n0", &[]);
    let (s1, _) = instance(&nats, "n1", &[]);
    let mut a = join(&s0, "/a");
    let mut b = join(&s0, "/a");
    let mut c = join(&s1, "/a");
    let (ia, ib, ic) = (a.id, b.id, c.id);
    settle(&mut [&mut a, &mut b, &mut c], "all three see each other", |p| {
        p.iter().all(|p| p.peers.len() == 3)
    });
    nats.stop();
    let line = s0.wait_line("cluster: broker connection lost", LIMIT);
    eprintln!("{line}");
    // Local relaying goes on; the other instance's member leaves at the deadline.
    const COUNT: u16 = 200;
    broadcast_numbered(&mut [&mut a, &mut b], &[0], COUNT);
    settle(&mut [&mut a, &mut b, &mut c], "local packets all arrive; the remote member leaves", |p| {
        all_in_order(p[1], 0, ia, COUNT) && p[0].peers == set(&[ib]) && p[1].peers == set(&[ia])
    });
    let status = s0.status();
    assert_eq!(status.dropped, 0);
    nats.restart();
    s0.wait_line("cluster: broker connection back", LIMIT);
    settle(&mut [&mut a, &mut b, &mut c], "the rooms join again", |p| {
        p[0].peers == set(&[ib, ic]) && p[1].peers == set(&[ia, ic]) && p[2].peers == set(&[ia, ib])
    });
    c.send(Target::Broadcast, b"after the outage");
    settle(&mut [&mut a, &mut b, &mut c], "relaying across instances resumes", |p| {
        p[0].from(ic).last().is_some_and(|d| d == b"after the outage")
            && p[1].from(ic).last().is_some_and(|d| d == b"after the outage")
    });
    for serve in [s0, s1] {
        let (status, _) = serve.stop();
        assert_eq!(status.dropped, 0);
    }
}
