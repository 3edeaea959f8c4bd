//! TLS matrix: which certificates a client accepts, and what a TLS server does with traffic
//! that is not TLS. Certificates are made at test time with rcgen.
#![cfg(feature = "tls")]

mod common;

use core::time::Duration;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Instant;

use common::Net;
use common::certs::{self, Ca, Leaf};
use multipeer::peer::{ConnectFailure, Event, MultiplayerPeer as _, ServerConfig, Target};
use multipeer_mio::{ClientOptions, ListenAddr, Server, TlsError, TlsOptions, TransportError};

const LIMIT: Duration = Duration::from_secs(10);

fn tls_server(leaf: &Leaf, config: ServerConfig) -> Net {
    let tls = TlsOptions::server(leaf.chain_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
    let addrs = [ListenAddr::One("127.0.0.1:0".parse().unwrap())];
    Net::new(Server::bind_tls(&addrs, config, tls).unwrap())
}

fn wss(net: &Net, host: &str) -> String {
    format!("wss://{host}:{}/", net.addr().port())
}

/// Connects one client to `wss://host:port/` and waits until it joined or failed; returns its
/// index.
fn attempt(net: &mut Net, host: &str, tls: TlsOptions) -> usize {
    let url = wss(net, host);
    let i = net.connect(&url, &ClientOptions::default().with_tls(tls)).unwrap();
    assert!(net.drive_until(LIMIT, |n| n.joined(i) || (n.failed(i) && n.clients[i].is_released())));
    i
}

fn tls_error(net: &Net, i: usize) -> Option<&TlsError> {
    net.clients[i].error().and_then(TransportError::tls)
}

/// The client failed with `expected`, the core reported `connection_failed`, and the server
/// recorded the client's refusal (its alert) without an open connection left behind.
fn assert_refused(net: &mut Net, i: usize, expected: &TlsError) {
    assert!(net.failed(i), "client {i} joined: {:?}", net.client_logs[i].events);
    assert_eq!(tls_error(net, i), Some(expected), "{:?}", net.clients[i].error());
    assert!(net.drive_until(LIMIT, |n| n.server.peer().connection_count() == 0));
    assert!(net.server.transport_stats().tls_failures >= 1);
    let failure = net.server.poll_transport_failure().expect("the server saw the refusal");
    assert!(matches!(failure.error.tls(), Some(TlsError::PeerAlert(_))), "{failure}");
}

#[test]
fn a_chain_from_a_trusted_ca_is_accepted_by_name_and_by_ip() {
    let ca = Ca::new("test CA");
    let mut net = tls_server(&ca.leaf(&["localhost", "127.0.0.1"], false), ServerConfig::default());
    let trust = TlsOptions::client_with(ca.pem.as_bytes(), None).unwrap();
    for host in ["localhost", "127.0.0.1"] {
        let i = attempt(&mut net, host, trust.clone());
        assert!(net.joined(i), "{host}: {:?}", net.clients[i].error());
    }
    // The name override replaces the URL's host in the check.
    let renamed = ca.leaf(&["game.example"], false);
    let mut net = tls_server(&renamed, ServerConfig::default());
    let trust = TlsOptions::client_with(ca.pem.as_bytes(), Some("game.example")).unwrap();
    let i = attempt(&mut net, "127.0.0.1", trust);
    assert!(net.joined(i), "{:?}", net.clients[i].error());
}

#[test]
fn a_certificate_for_another_host_is_a_name_mismatch() {
    let ca = Ca::new("test CA");
    let mut net = tls_server(&ca.leaf(&["game.example"], false), ServerConfig::default());
    let trust = TlsOptions::client_with(ca.pem.as_bytes(), None).unwrap();
    let i = attempt(&mut net, "127.0.0.1", trust);
    assert_refused(&mut net, i, &TlsError::NameMismatch);
    // And an override naming the wrong host fails the same way.
    let wrong = TlsOptions::client_with(ca.pem.as_bytes(), Some("other.example")).unwrap();
    let i = attempt(&mut net, "127.0.0.1", wrong);
    assert_eq!(tls_error(&net, i), Some(&TlsError::NameMismatch));
}

#[test]
fn self_signed_is_refused_by_client_and_accepted_by_client_unsafe() {
    let mut net = tls_server(&certs::self_signed(&["localhost", "127.0.0.1"]), ServerConfig::default());
    let i = attempt(&mut net, "127.0.0.1", TlsOptions::client());
    assert_refused(&mut net, i, &TlsError::UntrustedIssuer);
    assert!(matches!(
        net.client_logs[i].events.iter().find(|e| matches!(e, Event::ConnectionFailed(_))),
        Some(Event::ConnectionFailed(ConnectFailure::Handshake(_) | ConnectFailure::Closed(_)))
    ));
    // client_unsafe checks neither chain nor name.
    let i = attempt(&mut net, "127.0.0.1", TlsOptions::client_unsafe());
    assert!(net.joined(i), "{:?}", net.clients[i].error());
}

#[test]
fn an_expired_certificate_is_refused() {
    let ca = Ca::new("test CA");
    let mut net = tls_server(&ca.leaf(&["127.0.0.1"], true), ServerConfig::default());
    let trust = TlsOptions::client_with(ca.pem.as_bytes(), None).unwrap();
    let i = attempt(&mut net, "127.0.0.1", trust);
    assert_refused(&mut net, i, &TlsError::Expired);
}

#[test]
fn plain_bytes_on_a_tls_port_are_refused_without_disturbing_others() {
    let ca = Ca::new("test CA");
    let mut net = tls_server(&ca.leaf(&["127.0.0.1"], false), ServerConfig::default());
    let trust = TlsOptions::client_with(ca.pem.as_bytes(), None).unwrap();
    let good = attempt(&mut net, "127.0.0.1", trust);
    assert!(net.joined(good));

    // A plain WebSocket upgrade, and then raw garbage, straight to the TLS port.
    let mut plain = TcpStream::connect(net.addr()).unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n").unwrap();
    let mut garbage = TcpStream::connect(net.addr()).unwrap();
    garbage.write_all(&[0xff; 64]).unwrap();
    // A ws:// client of ours, also to the TLS port.
    let ws_client =
        net.connect(&format!("ws://127.0.0.1:{}/", net.addr().port()), &ClientOptions::default()).unwrap();

    let ended = |s: &mut TcpStream| {
        s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        let mut buf = [0; 512];
        // What comes back is at most a TLS alert, then the end of the stream.
        loop {
            match s.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => assert_eq!(buf[0], 0x15, "not a TLS alert: {:02x?}", &buf[..n]),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    };
    let started = Instant::now();
    let (mut plain_done, mut garbage_done) = (false, false);
    while !(plain_done && garbage_done && net.failed(ws_client)) && started.elapsed() < LIMIT {
        net.turn(Duration::from_millis(10));
        plain_done = plain_done || ended(&mut plain);
        garbage_done = garbage_done || ended(&mut garbage);
    }
    // Refused at once, not at the 3 s handshake timeout.
    assert!(plain_done && garbage_done && net.failed(ws_client), "after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let mut not_tls = 0;
    while let Some(failure) = net.server.poll_transport_failure() {
        assert!(matches!(failure.error.tls(), Some(TlsError::NotTls | TlsError::Protocol(_))), "{failure}");
        not_tls += usize::from(failure.error.tls() == Some(&TlsError::NotTls));
    }
    assert!(not_tls >= 2, "{not_tls} connections reported as not TLS");

    // The TLS client never noticed.
    net.server.peer_mut().set_target_peer(Target::Broadcast);
    net.server.peer_mut().put_packet(b"still here").unwrap();
    net.flush();
    assert!(net.drive_until(LIMIT, |n| n.client_logs[good].got_data(b"still here")));
    assert_eq!(net.server.peer().peers().count(), 1);
}

#[test]
fn a_tls_client_on_a_plain_port_is_told_it_is_not_tls() {
    let addrs = [ListenAddr::One("127.0.0.1:0".parse().unwrap())];
    // The plain server waits for an HTTP head that never comes, then answers 408 in plain
    // text; a shorter timeout than the client's makes that answer arrive first.
    let mut config = ServerConfig::default();
    config.ws.handshake_timeout = Duration::from_millis(300);
    let mut net = Net::new(Server::bind(&addrs, config).unwrap());
    let i = attempt(&mut net, "127.0.0.1", TlsOptions::client_unsafe());
    assert!(net.failed(i));
    assert_eq!(tls_error(&net, i), Some(&TlsError::NotTls));
}

#[test]
fn the_handshake_timeout_covers_the_tls_handshake() {
    let ca = Ca::new("test CA");
    let mut config = ServerConfig::default();
    config.ws.handshake_timeout = Duration::from_millis(300);
    let mut net = tls_server(&ca.leaf(&["127.0.0.1"], false), config);
    // Connected, but never says a word of TLS.
    let mut silent = TcpStream::connect(net.addr()).unwrap();
    silent.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let started = Instant::now();
    let mut closed = false;
    while !closed && started.elapsed() < LIMIT {
        net.turn(Duration::from_millis(10));
        let mut buf = [0; 64];
        closed = match silent.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        };
    }
    let waited = started.elapsed();
    assert!(closed && waited >= Duration::from_millis(250) && waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(net.server.peer().connection_count(), 0);
}

#[test]
fn unusable_pem_is_a_clear_error_and_client_options_cannot_serve() {
    let ca = Ca::new("test CA");
    let leaf = ca.leaf(&["localhost"], false);
    assert!(TlsOptions::server(leaf.chain_pem.as_bytes(), b"not a key").is_err());
    assert!(TlsOptions::server(b"not a certificate", leaf.key_pem.as_bytes()).is_err());
    let other = ca.leaf(&["localhost"], false);
    let mismatch = TlsOptions::server(leaf.chain_pem.as_bytes(), other.key_pem.as_bytes());
    assert!(mismatch.is_err(), "a key that does not match the certificate was accepted");
    let addrs = [ListenAddr::One("127.0.0.1:0".parse().unwrap())];
    let refused = Server::bind_tls(&addrs, ServerConfig::default(), TlsOptions::client());
    assert!(matches!(refused, Err(multipeer_mio::BindError::ClientTlsOptions)));
}

#[test]
fn the_client_handshake_timeout_covers_tcp_and_tls() {
    // A server that accepts TCP and never says a word of TLS.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addrs = [ListenAddr::One("127.0.0.1:0".parse().unwrap())];
    let mut net = Net::new(Server::bind(&addrs, ServerConfig::default()).unwrap());
    let mut options = ClientOptions::default().with_tls(TlsOptions::client_unsafe());
    options.config.ws.handshake_timeout = Duration::from_millis(300);
    let url = format!("wss://127.0.0.1:{}/", mute.local_addr().unwrap().port());
    let started = Instant::now();
    let i = net.connect(&url, &options).unwrap();
    assert!(net.drive_until(LIMIT, |n| n.failed(i) && n.clients[i].is_released()));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(3), "{waited:?}");
    let timed_out = ConnectFailure::Handshake(multipeer::ws::HandshakeError::Timeout);
    assert!(
        net.client_logs[i].events.contains(&Event::ConnectionFailed(timed_out)),
        "{:?}",
        net.client_logs[i].events
    );
    drop(mute);
}
