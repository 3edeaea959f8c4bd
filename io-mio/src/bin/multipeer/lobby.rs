//! `multipeer lobby`: a WebRTC signalling server (Godot's `webrtc_signaling` demo protocol).

use core::fmt::Write as _;
use core::time::Duration;
use std::ffi::OsString;
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::Instant;

use lexopt::ValueExt as _;
use multipeer_mio::{ListenAddr, Lobby, LobbyOptions, LobbyStats, Stop, TlsOptions};

use crate::args::UsageError;

pub(crate) const HELP: &str = concat!(
    "\
multipeer lobby — a WebRTC signalling server for Godot's WebRTCMultiplayerPeer mesh

Usage: multipeer lobby [OPTIONS]

Speaks the protocol of Godot's webrtc_signaling demo (networking/webrtc_signaling), so games
built on that demo, multipeer-std's connect_lobby and the tests' mesh_node use it unchanged.
Clients connect over WebSocket (ws://, or wss:// with --tls-cert/--tls-key), send
a JSON join {\"type\":0,\"id\":0,\"data\":\"<lobby>\"} (empty lobby to create one, whose
creator is the host, id 1; id 0 asks for a mesh, 1 for server/client) within --join-timeout, and
the server relays offers, answers and candidates between members of a lobby with the
sender's id put in. The host may seal its lobby, which is closed after --seal-timeout.
Binary messages, malformed ones and late joins are closed with code 4000, as the demo does.

Options:
  --listen ADDR                Where to listen, repeatable; default 127.0.0.1:9080.
                               ADDR is IP:PORT, [IPv6]:PORT, or *:PORT for every interface
  --tls-cert FILE              PEM certificate chain, leaf first
  --tls-key FILE               PEM private key; both make it wss://
  --max-peers N                Most open connections (default 4096); more are closed with
                               4000 \"Too many peers connected\"
  --max-lobbies N              Most lobbies at once (default 1024)
  --join-timeout SECS          Time a connection has to join a lobby (default 1)
  --seal-timeout SECS          Time from sealing a lobby to closing it (default 10)
  --inbound-buffer-size BYTES  Largest message accepted (65535)
  --handshake-timeout SECS     TCP accept to WebSocket open, TLS included (3)
  --heartbeat-interval SECS    Ping this often, drop peers that do not answer; 0 = off
  --slow-peer-timeout SECS     A message for a connection whose queue is full waits, and its
                               sender is not read meanwhile; a connection that writes nothing
                               for this long while messages wait is cut off (1008); 0 = never (10)

",
    crate::deflate::deflate_help!(),
    "
Output:
  --quiet                      No status line
  -h, --help                   This help

Each second a status line on stderr shows connections, lobbies, messages per second in and
out, connections the lobby closed (4000 errors, 1000 sealed), senders waiting for slow
receivers and slow connections cut off. Ctrl-C or SIGTERM closes every connection
with 1001 (going away) and exits once they are gone (a second Ctrl-C exits at once).

Exit status: 0 after a clean shutdown, 1 when the server cannot start, 2 for bad usage.
"
);

/// `multipeer lobby` settings.
#[derive(Debug)]
pub(crate) struct LobbyArgs {
    pub(crate) options: LobbyOptions,
    pub(crate) listen: Vec<ListenAddr>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    pub(crate) quiet: bool,
    pub(crate) help: bool,
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError::from(lexopt::Error::Custom(message.into().into()))
}

/// Parses the arguments after `lobby`.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<LobbyArgs, UsageError> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let mut out = LobbyArgs {
        options: LobbyOptions::default(),
        listen: Vec::new(),
        tls_cert: None,
        tls_key: None,
        quiet: false,
        help: false,
    };
    let (lobby, ws) = (&mut out.options.lobby, &mut out.options.ws);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => out.help = true,
            Long("listen") => {
                let text = parser.value()?.string()?;
                let addr = text.parse().map_err(|_| {
                    usage(format!("--listen {text:?}: expected IP:PORT, [IPv6]:PORT or *:PORT"))
                })?;
                out.listen.push(addr);
            }
            Long("tls-cert") => out.tls_cert = Some(parser.value()?.into()),
            Long("tls-key") => out.tls_key = Some(parser.value()?.into()),
            Long("max-peers") => lobby.max_peers = positive(&mut parser, "--max-peers")?,
            Long("max-lobbies") => lobby.max_lobbies = positive(&mut parser, "--max-lobbies")?,
            Long("join-timeout") => lobby.join_timeout = seconds(&mut parser, "--join-timeout")?,
            Long("seal-timeout") => lobby.seal_close_timeout = seconds(&mut parser, "--seal-timeout")?,
            Long("inbound-buffer-size") => {
                ws.max_message_size = positive(&mut parser, "--inbound-buffer-size")?;
            }
            Long("handshake-timeout") => {
                let secs = seconds(&mut parser, "--handshake-timeout")?;
                if secs.is_zero() {
                    return Err(usage("--handshake-timeout must be more than 0"));
                }
                ws.handshake_timeout = secs;
            }
            Long("heartbeat-interval") => {
                let secs = seconds(&mut parser, "--heartbeat-interval")?;
                ws.heartbeat_interval = (!secs.is_zero()).then_some(secs);
            }
            Long("slow-peer-timeout") => {
                let secs = seconds(&mut parser, "--slow-peer-timeout")?;
                out.options.slow_peer_timeout = (!secs.is_zero()).then_some(secs);
            }
            Long(flag) if crate::deflate::is_flag(flag) => {
                let flag = flag.to_owned();
                crate::deflate::apply(&flag, &mut parser, &mut ws.permessage_deflate)?;
            }
            Long("quiet") | Short('q') => out.quiet = true,
            _ => return Err(arg.unexpected().into()),
        }
    }
    if out.tls_cert.is_some() != out.tls_key.is_some() {
        return Err(usage("--tls-cert and --tls-key go together"));
    }
    if out.listen.is_empty() {
        out.listen.push(ListenAddr::One(([127, 0, 0, 1], 9080).into()));
    }
    Ok(out)
}

