//! The server application: drains events and packets addressed to the server, tallies why
//! things were dropped or refused, and prints a status line each second.

use core::fmt::Write as _;
use core::time::Duration;
use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::time::Instant;

use multipeer::peer::{DisconnectReason, DropReason, Event, MultiplayerPeer as _, RoomMode, ServerStats};
use multipeer::scene::{Refusal, SceneEvent};
use multipeer_mio::{Server, TransportError, TransportStats};

use crate::auth::AuthGate;

const INTERVAL: Duration = Duration::from_secs(1);

/// Counts by reason.
#[derive(Default)]
struct Tally(BTreeMap<String, u64>);

impl Tally {
    fn add(&mut self, reason: impl Into<String>) {
        *self.0.entry(reason.into()).or_default() += 1;
    }

    /// `" (reason n, reason n)"`, the three most frequent, or nothing.
    fn summary(&self) -> String {
        let mut by_count: Vec<_> = self.0.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = by_count.iter().take(3).map(|(r, n)| format!("{r} {n}")).collect();
        if shown.is_empty() {
            return String::new();
        }
        let more = if by_count.len() > 3 { ", ..." } else { "" };
        format!(" ({}{more})", shown.join(", "))
    }
}

/// What the relay does besides relaying: read what is sent to it and report.
pub(crate) struct Status {
    quiet: bool,
    verbose: bool,
    tty: bool,
    next_line: Instant,
    last: (ServerStats, Instant),
    to_server: u64,
    dropped: Tally,
    rejected: Tally,
    disconnected: Tally,
    transport: Tally,
    /// `--auth-token`: checks tokens of SceneMultiplayer's pending peers.
    gate: Option<AuthGate>,
    /// Packets SceneMultiplayer refused (with `--auth-token`).
    refused: Tally,
    /// Packets in and out of each room at the last status line, by room serial, for rates.
    room_packets: Vec<(u64, u64)>,
    stats_json: Option<std::path::PathBuf>,
    cluster: Option<ClusterView>,
}

/// The cluster link as the status line and the JSON show it.
#[derive(Default, Clone)]
struct ClusterView {
    node: String,
    index: u8,
    connected: bool,
    outages: u64,
    slow_consumer: u64,
    dropped_out: u64,
}

/// How many rooms the status line and the JSON name as the busiest.
const BUSIEST: usize = 3;

impl Status {
    pub(crate) fn new(quiet: bool, verbose: bool, gate: Option<AuthGate>) -> Self {
        let now = Instant::now();
        Self {
            quiet,
            verbose,
            tty: std::io::stderr().is_terminal(),
            next_line: now + INTERVAL,
            last: (ServerStats::default(), now),
            to_server: 0,
            dropped: Tally::default(),
            rejected: Tally::default(),
            disconnected: Tally::default(),
            transport: Tally::default(),
            gate,
            refused: Tally::default(),
            room_packets: Vec::new(),
            stats_json: None,
            cluster: None,
        }
    }

    /// Also writes the counters as JSON to `path` each second.
    pub(crate) fn with_stats_json(mut self, path: Option<std::path::PathBuf>) -> Self {
        self.stats_json = path;
        self
    }

