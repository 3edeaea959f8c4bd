//! WebSocket connections in the deterministic simulation: handshakes, messages both ways over
//! many seeded links, ping/pong, closes, timeouts, keepalive and abrupt disconnects.

use core::time::Duration;

use chacha20::ChaCha8Rng;
use multipeer::rand_core::{Rng as _, SeedableRng};
use multipeer::ws::handshake::{ClientRequest, Url};
use multipeer::ws::{
    CloseCode, CloseInfo, Config, Connection, Error, Event, HandshakeError, Initiator, MessageKind, State,
};
use multipeer::{Instant, VecStorage};
use multipeer_tests::sim::{Endpoint, LinkConfig, Outcome, Pair, Sim};

type Client = Connection<VecStorage, ChaCha8Rng>;
type Server = Connection<VecStorage>;

fn client(seed: u64, config: Config) -> Client {
    let url = Url::parse("ws://game.example:9080/lobby").unwrap();
    let request = ClientRequest { protocols: &["chat"], ..ClientRequest::from_url(&url) };
    Connection::client(Instant::ZERO, &request, config, ChaCha8Rng::seed_from_u64(seed)).unwrap()
}

fn pair(seed: u64, link: LinkConfig, config: Config) -> Pair<Client, Server> {
    Pair::new(seed, client(seed, config), Connection::server(Instant::ZERO, config), link)
}

fn drain(c: &mut Connection<VecStorage, impl multipeer::ws::MaskKeys>) -> Vec<Event> {
    core::iter::from_fn(|| c.poll_event()).collect()
}

/// Runs `p` a millisecond at a time until `done`, collecting nothing else.
fn step_until(p: &mut Pair<Client, Server>, mut done: impl FnMut(&mut Pair<Client, Server>) -> bool) {
    for _ in 0..5000 {
        if done(p) {
            return;
        }
        let until = p.now() + Duration::from_millis(1);
        p.drive_until(until);
    }
    panic!("not done after 5 s");
}

/// Drives a pair through the opening handshake; the server accepts "chat" as soon as the
/// request arrives.
fn open(p: &mut Pair<Client, Server>) {
    let mut server_events = Vec::new();
    step_until(p, |p| {
        server_events.extend(drain(&mut p.b));
        !server_events.is_empty()
    });
    assert_eq!(server_events, [Event::Request]);
    p.b.accept_supported(p.now(), &["chat"], &[]).unwrap();
    let mut client_events = Vec::new();
    step_until(p, |p| {
        client_events.extend(drain(&mut p.a));
        !client_events.is_empty()
    });
    assert_eq!(client_events, [Event::Open]);
    assert_eq!(drain(&mut p.b), [Event::Open]);
    assert_eq!((p.a.protocol(), p.b.protocol()), (Some("chat"), Some("chat")));
}

fn closed(evs: &[Event]) -> &CloseInfo {
    match evs {
        [.., Event::Closed(info)] => info,
        _ => panic!("expected Closed last, got {evs:?}"),
    }
}

#[test]
fn handshake_over_many_links() {
    for seed in 0..200 {
        let link = LinkConfig::random(seed);
        let mut p = pair(seed, link, Config::GODOT);
        open(&mut p);
        assert!(p.now() >= Instant::ZERO + link.latency * 2, "seed {seed}: a round trip at least");
        assert_eq!((p.a.state(), p.b.state()), (State::Open, State::Open));
        assert_eq!((p.a.poll_timeout(), p.b.poll_timeout()), (None, None), "seed {seed}");
    }
}

/// Random messages: kind and payload (valid UTF-8 for text).
fn messages(seed: u64, count: usize, max_len: usize) -> Vec<(MessageKind, Vec<u8>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let len = rng.next_u32() as usize % (max_len + 1);
            if rng.next_u32() % 2 == 0 {
                // Up to `len` bytes of mixed 1- to 4-byte characters.
                let mut text = String::new();
                for c in ['a', 'é', '€', '𝄞'].into_iter().cycle().skip(len % 4) {
                    if text.len() + c.len_utf8() > len {
                        break;
                    }
                    text.push(c);
                }
                (MessageKind::Text, text.into_bytes())
            } else {
                let mut data = vec![0u8; len];
                rng.fill_bytes(&mut data);
                (MessageKind::Binary, data)
            }
        })
        .collect()
}

