//! Loopback load generator (issue 7), one thread on mio, bounded in time and count.
//!
//! It does what uWS `load_test.c` does so that it is not the bottleneck: every frame is encoded
//! and masked once and the same bytes are written again; replies are parsed only as far as
//! counting them needs (headers, and payloads of small frames), large payloads are skipped
//! without copying. Whether it is fast enough is checked by the runner: it must drive the raw
//! TCP echo server faster than any WebSocket server.
//!
//! ```text
//! loadgen echo  ADDR CONNS SIZE INFLIGHT SECS PROTO [SERVER_PID]   PROTO: ws | godot | raw
//! loadgen relay ADDR CONNS SIZE RATE SECS PROTO [SERVER_PID]       PROTO: bun | godot
//! loadgen storm ADDR CONNS CONCURRENCY HOLD_SECS PROTO [SERVER_PID] PROTO: ws | godot
//! ```
//! `godot` servers send each client its 4-byte peer id first; relay clients speak Godot 4's
//! SceneMultiplayer relay (`07 03 <i32 target> payload`). Results are one JSON line on stdout.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use multipeer_bench::wire;

/// Payloads up to this size are kept whole by the parser (relay payloads need their
/// timestamp); larger ones are skipped.
const SMALL: usize = 256;
const WARMUP: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Ws,
    Godot,
    Raw,
    Bun,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Handshake,
    Open,
    Dead,
}

/// Called per complete frame: opcode, payload length, the payload when small.
type OnFrame<'a> = dyn FnMut(u8, usize, Option<&[u8]>) + 'a;

/// Streaming frame parser: small frames whole, large ones header plus skipped payload.
#[derive(Default)]
struct Parser {
    pend: Vec<u8>,
    skip: usize,
    skip_len: usize,
}

impl Parser {
    /// Feeds bytes; calls `frame(opcode, payload_len, payload_if_small)` per complete frame.
    fn feed(&mut self, mut data: &[u8], frame: &mut OnFrame<'_>) {
        loop {
            if self.skip > 0 {
                let take = self.skip.min(data.len());
                self.skip -= take;
                data = &data[take..];
                if self.skip == 0 {
                    frame(2, self.skip_len, None);
                }
            }
            if data.is_empty() {
                return;
            }
            if !self.pend.is_empty() {
                let old = self.pend.len();
                let take = (14 + SMALL - old).min(data.len());
                self.pend.extend_from_slice(&data[..take]);
                let pend = std::mem::take(&mut self.pend);
                match self.one(&pend, frame) {
                    Some(used) => {
                        data = &data[used - old..];
                        self.pend = pend;
                        self.pend.clear();
                    }
                    None => {
                        self.pend = pend;
                        return;
                    }
                }
                continue;
            }
            match self.one(data, frame) {
                Some(used) => data = &data[used..],
                None => {
                    self.pend.extend_from_slice(data);
                    return;
                }
            }
        }
    }

    /// Parses one frame at the start of `buf`; returns the bytes it used, `None` if incomplete.
    fn one(&mut self, buf: &[u8], frame: &mut OnFrame<'_>) -> Option<usize> {
        let (op, _fin, _mask, len, hl) = wire::parse_header(buf)?;
        if len <= SMALL {
            let p = buf.get(hl..hl + len)?;
            frame(op, len, Some(p));
            Some(hl + len)
        } else {
            self.skip = len;
            self.skip_len = len;
            Some(hl)
        }
    }
}

struct Client {
    stream: TcpStream,
    phase: Phase,
    head: Vec<u8>,
    parser: Parser,
    /// Bytes accepted by neither the socket nor sent yet (partial writes).
    out: Vec<u8>,
    /// Raw mode: bytes of the current reply received so far.
    raw_got: usize,
    /// Relay: when the next message is due.
    next_send: Instant,
    /// Echo: the first window of messages has been sent.
    primed: bool,
}

struct Stats {
    replies: u64,
}

fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the command name.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Busy ticks of the whole machine (user, nice, system, irq, softirq of every CPU), from
/// `/proc/stat`. The kernel counts loopback receive work as softirq, against no process, so
/// per-process CPU leaves part of a delivery out; this counts it.
fn machine_busy_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq
    Some(f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)?)
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn self_cpu() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