    /// This instance is node `name`, index `index`, of a cluster.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn set_cluster_node(&mut self, name: &str, index: u8) {
        self.cluster =
            Some(ClusterView { node: name.into(), index, connected: true, ..ClusterView::default() });
    }

    /// The broker's state; a lost or regained connection is logged once.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn set_cluster_link(
        &mut self,
        connected: bool,
        outages: u64,
        slow_consumer: u64,
        dropped_out: u64,
    ) {
        let Some(view) = self.cluster.as_mut() else { return };
        let was = view.connected;
        *view = ClusterView { connected, outages, slow_consumer, dropped_out, ..view.clone() };
        if was && !connected {
            self.log(
                "cluster: broker connection lost; local relaying goes on, remote peers leave at the deadline",
            );
        } else if !was && connected {
            self.log("cluster: broker connection back; rooms are synchronised again");
        }
    }

    /// One turn of the application; returns how soon the next status line is due.
    pub(crate) fn tick(&mut self, server: &mut Server) -> Option<Duration> {
        while let Some(failure) = server.poll_transport_failure() {
            self.transport.add(transport_reason(&failure.error));
            self.debug(format_args!("transport: {failure}"));
        }
        // With --auth-token, SceneMultiplayer takes the core's events and packets.
        while let Some(event) = server.poll_scene_event() {
            self.debug(format_args!("scene: {event:?}"));
            if let Some(line) = self.gate.as_mut().and_then(|gate| gate.handle(server, &event)) {
                self.log(&line);
            }
            match event {
                SceneEvent::Transport(event) => self.tally_event(event),
                SceneEvent::PeerPacket { .. } | SceneEvent::Rpc(_) => self.to_server += 1,
                SceneEvent::Refused { reason, .. } => self.refused.add(refusal(&reason)),
                _ => {}
            }
        }
        let peer = server.peer_mut();
        while let Some(event) = peer.poll_event() {
            match event {
                // Room names are validated to a safe alphabet; quoted all the same.
                Event::PeerConnected(id) => {
                    self.debug(format_args!("event: {event:?} in room {:?}", peer.room_of(id).unwrap_or("")));
                }
                _ => self.debug(format_args!("event: {event:?}")),
            }
            self.tally_event(event);
        }
        // A relay has no game logic: packets for the server are read so nobody stalls.
        while let Some(packet) = peer.peek_packet() {
            self.to_server += 1;
            let (from, len) = (packet.info.from, packet.data.len());
            self.debug(format_args!("packet for the server from peer {from}: {len} bytes"));
            peer.pop_packet();
        }
        let now = Instant::now();
        if now >= self.next_line {
            let secs = now.saturating_duration_since(self.last.1).as_secs_f64().max(1e-3);
            self.next_line = now + INTERVAL;
            let busiest = self.busiest_rooms(server, secs);
            let line = self.line(server.peer().stats(), server.transport_stats(), server, now, &busiest);
            if !self.quiet {
                print_status(&line, self.tty);
            }
            if let Some(path) = &self.stats_json {
                let mut json = stats_json(server, self.to_server, &busiest);
                if let (Some(view), Some(c)) = (&self.cluster, server.peer().cluster_stats()) {
                    cluster_json(&mut json, view, c);
                }
                if let Err(e) = write_atomically(path, &json) {
                    self.debug(format_args!("cannot write {}: {e}", path.display()));
                }
            }
        }
        Some(self.next_line.saturating_duration_since(Instant::now()))
    }

    /// Rooms by packets per second (in and out) since the last line, busiest first.
    fn busiest_rooms(&mut self, server: &Server, secs: f64) -> Vec<(String, f64)> {
        let mut now = Vec::with_capacity(server.peer().room_count());
        // The busiest so far, busiest first; names are copied for these few only.
        let mut top: Vec<(&str, f64)> = Vec::with_capacity(BUSIEST + 1);
        for room in server.peer().rooms() {
            let total = room.stats.packets_in + room.stats.packets_out;
            // A room that went and came back has a new serial, and counters from zero.
            let before = self
                .room_packets
                .binary_search_by_key(&room.serial, |r| r.0)
                .map_or(0, |at| self.room_packets[at].1);
            let rate = total.saturating_sub(before) as f64 / secs;
            if rate > 0.0 && (top.len() < BUSIEST || top.last().is_some_and(|t| rate > t.1)) {
                let at = top.iter().position(|t| rate > t.1).unwrap_or(top.len());
                top.insert(at, (room.name, rate));
                top.truncate(BUSIEST);
            }
            now.push((room.serial, total));
        }
        now.sort_unstable();
        let top = top.into_iter().map(|(name, rate)| (name.to_owned(), rate)).collect();
        self.room_packets = now;
        top
    }

    fn line(
        &mut self,
        stats: ServerStats,
        transport: TransportStats,
        server: &Server,
        now: Instant,
        busiest: &[(String, f64)],
    ) -> String {
        let (before, then) = core::mem::replace(&mut self.last, (stats, now));
        let secs = now.saturating_duration_since(then).as_secs_f64().max(1e-3);
        let rate = |after: u64, before: u64| (after.saturating_sub(before)) as f64 / secs;
        let peer = server.peer();
        let mut line = format!(
            "{} peers ({} conns) | in {} pkt/s {}/s | out {} pkt/s {}/s | to server {}",
            peer.peers().count(),
            peer.connection_count(),
            count(rate(stats.packets_in, before.packets_in)),
            bytes(rate(stats.bytes_in, before.bytes_in)),
            count(rate(stats.packets_out, before.packets_out)),
            bytes(rate(stats.bytes_out, before.bytes_out)),
            self.to_server,
        );
        if peer.config().rooms.mode != RoomMode::Single {
            let _ = write!(line, " | rooms {}", peer.room_count());
            if !busiest.is_empty() {
                let shown: Vec<String> = busiest
                    .iter()
                    .map(|(name, rate)| format!("{} {} pkt/s", room_label(name), count(*rate)))
                    .collect();
                let _ = write!(line, " (busiest {})", shown.join(", "));
            }
            if stats.rooms_refused > 0 {
                let _ = write!(line, " | refused for their room {}", stats.rooms_refused);
            }
        }
        let _ = write!(line, " | dropped {}{}", stats.dropped, self.dropped.summary());
        let mut rejected = Tally(self.rejected.0.clone());
        if transport.refused_at_capacity > 0 {
            rejected.0.insert("at max peers".into(), transport.refused_at_capacity);
        }
        if transport.refused_per_address > 0 {
            rejected.0.insert("too many from one address".into(), transport.refused_per_address);
        }
        let _ = write!(line, " | rejected {}{}", stats.rejected, rejected.summary());
        // With --auth-token the relay is SceneMultiplayer's, with the same flow control.
        let (waiting, waits, waited) = match server.scene_multiplayer().map(|s| s.stats()) {
            Some(scene) => (scene.held_senders, scene.relay_waits, scene.held_micros),
            None => (stats.blocked_senders, stats.relay_waits, stats.blocked_micros),
        };
        let _ = write!(line, " | waiting senders {waiting}");
        if waits > 0 {
            let waited = core::time::Duration::from_micros(waited).as_secs_f64();
            let _ = write!(line, " ({waits} waits, {waited:.1} s)");
        }
        let _ = write!(line, " | evicted slow peers {}", stats.slow_consumers);
        if stats.throttled + stats.rate_limited > 0 {
            let _ = write!(line, " | rate-limited {} times, {} cut off", stats.throttled, stats.rate_limited);
        }
        if transport.tls_failures + transport.io_errors + transport.accept_errors > 0 {
            let failures = transport.tls_failures + transport.io_errors + transport.accept_errors;
            let _ = write!(line, " | transport errors {failures}{}", self.transport.summary());
        }
        if let Some(gate) = &self.gate {
            let _ = write!(line, " | auth: {} admitted, {} refused", gate.admitted, gate.refused);
            let packets: u64 = self.refused.0.values().sum();
            let _ = write!(line, " | packets refused {packets}{}", self.refused.summary());
        }
        if let (Some(view), Some(c)) = (&self.cluster, peer.cluster_stats()) {
            let broker = if view.connected { "up" } else { "DOWN" };
            let _ = write!(
                line,
                " | cluster node {}#{} broker {broker} (outages {}), {} nodes, {} remote peers, \
                 lost {}, malformed {}",
                view.node,
                view.index,
                view.outages,
                c.live_nodes,
                c.remote_peers,
                c.gaps + c.outbox_overflow + view.dropped_out,
                c.malformed,
            );
        }
        if stats.unreported_events > 0 {
            let _ = write!(line, " | {} events unreported", stats.unreported_events);
        }
        if peer.config().ws.permessage_deflate.is_some() {
            let _ = write!(
                line,
                " | compressing {} conns, buffers {} KiB",
                peer.compressing_connections(),
                peer.buffer_footprint() / 1024
            );
        }
        line
    }

    /// The last word when the server stops.
    pub(crate) fn farewell(&self, server: &Server) -> String {
        let stats = server.peer().stats();
        format!(
            "stopped: {} packets in, {} out, {} for the server, {} dropped, {} rejected; departures{}",
            stats.packets_in,
            stats.packets_out,
            self.to_server,
            stats.dropped,
            stats.rejected,
            if self.disconnected.0.is_empty() { " none".into() } else { self.disconnected.summary() },
        )
    }

    fn tally_event(&mut self, event: Event) {
        match event {
            Event::PacketDropped { reason, .. } => self.dropped.add(drop_reason(reason)),
            Event::ConnectionRejected(e) => self.rejected.add(e.to_string()),
            Event::PeerDisconnected { reason, .. } => self.disconnected.add(disconnect_reason(&reason)),
            _ => {}
        }
    }

    /// A line that is always worth reading (unless --quiet), on its own line.
    fn log(&self, line: &str) {
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = if self.tty {
                writeln!(err, "\r\x1b[2Kmultipeer: {line}")
            } else {
                writeln!(err, "multipeer: {line}")
            };
        }
    }

    fn debug(&self, message: core::fmt::Arguments<'_>) {
        if self.verbose {
            eprintln!("multipeer: debug: {message}");
        }
    }
}