/// Sends what fits from `queue[*next..]`.
fn send_some(
    c: &mut Connection<VecStorage, impl multipeer::ws::MaskKeys>,
    queue: &[(MessageKind, Vec<u8>)],
    next: &mut usize,
) {
    while let Some((kind, data)) = queue.get(*next) {
        if c.send(*kind, data).is_err() {
            return;
        }
        *next += 1;
    }
}

fn receive_all(
    c: &mut Connection<VecStorage, impl multipeer::ws::MaskKeys>,
    into: &mut Vec<(MessageKind, Vec<u8>)>,
) {
    while let Some(m) = c.peek_message() {
        into.push((m.kind, m.data.to_vec()));
        assert!(c.pop_message());
    }
}

#[test]
fn messages_both_ways_over_many_seeds_and_chunkings() {
    let (mut short_reads, mut full_windows) = (0, 0);
    for seed in 0..120 {
        let link = LinkConfig::random(seed);
        // Small queues on some seeds, so a slow reader stalls its sender through the window.
        let config = Config {
            max_queued_messages: [1, 3, 4096][seed as usize % 3],
            outbound_buffer_size: [4096, 65535][seed as usize % 2],
            ..Config::GODOT
        };
        let mut p = pair(seed, link, config);
        open(&mut p);
        let to_server = messages(seed * 2, 40, 3000);
        let to_client = messages(seed * 2 + 1, 40, 3000);
        let (mut next_a, mut next_b) = (0, 0);
        let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
        let mut rounds = 0;
        while got_b.len() < to_server.len() || got_a.len() < to_client.len() {
            rounds += 1;
            assert!(
                rounds < 10_000,
                "seed {seed}: stuck after {} and {} messages: {link:?} {:?} {:?}",
                got_b.len(),
                got_a.len(),
                p.a,
                p.b
            );
            send_some(&mut p.a, &to_server, &mut next_a);
            send_some(&mut p.b, &to_client, &mut next_b);
            // The application reads at its own pace: every 5 ms of virtual time.
            let until = p.now() + Duration::from_millis(5);
            p.drive_until(until);
            receive_all(&mut p.b, &mut got_b);
            receive_all(&mut p.a, &mut got_a);
        }
        assert_eq!(got_b, to_server, "seed {seed}: client → server");
        assert_eq!(got_a, to_client, "seed {seed}: server → client");
        assert_eq!((drain(&mut p.a), drain(&mut p.b)), (vec![], vec![]), "seed {seed}");
        short_reads += p.sim.short_reads();
        full_windows += p.sim.full_windows();
    }
    // The runs did meet back-pressure, at the receiver and back at the sender.
    assert!(short_reads > 100 && full_windows > 10, "{short_reads} short reads, {full_windows} full windows");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed: u64| {
        let mut p = pair(seed, LinkConfig::random(seed), Config::GODOT);
        open(&mut p);
        let queue = messages(seed, 30, 5000);
        let mut next = 0;
        let mut got = Vec::new();
        let mut trace = Vec::new();
        while got.len() < queue.len() {
            send_some(&mut p.a, &queue, &mut next);
            let until = p.now() + Duration::from_millis(3);
            p.drive_until(until);
            receive_all(&mut p.b, &mut got);
            trace.push((p.now(), p.sim.delivered(), got.len()));
        }
        trace
    };
    for seed in [3, 17, 99] {
        assert_eq!(run(seed), run(seed), "seed {seed}");
    }
    assert_ne!(run(3), run(4), "different seeds take different paths");
}

#[test]
fn ping_pong_round_trip() {
    for seed in 0..20 {
        let link = LinkConfig::random(seed);
        let mut p = pair(seed, link, Config::GODOT);
        open(&mut p);
        let sent_at = p.now();
        p.a.ping(b"rtt").unwrap();
        p.b.ping(b"").unwrap();
        p.drive();
        let pong = |payload: &[u8]| Event::Pong(multipeer::ws::ControlPayload::new(payload).unwrap());
        assert_eq!(drain(&mut p.a), [pong(b"rtt")], "seed {seed}");
        assert_eq!(drain(&mut p.b), [pong(b"")], "seed {seed}");
        assert!(p.now() >= sent_at + link.latency * 2, "seed {seed}");
    }
}