fn positive(parser: &mut lexopt::Parser, flag: &str) -> Result<usize, UsageError> {
    let text = parser.value()?.string()?;
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(usage(format!("{flag} {text:?}: expected a whole number above 0"))),
    }
}

fn seconds(parser: &mut lexopt::Parser, flag: &str) -> Result<Duration, UsageError> {
    let text = parser.value()?.string()?;
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| usage(format!("{flag} {text:?}: expected seconds, like 3 or 0.5")))
}

/// Runs the lobby server until Ctrl-C or SIGTERM (`stop`).
pub(crate) fn run(args: LobbyArgs, stop: &Stop) -> Result<(), String> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let read = |what: &str, path: &std::path::Path| {
                std::fs::read(path).map_err(|e| format!("cannot read the TLS {what} {}: {e}", path.display()))
            };
            let (cert_pem, key_pem) = (read("certificate", cert)?, read("private key", key)?);
            let tls = TlsOptions::server(&cert_pem, &key_pem)
                .map_err(|e| format!("TLS certificate {} / key {}: {e}", cert.display(), key.display()))?;
            Some(tls)
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let mut lobby = match tls {
        Some(tls) => Lobby::bind_tls(&args.listen, args.options.clone(), tls),
        None => Lobby::bind(&args.listen, args.options.clone()),
    }
    .map_err(|e| e.to_string())?;
    for addr in lobby.local_addrs() {
        eprintln!(
            "multipeer: listening on {scheme}://{addr} (WebRTC signalling, webrtc_signaling demo protocol)"
        );
    }
    let mut status = Status::new(args.quiet);
    lobby.run(stop, None, |lobby| status.tick(lobby)).map_err(|e| format!("event loop failed: {e}"))?;
    if !args.quiet {
        eprintln!();
        eprintln!("multipeer: {}", status.farewell(&lobby));
    }
    let left = lobby.connection_count();
    if left > 0 {
        eprintln!("multipeer: {left} connections did not finish closing");
    }
    Ok(())
}

const INTERVAL: Duration = Duration::from_secs(1);

/// The status line.
struct Status {
    quiet: bool,
    tty: bool,
    next_line: Instant,
    last: (LobbyStats, Instant),
    started: Instant,
}

impl Status {
    fn new(quiet: bool) -> Self {
        let now = Instant::now();
        Self {
            quiet,
            tty: std::io::stderr().is_terminal(),
            next_line: now + INTERVAL,
            last: (LobbyStats::default(), now),
            started: now,
        }
    }

