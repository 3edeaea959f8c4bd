//! Rooms spanning several servers joined by an in-memory broker (CLUSTER.md).

use std::collections::BTreeSet;
use std::string::String;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::peer::cluster::{self as codec, ClusterMessage, NodeStamp, PacketDest};

const MS: core::time::Duration = core::time::Duration::from_millis(1);

/// One server of the cluster and the room subjects it receives.
struct Node {
    net: Net,
    subscribed: BTreeSet<String>,
    /// Cut off from the broker (killed or partitioned): nothing in, nothing out.
    down: bool,
}

/// Servers and a broker that delivers every publication to each subscriber in order, as NATS
/// does for one publisher.
struct Cluster {
    nodes: Vec<Node>,
    /// Drops the next relayed packet published (a loss between instances).
    lose_next_packet: bool,
}

fn node(index: u8, epoch: u64, now: Instant) -> Node {
    node_with(index, epoch, now, RoomConfig { mode: RoomMode::ByPath, ..RoomConfig::default() })
}

fn node_with(index: u8, epoch: u64, now: Instant, rooms: RoomConfig) -> Node {
    let mut net = Net::with(ServerConfig { rooms, ..ServerConfig::default() });
    net.now = now;
    net.server.join_cluster(now, ClusterConfig::new(index, epoch, &std::format!("node-{index}")));
    Node { net, subscribed: BTreeSet::new(), down: false }
}

impl Cluster {
    fn new(count: u8) -> Self {
        let nodes = (0..count).map(|k| node(k, 1, Instant::ZERO)).collect();
        let mut cluster = Self { nodes, lose_next_packet: false };
        cluster.settle();
        cluster
    }

