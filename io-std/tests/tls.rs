//! `wss://` over loopback with certificates made at test time (rcgen): which certificates a
//! client accepts (valid chain, wrong host, self-signed with `client()` and `client_unsafe()`,
//! expired), what a TLS server does with bytes that are not TLS, the handshake timeout over
//! TLS, and the same through the blocking, non-blocking and multiplayer APIs.
#![cfg(feature = "tls")]

use core::time::Duration;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use multipeer_std::multipeer::peer::{ConnectionStatus, Event, PeerId, Target};
use multipeer_std::multipeer::ws::{self, CloseCode, Config, HandshakeError, MessageKind};
use multipeer_std::nonblocking;
use multipeer_std::tls::{TlsError, TlsOptions, TlsStream};
use multipeer_std::{
    ClientOptions, Error, MaybeTlsStream, MultiplayerError, Server, ServerOptions, WebSocket,
    WebSocketMultiplayerPeer,
};

use certs::{Ca, Leaf};

/// Longest any test waits for the other side before failing.
const BOUND: Duration = Duration::from_secs(10);

mod certs {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    /// A CA, as PEM, able to sign leaves.
    pub(crate) struct Ca {
        pub(crate) pem: String,
        params: CertificateParams,
        key: KeyPair,
    }

    /// A leaf certificate chain and its key, as PEM.
    pub(crate) struct Leaf {
        pub(crate) chain_pem: String,
        pub(crate) key_pem: String,
    }

    impl Ca {
        pub(crate) fn new(name: &str) -> Self {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let pem = params.self_signed(&key).unwrap().pem();
            Self { pem, params, key }
        }

        /// A leaf for `names` (DNS names or IP addresses), optionally already expired.
        pub(crate) fn leaf(&self, names: &[&str], expired: bool) -> Leaf {
            let key = KeyPair::generate().unwrap();
            let mut params =
                CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
            params.distinguished_name.push(DnType::CommonName, names[0]);
            if expired {
                params.not_before = rcgen::date_time_ymd(2000, 1, 1);
                params.not_after = rcgen::date_time_ymd(2001, 1, 1);
            }
            let issuer = Issuer::from_params(&self.params, &self.key);
            let cert = params.signed_by(&key, &issuer).unwrap();
            Leaf { chain_pem: cert.pem(), key_pem: key.serialize_pem() }
        }
    }

