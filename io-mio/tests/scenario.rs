//! The multiplayer scenario over real loopback sockets through multipeer-mio: a Godot 4 server
//! with relay and three clients, plain and over TLS.

mod common;

use core::time::Duration;
use std::collections::BTreeSet;

use common::Net;
use multipeer::peer::{DisconnectReason, Event, MultiplayerPeer as _, PeerId, ServerConfig, Target};
use multipeer_mio::{ClientOptions, ListenAddr, Server};

const LIMIT: Duration = Duration::from_secs(10);

fn localhost() -> [ListenAddr; 1] {
    [ListenAddr::One("127.0.0.1:0".parse().unwrap())]
}

/// Sends `marker` from the server to everyone and waits until all connected clients have it, so
/// that anything sent before it has arrived too (each connection is ordered).
fn fence(net: &mut Net, marker: &[u8], clients: &[usize]) {
    net.server.peer_mut().set_target_peer(Target::Broadcast);
    net.server.peer_mut().put_packet(marker).unwrap();
    net.flush();
    assert!(
        net.drive_until(LIMIT, |n| clients.iter().all(|&i| n.client_logs[i].got_data(marker))),
        "marker {:?} did not reach every client",
        String::from_utf8_lossy(marker)
    );
}

fn scenario(mut net: Net, url: &str, options: &ClientOptions) {
    for _ in 0..3 {
        net.connect(url, options).unwrap();
    }
    assert!(
        net.drive_until(LIMIT, |n| (0..3).all(|i| n.joined(i)) && n.server.peer().peers().count() == 3),
        "clients did not join: {:?} / {:?}",
        net.client_logs.iter().map(|l| &l.events).collect::<Vec<_>>(),
        net.clients.iter().map(|c| c.error().map(ToString::to_string)).collect::<Vec<_>>(),
    );
    let (a, b, c) = (0, 1, 2);

    // Ids: distinct, in Godot's range, the ones the server knows.
    let ids: BTreeSet<PeerId> = (0..3).map(|i| net.id(i)).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| id.get() >= 2));
    assert_eq!(net.server.peer().peers().collect::<BTreeSet<_>>(), ids);
    let server_joins: BTreeSet<PeerId> = net
        .server_log
        .events
        .iter()
        .filter_map(|e| if let Event::PeerConnected(p) = e { Some(*p) } else { None })
        .collect();
    assert_eq!(server_joins, ids);

    // peer_connected on each client: the server, then (relay) each other client.
    assert!(net.drive_until(LIMIT, |n| (0..3).all(|i| {
        let seen: BTreeSet<PeerId> = n.client_logs[i]
            .events
            .iter()
            .filter_map(|e| if let Event::PeerConnected(p) = e { Some(*p) } else { None })
            .collect();
        let mut expected: BTreeSet<PeerId> = ids.iter().copied().filter(|&p| p != n.id(i)).collect();
        expected.insert(PeerId::SERVER);
        seen == expected
    })));

    // Targeted: only b.
    let (id_a, id_b, id_c) = (net.id(a), net.id(b), net.id(c));
    net.server.peer_mut().set_target_peer(Target::Peer(id_b));
    net.server.peer_mut().put_packet(b"to b").unwrap();
    // Broadcast: everyone.
    net.server.peer_mut().set_target_peer(Target::Broadcast);
    net.server.peer_mut().put_packet(b"to all").unwrap();
    // Exclude one: everyone but a.
    net.server.peer_mut().set_target_peer(Target::AllExcept(id_a));
    net.server.peer_mut().put_packet(b"not a").unwrap();
    fence(&mut net, b"fence 1", &[a, b, c]);
    let server = PeerId::SERVER;
    assert!(net.client_logs[b].got(server, b"to b"));
    assert!(!net.client_logs[a].got_data(b"to b") && !net.client_logs[c].got_data(b"to b"));
    assert!((0..3).all(|i| net.client_logs[i].got(server, b"to all")));
    assert!(!net.client_logs[a].got_data(b"not a"));
    assert!(net.client_logs[b].got(server, b"not a") && net.client_logs[c].got(server, b"not a"));

    // Relay: a → c only; then a → everyone (the server application gets it too).
    net.client(a).set_target_peer(Target::Peer(id_c));
    net.client(a).put_packet(b"a to c").unwrap();
    net.client(a).set_target_peer(Target::Broadcast);
    net.client(a).put_packet(b"a to all").unwrap();
    net.client(a).set_target_peer(Target::Server);
    net.client(a).put_packet(b"a to server").unwrap();
    net.flush();
    assert!(net.drive_until(LIMIT, |n| n.server_log.got(id_a, b"a to server")));
    fence(&mut net, b"fence 2", &[a, b, c]);
    assert!(net.client_logs[c].got(id_a, b"a to c"));
    assert!(!net.client_logs[b].got_data(b"a to c") && !net.server_log.got_data(b"a to c"));
    assert!(net.client_logs[b].got(id_a, b"a to all") && net.client_logs[c].got(id_a, b"a to all"));
    assert!(!net.client_logs[a].got_data(b"a to all"), "a packet came back to its sender");
    assert!(net.server_log.got(id_a, b"a to all"));
    assert!(!net.client_logs[b].got_data(b"a to server") && !net.client_logs[c].got_data(b"a to server"));

    // A client leaves: everyone hears of it, and its socket is released.
    let now = net.clients[b].now();
    net.client(b).close(now);
    net.flush();
    let left = |events: &[Event], reason: fn(&DisconnectReason) -> bool| {
        events
            .iter()
            .any(|e| matches!(e, Event::PeerDisconnected { peer, reason: r } if *peer == id_b && reason(r)))
    };
    assert!(
        net.drive_until(LIMIT, |n| {
            left(&n.server_log.events, |r| matches!(r, DisconnectReason::Closed(_)))
                && left(&n.client_logs[a].events, |r| *r == DisconnectReason::Announced)
                && left(&n.client_logs[c].events, |r| *r == DisconnectReason::Announced)
                && n.clients[b].is_released()
        }),
        "departure not seen: server {:?}",
        net.server_log.events
    );
    assert_eq!(net.server.peer().peers().collect::<BTreeSet<_>>(), BTreeSet::from([id_a, id_c]));

    // The two left still talk.
    net.client(c).set_target_peer(Target::Peer(id_a));
    net.client(c).put_packet(b"c to a").unwrap();
    net.flush();
    assert!(net.drive_until(LIMIT, |n| n.client_logs[a].got(id_c, b"c to a")));
    assert!(net.clients.iter().all(|c| c.error().is_none()));
}

