//! Closing with codes and reasons, seen from both ends (Godot's `get_close_code()` and
//! `get_close_reason()` on either side, `server_disconnected` after a local close).

use std::string::String;
use std::vec::Vec;

use super::*;
use crate::ws::{CloseInfo, Initiator};

fn events(net: &mut Net, i: usize) -> Vec<Event> {
    core::iter::from_fn(|| net.client(i).poll_event()).collect()
}

fn server_events(net: &mut Net) -> Vec<Event> {
    core::iter::from_fn(|| net.server.poll_event()).collect()
}

fn code_and_reason(info: &CloseInfo) -> (u16, String) {
    (info.code.0, String::from(info.reason.as_str()))
}

#[test]
fn a_kick_with_a_code_reaches_the_client_and_its_answer_the_server() {
    for protocol in [Protocol::Godot4, Protocol::Godot3] {
        let mut net = Net::new(protocol);
        let a = net.connect();
        let id = net.id(a);
        events(&mut net, a);
        server_events(&mut net);
        let now = net.now;
        net.server.disconnect_peer_with(now, id, CloseCode(4000), "bye", false).unwrap();
        // The departure is reported at once; the peer stays readable while it closes.
        assert_eq!(
            server_events(&mut net),
            [Event::PeerDisconnected { peer: id, reason: DisconnectReason::Kicked }]
        );
        assert!(!net.server.has_peer(id));
        assert_eq!(net.server.peer_info(id).map(|p| p.state), Some(ws::State::Closing));
        net.pump();
        let seen = events(&mut net, a);
        let lost = seen.iter().find_map(|e| match e {
            Event::ServerDisconnected(info) => Some(code_and_reason(info)),
            _ => None,
        });
        assert_eq!(lost, Some((4000, String::from("bye"))), "{protocol:?}: {seen:?}");
        // The client echoed the Close (as wslay does): that answer is what the server records.
        match server_events(&mut net).as_slice() {
            [Event::PeerClosed { peer, info }] => {
                assert_eq!(*peer, id);
                assert_eq!(code_and_reason(info), (4000, String::from("bye")));
                assert_eq!((info.initiator, info.clean, info.godot_code()), (Initiator::Local, true, 4000));
            }
            other => panic!("{protocol:?}: {other:?}"),
        }
        // Released now: a departed peer is not kept beyond its connection.
        assert_eq!(net.server.peer_info(id), None);
    }
}