/// A room as logs show it: `/name`, `/` for the default room.
fn room_label(name: &str) -> String {
    format!("/{}", name.escape_default())
}

/// The counters as one JSON object: totals, every room, and the busiest rooms.
fn stats_json(server: &Server, to_server: u64, busiest: &[(String, f64)]) -> String {
    let peer = server.peer();
    let s = peer.stats();
    let mut out = format!(
        "{{\"peers\":{},\"connections\":{},\"packets_in\":{},\"bytes_in\":{},\"packets_out\":{},\
         \"bytes_out\":{},\"to_server\":{to_server},\"dropped\":{},\"rejected\":{},\"rooms_refused\":{},\
         \"slow_peers_evicted\":{},\"waiting_senders\":{},\"room_count\":{},\"rooms\":[",
        peer.peers().count(),
        peer.connection_count(),
        s.packets_in,
        s.bytes_in,
        s.packets_out,
        s.bytes_out,
        s.dropped,
        s.rejected,
        s.rooms_refused,
        s.slow_consumers,
        s.blocked_senders,
        peer.room_count(),
    );
    for (i, room) in peer.rooms().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let r = room.stats;
        let _ = write!(
            out,
            "{comma}{{\"name\":{},\"declared\":{},\"peers\":{},\"connections\":{},\"packets_in\":{},\
             \"bytes_in\":{},\"packets_out\":{},\"bytes_out\":{},\"joined\":{}}}",
            json_string(room.name),
            room.declared,
            room.peers,
            room.connections,
            r.packets_in,
            r.bytes_in,
            r.packets_out,
            r.bytes_out,
            r.joined,
        );
    }
    out.push_str("],\"busiest\":[");
    for (i, (name, rate)) in busiest.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let _ = write!(out, "{comma}{{\"name\":{},\"packets_per_second\":{rate:.1}}}", json_string(name));
    }
    out.push_str("]}\n");
    out
}