    /// A self-signed leaf for `names`.
    pub(crate) fn self_signed(names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.self_signed(&key).unwrap();
        Leaf { chain_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

fn server_tls(leaf: &Leaf) -> TlsOptions {
    TlsOptions::server(leaf.chain_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap()
}

fn trusting(ca: &Ca) -> TlsOptions {
    TlsOptions::client_with(ca.pem.as_bytes(), None).unwrap()
}

fn quick_config() -> Config {
    Config {
        handshake_timeout: Duration::from_millis(400),
        close_timeout: Duration::from_millis(400),
        ..Config::default()
    }
}

/// Runs `f` on a thread and returns a receiver for its result.
fn spawn<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> mpsc::Receiver<R> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

/// A blocking `wss://` server that accepts one connection and echoes until it ends; returns
/// how the accept (or the echo) ended.
fn echo_once(server: Server, tls: TlsOptions) -> mpsc::Receiver<Result<Error, Error>> {
    spawn(move || {
        let mut ws = server.accept_tls(&tls)?;
        loop {
            match ws.recv_timeout(BOUND) {
                Ok(message) => ws.send(message.kind, &message.data)?,
                Err(e) => return Ok(e),
            }
        }
    })
}

/// One blocking client attempt at `wss://host:port/` against a server with `leaf`; returns
/// the client's result and what the server's `accept_tls` returned.
fn attempt(leaf: &Leaf, host: &str, client: TlsOptions) -> (Result<WebSocket<MaybeTlsStream>, Error>, Error) {
    let server = Server::bind("127.0.0.1:0", ServerOptions::new().config(quick_config())).unwrap();
    let url = format!("wss://{host}:{}/", server.local_addr().unwrap().port());
    let ended = echo_once(server, server_tls(leaf));
    let result = WebSocket::connect_to_url(&url, &ClientOptions::new().config(quick_config()).tls(client));
    let server_end = match &result {
        Ok(_) => Error::TimedOut,
        Err(_) => match ended.recv_timeout(BOUND).unwrap() {
            Err(e) | Ok(e) => e,
        },
    };
    (result, server_end)
}

fn assert_refused(result: &Result<WebSocket<MaybeTlsStream>, Error>, server: &Error, expected: &TlsError) {
    match result {
        Err(Error::Tls(e)) => assert_eq!(e, expected),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
    // The server learns why from the client's alert.
    assert!(matches!(server, Error::Tls(TlsError::PeerAlert(_))), "server: {server:?}");
}

#[test]
fn a_chain_from_a_trusted_ca_is_accepted_by_name_and_by_ip_and_carries_messages() {
    let ca = Ca::new("test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"], false);
    for host in ["localhost", "127.0.0.1"] {
        let (result, _) = attempt(&leaf, host, trusting(&ca));
        let mut ws = result.unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(ws.get_ref().is_some_and(MaybeTlsStream::is_tls));
        ws.send_text("hello over TLS").unwrap();
        assert_eq!(ws.recv_timeout(BOUND).unwrap().as_text(), Some("hello over TLS"));
        // Bigger than a TLS record and than rustls's send buffer: split and reassembled.
        let big: Vec<u8> = (0..65_000u32).map(|i| (i % 251) as u8).collect();
        ws.send_binary(&big).unwrap();
        assert_eq!(ws.recv_timeout(BOUND).unwrap().data, big);
        let info = ws.close(CloseCode::NORMAL, "bye").unwrap();
        assert!(info.clean, "{info:?}");
    }
    // The name override replaces the URL's host in the check.
    let renamed = ca.leaf(&["game.example"], false);
    let trust = TlsOptions::client_with(ca.pem.as_bytes(), Some("game.example")).unwrap();
    let (result, _) = attempt(&renamed, "127.0.0.1", trust);
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_certificate_for_another_host_is_a_name_mismatch() {
    let ca = Ca::new("test CA");
    let leaf = ca.leaf(&["game.example"], false);
    let (result, server) = attempt(&leaf, "127.0.0.1", trusting(&ca));
    assert_refused(&result, &server, &TlsError::NameMismatch);
    let wrong = TlsOptions::client_with(ca.pem.as_bytes(), Some("other.example")).unwrap();
    let (result, server) = attempt(&leaf, "127.0.0.1", wrong);
    assert_refused(&result, &server, &TlsError::NameMismatch);
}

#[test]
fn self_signed_is_refused_by_client_and_accepted_by_client_unsafe() {
    let leaf = certs::self_signed(&["localhost", "127.0.0.1"]);
    let (result, server) = attempt(&leaf, "127.0.0.1", TlsOptions::client());
    assert_refused(&result, &server, &TlsError::UntrustedIssuer);
    assert!(result.unwrap_err().to_string().contains("self-signed"));
    // Another CA's certificate is no better.
    let (result, server) =
        attempt(&Ca::new("other CA").leaf(&["127.0.0.1"], false), "127.0.0.1", trusting(&Ca::new("test CA")));
    assert_refused(&result, &server, &TlsError::UntrustedIssuer);
    let (result, _) = attempt(&leaf, "127.0.0.1", TlsOptions::client_unsafe());
    let mut ws = result.unwrap();
    ws.send_text("unsafe but encrypted").unwrap();
    assert_eq!(ws.recv_timeout(BOUND).unwrap().as_text(), Some("unsafe but encrypted"));
}

#[test]
fn an_expired_certificate_is_refused() {
    let ca = Ca::new("test CA");
    let (result, server) = attempt(&ca.leaf(&["127.0.0.1"], true), "127.0.0.1", trusting(&ca));
    assert_refused(&result, &server, &TlsError::Expired);
}

#[test]
fn garbage_and_plain_websocket_on_a_tls_port_are_not_tls() {
    let ca = Ca::new("test CA");
    let leaf = ca.leaf(&["127.0.0.1"], false);
    for junk in [&b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"[..], &[0xff; 64][..]] {
        let server = Server::bind("127.0.0.1:0", ServerOptions::new().config(quick_config())).unwrap();
        let addr = server.local_addr().unwrap();
        let ended = echo_once(server, server_tls(&leaf));
        let started = Instant::now();
        let mut plain = TcpStream::connect(addr).unwrap();
        plain.write_all(junk).unwrap();
        plain.set_read_timeout(Some(BOUND)).unwrap();
        let mut reply = Vec::new();
        let _ = plain.read_to_end(&mut reply);
        // At most a TLS alert comes back, at once (not at the handshake timeout).
        assert!(reply.is_empty() || reply[0] == 0x15, "not a TLS alert: {reply:02x?}");
        let server_end = ended.recv_timeout(BOUND).unwrap().unwrap_err();
        assert!(matches!(server_end, Error::Tls(TlsError::NotTls)), "{server_end:?}");
        assert!(started.elapsed() < Duration::from_millis(350), "{:?}", started.elapsed());
    }
    // Our own ws:// client on the TLS port is refused the same way.
    let server = Server::bind("127.0.0.1:0", ServerOptions::new().config(quick_config())).unwrap();
    let url = format!("ws://{}/", server.local_addr().unwrap());
    let ended = echo_once(server, server_tls(&leaf));
    assert!(WebSocket::connect(&url, &ClientOptions::new().config(quick_config())).is_err());
    let server_end = ended.recv_timeout(BOUND).unwrap().unwrap_err();
    assert!(matches!(server_end, Error::Tls(TlsError::NotTls)), "{server_end:?}");
}

#[test]
fn a_tls_client_on_a_plain_port_is_told_it_is_not_tls() {
    // The plain server waits for an HTTP head that never comes, then answers 408 in plain
    // text; its shorter timeout makes that answer arrive before the client gives up.
    let config = Config { handshake_timeout: Duration::from_millis(200), ..quick_config() };
    let server = Server::bind("127.0.0.1:0", ServerOptions::new().config(config)).unwrap();
    let url = format!("wss://{}/", server.local_addr().unwrap());
    let _accepted = spawn(move || server.accept().map(drop));
    let options = ClientOptions::new().config(Config { handshake_timeout: BOUND, ..quick_config() });
    let result = WebSocket::connect_to_url(&url, &options.tls(TlsOptions::client_unsafe()));
    assert!(matches!(result, Err(Error::Tls(TlsError::NotTls))), "{result:?}");
}

#[test]
fn the_handshake_timeout_covers_the_tls_handshake_on_both_sides() {
    let ca = Ca::new("test CA");
    // A server: a client that connects and never says a word of TLS.
    let server = Server::bind("127.0.0.1:0", ServerOptions::new().config(quick_config())).unwrap();
    let addr = server.local_addr().unwrap();
    let ended = echo_once(server, server_tls(&ca.leaf(&["127.0.0.1"], false)));
    let started = Instant::now();
    let _silent = TcpStream::connect(addr).unwrap();
    let server_end = ended.recv_timeout(BOUND).unwrap().unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(server_end, Error::Handshake(HandshakeError::Timeout)), "{server_end:?}");
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(3), "{waited:?}");

    // A client: a server that accepts TCP and never answers the ClientHello.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("wss://127.0.0.1:{}/", mute.local_addr().unwrap().port());
    let started = Instant::now();
    let options = ClientOptions::new().config(quick_config()).tls(TlsOptions::client_unsafe());
    let result = WebSocket::connect_to_url(&url, &options);
    let waited = started.elapsed();
    assert!(matches!(result, Err(Error::Handshake(HandshakeError::Timeout))), "{result:?}");
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(3), "{waited:?}");
    // The non-blocking client reports the same through poll.
    let mut ws = nonblocking::WebSocket::connect_to_url(&url, &options).unwrap();
    let started = Instant::now();
    let mut failed = None;
    while failed.is_none() && started.elapsed() < BOUND {
        let _ = ws.poll();
        while let Some(event) = ws.poll_event() {
            if let ws::Event::HandshakeFailed(e) = event {
                failed = Some(e);
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(failed, Some(HandshakeError::Timeout));
    drop(mute);
}

#[test]
fn wss_urls_need_connect_to_url_and_option_kinds_are_checked() {
    let options = ClientOptions::new();
    assert!(matches!(WebSocket::connect("wss://127.0.0.1:1/", &options), Err(Error::TlsUnsupported)));
    assert!(matches!(
        nonblocking::WebSocket::connect("wss://127.0.0.1:1/", &options),
        Err(Error::TlsUnsupported)
    ));
    let stream =
        TcpStream::connect(std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap())
            .unwrap();
    assert!(TlsStream::server(stream, &TlsOptions::client()).is_err());
    let stream =
        TcpStream::connect(std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap())
            .unwrap();
    assert!(matches!(
        TlsStream::client(stream, &TlsOptions::client(), "bad name!"),
        Err(TlsError::InvalidName(_))
    ));
    let ca = Ca::new("test CA");
    let leaf = ca.leaf(&["localhost"], false);
    assert!(TlsOptions::server(leaf.chain_pem.as_bytes(), b"not a key").is_err());
    assert!(TlsOptions::server(b"not a certificate", leaf.key_pem.as_bytes()).is_err());
}

/// A non-blocking pair: `connect_to_url` and `Listener::accept_tls`, polled from one thread.
#[test]
fn nonblocking_wss_exchanges_messages_larger_than_the_tls_buffers() {
    let ca = Ca::new("test CA");
    let listener = nonblocking::Listener::bind("127.0.0.1:0", ServerOptions::new()).unwrap();
    let url = format!("wss://localhost:{}/", listener.local_addr().unwrap().port());
    let tls = server_tls(&ca.leaf(&["localhost"], false));
    let mut client =
        nonblocking::WebSocket::connect_to_url(&url, &ClientOptions::new().tls(trusting(&ca))).unwrap();
    let started = Instant::now();
    let mut server = loop {
        if let Some(ws) = listener.accept_tls(&tls).unwrap() {
            break ws;
        }
        assert!(started.elapsed() < BOUND);
        thread::sleep(Duration::from_millis(1));
    };
    let big: Vec<u8> = (0..60_000u32).map(|i| (i % 253) as u8).collect();
    let (mut sent, mut echoed, mut got) = (0, 0, 0);
    let mut open = false;
    while got < 8 && started.elapsed() < BOUND {
        client.poll().unwrap();
        server.poll().unwrap();
        while let Some(event) = client.poll_event() {
            open |= event == ws::Event::Open;
        }
        while server.poll_event().is_some() {}
        // The client queues as much as its limits take; the server echoes what arrives.
        while open && sent < 8 && client.send(MessageKind::Binary, &big).is_ok() {
            sent += 1;
        }
        while let Some(message) = server.recv() {
            assert_eq!(message.data, big);
            server.send(message.kind, &message.data).unwrap();
            echoed += 1;
        }
        while let Some(message) = client.recv() {
            assert_eq!(message.data, big);
            got += 1;
        }
        if !(client.wants_write() || server.wants_write()) {
            thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!((sent, echoed, got), (8, 8, 8));
    assert!(client.get_ref().is_some_and(MaybeTlsStream::is_tls));
    client.close(CloseCode::NORMAL, "done").unwrap();
    while !(client.is_finished() && server.is_finished()) && started.elapsed() < BOUND {
        let _ = client.poll();
        let _ = server.poll();
        thread::sleep(Duration::from_millis(1));
    }
    assert!(client.is_finished() && server.is_finished());
    assert!(client.close_info().is_some_and(|info| info.clean), "{:?}", client.close_info());
}

// ----- WebSocketMultiplayerPeer ---------------------------------------------------------------

/// Packets each peer got: (sender, data).
type Inboxes = Vec<Vec<(PeerId, Vec<u8>)>>;

/// Polls every peer until `done` holds or 10 s pass; returns every event and packet seen, per
/// peer.
fn pump(
    peers: &mut [&mut WebSocketMultiplayerPeer],
    mut done: impl FnMut(&[Vec<Event>], &Inboxes) -> bool,
) -> (Vec<Vec<Event>>, Inboxes) {
    let mut events = vec![Vec::new(); peers.len()];
    let mut packets: Inboxes = vec![Vec::new(); peers.len()];
    let started = Instant::now();
    while started.elapsed() < BOUND {
        for (i, peer) in peers.iter_mut().enumerate() {
            peer.poll().unwrap();
            events[i].extend(peer.events());
            while let Some((data, info)) = peer.get_packet() {
                packets[i].push((info.from, data));
            }
        }
        if done(&events, &packets) {
            return (events, packets);
        }
        thread::sleep(Duration::from_millis(1));
    }
    panic!("timed out: {events:?}");
}

#[test]
fn multiplayer_over_wss_relays_between_clients() {
    let ca = Ca::new("test CA");
    let mut server = WebSocketMultiplayerPeer::new();
    server.create_server_with_tls(0, "127.0.0.1", server_tls(&ca.leaf(&["localhost"], false))).unwrap();
    assert!(server.is_tls());
    let url = format!("wss://localhost:{}/", server.local_addr().unwrap().port());
    let mut a = WebSocketMultiplayerPeer::new();
    a.create_client_with_tls(&url, trusting(&ca)).unwrap();
    let mut b = WebSocketMultiplayerPeer::new();
    b.create_client_with_tls(&url, trusting(&ca)).unwrap();
    assert!(a.is_tls() && b.is_tls());
    pump(&mut [&mut server, &mut a, &mut b], |events, _| {
        events[1..].iter().all(|e| e.contains(&Event::ConnectionSucceeded))
            && events[1..]
                .iter()
                .all(|e| e.iter().filter(|e| matches!(e, Event::PeerConnected(_))).count() == 2)
    });
    let b_id = b.unique_id().unwrap();
    a.set_target_peer(Target::Peer(b_id));
    a.put_packet(b"\x03relayed over TLS").unwrap();
    server.set_target_peer(Target::Broadcast);
    // SceneMultiplayer's raw framing (0x03), larger than a TLS record.
    let big: Vec<u8> = core::iter::once(3).chain((1..60_000u32).map(|i| (i % 249) as u8)).collect();
    server.put_packet(&big).unwrap();
    let (_, packets) = pump(&mut [&mut server, &mut a, &mut b], |_, packets| {
        packets[2].len() >= 2 && !packets[1].is_empty()
    });
    let a_id = a.unique_id().unwrap();
    assert!(packets[2].contains(&(a_id, b"\x03relayed over TLS".to_vec())), "{:?}", packets[2].len());
    assert!(packets[2].contains(&(PeerId::SERVER, big.clone())));
    assert_eq!(packets[1], [(PeerId::SERVER, big)]);
    a.close();
    b.close();
    server.close();
}

#[test]
fn multiplayer_client_reports_why_tls_failed_and_the_server_hears_of_it() {
    let mut server = WebSocketMultiplayerPeer::new();
    server.create_server_with_tls(0, "127.0.0.1", server_tls(&certs::self_signed(&["127.0.0.1"]))).unwrap();
    let url = format!("wss://127.0.0.1:{}/", server.local_addr().unwrap().port());
    let mut client = WebSocketMultiplayerPeer::new();
    client.create_client(&url).unwrap(); // Godot's default: TlsOptions::client()
    let (events, _) = pump(&mut [&mut server, &mut client], |events, _| {
        events[1].iter().any(|e| matches!(e, Event::ConnectionFailed(_)))
    });
    assert!(!events[1].contains(&Event::ConnectionSucceeded));
    assert!(
        matches!(client.connection_error(), Some(Error::Tls(TlsError::UntrustedIssuer))),
        "{:?}",
        client.connection_error()
    );
    assert_eq!(client.get_connection_status(), ConnectionStatus::Disconnected);
    let started = Instant::now();
    let failure = loop {
        server.poll().unwrap();
        if let Some(failure) = server.poll_transport_failure() {
            break failure;
        }
        assert!(started.elapsed() < BOUND, "the server never heard of the refusal");
        thread::sleep(Duration::from_millis(1));
    };
    assert!(matches!(failure.error, Error::Tls(TlsError::PeerAlert(_))), "{failure}");
    assert_eq!(failure.peer, None);

    // client_unsafe() connects to the same server.
    let mut client = WebSocketMultiplayerPeer::new();
    client.create_client_with_tls(&url, TlsOptions::client_unsafe()).unwrap();
    pump(&mut [&mut server, &mut client], |events, _| events[1].contains(&Event::ConnectionSucceeded));
}

#[test]
fn multiplayer_tls_options_must_match_the_side() {
    let ca = Ca::new("test CA");
    let mut peer = WebSocketMultiplayerPeer::new();
    let err = peer.create_server_with_tls(0, "127.0.0.1", TlsOptions::client()).unwrap_err();
    assert!(matches!(err, MultiplayerError::InvalidParameter(_)), "{err:?}");
    let err = peer.create_client_with_tls("wss://127.0.0.1:1/", server_tls(&ca.leaf(&["x.example"], false)));
    assert!(matches!(err, Err(MultiplayerError::InvalidParameter(_))), "{err:?}");
    assert_eq!(peer.get_connection_status(), ConnectionStatus::Disconnected);
    // A plain client on a wss:// server fails at once instead of at the handshake timeout.
    peer.create_server_with_tls(0, "127.0.0.1", server_tls(&ca.leaf(&["127.0.0.1"], false))).unwrap();
    let mut client = WebSocketMultiplayerPeer::new();
    client.create_client(&format!("ws://{}/", peer.local_addr().unwrap())).unwrap();
    let started = Instant::now();
    pump(&mut [&mut peer, &mut client], |events, _| {
        events[1].iter().any(|e| matches!(e, Event::ConnectionFailed(_)))
    });
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let failure = peer.poll_transport_failure().expect("the server reports the plain client");
    assert!(matches!(failure.error, Error::Tls(TlsError::NotTls)), "{failure}");
}