    fn tick(&mut self, lobby: &mut Lobby) -> Option<Duration> {
        let now = Instant::now();
        if now >= self.next_line {
            self.next_line = now + INTERVAL;
            let line = self.line(lobby, now);
            if !self.quiet {
                let mut err = std::io::stderr().lock();
                // On a terminal the line is rewritten in place; in a log, one line per second.
                let _ = if self.tty { write!(err, "\r\x1b[2K{line}") } else { writeln!(err, "{line}") };
                let _ = err.flush();
            }
        }
        Some(self.next_line.saturating_duration_since(Instant::now()))
    }

    fn line(&mut self, lobby: &Lobby, now: Instant) -> String {
        let stats = lobby.stats();
        let (last, at) = core::mem::replace(&mut self.last, (stats, now));
        let secs = now.duration_since(at).as_secs_f64().max(1e-3);
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        let mut line = format!(
            "connections {} | lobbies {} | in {:.0} msg/s | out {:.0} msg/s",
            lobby.core().connections(),
            lobby.core().lobbies(),
            rate(stats.messages_in, last.messages_in),
            rate(stats.messages_out, last.messages_out),
        );
        let _ = write!(line, " | closed by lobby {}", stats.closed_by_lobby);
        if lobby.websocket().options().ws.permessage_deflate.is_some() {
            let ws = lobby.websocket();
            let _ = write!(
                line,
                " | compressing {} conns, buffers {} KiB",
                ws.compressing_connections(),
                ws.buffer_footprint() / 1024
            );
        }
        if stats.handshake_failures + stats.refused_at_capacity > 0 {
            let _ = write!(
                line,
                " | rejected {} (handshake {}, at capacity {})",
                stats.handshake_failures + stats.refused_at_capacity,
                stats.handshake_failures,
                stats.refused_at_capacity
            );
        }
        if stats.held_senders + stats.sender_waits > 0 {
            let _ = write!(line, " | waiting senders {} ({} waits)", stats.held_senders, stats.sender_waits);
        }
        if stats.slow_consumers > 0 {
            let _ = write!(line, " | evicted slow peers {}", stats.slow_consumers);
        }
        if stats.tls_failures + stats.io_errors + stats.accept_errors > 0 {
            let _ = write!(
                line,
                " | transport errors tls {} io {} accept {}",
                stats.tls_failures, stats.io_errors, stats.accept_errors
            );
        }
        line
    }

    fn farewell(&self, lobby: &Lobby) -> String {
        let s = lobby.stats();
        format!(
            "lobby closed after {:.0?}: {} connections opened, {} messages in, {} out, {} closed by the lobby",
            self.started.elapsed(),
            s.opened,
            s.messages_in,
            s.messages_out,
            s.closed_by_lobby
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lobby(args: &[&str]) -> Result<LobbyArgs, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn flags_map_to_the_options() {
        let a = lobby(&["--listen=*:7000", "--max-peers", "3", "--join-timeout=0.5", "--seal-timeout", "2"])
            .unwrap();
        assert_eq!(a.listen, [ListenAddr::All(7000)]);
        assert_eq!(a.options.lobby.max_peers, 3);
        assert_eq!(a.options.lobby.join_timeout, Duration::from_millis(500));
        assert_eq!(a.options.lobby.seal_close_timeout, Duration::from_secs(2));
        let d = lobby(&[]).unwrap();
        assert_eq!(d.listen, [ListenAddr::One("127.0.0.1:9080".parse().unwrap())]);
        assert_eq!(d.options.slow_peer_timeout, Some(Duration::from_secs(10)));
        assert_eq!(
            lobby(&["--slow-peer-timeout=3"]).unwrap().options.slow_peer_timeout,
            Some(Duration::from_secs(3))
        );
        assert_eq!(lobby(&["--slow-peer-timeout", "0"]).unwrap().options.slow_peer_timeout, None);
        for (args, needle) in [
            (&["--max-peers", "0"][..], "above 0"),
            (&["--tls-key", "k.pem"], "go together"),
            (&["--protocol", "godot3"], "protocol"),
        ] {
            let err = lobby(args).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
}
