//! The server child of the soak and flood tests: multipeer-mio's `Server::run`, the loop the
//! `multipeer serve` binary runs, in a process of its own so its resident memory can be read
//! from `/proc`. Configured by arguments; prints `listening ADDR` and then, every
//! `--status-ms`, one `status key=value ...` line on stdout. A `stop` line on stdin, or stdin
//! closing (the parent died), closes every peer with 1001 and exits.
//!
//! ```text
//! soak_server [--protocol godot4|godot3] [--max-peers N] [--max-per-ip N]
//!             [--handshake-ms N] [--close-ms N] [--heartbeat-ms N] [--status-ms N]
//!             [--outbound-queue BYTES] [--allowed-origin ORIGIN]
//! ```

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{BufRead as _, Write as _};
use std::time::Instant;

use multipeer::peer::{DisconnectReason, Event, MultiplayerPeer as _, Protocol, ServerConfig};
use multipeer_mio::{ListenAddr, Server, Stop};

fn main() {
    let mut config = ServerConfig::default();
    let mut status_every = Duration::from_millis(500);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let mut number = || value().parse::<u64>().unwrap_or_else(|_| panic!("{flag}: not a number"));
        match flag.as_str() {
            "--protocol" => {
                config.protocol = if value() == "godot3" { Protocol::Godot3 } else { Protocol::Godot4 };
            }
            "--max-peers" => config.max_peers = number() as usize,
            "--max-per-ip" => config.max_connections_per_ip = Some(number() as usize),
            "--handshake-ms" => config.ws.handshake_timeout = Duration::from_millis(number()),
            "--close-ms" => config.ws.close_timeout = Duration::from_millis(number()),
            "--heartbeat-ms" => config.ws.heartbeat_interval = Some(Duration::from_millis(number())),
            "--status-ms" => status_every = Duration::from_millis(number()),
            "--outbound-queue" => config.ws.outbound_queue_size = Some(number() as usize),
            "--allowed-origin" => config.allowed_origins.push(value()),
            other => panic!("unknown argument {other}"),
        }
    }
    let addrs = [ListenAddr::One(SocketAddr::from(([127, 0, 0, 1], 0)))];
    let mut server = Server::bind(&addrs, config).expect("bind");
    let stop = Stop::new();
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                match line {
                    Ok(l) if l.trim() == "stop" => break,
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            stop.raise();
        });
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening {}", server.local_addrs()[0]);
    let _ = out.flush();
    let mut next_status = Instant::now();
    let mut max_footprint = 0;
    let mut max_buffered = 0;
    let mut max_connections = 0;
    let (mut joined, mut left, mut slow, mut app_packets) = (0u64, 0u64, 0u64, 0u64);
    let mut print = |server: &mut Server, out: &mut std::io::StdoutLock<'_>, final_line: bool| {
        let peer = server.peer_mut();
        while let Some(event) = peer.poll_event() {
            match event {
                Event::PeerConnected(_) => joined += 1,
                Event::PeerDisconnected { reason, .. } => {
                    left += 1;
                    slow += u64::from(reason == DisconnectReason::SlowConsumer);
                }
                _ => {}
            }
        }
        while peer.pop_packet() {
            app_packets += 1;
        }
        max_connections = max_connections.max(peer.connection_count());
        let now = Instant::now();
        if now < next_status && !final_line {
            return;
        }
        next_status = now + status_every;
        let footprint = peer.buffer_footprint();
        max_footprint = max_footprint.max(footprint);
        let buffered = peer.peers().filter_map(|p| peer.connection(p)).map(|c| c.buffered_amount()).max();
        max_buffered = max_buffered.max(buffered.unwrap_or(0));
        let s = peer.stats();
        let connections = peer.connection_count();
        let peers = peer.peers().count();
        let t = server.transport_stats();
        let _ = writeln!(
            out,
            "{} conns={} max_conns={} peers={} joined={joined} left={left} slow_events={slow} \
             app_packets={app_packets} footprint={footprint} max_footprint={max_footprint} \
             max_buffered={max_buffered} packets_in={} packets_out={} bytes_in={} bytes_out={} \
             dropped={} rejected={} slow_consumers={} unreported={} accepted={} refused_at_capacity={} refused_per_address={} \
             accept_errors={} io_errors={} tls_failures={} relay_waits={} blocked_senders={} blocked_micros={} \
             throttled={} rate_limited={}",
            if final_line { "final" } else { "status" },
            connections,
            max_connections,
            peers,
            s.packets_in,
            s.packets_out,
            s.bytes_in,
            s.bytes_out,
            s.dropped,
            s.rejected,
            s.slow_consumers,
            s.unreported_events,
            t.accepted,
            t.refused_at_capacity,
            t.refused_per_address,
            t.accept_errors,
            t.io_errors,
            t.tls_failures,
            s.relay_waits,
            s.blocked_senders,
            s.blocked_micros,
            s.throttled,
            s.rate_limited,
        );
        let _ = out.flush();
    };
    server
        .run(&stop, Some(Duration::from_secs(3600)), |server| {
            print(server, &mut out, false);
            Some(status_every.min(Duration::from_millis(50)))
        })
        .expect("event loop");
    print(&mut server, &mut out, true);
}
