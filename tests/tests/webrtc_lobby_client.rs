//! Our lobby client (`WebRtcMultiplayerPeer::connect_lobby`) against a fake lobby server of the
//! test's own over loopback TCP: a server that reads slowly must not cost the mesh any
//! signalling, and every offer reaches its peer exactly once.
#![cfg(feature = "webrtc")]

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::time::Instant;

use multipeer::signaling::{Message, MessageType};
use multipeer::ws::handshake::accept_key;
use multipeer_std::webrtc::WebRtcMultiplayerPeer;
use multipeer_tests::hostile::raw::{Raw, header};
use socket2::{Domain, SockAddr, Socket, Type};

/// Peers the fake server announces; we take a higher id, so we offer to each of them.
const PEERS: i64 = 200;
const OUR_ID: i64 = 1000;

fn server_text(message: &Message) -> Vec<u8> {
    let payload = message.encode().into_bytes();
    let mut frame = header(true, 0, 0x1, None, payload.len() as u64);
    frame.extend_from_slice(&payload);
    frame
}

/// A listener whose accepted sockets have a small receive buffer, so our client's writes back
/// up into its own outbound queue instead of the kernel's.
fn small_buffer_listener() -> TcpListener {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(&SockAddr::from("127.0.0.1:0".parse::<SocketAddr>().unwrap())).unwrap();
    socket.listen(1).unwrap();
    socket.into()
}

/// Accepts one client, upgrades it, gives it id `OUR_ID` in a mesh and announces `PEERS`
/// peers, reads nothing for `stall`, then reads until every peer got an offer and a candidate
/// (at most 20 s).
/// Returns the offers and candidates sent to each peer.
fn slow_lobby(listener: TcpListener, stall: Duration) -> BTreeMap<i64, (usize, usize)> {
    let (mut stream, _) = listener.accept().unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        stream.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let key = text.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap().trim().to_owned();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        String::from_utf8_lossy(&accept_key(key.as_bytes()))
    );
    stream.write_all(response.as_bytes()).unwrap();
    let mut out = server_text(&Message::new(MessageType::Id, OUR_ID, "true"));
    for peer in 1..=PEERS {
        out.extend(server_text(&Message::new(MessageType::PeerConnect, peer, "")));
    }
    out.extend(server_text(&Message::new(MessageType::Join, 0, "SLOW")));
    stream.write_all(&out).unwrap();
    std::thread::sleep(stall);

    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut raw = Raw::from_stream(stream);
    let mut seen: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
    let end = Instant::now() + Duration::from_secs(20);
    let complete =
        |seen: &BTreeMap<i64, (usize, usize)>| seen.values().filter(|(o, c)| *o > 0 && *c > 0).count();
    while complete(&seen) < PEERS as usize && Instant::now() < end {
        let Ok(frame) = raw.read_frame(Duration::from_millis(200)) else { continue };
        assert_eq!(frame.opcode, 0x1, "only text frames");
        let message = Message::decode(core::str::from_utf8(&frame.payload).unwrap()).unwrap();
        match message.kind {
            // The client's own join, first.
            MessageType::Join => {}
            MessageType::Offer => seen.entry(message.id).or_default().0 += 1,
            MessageType::Candidate => seen.entry(message.id).or_default().1 += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    seen
}

#[test]
fn a_slow_lobby_server_loses_no_signalling() {
    let listener = small_buffer_listener();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || slow_lobby(listener, Duration::from_millis(1500)));
    let mut peer = WebRtcMultiplayerPeer::default();
    peer.connect_lobby(&url, "", true).unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while !server.is_finished() {
        assert!(Instant::now() < end, "the fake lobby did not finish");
        peer.poll().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let seen = server.join().unwrap();
    assert_eq!(peer.lobby_name(), Some("SLOW"));
    assert_eq!(peer.get_peers().len(), PEERS as usize);
    let offers: Vec<usize> = (1..=PEERS).map(|p| seen.get(&p).map_or(0, |c| c.0)).collect();
    assert!(offers.iter().all(|&n| n == 1), "every peer gets exactly one offer: {offers:?}");
    assert!(seen.values().all(|(_, candidates)| *candidates >= 1), "and its candidate");
    assert_eq!(peer.stats().dropped_signals, 0);
}