/// Adds the cluster's counters to the JSON object `out` (which ends with `}\n`).
fn cluster_json(out: &mut String, view: &ClusterView, c: multipeer::peer::ClusterStats) {
    out.truncate(out.trim_end().len() - 1);
    let _ = write!(
        out,
        ",\"cluster\":{{\"node\":{},\"index\":{},\"broker_connected\":{},\"broker_outages\":{},\
         \"slow_consumer\":{},\"live_nodes\":{},\"remote_peers\":{},\"published\":{},\"received\":{},\
         \"malformed\":{},\"stale\":{},\"unknown\":{},\"gaps\":{},\"outbox_overflow\":{},\
         \"dropped_out\":{},\"nodes_expired\":{},\"refused_joins\":{}}}}}",
        json_string(&view.node),
        view.index,
        view.connected,
        view.outages,
        view.slow_consumer,
        c.live_nodes,
        c.remote_peers,
        c.published,
        c.received,
        c.malformed,
        c.stale,
        c.unknown,
        c.gaps,
        c.outbox_overflow,
        view.dropped_out,
        c.nodes_expired,
        c.refused_joins,
    );
    out.push('\n');
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Replaces `path` with `contents` so that a reader sees the old file or the new one, whole.
fn write_atomically(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

fn print_status(line: &str, tty: bool) {
    let mut err = std::io::stderr().lock();
    // On a terminal the line is rewritten in place; in a log, one line per second.
    let _ = if tty { write!(err, "\r\x1b[2K{line}") } else { writeln!(err, "{line}") };
    let _ = err.flush();
}

fn drop_reason(reason: DropReason) -> &'static str {
    match reason {
        DropReason::TooShort => "too short",
        DropReason::Empty => "empty",
        DropReason::SpoofedSender { .. } => "spoofed sender",
        DropReason::ClientSysMessage => "client system message",
        DropReason::UnknownTarget(_) => "unknown target",
        DropReason::TargetIsSender => "sent to itself",
        DropReason::RelayToServer => "relay to server",
        DropReason::UnknownMessage => "unknown message type",
        _ => "other",
    }
}

/// A fixed name per kind of refusal (the reasons carry peer-chosen paths, which must not
/// grow the tally).
fn refusal(reason: &Refusal) -> &'static str {
    match reason {
        Refusal::NotAuthenticated => "not authenticated",
        Refusal::OutboundFull => "relay queue full",
        Refusal::BadRelay(_) | Refusal::NestedSys => "bad relay",
        Refusal::UnknownNode(_) | Refusal::UnknownCacheId(_) | Refusal::UnknownMethod { .. } => {
            "RPC to the server"
        }
        _ => "other",
    }
}

