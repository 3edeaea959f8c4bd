//! Sends and reads without a copy through the application: `put_packet_to`, `forward_packet`
//! and `get_packet_with`, under both protocols.

use std::vec;
use std::vec::Vec;

use super::*;

/// Every packet a client received, with its sender.
fn received(net: &mut Net, i: usize) -> Vec<(PeerId, Vec<u8>)> {
    packets(net.client(i))
}

#[test]
fn forward_sends_the_oldest_packet_to_each_kind_of_target_and_pops_it() {
    for protocol in [Protocol::Godot4, Protocol::Godot3] {
        let mut net = Net::with(ServerConfig { protocol, relay: false, ..ServerConfig::default() });
        let (a, b, c) = (net.connect(), net.connect(), net.connect());
        let (ia, ib) = (net.id(a), net.id(b));
        for i in 0..3 {
            drain(net.client(i));
        }
        // 20 bytes are copied into the inbox, 3000 held in the sender's connection.
        let cases = [20, 3000].into_iter().flat_map(|len| {
            [Target::Peer(ib), Target::Broadcast, Target::AllExcept(ia)].map(|target| (len, target))
        });
        for (n, (len, target)) in cases.enumerate() {
            let payload = vec![n as u8 + 1; len];
            net.client(a).put_packet(&payload).unwrap();
            net.pump();
            assert_eq!(net.server.available_packet_count(), 1);
            assert_eq!(net.server.forward_packet(target), Ok(true), "{protocol:?} {len} {target:?}");
            assert_eq!(net.server.available_packet_count(), 0);
            net.pump();
            let expect = |to_me: bool| if to_me { vec![(PeerId::SERVER, payload.clone())] } else { vec![] };
            assert_eq!(received(&mut net, a), expect(target == Target::Broadcast), "{protocol:?} {target:?}");
            assert_eq!(received(&mut net, b), expect(true), "{protocol:?} {target:?}");
            assert_eq!(received(&mut net, c), expect(target != Target::Peer(ib)), "{protocol:?} {target:?}");
        }
        assert_eq!(net.server.forward_packet(Target::Broadcast), Ok(false));
    }
}

#[test]
fn a_reply_finds_its_peer_when_the_senders_slot_went_to_another() {
    for protocol in [Protocol::Godot4, Protocol::Godot3] {
        let mut net = Net::with(ServerConfig { protocol, relay: false, ..ServerConfig::default() });
        let (a, c) = (net.connect(), net.connect());
        let ia = net.id(a);
        net.client(a).put_packet(b"from a").unwrap();
        net.pump();
        let now = net.now;
        net.client(a).close(now);
        net.pump();
        // The packet remembers the slot its sender had; the next client gets that slot.
        let b = net.connect();
        let ib = net.id(b);
        assert_eq!(net.ends[b].conn.index, net.ends[a].conn.index, "{protocol:?}: slot not reused");
        for i in [b, c] {
            drain(net.client(i));
        }
        assert_eq!(net.server.forward_packet(Target::Peer(ia)), Err(PutError::UnknownPeer(ia)));
        assert_eq!(
            net.server.peek_packet().map(|p| (p.info.from, p.data.to_vec())),
            Some((ia, b"from a".to_vec()))
        );
        net.pump();
        assert_eq!(received(&mut net, b), vec![], "{protocol:?}");
        assert_eq!(net.server.forward_packet(Target::Peer(ib)), Ok(true));
        net.pump();
        assert_eq!(received(&mut net, b), vec![(PeerId::SERVER, b"from a".to_vec())], "{protocol:?}");
        assert_eq!(received(&mut net, c), vec![], "{protocol:?}");
    }
}

#[test]
fn a_forward_that_fails_keeps_the_packet() {
    let ws = ws::Config { outbound_buffer_size: 300, outbound_queue_size: Some(300), ..ws::Config::GODOT };
    let mut net = Net::with(ServerConfig { ws, relay: false, ..ServerConfig::default() });
    let (a, b) = (net.connect(), net.connect());
    let ib = net.id(b);
    net.ends[b].stalled = true;
    for fill in [1, 2] {
        net.client(a).put_packet(&[fill; 200]).unwrap();
    }
    net.pump();
    assert_eq!(net.server.forward_packet(Target::Peer(ib)), Ok(true));
    assert_eq!(net.server.forward_packet(Target::Peer(ib)), Err(PutError::Full));
    assert_eq!(
        net.server.forward_packet(Target::Peer(PeerId::new(99).unwrap())),
        Err(PutError::UnknownPeer(PeerId::new(99).unwrap()))
    );
    assert_eq!(net.server.peek_packet().map(|p| p.data.to_vec()), Some(vec![2; 200]));
    net.ends[b].stalled = false;
    net.pump();
    assert_eq!(net.server.forward_packet(Target::Peer(ib)), Ok(true));
    net.pump();
    let got: Vec<u8> = received(&mut net, b).into_iter().map(|(_, data)| data[0]).collect();
    assert_eq!(got, [1, 2]);
}

#[test]
fn put_packet_to_leaves_the_target_peer_alone_and_get_packet_with_borrows() {
    let mut net = Net::with(ServerConfig { relay: false, ..ServerConfig::default() });
    let (a, b) = (net.connect(), net.connect());
    let (ia, ib) = (net.id(a), net.id(b));
    net.server.set_target_peer(Target::Peer(ia));
    net.server.put_packet_to(Target::Peer(ib), b"to b").unwrap();
    assert_eq!(net.server.target_peer(), Target::Peer(ia));
    net.client(b).put_packet(b"from b").unwrap();
    net.pump();
    assert_eq!(received(&mut net, b), vec![(PeerId::SERVER, b"to b".to_vec())]);
    let read = net.server.get_packet_with(|p| (p.info.from, p.data.len(), p.data.as_ptr()));
    assert_eq!(read.map(|(from, len, _)| (from, len)), Some((ib, 6)));
    assert_eq!(net.server.available_packet_count(), 0);
    assert_eq!(net.server.get_packet_with(|p| p.data.len()), None);
}

/// Browsers offer permessage-deflate; the server agrees while fewer than `max_connections` of
/// its connections use it, and counts a connection until its transport is released.
#[cfg(feature = "deflate")]
#[test]
fn browsers_get_permessage_deflate_while_under_the_connection_limit() {
    use crate::ws::deflate::DeflateConfig;
    let mut config = ServerConfig::default();
    config.ws.permessage_deflate = Some(DeflateConfig { max_connections: 1, ..DeflateConfig::DEFAULT });
    let mut net = Net::with(config);
    let browser = ws::Config { permessage_deflate: Some(DeflateConfig::DEFAULT), ..ws::Config::GODOT };
    let a = net.connect_raw(browser);
    let b = net.connect_raw(browser);
    // A Godot client never offers it: its handshake is as without deflate.
    let g = net.connect();
    assert!(net.raw(a).permessage_deflate().is_some());
    assert!(net.raw(b).permessage_deflate().is_none());
    assert!(net.server.connection(net.id(g)).unwrap().permessage_deflate().is_none());
    assert_eq!(net.server.compressing_connections(), 1);
    let now = net.now;
    net.raw(a).close(now, ws::CloseCode::NORMAL, "").unwrap();
    net.pump();
    assert_eq!(net.server.compressing_connections(), 0);
    let c = net.connect_raw(browser);
    assert!(net.raw(c).permessage_deflate().is_some());
    assert_eq!(net.server.compressing_connections(), 1);
}
