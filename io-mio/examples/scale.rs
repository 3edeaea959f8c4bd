//! Loopback scale test: N concurrent idle connections to a multipeer-mio server running in its
//! own process, the server's resident memory per idle connection, then one broadcast to all.
//!
//! ```text
//! cargo run --release -p multipeer-mio --example scale -- [--connections 10000] [--tls] [--limit-secs 180]
//! ```
//!
//! The server child listens on four loopback addresses (127.0.0.1 to 127.0.0.4) so that the
//! clients' ephemeral ports are spread over four destinations. Memory is the child's `VmRSS`
//! from `/proc/<pid>/status`: before any connection, at half and at all connections. Every step
//! is bounded by the time limit; on expiry the child is killed (by its pid) and the run fails.

use core::time::Duration;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::peer::{Event, MultiplayerPeer as _, ServerConfig, Target};
use multipeer_mio::{Client, ClientOptions, ListenAddr, ReadBuffer, Server, Stop, TlsOptions};

/// Connections being opened at once.
const IN_FLIGHT: usize = 256;
/// The broadcast payload (first byte 0: not a SceneMultiplayer SYS packet).
const MESSAGE: &[u8] = b"\0multipeer scale broadcast......";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("server") => server(&args[1..]),
        _ => parent(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scale: {e}");
            ExitCode::FAILURE
        }
    }
}

fn flag<T: core::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or(format!("{name} needs a number")),
        None => Ok(default),
    }
}

/// The server child: listens, prints its addresses, obeys `broadcast` and `quit` on stdin.
fn server(args: &[String]) -> Result<(), String> {
    let max_peers: usize = flag(args, "--max-peers", 10_000)?;
    let tls = args.iter().any(|a| a == "--tls");
    // Godot 4 without relay: with relay on, each join is announced to every peer (n² messages).
    let config = ServerConfig { relay: false, max_peers, ..ServerConfig::default() };
    let addrs: Vec<ListenAddr> = (1..=4)
        .map(|i| ListenAddr::One(format!("127.0.0.{i}:0").parse().unwrap_or(([127, 0, 0, 1], 0).into())))
        .collect();
    let mut server = if tls {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).map_err(|e| e.to_string())?;
        let options =
            TlsOptions::server(cert.cert.pem().as_bytes(), cert.signing_key.serialize_pem().as_bytes())
                .map_err(|e| e.to_string())?;
        Server::bind_tls(&addrs, config, options)
    } else {
        Server::bind(&addrs, config)
    }
    .map_err(|e| e.to_string())?;
    let listening: Vec<String> = server.local_addrs().iter().map(ToString::to_string).collect();
    println!("listening {}", listening.join(" "));
    let _ = std::io::stdout().flush();

    let (tx, commands) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
        let _ = tx.send("quit".into());
    });
    let stop = Stop::new();
    server
        .run(&stop, None, |server| {
            while let Ok(command) = commands.try_recv() {
                match command.as_str() {
                    "broadcast" => {
                        let peer = server.peer_mut();
                        peer.set_target_peer(Target::Broadcast);
                        let sent = peer.put_packet(MESSAGE);
                        println!("broadcast {sent:?} to {}", peer.peers().count());
                        let _ = std::io::stdout().flush();
                    }
                    _ => stop.raise(),
                }
            }
            let peer = server.peer_mut();
            while peer.poll_event().is_some() {}
            while peer.pop_packet() {}
            Some(Duration::from_millis(20))
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

struct ServerChild {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl ServerChild {
    fn line(&self, deadline: Instant) -> Result<String, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.lines.recv_timeout(left).map_err(|_| "the server child went quiet".to_string())
    }

    fn rss_kib(&self) -> Result<u64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| e.to_string())?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| "no VmRSS".into())
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The soft limit on open files (from /proc, no unsafe).
fn open_file_limits() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut numbers = line.split_whitespace().filter_map(|w| w.parse().ok());
    Some((numbers.next()?, numbers.next()?))
}