#[test]
fn a_client_close_reports_server_disconnected_when_it_completes() {
    let mut net = Net::new(Protocol::Godot4);
    let a = net.connect();
    let id = net.id(a);
    events(&mut net, a);
    server_events(&mut net);
    let now = net.now;
    net.client(a).disconnect_peer_with(now, PeerId::SERVER, CloseCode(4001), "leaving", false).unwrap();
    assert_eq!(net.client(a).connection_status(), ConnectionStatus::Disconnected);
    assert_eq!(events(&mut net, a), [], "nothing before the close completes, as in Godot 4");
    assert_eq!(net.client(a).put_packet(b"late"), Err(PutError::NotConnected));
    net.pump();
    match events(&mut net, a).as_slice() {
        [
            Event::PeerDisconnected { peer, reason: DisconnectReason::Closed(first) },
            Event::ServerDisconnected(info),
        ] => {
            assert!(peer.is_server());
            assert_eq!(first, info);
            assert_eq!(code_and_reason(info), (4001, String::from("leaving")));
            assert_eq!((info.initiator, info.clean), (Initiator::Local, true));
        }
        other => panic!("{other:?}"),
    }
    match server_events(&mut net).as_slice() {
        [Event::PeerDisconnected { peer, reason: DisconnectReason::Closed(info) }] => {
            assert_eq!(*peer, id);
            assert_eq!(code_and_reason(info), (4001, String::from("leaving")));
            assert_eq!(info.initiator, Initiator::Remote);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(net.client(a).close_info().map(|i| i.godot_code()), Some(4001));
}

#[test]
fn a_forced_client_close_is_reported_at_once() {
    let mut net = Net::new(Protocol::Godot4);
    let a = net.connect();
    events(&mut net, a);
    let now = net.now;
    let other = PeerId::new(5).unwrap();
    let refused = net.client(a).disconnect_peer_with(now, other, CloseCode(4001), "", false);
    assert_eq!(refused, Err(UnknownPeer(other)));
    assert_eq!(net.client(a).connection_status(), ConnectionStatus::Connected);
    net.client(a).disconnect_peer_with(now, PeerId::SERVER, CloseCode(4001), "leaving", true).unwrap();
    match events(&mut net, a).as_slice() {
        [Event::PeerDisconnected { .. }, Event::ServerDisconnected(info)] => {
            assert_eq!((info.code, info.godot_code()), (CloseCode::ABNORMAL, -1));
        }
        other => panic!("{other:?}"),
    }
    let again = net.client(a).disconnect_peer_with(now, PeerId::SERVER, CloseCode::NORMAL, "", false);
    assert_eq!(again, Err(UnknownPeer(PeerId::SERVER)));
}

#[test]
fn close_reports_the_server_gone_at_once_and_never_twice() {
    let mut net = Net::new(Protocol::Godot4);
    let a = net.connect();
    events(&mut net, a);
    let now = net.now;
    net.client(a).close(now);
    assert_eq!(
        events(&mut net, a),
        [Event::PeerDisconnected { peer: PeerId::SERVER, reason: DisconnectReason::Kicked }]
    );
    net.pump();
    assert_eq!(events(&mut net, a), []);
}

#[test]
fn godot3_reasons_lose_their_nul_and_godot4_reasons_keep_everything() {
    for (protocol, shown) in [(Protocol::Godot3, "bye"), (Protocol::Godot4, "bye\0")] {
        // A Godot 3.x peer closes with "bye\0" (a C string with its terminator).
        let mut net = Net::new(protocol);
        let a = net.connect_raw(ws::Config::GODOT);
        let id = net.id(a);
        server_events(&mut net);
        let now = net.now;
        net.raw(a).close(now, CloseCode(4001), "bye\0").unwrap();
        net.pump();
        let seen = server_events(&mut net);
        let reason = seen.iter().find_map(|e| match e {
            Event::PeerDisconnected { peer, reason: DisconnectReason::Closed(info) } if *peer == id => {
                Some(String::from(info.reason.as_str()))
            }
            _ => None,
        });
        assert_eq!(reason.as_deref(), Some(shown), "{protocol:?}: {seen:?}");

        // And a client of that protocol, kicked with "bye\0".
        let b = net.connect();
        let id = net.id(b);
        events(&mut net, b);
        let now = net.now;
        net.server.disconnect_peer_with(now, id, CloseCode(4000), "bye\0", false).unwrap();
        net.pump();
        let seen = events(&mut net, b);
        let reason = seen.iter().find_map(|e| match e {
            Event::ServerDisconnected(info) => Some(String::from(info.reason.as_str())),
            _ => None,
        });
        assert_eq!(reason.as_deref(), Some(shown), "{protocol:?}: {seen:?}");
        assert_eq!(
            net.client(b).close_info().map(|i| String::from(i.reason.as_str())).as_deref(),
            Some(shown)
        );
    }
}

#[test]
fn a_kick_with_an_unsendable_code_still_closes() {
    let mut net = Net::new(Protocol::Godot4);
    let a = net.connect();
    let id = net.id(a);
    events(&mut net, a);
    let now = net.now;
    let long = "é".repeat(100);
    net.server.disconnect_peer_with(now, id, CloseCode(1006), &long, false).unwrap();
    net.pump();
    let seen = events(&mut net, a);
    let lost = seen.iter().find_map(|e| match e {
        Event::ServerDisconnected(info) => Some((info.code, info.reason.as_str().len())),
        _ => None,
    });
    assert_eq!(lost, Some((CloseCode::NORMAL, 122)), "{seen:?}");

    // The same on a client: the server sees it leave with 1000 and the cut reason.
    let b = net.connect();
    let id = net.id(b);
    server_events(&mut net);
    let now = net.now;
    net.client(b).disconnect_peer_with(now, PeerId::SERVER, CloseCode(1005), &long, false).unwrap();
    net.pump();
    let seen = server_events(&mut net);
    let left = seen.iter().find_map(|e| match e {
        Event::PeerDisconnected { peer, reason: DisconnectReason::Closed(info) } if *peer == id => {
            Some((info.code, info.reason.as_str().len()))
        }
        _ => None,
    });
    assert_eq!(left, Some((CloseCode::NORMAL, 122)), "{seen:?}");
}

/// Reads events and packets in the order `event_is_next` gives (what a port sees as Godot's
/// signals interleaved with `get_packet`).
fn ordered_server(net: &mut Net) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        if net.server.event_is_next() {
            let event = net.server.poll_event().unwrap();
            seen.push(std::format!("{event:?}").split([' ', '(']).next().unwrap().into());
        } else if let Some(packet) = net.server.peek_packet() {
            seen.push(String::from_utf8_lossy(packet.data).into_owned());
            net.server.pop_packet();
        } else {
            assert!(net.server.poll_event().is_none(), "an event that is never next");
            return seen;
        }
    }
}