fn connect(addr: SocketAddr, source: Option<std::net::IpAddr>) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.set_nonblocking(true)?;
    sock.set_tcp_nodelay(true)?;
    if let Some(ip) = source {
        sock.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(sock.into()))
}

struct Run {
    addr: SocketAddr,
    proto: Proto,
    poll: Poll,
    clients: Vec<Client>,
    buf: Vec<u8>,
    request: Vec<u8>,
    start: Instant,
}

impl Run {
    fn new(addr: SocketAddr, proto: Proto) -> Self {
        Self {
            addr,
            proto,
            poll: Poll::new().expect("poll"),
            clients: Vec::new(),
            buf: vec![0; 256 * 1024],
            request: wire::upgrade_request(&addr.to_string(), "/"),
            start: Instant::now(),
        }
    }

    fn open_one(&mut self, sources: usize) {
        let i = self.clients.len();
        let source = (sources > 1).then(|| std::net::IpAddr::from([127, 0, 0, 2 + (i % sources) as u8]));
        let mut stream = connect(self.addr, source).expect("connect");
        self.poll
            .registry()
            .register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)
            .expect("register");
        let phase = if self.proto == Proto::Raw { Phase::Open } else { Phase::Connecting };
        self.clients.push(Client {
            stream,
            phase,
            head: Vec::new(),
            parser: Parser::default(),
            out: Vec::new(),
            raw_got: 0,
            next_send: Instant::now(),
            primed: false,
        });
    }

    /// Replaces the dead client `i` with a new connection under the same token.
    fn reopen(&mut self, i: usize) {
        let _ = self.poll.registry().deregister(&mut self.clients[i].stream);
        let mut stream = connect(self.addr, None).expect("connect");
        self.poll
            .registry()
            .register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)
            .expect("register");
        let c = &mut self.clients[i];
        c.stream = stream;
        c.phase = Phase::Connecting;
        c.head.clear();
        c.parser = Parser::default();
        c.out.clear();
    }

    /// Advances the handshake of client `i`; true once it just opened.
    fn handshake(&mut self, i: usize) -> bool {
        let c = &mut self.clients[i];
        if c.phase == Phase::Connecting {
            match c.stream.peer_addr() {
                Ok(_) => {
                    if c.stream.write(&self.request).map(|n| n == self.request.len()).unwrap_or(false) {
                        c.phase = Phase::Handshake;
                    } else {
                        c.phase = Phase::Dead;
                        return false;
                    }
                }
                Err(e) if e.kind() == ErrorKind::NotConnected => return false,
                Err(_) => {
                    c.phase = Phase::Dead;
                    return false;
                }
            }
        }
        if c.phase != Phase::Handshake {
            return false;
        }
        loop {
            match c.stream.read(&mut self.buf) {
                Ok(0) => {
                    c.phase = Phase::Dead;
                    return false;
                }
                Ok(n) => {
                    c.head.extend_from_slice(&self.buf[..n]);
                    if let Some(end) = wire::head_end(&c.head) {
                        if !c.head.starts_with(b"HTTP/1.1 101") {
                            c.phase = Phase::Dead;
                            return false;
                        }
                        let rest = c.head.split_off(end);
                        c.head = Vec::new();
                        c.phase = Phase::Open;
                        // Frames that came with the response (the Godot id) go to the parser.
                        c.parser.feed(&rest, &mut |_, _, _| {});
                        return true;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(_) => {
                    c.phase = Phase::Dead;
                    return false;
                }
            }
        }
    }
}

/// Writes `bytes` (after anything still pending) without blocking; keeps the rest.
fn send(c: &mut Client, bytes: &[u8]) {
    if !c.out.is_empty() {
        c.out.extend_from_slice(bytes);
        flush(c);
        return;
    }
    match c.stream.write(bytes) {
        Ok(n) if n == bytes.len() => {}
        Ok(n) => c.out.extend_from_slice(&bytes[n..]),
        Err(e) if e.kind() == ErrorKind::WouldBlock => c.out.extend_from_slice(bytes),
        Err(_) => c.phase = Phase::Dead,
    }
}

fn flush(c: &mut Client) {
    while !c.out.is_empty() {
        match c.stream.write(&c.out) {
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(_) => {
                c.phase = Phase::Dead;
                return;
            }
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i])
}

fn echo(
    addr: SocketAddr,
    conns: usize,
    size: usize,
    inflight: usize,
    secs: u64,
    proto: Proto,
    pid: Option<u32>,
) {
    let mut run = Run::new(addr, proto);
    let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let frame =
        if proto == Proto::Raw { payload.clone() } else { wire::client_frame(2, &payload, [1, 2, 3, 4]) };
    // Every burst is a prefix of this: one write however many replies a read completed.
    let batch: Vec<u8> = frame.repeat(inflight.max(1) * 4);
    for _ in 0..conns {
        run.open_one(1);
    }
    let mut events = Events::with_capacity(4096);
    let mut stats = Stats { replies: 0 };
    let mut open = 0usize;
    let mut measuring: Option<(Instant, Option<u64>, f64, u64)> = None;
    let begin = Instant::now();
    let deadline_open = begin + CONNECT_TIMEOUT;
    let mut end_at: Option<Instant> = None;
    let mut warm_from: Option<Instant> = None;
    let mut result = None;
    while result.is_none() {
        let now = Instant::now();
        if warm_from.is_none() && (open == conns || now > deadline_open) {
            warm_from = Some(now);
        }
        if let Some(w) = warm_from
            && measuring.is_none()
            && now >= w + WARMUP
        {
            measuring = Some((now, cpu_ticks(pid), self_cpu(), stats.replies));
            end_at = Some(now + Duration::from_secs(secs));
        }
        if let (Some(end), Some((t0, c0, s0, r0))) = (end_at, measuring)
            && now >= end
        {
            let dt = now.duration_since(t0).as_secs_f64();
            let msgs = stats.replies - r0;
            let server_cpu = match (c0, cpu_ticks(pid)) {
                (Some(a), Some(b)) => Some((b - a) as f64 / ticks_per_sec()),
                _ => None,
            };
            result = Some((dt, msgs, server_cpu, self_cpu() - s0));
            break;
        }
        run.poll.poll(&mut events, Some(Duration::from_millis(50))).expect("poll");
        for ev in &events {
            let i = ev.token().0;
            // After a handshake the read may have drained the socket: fall through to read more.
            if matches!(run.clients[i].phase, Phase::Connecting | Phase::Handshake) && !run.handshake(i) {
                continue;
            }
            let c = &mut run.clients[i];
            if c.phase != Phase::Open {
                continue;
            }
            if !c.primed {
                // Raw TCP has no handshake: its first writable event opens it.
                if proto == Proto::Raw && c.stream.peer_addr().is_err() {
                    continue;
                }
                c.primed = true;
                open += 1;
                send(c, &batch[..frame.len() * inflight]);
            }
            flush(c);
            let mut replies = 0usize;
            loop {
                match c.stream.read(&mut run.buf) {
                    Ok(0) => {
                        c.phase = Phase::Dead;
                        break;
                    }
                    Ok(n) => {
                        if proto == Proto::Raw {
                            c.raw_got += n;
                            replies += c.raw_got / size;
                            c.raw_got %= size;
                        } else {
                            c.parser.feed(&run.buf[..n], &mut |op, len, _| {
                                if op == 2 && len == size {
                                    replies += 1;
                                }
                            });
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        c.phase = Phase::Dead;
                        break;
                    }
                }
            }
            stats.replies += replies as u64;
            let mut left = replies;
            while left > 0 {
                let k = left.min(inflight.max(1) * 4);
                send(c, &batch[..frame.len() * k]);
                left -= k;
            }
        }
    }
    let (dt, msgs, server_cpu, client_cpu) = result.expect("measured");
    let rate = msgs as f64 / dt;
    let dead = run.clients.iter().filter(|c| c.phase != Phase::Open).count();
    println!(
        "{{\"mode\":\"echo\",\"conns\":{conns},\"open\":{open},\"dead\":{dead},\"size\":{size},\"inflight\":{inflight},\
\"secs\":{dt:.3},\"msgs\":{msgs},\"msgs_per_s\":{rate:.0},\"mib_per_s\":{:.1},\"server_cpu_s\":{},\
\"server_cpu_us_per_msg\":{},\"client_cpu_s\":{client_cpu:.3}}}",
        rate * size as f64 / 1048576.0,
        server_cpu.map_or("null".into(), |c| format!("{c:.3}")),
        server_cpu.map_or("null".into(), |c| format!("{:.4}", c * 1e6 / msgs.max(1) as f64)),
    );
}

/// The relay payload: magic, then the send time in µs since the run's start.
fn relay_payload(size: usize, t_us: u64) -> Vec<u8> {
    let mut p = vec![b'r'; size.max(12)];
    p[..4].copy_from_slice(b"MPB1");
    let n = p.len();
    p[n - 8..].copy_from_slice(&t_us.to_le_bytes());
    p
}

/// The relay's counters at one edge of the measured window: server CPU ticks, our own CPU
/// seconds, deliveries, messages sent, the machine's busy ticks.
type WindowEdge = (Option<u64>, f64, u64, u64, Option<u64>);

fn relay(addr: SocketAddr, conns: usize, size: usize, rate: f64, secs: u64, proto: Proto, pid: Option<u32>) {
    let mut run = Run::new(addr, proto);
    let mut events = Events::with_capacity(4096);
    let mut open = 0usize;
    let begin = Instant::now();
    // Connect everyone a few at a time (a slow server's backlog or handshake timeout must not
    // lose clients), retrying failed handshakes, then let join notifications settle.
    const AT_ONCE: usize = 10;
    let mut retries = 0usize;
    while open < conns && begin.elapsed() < CONNECT_TIMEOUT {
        let pending =
            run.clients.iter().filter(|c| matches!(c.phase, Phase::Connecting | Phase::Handshake)).count();
        for _ in pending..AT_ONCE {
            if let Some(i) = run.clients.iter().position(|c| c.phase == Phase::Dead) {
                retries += 1;
                run.reopen(i);
            } else if run.clients.len() < conns {
                run.open_one(1);
            }
        }
        run.poll.poll(&mut events, Some(Duration::from_millis(50))).expect("poll");
        for ev in &events {
            let i = ev.token().0;
            if run.handshake(i) {
                open += 1;
            }
        }
    }
    if retries > 0 {
        eprintln!("loadgen: {retries} handshakes retried");
    }
    let settle = Instant::now() + Duration::from_secs(1);
    let period = Duration::from_secs_f64(1.0 / rate);
    let prefix: &[u8] = if proto == Proto::Godot { &[7, 3, 0, 0, 0, 0] } else { &[] };
    let expect_len = prefix.len() + size.max(12);
    let mut deliveries = 0u64;
    let mut sent = 0u64;
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let send_from = settle;
    let measure_from = send_from + WARMUP;
    let measure_to = measure_from + Duration::from_secs(secs);
    let drain_to = measure_to + Duration::from_secs(1);
    for (i, c) in run.clients.iter_mut().enumerate() {
        // Spread the clients over one period so sends do not arrive in lockstep.
        c.next_send = send_from + period.mul_f64(i as f64 / conns as f64);
    }
    let mut snap: Option<WindowEdge> = None;
    let mut fin: Option<WindowEdge> = None;
    let mut frame_buf = Vec::new();
    loop {
        let now = Instant::now();
        if snap.is_none() && now >= measure_from {
            snap = Some((cpu_ticks(pid), self_cpu(), deliveries, sent, machine_busy_ticks()));
        }
        if fin.is_none() && now >= measure_to {
            fin = Some((cpu_ticks(pid), self_cpu(), deliveries, sent, machine_busy_ticks()));
        }
        if now >= drain_to {
            break;
        }
        if now >= send_from && now < measure_to {
            let t_us = now.duration_since(run.start).as_micros() as u64;
            for c in run.clients.iter_mut().filter(|c| c.phase == Phase::Open) {
                if c.next_send <= now {
                    let mut msg = prefix.to_vec();
                    msg.extend_from_slice(&relay_payload(size, t_us));
                    frame_buf.clear();
                    frame_buf.extend_from_slice(&wire::client_frame(2, &msg, [9, 8, 7, 6]));
                    send(c, &frame_buf);
                    sent += 1;
                    c.next_send += period;
                    if c.next_send < now {
                        c.next_send = now + period;
                    }
                }
            }
        }
        let next = run.clients.iter().map(|c| c.next_send).min().unwrap_or(now);
        let wait = next.saturating_duration_since(Instant::now()).min(Duration::from_millis(10));
        run.poll.poll(&mut events, Some(wait)).expect("poll");
        let in_window = snap.is_some() && fin.is_none();
        for ev in &events {
            let i = ev.token().0;
            let c = &mut run.clients[i];
            if c.phase != Phase::Open {
                continue;
            }
            flush(c);
            loop {
                match c.stream.read(&mut run.buf) {
                    Ok(0) => {
                        c.phase = Phase::Dead;
                        break;
                    }
                    Ok(n) => {
                        let recv_us = run.start.elapsed().as_micros() as u64;
                        c.parser.feed(&run.buf[..n], &mut |_, len, p| {
                            let Some(p) = p else { return };
                            if len != expect_len || !p[prefix.len()..].starts_with(b"MPB1") {
                                return;
                            }
                            deliveries += 1;
                            if in_window {
                                let sent_us = u64::from_le_bytes(p[len - 8..].try_into().expect("8 bytes"));
                                latencies
                                    .push(recv_us.saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32);
                            }
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        c.phase = Phase::Dead;
                        break;
                    }
                }
            }
        }
    }
    let (c0, s0, d0, n0, m0) = snap.expect("window start");
    let (c1, s1, d1, n1, m1) = fin.expect("window end");
    // Everything the machine did in the window but the load generator's own work: the server,
    // the kernel's receive work no process is charged for, and whatever else ran.
    let machine_cpu = match (m0, m1) {
        (Some(a), Some(b)) => Some(((b - a) as f64 / ticks_per_sec() - (s1 - s0)).max(0.0)),
        _ => None,
    };
    let dt = secs as f64;
    let delivered = d1 - d0;
    let server_cpu = match (c0, c1) {
        (Some(a), Some(b)) => Some((b - a) as f64 / ticks_per_sec()),
        _ => None,
    };
    latencies.sort_unstable();
    let expected = (n1 - n0) * (open.saturating_sub(1)) as u64;
    println!(
        "{{\"mode\":\"relay\",\"conns\":{conns},\"open\":{open},\"size\":{size},\"rate_per_client\":{rate},\
\"sent\":{},\"expected_deliveries\":{expected},\"deliveries\":{delivered},\"deliveries_per_s\":{:.0},\
\"delivered_fraction\":{:.4},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"server_cpu_s\":{},\"server_cpu_us_per_delivery\":{},\
\"machine_cpu_us_per_delivery\":{},\"client_cpu_s\":{:.3}}}",
        n1 - n0,
        delivered as f64 / dt,
        delivered as f64 / expected.max(1) as f64,
        percentile(&latencies, 0.5) / 1000.0,
        percentile(&latencies, 0.99) / 1000.0,
        server_cpu.map_or("null".into(), |c| format!("{c:.3}")),
        server_cpu.map_or("null".into(), |c| format!("{:.4}", c * 1e6 / delivered.max(1) as f64)),
        machine_cpu.map_or("null".into(), |c| format!("{:.4}", c * 1e6 / delivered.max(1) as f64)),
        s1 - s0,
    );
}

fn storm(addr: SocketAddr, conns: usize, concurrency: usize, hold: u64, proto: Proto, pid: Option<u32>) {
    let mut run = Run::new(addr, proto);
    // Beyond one source address's ephemeral ports, spread over 127.0.0.2.. (loopback).
    let sources = conns.div_ceil(20_000).max(1);
    let sources = if sources > 1 { sources } else { 0 };
    let rss0 = rss_kib(pid);
    let cpu0 = cpu_ticks(pid);
    let mut events = Events::with_capacity(4096);
    let begin = Instant::now();
    let mut open = 0usize;
    let mut started = 0usize;
    let mut dead = 0usize;
    while open + dead < conns && begin.elapsed() < Duration::from_secs(120) {
        while started < conns && started - open - dead < concurrency {
            run.open_one(sources);
            started += 1;
        }
        run.poll.poll(&mut events, Some(Duration::from_millis(50))).expect("poll");
        for ev in &events {
            let i = ev.token().0;
            let before = run.clients[i].phase;
            if before == Phase::Open {
                // The Godot id and anything else: read and drop.
                let c = &mut run.clients[i];
                c.parser.feed(&[], &mut |_, _, _| {});
                while let Ok(n) = c.stream.read(&mut run.buf) {
                    if n == 0 {
                        c.phase = Phase::Dead;
                        dead += 1;
                        break;
                    }
                }
                continue;
            }
            if run.handshake(i) {
                open += 1;
            } else if run.clients[i].phase == Phase::Dead && before != Phase::Dead {
                dead += 1;
            }
        }
    }
    let elapsed = begin.elapsed().as_secs_f64();
    let cpu1 = cpu_ticks(pid);
    // Idle: let the server settle (timers, freed handshake buffers), then weigh it.
    let settle_end = Instant::now() + Duration::from_secs(hold);
    while Instant::now() < settle_end {
        run.poll.poll(&mut events, Some(Duration::from_millis(100))).expect("poll");
        for ev in &events {
            let c = &mut run.clients[ev.token().0];
            while let Ok(n) = c.stream.read(&mut run.buf) {
                if n == 0 {
                    break;
                }
            }
        }
    }
    let rss1 = rss_kib(pid);
    let still_open = run.clients.iter().filter(|c| c.phase == Phase::Open).count();
    let hs_cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some((b - a) as f64 / ticks_per_sec()),
        _ => None,
    };
    let per_conn = match (rss0, rss1) {
        (Some(a), Some(b)) => Some((b as f64 - a as f64) * 1024.0 / still_open.max(1) as f64),
        _ => None,
    };
    println!(
        "{{\"mode\":\"storm\",\"conns\":{conns},\"open\":{open},\"dead\":{dead},\"held\":{still_open},\
\"secs\":{elapsed:.3},\"handshakes_per_s\":{:.0},\"server_cpu_s\":{},\"rss_before_kib\":{},\"rss_held_kib\":{},\
\"rss_bytes_per_conn\":{}}}",
        open as f64 / elapsed,
        hs_cpu.map_or("null".into(), |c| format!("{c:.3}")),
        rss0.map_or("null".into(), |v| v.to_string()),
        rss1.map_or("null".into(), |v| v.to_string()),
        per_conn.map_or("null".into(), |v| format!("{v:.0}")),
    );
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: loadgen echo|relay|storm ADDR ... (see the source header)";
    let arg = |i: usize| a.get(i).unwrap_or_else(|| panic!("{usage}"));
    let num = |i: usize| arg(i).parse::<f64>().unwrap_or_else(|_| panic!("{usage}"));
    let addr: SocketAddr = arg(2).parse().expect("ADDR must be IP:PORT");
    assert!(addr.ip().is_loopback(), "loopback only");
    let proto = |i: usize| match arg(i).as_str() {
        "ws" => Proto::Ws,
        "godot" => Proto::Godot,
        "raw" => Proto::Raw,
        "bun" => Proto::Bun,
        p => panic!("unknown protocol {p}"),
    };
    let pid = |i: usize| a.get(i).and_then(|p| p.parse::<u32>().ok());
    match arg(1).as_str() {
        "echo" => {
            echo(addr, num(3) as usize, num(4) as usize, num(5) as usize, num(6) as u64, proto(7), pid(8))
        }
        "relay" => relay(addr, num(3) as usize, num(4) as usize, num(5), num(6) as u64, proto(7), pid(8)),
        "storm" => storm(addr, num(3) as usize, num(4) as usize, num(5) as u64, proto(6), pid(7)),
        _ => panic!("{usage}"),
    }
}