fn parent(args: &[String]) -> Result<(), String> {
    let n: usize = flag(args, "--connections", 10_000)?;
    let limit = Duration::from_secs(flag(args, "--limit-secs", 180)?);
    let tls = args.iter().any(|a| a == "--tls");
    let deadline = Instant::now() + limit;
    let needed = n as u64 + 64;
    if let Some((soft, hard)) = open_file_limits() {
        if soft < needed {
            if hard < needed || std::env::var_os("SCALE_RAISED").is_some() {
                return Err(format!("open file limit {soft} (hard {hard}) is below {needed}"));
            }
            // Raise the soft limit up to the hard one the portable way, then start again.
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let status = Command::new("sh")
                .arg("-c")
                .arg("ulimit -n \"$(ulimit -Hn)\" && exec \"$0\" \"$@\"")
                .arg(exe)
                .args(args)
                .env("SCALE_RAISED", "1")
                .status()
                .map_err(|e| e.to_string())?;
            return if status.success() { Ok(()) } else { Err("the raised run failed".into()) };
        }
    }

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.args(["server", "--max-peers", &(n + 16).to_string()]);
    if tls {
        command.arg("--tls");
    }
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
    let (stdin, stdout) = (child.stdin.take().ok_or("no stdin")?, child.stdout.take().ok_or("no stdout")?);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut child = ServerChild { child, stdin, lines };
    let listening = child.line(deadline)?;
    let ports: Vec<String> = listening.split_whitespace().skip(1).map(String::from).collect();
    if ports.is_empty() {
        return Err(format!("unexpected first line {listening:?}"));
    }
    std::thread::sleep(Duration::from_millis(200));
    let rss_empty = child.rss_kib()?;
    println!(
        "server pid {} listening on {}; VmRSS with no connection: {rss_empty} KiB",
        child.child.id(),
        ports.join(" ")
    );

    let mut options = ClientOptions::default();
    options.config.ws.handshake_timeout = Duration::from_secs(30);
    options.config.relay = false;
    if tls {
        options = options.with_tls(TlsOptions::client_unsafe());
    }
    let scheme = if tls { "wss" } else { "ws" };
    let mut net = Clients::new()?;
    let started = Instant::now();
    let mut rss_half = None;
    while net.joined < n {
        if Instant::now() > deadline {
            return Err(format!("time limit: {} of {n} joined", net.joined));
        }
        while net.clients.len() < n && net.clients.len() - net.joined - net.failed < IN_FLIGHT {
            let url = format!("{scheme}://{}/", ports[net.clients.len() % ports.len()]);
            net.connect(&url, &options)?;
        }
        net.turn(Duration::from_millis(10))?;
        if net.failed > 0 {
            return Err(format!("{} connections failed (first: {:?})", net.failed, net.first_failure));
        }
        if rss_half.is_none() && net.joined >= n / 2 {
            std::thread::sleep(Duration::from_millis(200));
            rss_half = Some((net.joined, child.rss_kib()?));
        }
    }
    let join_time = started.elapsed();
    // Idle: nothing moves for a second, then measure.
    let settle = Instant::now() + Duration::from_secs(1);
    while Instant::now() < settle {
        net.turn(Duration::from_millis(50))?;
    }
    let rss_full = child.rss_kib()?;
    let (half_n, half_rss) = rss_half.unwrap_or((0, rss_empty));
    let per_conn = (rss_full.saturating_sub(rss_empty) * 1024) as f64 / n as f64;
    let marginal = (rss_full.saturating_sub(half_rss) * 1024) as f64 / (n - half_n).max(1) as f64;
    println!("{n} connections joined in {:.2} s ({scheme})", join_time.as_secs_f64());
    println!(
        "server VmRSS: {rss_empty} KiB empty, {half_rss} KiB at {half_n}, {rss_full} KiB at {n}: \
         {per_conn:.0} bytes per idle connection overall, {marginal:.0} bytes marginal (second half)"
    );

    writeln!(child.stdin, "broadcast").map_err(|e| e.to_string())?;
    let sent_at = Instant::now();
    let reply = child.line(deadline)?;
    while net.delivered < n {
        if Instant::now() > deadline {
            return Err(format!("time limit: broadcast reached {} of {n}", net.delivered));
        }
        net.turn(Duration::from_millis(10))?;
    }
    println!(
        "{reply}: delivered to {}/{n} clients in {:.1} ms",
        net.delivered,
        sent_at.elapsed().as_secs_f64() * 1e3
    );

    writeln!(child.stdin, "quit").map_err(|e| e.to_string())?;
    while net.going_away < n && Instant::now() < deadline {
        net.turn(Duration::from_millis(10))?;
    }
    let status = loop {
        if let Some(status) = child.child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            return Err("the server child did not exit".into());
        }
        net.turn(Duration::from_millis(10))?;
    };
    println!("server closed: {}/{n} clients saw 1001, child exit {status}", net.going_away);
    if net.going_away < n || !status.success() {
        return Err("shutdown incomplete".into());
    }
    Ok(())
}

