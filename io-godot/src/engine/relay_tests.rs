//! Relay candidates against a real coturn (the distribution's `turnserver`) on loopback.

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use multipeer_std::webrtc::{TurnServer, TurnTransport};

use super::super::{ChannelSpec, ChannelState, Connection, ConnectionState, Signal};

const LOOPBACK: [IpAddr; 1] = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
const USER: &str = "godot";
const PASSWORD: &str = "relay-secret";

/// coturn on 127.0.0.1 over UDP with one long-term user, stopped when dropped.
struct Coturn {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Coturn {
    /// Listening on UDP, and on TCP too when `tcp`.
    fn start(tcp: bool) -> Self {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("multipeer-godot-coturn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("turnserver")
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--no-tcp-relay"])
            .args(if tcp { &[][..] } else { &["--no-tcp"][..] })
            .args(["--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--allow-loopback-peers"])
            .arg(format!("--listening-port={port}"))
            .args(["--lt-cred-mech", "--realm=multipeer.test", "--fingerprint"])
            .arg(format!("--user={USER}:{PASSWORD}"))
            .arg(format!("--pidfile={}", dir.join("turnserver.pid").display()))
            .arg(format!("--userdb={}", dir.join("turndb").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("coturn's turnserver (apt-get install coturn)");
        // It answers within milliseconds; the client retransmits its first request anyway.
        std::thread::sleep(Duration::from_millis(300));
        Self { child, port, dir }
    }

    fn server(&self, password: &str, transport: TurnTransport) -> TurnServer {
        TurnServer {
            address: format!("127.0.0.1:{}", self.port),
            host: "127.0.0.1".into(),
            transport,
            username: USER.into(),
            credential: password.into(),
        }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Moves signals between the two as a game script would; returns the candidate lines.
fn carry(from: &mut Connection, to: &mut Connection) -> Vec<String> {
    let mut candidates = Vec::new();
    for signal in from.take_signals() {
        match signal {
            Signal::Description { kind, sdp } => {
                from.set_local_description(kind, &sdp).unwrap();
                to.set_remote_description(kind, &sdp).unwrap();
            }
            Signal::Candidate { candidate, .. } => {
                to.add_ice_candidate(&candidate).unwrap();
                candidates.push(candidate);
            }
            Signal::ChannelReceived(_) => {}
        }
    }
    candidates
}

fn reliable_lane(c: &mut Connection) -> usize {
    let spec = ChannelSpec {
        label: "reliable".into(),
        negotiated: Some(1),
        ordered: true,
        ..ChannelSpec::default()
    };
    c.create_data_channel(spec).unwrap()
}

#[test]
fn relay_only_connections_meet_through_coturn() {
    relay_only_pair(TurnTransport::Udp);
}

#[test]
fn relay_only_connections_meet_through_coturn_over_tcp() {
    relay_only_pair(TurnTransport::Tcp);
}

/// Two relay-only connections whose relays reach coturn over `transport` connect and carry a
/// message, with every candidate a relayed one.
fn relay_only_pair(transport: TurnTransport) {
    let coturn = Coturn::start(transport == TurnTransport::Tcp);
    let turn = [coturn.server(PASSWORD, transport)];
    let mut a = Connection::with_relays(&LOOPBACK, &[], &turn, true).unwrap();
    let mut b = Connection::with_relays(&LOOPBACK, &[], &turn, true).unwrap();
    let (ka, kb) = (reliable_lane(&mut a), reliable_lane(&mut b));
    a.create_offer().unwrap();
    let open = |c: &Connection, k| c.channel(k).is_some_and(|ch| ch.state == ChannelState::Open);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut candidates = Vec::new();
    while !(open(&a, ka) && open(&b, kb)) {
        assert!(Instant::now() < deadline, "timed out: a {:?}, b {:?}", a.state, b.state);
        a.poll();
        b.poll();
        candidates.extend(carry(&mut a, &mut b));
        candidates.extend(carry(&mut b, &mut a));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(a.take_relay_errors().is_empty() && b.take_relay_errors().is_empty());
    // Only relayed addresses were revealed, and they are coturn's (not our sockets').
    assert!(!candidates.is_empty() && candidates.iter().all(|c| c.contains("typ relay")), "{candidates:?}");
    let relayed = a.relayed_addrs();
    assert_eq!(relayed.len(), 1);
    assert!(!a.local_addrs().contains(&relayed[0]));
    a.send(ka, b"through the relay", true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let got = loop {
        a.poll();
        b.poll();
        if let Some(message) = b.receive(kb) {
            break message;
        }
        assert!(Instant::now() < deadline, "the message did not arrive");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(got, (b"through the relay".to_vec(), true));
    for c in [&a, &b] {
        let stats = c.relay_stats();
        assert!(stats.relayed_datagrams_sent > 0 && stats.turn_datagrams_received > 0, "{stats:?}");
    }
}

#[test]
fn a_refused_allocation_is_reported_and_fails_a_relay_only_connection() {
    let coturn = Coturn::start(false);
    let server = coturn.server("wrong", TurnTransport::Udp);
    let mut c = Connection::with_relays(&LOOPBACK, &[], &[server], true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    while c.state != ConnectionState::Failed {
        assert!(Instant::now() < deadline, "the refused allocation was not reported");
        c.poll();
        std::thread::sleep(Duration::from_millis(5));
    }
    let errors = c.take_relay_errors();
    assert!(errors.len() == 1 && errors[0].contains("401"), "{errors:?}");
    assert_eq!(c.relay_stats().turn_failures, 1);
    assert!(c.failure.as_deref().is_some_and(|f| f.contains("relay")));
}
