//! Connection floods: half-open TCP connections (connected, never a byte of HTTP) up to and
//! beyond `max_connections_per_ip` and `max_peers`.
//!
//! The excess is refused at accept, at once (the attacker reads end of stream, no HTTP); the
//! server keeps listening for everyone else; peers already joined keep relaying; every held
//! connection is answered 408 and released at the handshake timeout; and the server's memory
//! stays bounded: core buffer footprint in process, resident memory of a server child for a
//! flood of thousands.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::time::Instant;

use multipeer::peer::ServerConfig;
use multipeer::ws::HandshakeError;
use multipeer_tests::hostile::child::Child;
use multipeer_tests::hostile::honest::Honest;
use multipeer_tests::hostile::quick_config;
use multipeer_tests::hostile::raw::{End, READ_LIMIT, Raw, request};
use multipeer_tests::hostile::server::Harness;

const SECOND: Duration = Duration::from_secs(1);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Opens one half-open connection from each of `sources`, then tells which the server kept
/// (still open 100 ms later) and how many it refused at once (end of stream, no bytes).
fn half_open(sources: &[IpAddr], addr: SocketAddr) -> (Vec<Raw>, usize) {
    let mut all: Vec<Raw> = sources.iter().map(|&s| Raw::connect_from(s, addr)).collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut refused = 0;
    all.retain_mut(|raw| {
        raw.stream.set_nonblocking(true).unwrap();
        let end = raw.wait_end(Duration::ZERO);
        raw.stream.set_nonblocking(false).unwrap();
        match end {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => true,
            Ok((_, bytes)) => {
                assert!(bytes.is_empty(), "refused with bytes: {bytes:?}");
                refused += 1;
                false
            }
            Err(e) => panic!("{e}"),
        }
    });
    (all, refused)
}

#[test]
fn per_ip_and_total_caps_refuse_the_excess_at_accept_and_keep_listening() {
    let mut config = ServerConfig { max_peers: 40, max_connections_per_ip: Some(10), ..quick_config() };
    // Time to open them all and look at them before the first times out.
    config.ws.handshake_timeout = Duration::from_secs(2);
    let server = Harness::start(config);
    let honest = Honest::start(&server.url(), 2);
    let addr = server.addr();

    // 15 from one address: 10 held, 5 refused at once.
    let (mut held, refused) = half_open(&[ip(2); 15], addr);
    assert_eq!((held.len(), refused), (10, 5));
    let started = Instant::now();
    server.wait("5 refused per address", SECOND, |o| o.transport.refused_per_address == 5);
    server.wait("12 connections", SECOND, |o| o.connections == 12);
    // The server still listens: another address upgrades, and an honest client joins.
    let mut other = Raw::connect_from(ip(3), addr);
    other.send(&request(&[])).unwrap();
    assert_eq!(other.read_head(READ_LIMIT).expect("101 after a per-address refusal").0, 101);
    server.wait("13 connections", SECOND, |o| o.connections == 13);
    honest.assert_flowing(3);

    // Fill the server from three more addresses (27 connections, 9 each), then 5 more from a
    // fresh address: refused at capacity though that address has none.
    let sources: Vec<IpAddr> = (0..27).map(|i| ip(4 + i % 3)).collect();
    let (more, refused) = half_open(&sources, addr);
    assert_eq!((more.len(), refused), (27, 0), "{}", server.observed().summary());
    held.extend(more);
    server.wait("40 connections", SECOND, |o| o.connections == 40);
    let (none, refused) = half_open(&[ip(200); 5], addr);
    assert_eq!((none.len(), refused), (0, 5), "accepted beyond max_peers: {}", server.observed().summary());
    let full = server.observed();
    assert_eq!((full.connections, full.transport.refused_at_capacity), (40, 5), "{}", full.summary());
    honest.assert_flowing(5);

    // Every held connection gets 408 at the handshake timeout (counted from its accept) and is
    // released; then the address may connect again.
    for raw in &mut held {
        let answer = raw.read_rejection(READ_LIMIT).expect("408");
        assert_eq!(answer, (408, HandshakeError::Timeout.to_string()));
        assert_eq!(raw.wait_end(READ_LIMIT).unwrap().0, End::Eof);
    }
    let released_after = started.elapsed();
    server.wait_connections(3, SECOND);
    let (again, _) = half_open(&[ip(2)], addr);
    assert_eq!(again.len(), 1, "the address stays banned after its connections left");
    drop(again);
    honest.assert_flowing(3);
    honest.finish().assert_unaffected();
    drop(other);
    let observed = server.stop();
    assert_eq!(observed.rejections(HandshakeError::Timeout), held.len(), "{}", observed.summary());
    // The held ones timed out, 5 refused per address, 5 at capacity, and the last probe closed
    // by the test: all counted as rejected by the core.
    assert_eq!(observed.stats.rejected as usize, held.len() + 5 + 5 + 1, "{}", observed.summary());
    assert_eq!(observed.max_connections, 40, "{}", observed.summary());
    // Half-open connections hold no buffer at all.
    assert!(observed.max_footprint < 32 * 1024, "{}", observed.summary());
    eprintln!("caps: {} held, all released {released_after:?} after they were opened", held.len());
}

/// The server child's resident memory now, KiB.
fn child_rss_kib(child: &Child) -> u64 {
    child.rss().0 / 1024
}