/// Many clients on one poll; only clients with activity are visited each turn.
struct Clients {
    poll: Poll,
    events: Events,
    clients: Vec<Client>,
    buf: ReadBuffer,
    dirty: Vec<usize>,
    last_sweep: Instant,
    joined: usize,
    failed: usize,
    delivered: usize,
    going_away: usize,
    first_failure: Option<String>,
}

impl Clients {
    fn new() -> Result<Self, String> {
        Ok(Self {
            poll: Poll::new().map_err(|e| e.to_string())?,
            events: Events::with_capacity(4096),
            clients: Vec::new(),
            buf: ReadBuffer::new(),
            dirty: Vec::new(),
            last_sweep: Instant::now(),
            joined: 0,
            failed: 0,
            delivered: 0,
            going_away: 0,
            first_failure: None,
        })
    }

    fn connect(&mut self, url: &str, options: &ClientOptions) -> Result<(), String> {
        let token = Token(self.clients.len());
        let client = Client::connect(self.poll.registry(), token, url, options).map_err(|e| e.to_string())?;
        self.clients.push(client);
        Ok(())
    }

    fn turn(&mut self, max: Duration) -> Result<(), String> {
        self.poll.poll(&mut self.events, Some(max)).map_err(|e| e.to_string())?;
        let registry = self.poll.registry();
        self.dirty.clear();
        for event in self.events.iter() {
            let i = event.token().0;
            self.clients[i].handle_event(registry, event, &mut self.buf);
            self.dirty.push(i);
        }
        // Timers (handshake, close) are coarse here: every client every 100 ms.
        if self.last_sweep.elapsed() > Duration::from_millis(100) {
            self.last_sweep = Instant::now();
            self.dirty.clear();
            self.dirty.extend(0..self.clients.len());
        }
        for &i in &self.dirty {
            let client = &mut self.clients[i];
            client.handle_timeout(registry, &mut self.buf);
            while let Some(event) = client.peer_mut().poll_event() {
                match event {
                    Event::ConnectionSucceeded => self.joined += 1,
                    Event::ConnectionFailed(why) => {
                        self.failed += 1;
                        let transport = client.error().map(ToString::to_string);
                        self.first_failure.get_or_insert(format!("{why:?} {transport:?}"));
                    }
                    Event::ServerDisconnected(info) if info.code.0 == 1001 => self.going_away += 1,
                    _ => {}
                }
            }
            let peer = client.peer_mut();
            while let Some(packet) = peer.peek_packet() {
                self.delivered += usize::from(packet.data == MESSAGE);
                peer.pop_packet();
            }
            client.flush(registry, &mut self.buf);
        }
        Ok(())
    }
}
