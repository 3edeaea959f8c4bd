//! TURN relay candidates against a real coturn (the distribution's `turnserver`, started here
//! on loopback with long-term credentials): two relay-only Rust peers connect through their
//! allocations and exchange on Godot's three lanes; wrong credentials, an unreachable server
//! and a refused allocation (the server's quota) each fail the peer with a clear reason within
//! a bounded time. The same pair connects with the client reaching coturn over TCP (coturn
//! listening on TCP only), and over TLS (`turns:`, coturn listening on TLS only, its
//! certificate from a CA made here), where an untrusted certificate, a wrong host name, a
//! server that never answers the handshake and the server going away are each reported with
//! their reason. The NAT lab (`tests/interop/turn/nat_lab.sh`) shows the same through
//! symmetric NATs that leave no direct path.
#![cfg(feature = "webrtc")]

use core::time::Duration;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use multipeer::mesh::Signal;
use multipeer::peer::{Event, PeerId, TransferMode};
use multipeer_std::webrtc::{IceServer, WebRtcConfig, WebRtcMultiplayerPeer};

const USER: &str = "godot";
const PASSWORD: &str = "s3cret";

fn id(n: u32) -> PeerId {
    PeerId::new(n).unwrap()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A coturn process on 127.0.0.1, killed on drop.
struct Coturn {
    child: Child,
    port: u16,
    /// Its pid file and user database.
    dir: std::path::PathBuf,
}

impl Coturn {
    /// A server listening on UDP only (`extra` adds options).
    fn start(extra: &[&str]) -> Self {
        Self::start_listening(&["--no-tcp"], extra)
    }

    /// A server listening for clients as `listeners` say (`--no-tcp`, `--no-udp`; TLS only
    /// with `--cert`), on 127.0.0.1 unless `extra` names other addresses.
    fn start_listening(listeners: &[&str], extra: &[&str]) -> Self {
        let port = free_udp_port();
        let dir = std::env::temp_dir().join(format!("multipeer-coturn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("turnserver")
            .args(["-n", "--no-cli", "--no-dtls", "--no-tcp-relay"])
            .args(if listeners.iter().any(|a| a.starts_with("--cert")) { &[][..] } else { &["--no-tls"][..] })
            .args(listeners)
            .args(if extra.iter().any(|a| a.starts_with("--listening-ip")) {
                &[][..]
            } else {
                &["--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"][..]
            })
            .arg("--allow-loopback-peers")
            .arg(format!("--listening-port={port}"))
            .args(["--lt-cred-mech", "--realm=multipeer.test", "--fingerprint"])
            .arg(format!("--user={USER}:{PASSWORD}"))
            .arg(format!("--pidfile={}", dir.join("turnserver.pid").display()))
            .arg(format!("--userdb={}", dir.join("turndb").display()))
            .args(["--log-file=stdout", "--simple-log"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("coturn's turnserver (apt-get install coturn)");
        // It answers within milliseconds; our client retransmits its first request anyway.
        std::thread::sleep(Duration::from_millis(300));
        Self { child, port, dir }
    }

    fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }

    fn tcp_url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=tcp", self.port)
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn relay_config(url: &str, password: &str) -> WebRtcConfig {
    WebRtcConfig::default().ice_server(IceServer::turn(url, USER, password)).relay_only(true)
}

/// Carries `from`'s signals to `to`; returns the candidate lines carried.
fn carry(from: &mut WebRtcMultiplayerPeer, to: &mut WebRtcMultiplayerPeer) -> Vec<String> {
    let me = from.unique_id().unwrap();
    let mut candidates = Vec::new();
    while let Some(signal) = from.poll_signal() {
        match signal {
            Signal::Description { kind, sdp, .. } => to.set_remote_description(me, kind, &sdp).unwrap(),
            Signal::Candidate { mid, index, candidate, .. } => {
                to.add_ice_candidate(me, &mid, index, &candidate).unwrap();
                candidates.push(candidate);
            }
            other => panic!("unexpected signal {other:?}"),
        }
    }
    candidates
}

#[test]
fn relay_only_peers_connect_through_coturn_on_all_three_lanes() {
    let coturn = Coturn::start(&[]);
    relay_pair_exchanges(&coturn.url(), &WebRtcConfig::default());
}

#[test]
fn relay_only_peers_connect_through_an_ipv6_relay() {
    let coturn = Coturn::start(&["--listening-ip=::1", "--relay-ip=::1"]);
    let url = format!("turn:[::1]:{}", coturn.port);
    let on_ipv6 = WebRtcConfig::default().local_ips(["::1".parse().unwrap()]);
    let relayed = relay_pair_exchanges(&url, &on_ipv6);
    assert!(relayed.iter().all(core::net::SocketAddr::is_ipv6), "{relayed:?}");
}

#[test]
fn relay_only_peers_connect_through_coturn_over_tcp() {
    // No UDP listener: the allocations can only have been made over TCP.
    let coturn = Coturn::start_listening(&["--no-udp"], &[]);
    relay_pair_exchanges(&coturn.tcp_url(), &WebRtcConfig::default());
    let (took, why) = failure(relay_config(&coturn.tcp_url(), "wrong"));
    eprintln!("wrong credentials over TCP: {took:?}: {why}");
    assert!(why.contains("refused: 401"), "{why}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Nothing listens on this TCP port: the connection is refused, and said so at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (took, why) = failure(relay_config(&format!("turn:127.0.0.1:{closed}?transport=tcp"), PASSWORD));
    eprintln!("TCP connection refused: {took:?}: {why}");
    assert!(why.contains(&format!("127.0.0.1:{closed} over TCP")), "{why}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// A CA made for the test, and a certificate for 127.0.0.1 it signed, written as PEM files
/// for coturn into a directory removed on drop.
struct TurnCertificate {
    ca_der: Vec<u8>,
    dir: std::path::PathBuf,
}

impl TurnCertificate {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "multipeer test TURN CA");
        let ca_der = ca_params.self_signed(&ca_key).unwrap().der().to_vec();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        let cert = params.signed_by(&key, &Issuer::from_params(&ca_params, &ca_key)).unwrap();
        let dir = std::env::temp_dir().join(format!("multipeer-turns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        Self { ca_der, dir }
    }

    /// coturn listening on TLS only, with this certificate; and its TLS port.
    fn coturn(&self) -> (Coturn, u16) {
        let tls_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listeners = [
            "--no-udp".to_string(),
            "--no-tcp".to_string(),
            format!("--tls-listening-port={tls_port}"),
            format!("--cert={}", self.dir.join("cert.pem").display()),
            format!("--pkey={}", self.dir.join("key.pem").display()),
        ];
        let listeners: Vec<&str> = listeners.iter().map(String::as_str).collect();
        (Coturn::start_listening(&listeners, &[]), tls_port)
    }
}

impl Drop for TurnCertificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn relay_only_peers_connect_through_coturn_over_tls() {
    let certificate = TurnCertificate::new();
    let (coturn, tls_port) = certificate.coturn();
    let url = format!("turns:127.0.0.1:{tls_port}");
    let trusting = WebRtcConfig::default().trust_turn_ca(certificate.ca_der.clone());
    relay_pair_exchanges(&url, &trusting);

    // Without the CA: the webpki roots do not know it.
    let (took, why) = failure(relay_config(&url, PASSWORD));
    eprintln!("untrusted certificate: {took:?}: {why}");
    assert!(why.contains(&format!("127.0.0.1:{tls_port} over TLS")), "{why}");
    assert!(why.contains("not issued by a trusted CA"), "{why}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // The certificate names 127.0.0.1, not localhost.
    let by_name = format!("turns:localhost:{tls_port}");
    let (took, why) = failure(relay_config(&by_name, PASSWORD).trust_turn_ca(certificate.ca_der.clone()));
    eprintln!("wrong host name: {took:?}: {why}");
    assert!(why.contains("not valid for this host name"), "{why}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // A trusted CA that is no certificate: said so, and no connection is tried.
    let (took, why) = failure(relay_config(&url, PASSWORD).trust_turn_ca(b"not DER".to_vec()));
    eprintln!("unusable CA: {took:?}: {why}");
    assert!(why.contains("turn_trusted_cas"), "{why}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // Wrong credentials come back through TLS as over the other transports.
    let (took, why) = failure(relay_config(&url, "wrong").trust_turn_ca(certificate.ca_der.clone()));
    eprintln!("wrong credentials over TLS: {took:?}: {why}");
    assert!(why.contains("refused: 401"), "{why}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // A server that takes the connection and never answers the ClientHello (the kernel
    // accepts it; nobody reads): given up with the TCP connection's bound.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let (took, why) = failure(relay_config(&format!("turns:127.0.0.1:{silent_port}"), PASSWORD));
    eprintln!("no TLS handshake: {took:?}: {why}");
    assert!(why.contains("no TLS handshake within 5 s"), "{why}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    drop(silent);

    // An allocation made, then the server goes away: the link's end is the allocation's.
    let mut holder =
        WebRtcMultiplayerPeer::new(relay_config(&url, PASSWORD).trust_turn_ca(certificate.ca_der.clone()));
    holder.create_mesh(id(1), &[]).unwrap();
    holder.add_peer(id(2), 1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while holder.get_peer_relayed_addrs().is_empty() {
        assert!(Instant::now() < deadline, "allocation over TLS: {:?}", holder.stats());
        holder.poll().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(coturn);
    let gone = Instant::now();
    while holder.stats().turn_failures == 0 {
        assert!(gone.elapsed() < Duration::from_secs(5), "server end not seen: {:?}", holder.stats());
        holder.poll().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let why = holder.stats().last_error.clone().unwrap_or_default();
    eprintln!("server gone: {:?}: {why}", gone.elapsed());
    assert!(why.contains(&format!("127.0.0.1:{tls_port} over TLS")), "{why}");
}

/// Two relay-only peers (`base` with TURN at `url`): connected with relay candidates only, on
/// the server's address, 20 messages per lane each way with each lane's rules, traffic
/// through the relays. Returns the first peer's relayed addresses.
fn relay_pair_exchanges(url: &str, base: &WebRtcConfig) -> Vec<core::net::SocketAddr> {
    let config = base.clone().ice_server(IceServer::turn(url, USER, PASSWORD)).relay_only(true);
    let server_ip = if url.contains("[::1]") { "::1" } else { "127.0.0.1" };
    let mut a = WebRtcMultiplayerPeer::new(config.clone());
    let mut b = WebRtcMultiplayerPeer::new(config);
    a.create_mesh(id(1), &[]).unwrap();
    b.create_mesh(id(2), &[]).unwrap();
    a.add_peer(id(2), 1).unwrap();
    b.add_peer(id(1), 1).unwrap();
    let mut candidates = Vec::new();
    let mut up = (false, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(up.0 && up.1) {
        assert!(Instant::now() < deadline, "no connection through the relay: {:?}", a.stats());
        a.poll().unwrap();
        b.poll().unwrap();
        candidates.extend(carry(&mut a, &mut b));
        candidates.extend(carry(&mut b, &mut a));
        while let Some(e) = a.poll_event() {
            up.0 |= e == Event::PeerConnected(id(2));
        }
        while let Some(e) = b.poll_event() {
            up.1 |= e == Event::PeerConnected(id(1));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    assert!(!candidates.is_empty());
    for c in &candidates {
        assert!(c.contains(" typ relay"), "only relay candidates are signalled: {c}");
        assert!(c.contains(&format!(" {server_ip} ")), "{c}");
    }
    let modes = [TransferMode::Reliable, TransferMode::UnreliableOrdered, TransferMode::Unreliable];
    for (lane, mode) in modes.iter().enumerate() {
        a.set_transfer_mode(*mode);
        b.set_transfer_mode(*mode);
        for i in 0..20u8 {
            a.put_packet(&[lane as u8, i]).unwrap();
            b.put_packet(&[lane as u8, i]).unwrap();
        }
    }
    let mut got = [[0usize; 3]; 2];
    let mut reliable = [Vec::new(), Vec::new()];
    let deadline = Instant::now() + Duration::from_secs(10);
    while got[0][0] < 20 || got[1][0] < 20 {
        assert!(Instant::now() < deadline, "lanes incomplete: {got:?}");
        for (k, p) in [&mut a, &mut b].into_iter().enumerate() {
            p.poll().unwrap();
            while let Some((data, info)) = p.get_packet() {
                let lane = usize::from(data[0]);
                let expected = match info.mode {
                    TransferMode::Reliable => 0,
                    TransferMode::UnreliableOrdered => 1,
                    TransferMode::Unreliable => 2,
                };
                assert_eq!(lane, expected, "each message on its own lane");
                got[k][lane] += 1;
                if lane == 0 {
                    reliable[k].push(data[1]);
                }
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    assert_eq!(reliable[0], (0..20).collect::<Vec<_>>(), "reliable: all, in order");
    assert_eq!(reliable[1], (0..20).collect::<Vec<_>>());
    for (p, g) in [(&a, got[0]), (&b, got[1])] {
        let s = p.stats();
        eprintln!(
            "delivered {g:?}; relayed out {}, relayed in {}, TURN control {}",
            s.relayed_datagrams_sent, s.turn_datagrams_received, s.turn_datagrams_sent
        );
        assert!(g[1] <= 20 && g[2] <= 20, "nothing duplicated");
        assert!(
            s.relayed_datagrams_sent > 0 && s.turn_datagrams_received > 0,
            "traffic went through the relay"
        );
        assert_eq!(s.turn_failures, 0);
    }
    assert_eq!(a.get_peer_relayed_addrs().len(), 1);
    a.get_peer_relayed_addrs()
}

/// Adds a relay-only peer and waits until it is gone; returns how long that took and why.
fn failure(config: WebRtcConfig) -> (Duration, String) {
    let mut a = WebRtcMultiplayerPeer::new(config);
    a.create_mesh(id(1), &[]).unwrap();
    let started = Instant::now();
    a.add_peer(id(2), 1).unwrap();
    while a.has_peer(id(2)) {
        assert!(started.elapsed() < Duration::from_secs(10), "the peer did not fail: {:?}", a.stats());
        a.poll().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(a.stats().turn_failures, 1);
    (started.elapsed(), a.stats().last_error.clone().unwrap_or_default())
}

#[test]
fn wrong_credentials_unreachable_server_and_refused_allocation_fail_in_bounded_time() {
    let coturn = Coturn::start(&[]);
    let (took, why) = failure(relay_config(&coturn.url(), "wrong"));
    eprintln!("wrong credentials: {took:?}: {why}");
    assert!(why.contains("refused: 401"), "{why}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Nothing listens on this port.
    let silent = free_udp_port();
    let (took, why) = failure(relay_config(&format!("turn:127.0.0.1:{silent}"), PASSWORD));
    eprintln!("unreachable server: {took:?}: {why}");
    assert!(why.contains(&format!("127.0.0.1:{silent}: no answer")), "{why}");
    assert!(took < Duration::from_secs(7), "{took:?}");

    // A server allowing one allocation in all: the second engine's is refused (486).
    let quota = Coturn::start(&["--total-quota=1"]);
    let mut holder = WebRtcMultiplayerPeer::new(relay_config(&quota.url(), PASSWORD));
    holder.create_mesh(id(7), &[]).unwrap();
    holder.add_peer(id(8), 1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while holder.get_peer_relayed_addrs().is_empty() {
        assert!(Instant::now() < deadline, "first allocation: {:?}", holder.stats());
        holder.poll().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let (took, why) = failure(relay_config(&quota.url(), PASSWORD));
    eprintln!("allocation refused: {took:?}: {why}");
    assert!(why.contains("refused: 486"), "{why}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// Without `relay_only` a peer goes on with its host candidates when its allocation fails,
/// but the failure is reported at once, not after ICE gave up (21.5 s).
#[test]
fn a_failed_allocation_is_reported_at_once_while_other_candidates_go_on() {
    let coturn = Coturn::start(&[]);
    let config = relay_config(&coturn.url(), "wrong").relay_only(false);
    let mut a = WebRtcMultiplayerPeer::new(config);
    a.create_mesh(id(1), &[]).unwrap();
    let started = Instant::now();
    a.add_peer(id(2), 1).unwrap();
    while a.stats().turn_failures == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "not reported: {:?}", a.stats());
        a.poll().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let why = a.stats().last_error.clone().unwrap_or_default();
    eprintln!("reported after {:?}: {why}", started.elapsed());
    assert!(why.contains("refused: 401"), "{why}");
    assert!(a.has_peer(id(2)), "the peer is still connecting, on its host candidate");
}