#[test]
fn close_from_each_side() {
    for seed in 0..40 {
        let link = LinkConfig::random(seed);
        for client_closes in [true, false] {
            let mut p = pair(seed, link, Config::GODOT);
            open(&mut p);
            let start = p.now();
            if client_closes {
                p.a.close(start, CloseCode::GOING_AWAY, "bye").unwrap();
            } else {
                p.b.close(start, CloseCode(4000), "kick").unwrap();
            }
            assert_eq!(p.drive(), Outcome::Idle, "seed {seed}: nothing left once both released");
            let (ea, eb) = (drain(&mut p.a), drain(&mut p.b));
            let (ia, ib) = (closed(&ea), closed(&eb));
            let (local, remote) = if client_closes { (ia, ib) } else { (ib, ia) };
            assert_eq!((local.initiator, remote.initiator), (Initiator::Local, Initiator::Remote));
            assert_eq!(local.code, remote.code, "seed {seed}");
            assert!(ia.clean && ib.clean && ia.error.is_none() && ib.error.is_none(), "seed {seed}");
            assert!(p.is_released(0) && p.is_released(1), "seed {seed}");
            // The client learns of the end from the server's TCP close, not its own timer.
            assert!(p.now() < start + Config::GODOT.close_timeout, "seed {seed}: {:?}", p.now());
        }
    }
}

#[test]
fn handshake_timeout_when_the_server_never_decides() {
    // The client waits longer than the server, so it reads the server's 408.
    let patient = Config { handshake_timeout: Duration::from_secs(5), ..Config::GODOT };
    let mut p =
        Pair::new(1, client(1, patient), Connection::server(Instant::ZERO, Config::GODOT), LinkConfig::LAN);
    p.drive_until(Instant::from_secs(10));
    assert_eq!(drain(&mut p.b), [Event::Request, Event::HandshakeFailed(HandshakeError::Timeout)]);
    assert_eq!(drain(&mut p.a), [Event::HandshakeFailed(HandshakeError::UnexpectedStatus(408))]);
    assert!(p.is_released(0) && p.is_released(1));
}

#[test]
fn handshake_timeout_when_nothing_arrives() {
    let link = LinkConfig { partition_at: Some(Instant::ZERO), ..LinkConfig::LAN };
    let mut p = pair(2, link, Config::GODOT);
    assert_eq!(p.drive_until(Instant::from_secs(10)), Outcome::Idle);
    assert_eq!(drain(&mut p.a), [Event::HandshakeFailed(HandshakeError::Timeout)]);
    assert_eq!(drain(&mut p.b), [Event::HandshakeFailed(HandshakeError::Timeout)]);
    assert_eq!(p.a.handshake_error(), Some(HandshakeError::Timeout));
}

/// Runs `p` to exactly `t`, so later steps land on round times.
fn run_to(p: &mut Pair<Client, Server>, t: Instant) {
    let left = t - p.now();
    p.run_for(left);
    assert_eq!(p.now(), t);
}

/// Runs `p` to `until` in steps of `step`, returning when each side saw its first `Closed`.
fn run_until_closed(
    p: &mut Pair<Client, Server>,
    until: Instant,
    step: Duration,
) -> [Option<(Instant, CloseInfo)>; 2] {
    let mut seen: [Option<(Instant, CloseInfo)>; 2] = [None, None];
    while p.now() < until {
        p.run_for(step);
        let now = p.now();
        for (i, evs) in [drain(&mut p.a), drain(&mut p.b)].into_iter().enumerate() {
            for e in evs {
                if let Event::Closed(info) = e {
                    assert!(seen[i].is_none(), "two Closed events");
                    seen[i] = Some((now, info));
                }
            }
        }
    }
    seen
}

#[test]
fn close_timeout_when_the_peer_never_answers() {
    let link = LinkConfig { partition_at: Some(Instant::from_secs(1)), ..LinkConfig::LAN };
    let mut p = pair(3, link, Config::GODOT);
    open(&mut p);
    run_to(&mut p, Instant::from_secs(2));
    p.a.close(p.now(), CloseCode::NORMAL, "").unwrap();
    let [a, b] = run_until_closed(&mut p, Instant::from_secs(20), Duration::from_millis(100));
    let (at, info) = a.unwrap();
    assert_eq!(
        (info.initiator, info.error, info.clean),
        (Initiator::Local, Some(Error::CloseTimeout), false)
    );
    assert_eq!(at, Instant::from_secs(5), "3 s after the close");
    assert!(p.is_released(0));
    assert!(b.is_none() && p.b.state() == State::Open, "the server never heard of it");
}

