//! multipeer-mio echo server: the Godot-4 multiplayer server of multipeer-mio (relay off), whose
//! application echoes every packet to its sender. Clients first receive their 4-byte peer id
//! (Godot 4's handshake), which the load generator skips.
//!
//! usage: mpmio_echo PORT [MAX_PEERS]

use multipeer::peer::{MultiplayerPeer as _, ServerConfig, Target};
use multipeer::ws;
use multipeer_mio::{ListenAddr, Server, Stop};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(9005);
    let max_peers: usize = args.next().and_then(|p| p.parse().ok()).unwrap_or(60_000);
    let config = ServerConfig {
        relay: false,
        max_peers,
        // 64 KiB messages exceed Godot's 65535-byte default; several in flight per peer. The
        // rest is the server's default (buffers kept while busy), not the bare connection's.
        ws: ws::Config {
            max_message_size: 1 << 20,
            outbound_buffer_size: 4 << 20,
            ..ServerConfig::default().ws
        },
        inbox: multipeer::queue::QueueLimits { max_bytes: 8 << 20, max_packets: 65536 },
        ..ServerConfig::default()
    };
    let addr: ListenAddr = format!("127.0.0.1:{port}").parse()?;
    let mut server = Server::bind(&[addr], config)?;
    eprintln!("mpmio_echo: listening on 127.0.0.1:{port}");
    let mut scratch = Vec::new();
    server.run(&Stop::new(), None, |server| {
        let peer = server.peer_mut();
        while peer.poll_event().is_some() {}
        while let Some(p) = peer.peek_packet() {
            let from = p.info.from;
            scratch.clear();
            scratch.extend_from_slice(p.data);
            peer.set_target_peer(Target::Peer(from));
            if peer.put_packet(&scratch).is_err() {
                // Outbound full: leave the packet queued (back-pressure) until the next turn.
                break;
            }
            peer.pop_packet();
        }
        None
    })?;
    Ok(())
}
