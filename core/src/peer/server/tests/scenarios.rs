//! Three clients exchanging packets through the server, in both protocols.

use std::vec;
use std::vec::Vec;

use chacha20::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;
use crate::peer::DropReason;

fn scenario(protocol: Protocol) {
    let mut net = Net::new(protocol);
    let a = net.connect();
    let b = net.connect();
    let c = net.connect();
    let (ia, ib, ic) = (net.id(a), net.id(b), net.id(c));
    assert!(ia != ib && ib != ic && ia != ic);
    assert_eq!(
        drain(&mut net.server),
        vec![Event::PeerConnected(ia), Event::PeerConnected(ib), Event::PeerConnected(ic)]
    );
    // Each client learns the server, joins, then sees the others.
    let ev = drain(net.client(a));
    assert_eq!(ev[..2], [Event::PeerConnected(PeerId::SERVER), Event::ConnectionSucceeded]);
    assert_eq!(ev[2..], [Event::PeerConnected(ib), Event::PeerConnected(ic)]);
    let ev = drain(net.client(c));
    assert!(ev.contains(&Event::PeerConnected(ia)) && ev.contains(&Event::PeerConnected(ib)));
    drain(net.client(b));

    // Client → server, client → client, broadcast, all-but-one, all-but-server.
    net.client(a).set_target_peer(Target::Server);
    net.client(a).put_packet(b"to-server").unwrap();
    net.client(a).set_target_peer(Target::Peer(ib));
    net.client(a).put_packet(b"a-to-b").unwrap();
    net.client(a).set_target_peer(Target::Broadcast);
    net.client(a).put_packet(b"a-to-all").unwrap();
    net.client(a).set_target_peer(Target::AllExcept(ib));
    net.client(a).put_packet(b"a-to-all-but-b").unwrap();
    net.client(a).set_target_peer(Target::AllExcept(PeerId::SERVER));
    net.client(a).put_packet(b"a-to-clients").unwrap();
    net.pump();
    let got = |v: &[(PeerId, Vec<u8>)]| v.iter().map(|(f, d)| (*f, d.clone())).collect::<Vec<_>>();
    let server_got = got(&packets(&mut net.server));
    assert_eq!(
        server_got,
        vec![(ia, b"to-server".to_vec()), (ia, b"a-to-all".to_vec()), (ia, b"a-to-all-but-b".to_vec())]
    );
    assert_eq!(
        got(&packets(net.client(b))),
        vec![(ia, b"a-to-b".to_vec()), (ia, b"a-to-all".to_vec()), (ia, b"a-to-clients".to_vec())]
    );
    assert_eq!(
        got(&packets(net.client(c))),
        vec![(ia, b"a-to-all".to_vec()), (ia, b"a-to-all-but-b".to_vec()), (ia, b"a-to-clients".to_vec())]
    );
    assert!(packets(net.client(a)).is_empty());

    // Server → one, → all.
    net.server.set_target_peer(Target::Peer(ic));
    net.server.put_packet(b"srv-to-c").unwrap();
    net.server.set_target_peer(Target::Broadcast);
    net.server.put_packet(b"srv-all").unwrap();
    net.pump();
    assert_eq!(
        got(&packets(net.client(c))),
        vec![(PeerId::SERVER, b"srv-to-c".to_vec()), (PeerId::SERVER, b"srv-all".to_vec())]
    );
    assert_eq!(got(&packets(net.client(a))), vec![(PeerId::SERVER, b"srv-all".to_vec())]);
    packets(net.client(b));

    // An unknown target is dropped and reported, never silently.
    let ghost = PeerId::new(424242).unwrap();
    net.client(a).set_target_peer(Target::Peer(ghost));
    net.client(a).put_packet(b"lost?").unwrap();
    net.pump();
    assert_eq!(
        drain(&mut net.server),
        vec![Event::PacketDropped { from: Some(ia), reason: DropReason::UnknownTarget(424242) }]
    );

    // B leaves: the server and the others hear of it.
    let now = net.now;
    net.client(b).close(now);
    net.pump();
    let ev = drain(&mut net.server);
    assert!(matches!(ev.as_slice(), [Event::PeerDisconnected { peer, .. }] if *peer == ib), "{ev:?}");
    assert!(
        drain(net.client(a)).iter().any(|e| matches!(e, Event::PeerDisconnected { peer, .. } if *peer == ib))
    );
    assert!(!net.server.has_peer(ib));
    assert_eq!(net.server.connection_count(), 2);
}

#[test]
fn godot4_relay_three_clients() {
    scenario(Protocol::Godot4);
}

#[test]
fn godot3_three_clients() {
    scenario(Protocol::Godot3);
}

#[test]
fn godot4_join_bytes_match_the_reference() {
    // godot-protocol.md §7.3: a new client sees its id, then one ADD_PEER per existing peer.
    let mut net = Net::new(Protocol::Godot4);
    let a = net.connect();
    let ia = net.id(a);
    let r = net.connect_raw(ws::Config::GODOT);
    let new_id = net.id(r);
    let mut add = vec![7, 1];
    add.extend_from_slice(&ia.get().to_le_bytes());
    assert_eq!(raw_messages(net.raw(r)), vec![new_id.get().to_le_bytes().to_vec(), add]);
}

#[test]
fn godot3_join_bytes_match_the_reference() {
    // godot-protocol.md §1.2 and §10.2: SYS_ID(self), SYS_ADD(1), SYS_ADD(A); A gets SYS_ADD(self).
    let mut net = Net::new(Protocol::Godot3);
    let a = net.connect_raw(ws::Config::GODOT);
    let ia = net.id(a);
    raw_messages(net.raw(a));
    let b = net.connect_raw(ws::Config::GODOT);
    let ib = net.id(b);
    let sys = |kind, id: PeerId| godot3::sys_message(kind, id.get()).to_vec();
    use crate::peer::godot3::{self, MessageType};
    assert_eq!(
        raw_messages(net.raw(b)),
        vec![sys(MessageType::Id, ib), sys(MessageType::Add, PeerId::SERVER), sys(MessageType::Add, ia)]
    );
    assert_eq!(raw_messages(net.raw(a)), vec![sys(MessageType::Add, ib)]);
}

#[test]
fn ids_are_in_range_and_unique() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10_000 {
        let id = generate_unique_id(&mut rng, |id| seen.contains(&id)).unwrap();
        assert!(id.get() >= 2);
        assert!(seen.insert(id));
    }
}