/// What one flood round measured.
struct Round {
    time: Duration,
    refused: usize,
    /// RSS with the flood held, KiB.
    half_open: u64,
    /// RSS with every held connection in the middle of a 4000-byte head, KiB.
    heads: u64,
    /// Core buffer footprint then, bytes.
    footprint: u64,
    /// RSS after the attacker let go, KiB.
    released: u64,
}

/// `flood` half-open connections against a server child capped at `cap`; each held one then
/// sends 4000 bytes of an endless head (the most a handshake may hold); then all are dropped.
fn flood_round(child: &mut Child, cap: usize, flood: usize) -> Round {
    let addr = child.addr();
    let start = child.status().clone();
    let started = Instant::now();
    let mut held = Vec::with_capacity(flood);
    let mut refused = 0;
    // Spread over addresses (no per-IP cap is set here). In batches of 100 that the server
    // takes before the next: its listen backlog is 128 (mio's, as std's), and a SYN beyond it
    // would be dropped and retried by the kernel a second later.
    for i in 0..flood {
        match Raw::try_connect_from(Some(ip(10 + (i % 200) as u8)), addr) {
            Ok(raw) => held.push(raw),
            Err(_) => refused += 1,
        }
        if i % 100 == 99 || i + 1 == flood {
            let taken = start["accepted"] + start["refused_at_capacity"] + i as u64 + 1;
            child.wait("the batch accepted", Duration::from_secs(10), |s| {
                s["accepted"] + s["refused_at_capacity"] >= taken
            });
        }
    }
    let now = child.wait("the flood held", Duration::from_secs(10), |s| s["conns"] as usize == cap);
    let refused = refused + (now["refused_at_capacity"] - start["refused_at_capacity"]) as usize;
    let half_open = child_rss_kib(child);
    let time = started.elapsed();
    let mut filled = 0;
    for raw in &mut held {
        if raw.send(&[b"GET / HTTP/1.1\r\nX-Pad: ".as_slice(), &[b'p'; 3975]].concat()).is_ok() {
            filled += 1;
        }
    }
    assert!(filled >= cap, "only {filled} heads sent");
    let target = cap as u64 * 3998;
    let at = child.wait("the heads read", Duration::from_secs(10), |s| s["footprint"] >= target);
    let heads = child_rss_kib(child);
    drop(held);
    child.wait("all released", Duration::from_secs(10), |s| s["conns"] == 0);
    Round { time, refused, half_open, heads, footprint: at["footprint"], released: child_rss_kib(child) }
}

#[test]
fn a_flood_of_thousands_of_half_open_connections_is_bounded_in_memory() {
    const CAP: usize = 2000;
    const FLOOD: usize = 3000;
    let bin = env!("CARGO_BIN_EXE_soak_server");
    let cap = CAP.to_string();
    // A long handshake timeout: the flood is held until the test lets go of it.
    let mut child = Child::start(bin, &["--max-peers", &cap, "--handshake-ms", "60000", "--status-ms", "10"]);
    let addr = child.addr();
    // Warm the accept path and the allocator with a few connections.
    drop((0..50).map(|_| Raw::connect(addr)).collect::<Vec<_>>());
    child.wait("warm-up released", Duration::from_secs(5), |s| s["conns"] == 0 && s["accepted"] == 50);
    let base = child_rss_kib(&child);
    let first = flood_round(&mut child, CAP, FLOOD);
    let second = flood_round(&mut child, CAP, FLOOD);
    let (_, peak) = child.rss();
    let per = |kib: u64| (kib.saturating_sub(base) * 1024) / CAP as u64;
    for (name, r) in [("first", &first), ("second", &second)] {
        eprintln!(
            "flood ({name}): {FLOOD} connections in {:?}, {CAP} held, {} refused at capacity; RSS base {base} KiB, \
             half-open {} KiB ({} B each), mid-head {} KiB ({} B each, core footprint {} B), released {} KiB",
            r.time,
            r.refused,
            r.half_open,
            per(r.half_open),
            r.heads,
            per(r.heads),
            r.footprint,
            r.released,
        );
        assert_eq!(r.refused, FLOOD - CAP, "{name}");
        // A half-open connection costs its socket, the core's state and the adapter's slot.
        assert!(per(r.half_open) <= 8 * 1024, "{name}: {} bytes per half-open connection", per(r.half_open));
        // A head in progress holds at most its 4096-byte limit in the core...
        assert!(r.footprint <= CAP as u64 * 4096, "{name}: core footprint {}", r.footprint);
        // ...and, with the socket and allocator overhead, a few KiB more in RSS.
        assert!(per(r.heads) <= 16 * 1024, "{name}: {} bytes per connection with a head", per(r.heads));
    }
    // Nothing accumulates from one flood to the next: the second reuses what the first freed.
    assert!(
        second.heads <= first.heads + first.heads / 10,
        "RSS grew: {} -> {} KiB",
        first.heads,
        second.heads
    );
    let end = child.stop();
    // The warm-up's 50 closed handshakes, and every flood connection (refused or dropped).
    assert_eq!(end["rejected"] as usize, 50 + 2 * FLOOD, "{end:?}");
    assert_eq!(end["max_conns"] as usize, CAP, "{end:?}");
    eprintln!("flood: peak RSS {} KiB", peak / 1024);
}