fn disconnect_reason(reason: &DisconnectReason) -> String {
    match reason {
        DisconnectReason::Closed(info) => format!("closed {}", info.code.0),
        DisconnectReason::Kicked => "kicked".into(),
        DisconnectReason::SlowConsumer => "slow peer evicted".into(),
        DisconnectReason::RateLimited => "over its inbound rate limit".into(),
        DisconnectReason::ServerLost => "server lost".into(),
        other => format!("{other:?}"),
    }
}

fn transport_reason(error: &TransportError) -> String {
    match error {
        TransportError::Tls(tls) => {
            let text = tls.to_string();
            text.split(" (").next().unwrap_or(&text).to_owned()
        }
        TransportError::Io(e) | TransportError::Connect(e) => format!("{:?}", e.kind()),
        _ => "other".into(),
    }
}

fn count(per_second: f64) -> String {
    match per_second {
        r if r >= 1e6 => format!("{:.1}M", r / 1e6),
        r if r >= 1e3 => format!("{:.1}k", r / 1e3),
        r => format!("{r:.0}"),
    }
}

fn bytes(per_second: f64) -> String {
    match per_second {
        r if r >= 1024.0 * 1024.0 => format!("{:.1} MiB", r / (1024.0 * 1024.0)),
        r if r >= 1024.0 => format!("{:.1} KiB", r / 1024.0),
        r => format!("{r:.0} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_show_the_most_frequent_reasons() {
        let mut t = Tally::default();
        assert_eq!(t.summary(), "");
        for r in ["a", "b", "b", "c", "c", "c", "d"] {
            t.add(r);
        }
        assert_eq!(t.summary(), " (c 3, b 2, a 1, ...)");
        assert_eq!(
            (count(1500.0), count(12.0), bytes(2048.0), bytes(3.0 * 1048576.0)),
            ("1.5k".into(), "12".into(), "2.0 KiB".into(), "3.0 MiB".into())
        );
    }

    #[test]
    fn json_strings_and_room_labels_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\u000a\\u0001é\"");
        assert_eq!(room_label(""), "/");
        assert_eq!(room_label("a\nb"), "/a\\nb");
    }
}