    /// Moves messages between servers, and bytes between servers and clients, until quiet.
    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            for n in &mut self.nodes {
                n.net.pump();
            }
            for from in 0..self.nodes.len() {
                while let Some(output) = self.nodes[from].net.server.poll_cluster() {
                    moved = true;
                    if self.nodes[from].down {
                        continue;
                    }
                    match output {
                        ClusterOutput::Subscribe(room) => {
                            self.nodes[from].subscribed.insert(room);
                        }
                        ClusterOutput::Unsubscribe(room) => {
                            self.nodes[from].subscribed.remove(&room);
                        }
                        ClusterOutput::PublishRoom { room, message } => {
                            let packet =
                                matches!(codec::decode(&message), Ok((_, ClusterMessage::Packet { .. })));
                            if packet && core::mem::take(&mut self.lose_next_packet) {
                                continue;
                            }
                            for to in
                                self.nodes.iter_mut().filter(|n| !n.down && n.subscribed.contains(&room))
                            {
                                to.net.server.handle_cluster(to.net.now, &message);
                            }
                        }
                        ClusterOutput::PublishNode(message) => {
                            for to in self.nodes.iter_mut().filter(|n| !n.down) {
                                to.net.server.handle_cluster(to.net.now, &message);
                            }
                        }
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("cluster did not settle");
    }

    /// Advances every server's clock to `at` in 100 ms steps, moving messages at each.
    fn advance(&mut self, at: Instant) {
        while self.nodes[0].net.now < at {
            let next = (self.nodes[0].net.now + 100 * MS).min(at);
            for n in &mut self.nodes {
                n.net.advance(next);
            }
            self.settle();
        }
    }

    fn connect(&mut self, node: usize, path: &str) -> (usize, usize) {
        let end = self.nodes[node].net.connect_to(path);
        self.settle();
        (node, end)
    }

    fn client(&mut self, (node, end): (usize, usize)) -> &mut TestClient {
        self.nodes[node].net.client(end)
    }

    fn id(&self, (node, end): (usize, usize)) -> PeerId {
        self.nodes[node].net.id(end)
    }

    /// Peers a client has heard of, from its events so far (server included).
    fn seen(&mut self, who: (usize, usize), seen: &mut BTreeSet<PeerId>) {
        for event in drain(self.client(who)) {
            match event {
                Event::PeerConnected(p) => {
                    seen.insert(p);
                }
                Event::PeerDisconnected { peer, .. } => {
                    seen.remove(&peer);
                }
                _ => {}
            }
        }
    }
}

fn set(ids: &[PeerId]) -> BTreeSet<PeerId> {
    ids.iter().copied().chain([PeerId::SERVER]).collect()
}

#[test]
fn a_room_spread_over_three_servers_is_one_world_with_per_sender_order() {
    let mut cluster = Cluster::new(3);
    let a: Vec<_> = (0..3).map(|k| cluster.connect(k, "/a")).collect();
    let other = cluster.connect(0, "/b");
    let ids: Vec<PeerId> = a.iter().map(|&c| cluster.id(c)).collect();
    for (k, id) in ids.iter().enumerate() {
        assert_eq!(id.get() % 64, k as i32, "ids are drawn in the node's residue class");
    }
    for (i, &c) in a.iter().enumerate() {
        let mut seen = BTreeSet::new();
        cluster.seen(c, &mut seen);
        let others: Vec<PeerId> = ids.iter().copied().filter(|&p| p != ids[i]).collect();
        assert_eq!(seen, set(&others), "client {i} sees exactly its room's other members");
    }
    let mut seen = BTreeSet::new();
    cluster.seen(other, &mut seen);
    assert_eq!(seen, set(&[]), "room b sees nobody of room a");

    // Every member broadcasts 50 packets, interleaved, and sends one to a remote member.
    for n in 0..50u8 {
        for (i, &c) in a.iter().enumerate() {
            cluster.client(c).set_target_peer(Target::Broadcast);
            cluster.client(c).put_packet(&[i as u8, n]).unwrap();
        }
    }
    cluster.client(a[0]).set_target_peer(Target::Peer(ids[2]));
    cluster.client(a[0]).put_packet(b"direct").unwrap();
    cluster.settle();
    for (i, &c) in a.iter().enumerate() {
        let got = packets(cluster.client(c));
        for (j, &from) in ids.iter().enumerate() {
            let from_j: Vec<Vec<u8>> =
                got.iter().filter(|(f, d)| *f == from && d.len() == 2).map(|(_, d)| d.clone()).collect();
            let want: Vec<Vec<u8>> =
                if i == j { vec![] } else { (0..50).map(|n| vec![j as u8, n]).collect() };
            assert_eq!(from_j, want, "client {i} got client {j}'s packets, all, in order");
        }
        let direct = got.iter().filter(|(f, d)| *f == ids[0] && d == b"direct").count();
        assert_eq!(direct, usize::from(i == 2), "the direct packet reached only its target");
    }
    assert!(packets(cluster.client(other)).is_empty(), "nothing leaked to room b");
    for n in &cluster.nodes {
        let stats = n.net.server.cluster_stats().unwrap();
        assert_eq!((stats.gaps, stats.malformed, stats.outbox_overflow), (0, 0, 0));
        assert_eq!(stats.remote_peers, 2);
    }

    // A local departure reaches the other servers' members.
    let now = cluster.nodes[1].net.now;
    cluster.nodes[1].net.client(a[1].1).close(now);
    cluster.settle();
    let mut seen = BTreeSet::new();
    cluster.seen(a[0], &mut seen);
    cluster.seen(a[2], &mut seen);
    assert!(!seen.contains(&ids[1]));
    assert_eq!(cluster.nodes[0].net.server.cluster_stats().unwrap().remote_peers, 1);
}

#[test]
fn a_silent_server_leaves_everyone_view_within_the_deadline_and_a_restart_rejoins() {
    let mut cluster = Cluster::new(3);
    let a: Vec<_> = (0..3).map(|k| cluster.connect(k, "/a")).collect();
    let ids: Vec<PeerId> = a.iter().map(|&c| cluster.id(c)).collect();
    let mut seen0 = BTreeSet::new();
    cluster.seen(a[0], &mut seen0);
    assert_eq!(seen0, set(&[ids[1], ids[2]]));

    // Node 2 dies: it says nothing more.
    cluster.nodes[2].down = true;
    let died = cluster.nodes[0].net.now;
    cluster.advance(died + 2500 * MS);
    cluster.seen(a[0], &mut seen0);
    assert!(seen0.contains(&ids[2]), "not before the deadline (heartbeats were 500 ms apart)");
    cluster.advance(died + 3600 * MS);
    cluster.seen(a[0], &mut seen0);
    assert_eq!(seen0, set(&[ids[1]]), "gone within the 3 s deadline plus one heartbeat");
    let mut seen1 = BTreeSet::new();
    cluster.seen(a[1], &mut seen1);
    assert!(!seen1.contains(&ids[2]));
    assert_eq!(cluster.nodes[0].net.server.cluster_stats().unwrap().nodes_expired, 1);

    // The survivors still relay to each other.
    cluster.client(a[0]).set_target_peer(Target::Broadcast);
    cluster.client(a[0]).put_packet(b"still here").unwrap();
    cluster.settle();
    assert_eq!(packets(cluster.client(a[1])), vec![(ids[0], b"still here".to_vec())]);

    // It restarts (a newer epoch, the same index) and a new client joins the same room.
    let now = cluster.nodes[0].net.now;
    cluster.nodes[2] = node(2, 2, now);
    cluster.settle();
    let fresh = cluster.connect(2, "/a");
    let fresh_id = cluster.id(fresh);
    cluster.seen(a[0], &mut seen0);
    assert_eq!(seen0, set(&[ids[1], fresh_id]));
    let mut seen_fresh = BTreeSet::new();
    cluster.seen(fresh, &mut seen_fresh);
    assert_eq!(seen_fresh, set(&[ids[0], ids[1]]), "the new member learns the room's members");
}

#[test]
fn a_newer_epoch_discards_the_old_process_peers_at_once() {
    let mut cluster = Cluster::new(2);
    let a0 = cluster.connect(0, "/a");
    let a1 = cluster.connect(1, "/a");
    let old = cluster.id(a1);
    let mut seen = BTreeSet::new();
    cluster.seen(a0, &mut seen);
    assert!(seen.contains(&old));
    // Node 1 restarts before the deadline: its first heartbeat replaces the old process.
    let now = cluster.nodes[0].net.now;
    cluster.nodes[1] = node(1, 5, now);
    cluster.advance(now + 100 * MS);
    cluster.seen(a0, &mut seen);
    assert_eq!(seen, set(&[]));
    // A message of the old epoch is stale now.
    let mut forged = Vec::new();
    let stamp = NodeStamp { index: 1, epoch: 1 };
    codec::encode(stamp, &ClusterMessage::Join { room: "a", peer: old }, &mut forged).unwrap();
    cluster.nodes[0].net.server.handle_cluster(now, &forged);
    cluster.settle();
    cluster.seen(a0, &mut seen);
    assert_eq!(seen, set(&[]));
    assert_eq!(cluster.nodes[0].net.server.cluster_stats().unwrap().stale, 1);
}

#[test]
fn a_lost_packet_between_servers_is_reported_and_the_sender_announced_again() {
    let mut cluster = Cluster::new(2);
    let a0 = cluster.connect(0, "/a");
    let a1 = cluster.connect(1, "/a");
    let id0 = cluster.id(a0);
    drain(cluster.client(a1));
    cluster.client(a0).set_target_peer(Target::Broadcast);
    cluster.client(a0).put_packet(b"1").unwrap();
    cluster.settle();
    cluster.lose_next_packet = true;
    cluster.client(a0).put_packet(b"2").unwrap();
    cluster.settle();
    cluster.client(a0).put_packet(b"3").unwrap();
    cluster.settle();
    assert_eq!(packets(cluster.client(a1)), vec![(id0, b"1".to_vec())], "never a silent skip");
    let events = drain(cluster.client(a1));
    assert!(matches!(events[0], Event::PeerDisconnected { peer, .. } if peer == id0), "{events:?}");
    assert_eq!(events[1], Event::PeerConnected(id0));
    assert_eq!(cluster.nodes[1].net.server.cluster_stats().unwrap().gaps, 1);
    cluster.client(a0).put_packet(b"4").unwrap();
    cluster.settle();
    assert_eq!(packets(cluster.client(a1)), vec![(id0, b"4".to_vec())]);
}

#[test]
fn forged_and_malformed_messages_are_counted_and_change_nothing() {
    let mut cluster = Cluster::new(2);
    let a0 = cluster.connect(0, "/a");
    let a1 = cluster.connect(1, "/a");
    let (id0, id1) = (cluster.id(a0), cluster.id(a1));
    drain(cluster.client(a0));
    let now = cluster.nodes[0].net.now;
    let server = &mut cluster.nodes[0].net.server;
    let before = server.cluster_stats().unwrap();
    let mut message = Vec::new();
    // Garbage, a truncated header, a peer of the wrong residue class.
    server.handle_cluster(now, b"");
    server.handle_cluster(now, &[0xff; 64]);
    server.handle_cluster(now, b"MP\x01\x03");
    let wrong = PeerId::new(id1.0.get() + 1).unwrap();
    codec::encode(
        NodeStamp { index: 1, epoch: 1 },
        &ClusterMessage::Join { room: "a", peer: wrong },
        &mut message,
    )
    .unwrap();
    server.handle_cluster(now, &message);
    assert_eq!(server.cluster_stats().unwrap().malformed, before.malformed + 4);
    // Well-formed but unknown: a packet from a peer never announced, a leave of one, a room
    // this server does not have, this server's own index from another process.
    let stranger = PeerId::new(64 * 1000 + 1).unwrap();
    for (stamp, m) in [
        (
            NodeStamp { index: 1, epoch: 1 },
            ClusterMessage::Packet {
                room: "a",
                from: stranger,
                dest: PacketDest::All,
                seq: 0,
                payload: b"x",
            },
        ),
        (NodeStamp { index: 1, epoch: 1 }, ClusterMessage::Leave { room: "a", peer: stranger }),
        (NodeStamp { index: 1, epoch: 1 }, ClusterMessage::Join { room: "zz", peer: stranger }),
        (
            NodeStamp { index: 0, epoch: 9 },
            ClusterMessage::Join { room: "a", peer: PeerId::new(64).unwrap() },
        ),
    ] {
        message.clear();
        codec::encode(stamp, &m, &mut message).unwrap();
        server.handle_cluster(now, &message);
    }
    let after = server.cluster_stats().unwrap();
    assert_eq!((after.unknown, after.stale), (before.unknown + 3, before.stale + 1));
    // A flood of joins of peers that do not exist stops at the bound.
    let bound = 100;
    let mut flooded = node(0, 1, now);
    let mut config = ClusterConfig::new(0, 1, "bounded");
    config.max_remote_peers = bound;
    flooded.net.server.join_cluster(now, config);
    let end = flooded.net.connect_to("/a");
    flooded.net.pump();
    drain(flooded.net.client(end));
    for i in 0..(bound as u32 + 50) {
        message.clear();
        let peer = PeerId::new(64 * (i + 10) + 1).unwrap();
        codec::encode(
            NodeStamp { index: 1, epoch: 1 },
            &ClusterMessage::Join { room: "a", peer },
            &mut message,
        )
        .unwrap();
        flooded.net.server.handle_cluster(now, &message);
    }
    let stats = flooded.net.server.cluster_stats().unwrap();
    assert_eq!((stats.remote_peers, stats.refused_joins), (bound as u64, 50));
    cluster.settle();
    let mut seen = BTreeSet::new();
    cluster.seen(a0, &mut seen);
    assert!(seen.is_empty(), "no forged peer appeared, nobody left: {seen:?}");
    assert!(packets(cluster.client(a0)).is_empty());
    // The room still works.
    cluster.client(a1).set_target_peer(Target::Peer(id0));
    cluster.client(a1).put_packet(b"ok").unwrap();
    cluster.settle();
    assert_eq!(packets(cluster.client(a0)), vec![(id1, b"ok".to_vec())]);
}

#[test]
fn the_room_limit_counts_members_on_other_instances() {
    let mut cluster = Cluster::new(2);
    let capped = RoomConfig { mode: RoomMode::ByPath, max_peers_per_room: Some(2), ..RoomConfig::default() };
    cluster.nodes[1] = node_with(1, 1, cluster.nodes[0].net.now, capped);
    cluster.settle();
    cluster.connect(0, "/a");
    cluster.connect(1, "/a");
    // Room a has one member here and one on node 0: full at 2, though one connection is local.
    let net = &mut cluster.nodes[1].net;
    let end = net.connect_raw_to("/a", ws::Config::GODOT);
    let refused = core::iter::from_fn(|| net.raw(end).poll_event()).next();
    assert!(
        matches!(refused, Some(ws::Event::HandshakeFailed(ws::HandshakeError::UnexpectedStatus(503)))),
        "{refused:?}"
    );
    // Another room on the same server is not affected.
    let end = net.connect_raw_to("/b", ws::Config::GODOT);
    assert!(matches!(core::iter::from_fn(|| net.raw(end).poll_event()).next(), Some(ws::Event::Open)));
}

/// Output waiting for the broker is taken after each call, like bytes to transmit: it is no
/// reason to be called at once. An adapter whose way to the broker is full waits for room
/// (multipeer-mio's link is woken when the NATS thread takes a message); when this asked for a
/// call now, its loop spun at full CPU for as long as the broker was slow or away.
#[test]
fn output_waiting_for_the_broker_does_not_ask_for_a_call_now() {
    let mut cluster = Cluster::new(2);
    let a = cluster.connect(0, "/a");
    let _b = cluster.connect(1, "/a");
    // The first heartbeats are due at the start: send them.
    for n in &mut cluster.nodes {
        n.net.advance(Instant::ZERO + MS);
    }
    cluster.settle();
    cluster.client(a).set_target_peer(Target::Broadcast);
    for n in 0..10u8 {
        cluster.client(a).put_packet(&[1, n]).unwrap();
    }
    let node = &mut cluster.nodes[0].net;
    node.pump();
    let now = node.now;
    let due = node.server.poll_timeout();
    assert!(due.is_some_and(|t| t > now), "due {due:?} at {now:?} with output waiting");
    let mut published = 0;
    while let Some(output) = node.server.poll_cluster() {
        published += usize::from(matches!(output, ClusterOutput::PublishRoom { .. }));
    }
    assert_eq!(published, 10, "the relayed packets were waiting");
}