#[test]
fn three_clients_over_plain_websocket() {
    let net = Net::new(Server::bind(&localhost(), ServerConfig::default()).unwrap());
    let url = net.url("ws");
    scenario(net, &url, &ClientOptions::default());
}

#[cfg(feature = "tls")]
#[test]
fn three_clients_over_tls() {
    use multipeer_mio::TlsOptions;

    let ca = common::certs::Ca::new("multipeer test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"], false);
    let tls = TlsOptions::server(leaf.chain_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
    let net = Net::new(Server::bind_tls(&localhost(), ServerConfig::default(), tls).unwrap());
    let url = net.url("wss");
    let options =
        ClientOptions::default().with_tls(TlsOptions::client_with(ca.pem.as_bytes(), None).unwrap());
    scenario(net, &url, &options);
}

#[test]
fn godot3_protocol_relays_by_header() {
    let config = ServerConfig { protocol: multipeer::peer::Protocol::Godot3, ..ServerConfig::default() };
    let mut net = Net::new(Server::bind(&localhost(), config).unwrap());
    let url = net.url("ws");
    let mut options = ClientOptions::default();
    options.config.protocol = multipeer::peer::Protocol::Godot3;
    for _ in 0..2 {
        net.connect(&url, &options).unwrap();
    }
    assert!(net.drive_until(LIMIT, |n| n.joined(0) && n.joined(1)));
    let id1 = net.id(1);
    net.client(0).set_target_peer(Target::Peer(id1));
    net.client(0).put_packet(b"hello over godot 3").unwrap();
    net.flush();
    let id0 = net.id(0);
    assert!(net.drive_until(LIMIT, |n| n.client_logs[1].got(id0, b"hello over godot 3")));
}