#[test]
fn keepalive_keeps_a_live_peer_and_detects_a_dead_one() {
    let config = Config { heartbeat_interval: Some(Duration::from_secs(1)), ..Config::GODOT };
    for seed in 0..10 {
        let live = LinkConfig::random(seed);
        let mut p = pair(seed, live, config);
        open(&mut p);
        let [a, b] = run_until_closed(&mut p, Instant::from_secs(30), Duration::from_millis(250));
        assert!(a.is_none() && b.is_none(), "seed {seed}: a live peer stays");

        let dead = LinkConfig { partition_at: Some(Instant::from_millis(5500)), ..live };
        let mut p = pair(seed, dead, config);
        open(&mut p);
        let [a, b] = run_until_closed(&mut p, Instant::from_secs(30), Duration::from_millis(10));
        for (end, seen) in [a, b].into_iter().enumerate() {
            let (at, info) = seen.unwrap();
            assert_eq!(
                (info.code, info.initiator, info.error),
                (CloseCode::ABNORMAL, Initiator::Library, Some(Error::KeepaliveTimeout)),
                "seed {seed} end {end}"
            );
            // The first ping lost is sent within a second of the partition; the next tick
            // finds it unanswered.
            assert!(
                at > Instant::from_millis(6500) && at <= Instant::from_millis(8000),
                "seed {seed}: {at:?}"
            );
        }
    }
}

#[test]
fn abrupt_disconnect_is_a_reset() {
    for seed in 0..10 {
        let link = LinkConfig { cut_at: Some(Instant::from_secs(2)), ..LinkConfig::random(seed) };
        let mut p = pair(seed, link, Config::GODOT);
        open(&mut p);
        run_to(&mut p, Instant::from_secs(1));
        p.a.send_text("in flight when the cable goes").unwrap();
        let [a, b] = run_until_closed(&mut p, Instant::from_secs(10), Duration::from_millis(100));
        for (end, seen) in [a, b].into_iter().enumerate() {
            let (at, info) = seen.unwrap();
            assert_eq!(
                (info.code, info.initiator, info.error, info.clean),
                (CloseCode::ABNORMAL, Initiator::Remote, Some(Error::ConnectionReset), false),
                "seed {seed} end {end}"
            );
            assert_eq!(at, Instant::from_secs(2), "seed {seed}");
        }
        assert!(p.is_released(0) && p.is_released(1));
    }
}

/// Drives clients `0..n` and server connections `n..2n` together.
fn drive(sim: &mut Sim, clients: &mut [Client], servers: &mut [Server], until: Instant) -> Outcome {
    let mut parties: Vec<&mut dyn Endpoint> = Vec::new();
    parties.extend(clients.iter_mut().map(|c| c as &mut dyn Endpoint));
    parties.extend(servers.iter_mut().map(|s| s as &mut dyn Endpoint));
    sim.drive(&mut parties[..], until)
}

#[test]
fn many_connections_share_one_clock() {
    // Three clients (0..3) and three server connections (3..6); link 1 is cut at 1 s.
    let n = 3;
    let mut clients: Vec<Client> = (0..n).map(|i| client(i as u64, Config::GODOT)).collect();
    let mut servers: Vec<Server> = (0..n).map(|_| Connection::server(Instant::ZERO, Config::GODOT)).collect();
    let mut sim = Sim::new(42);
    for i in 0..n {
        let cut_at = (i == 1).then(|| Instant::from_secs(1));
        sim.connect(i, n + i, LinkConfig { cut_at, ..LinkConfig::random(i as u64) });
    }
    drive(&mut sim, &mut clients, &mut servers, Instant::from_millis(500));
    for s in &mut servers {
        assert_eq!(drain(s), [Event::Request]);
        s.accept(Instant::from_millis(500), None, &[]).unwrap();
    }
    drive(&mut sim, &mut clients, &mut servers, Instant::from_millis(900));
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(drain(c), [Event::Open], "client {i}");
        c.send_text(&format!("hello from {i}")).unwrap();
    }
    drive(&mut sim, &mut clients, &mut servers, Instant::from_secs(5));
    for (i, s) in servers.iter_mut().enumerate() {
        let evs = drain(s);
        let msg = s.peek_message().map(|m| m.data.to_vec());
        if i == 1 {
            assert_eq!(closed(&evs).error, Some(Error::ConnectionReset));
        } else {
            assert_eq!((evs, msg), (vec![Event::Open], Some(format!("hello from {i}").into_bytes())));
        }
    }
}