fn ordered_client(net: &mut Net, i: usize) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let client = net.client(i);
        if client.event_is_next() {
            let event = client.poll_event().unwrap();
            seen.push(std::format!("{event:?}").split([' ', '(']).next().unwrap().into());
        } else if let Some(packet) = client.peek_packet() {
            seen.push(String::from_utf8_lossy(packet.data).into_owned());
            client.pop_packet();
        } else {
            assert!(client.poll_event().is_none(), "an event that is never next");
            return seen;
        }
    }
}

#[test]
fn events_and_packets_keep_their_order_on_both_ends() {
    for protocol in [Protocol::Godot4, Protocol::Godot3] {
        let mut net = Net::new(protocol);
        let a = net.connect();
        let b = net.connect();
        let (ia, ib) = (net.id(a), net.id(b));
        // A sends and leaves (one read brings both), B sends after it; nothing is read until
        // everything arrived.
        net.client(a).put_packet(b"a1").unwrap();
        let now = net.now;
        net.client(a).disconnect_peer(now, PeerId::SERVER, false).unwrap();
        net.pump();
        net.client(b).put_packet(b"b1").unwrap();
        net.pump();
        let seen = ordered_server(&mut net);
        let connected = seen.iter().filter(|s| *s == "PeerConnected").count();
        assert_eq!(connected, 2, "{protocol:?}: {seen:?}");
        let at = |what: &str| seen.iter().position(|s| s == what).unwrap();
        assert!(
            at("a1") < at("PeerDisconnected") && at("PeerDisconnected") < at("b1"),
            "{protocol:?}: {seen:?}"
        );
        assert!(!net.server.has_peer(ia) && net.server.has_peer(ib));

        // The server sends B a packet and then kicks it: B reads the packet before the end.
        net.server.set_target_peer(Target::Peer(ib));
        net.server.put_packet(b"last words").unwrap();
        let now = net.now;
        net.server.disconnect_peer_with(now, ib, CloseCode(4000), "bye", false).unwrap();
        net.pump();
        let seen = ordered_client(&mut net, b);
        let end = seen.iter().position(|s| s == "ServerDisconnected").unwrap();
        let words = seen.iter().position(|s| s == "last words").unwrap();
        assert!(words < end, "{protocol:?}: {seen:?}");
        assert!(seen.iter().position(|s| s == "ConnectionSucceeded").unwrap() < words);
    }
}
