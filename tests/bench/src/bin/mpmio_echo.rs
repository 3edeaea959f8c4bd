//! multipeer-mio echo server: the Godot-4 multiplayer server of multipeer-mio (relay off), whose
//! application echoes every packet to its sender with `forward_packet` (straight from the inbox
//! into the sender's send queue). Clients first receive their 4-byte peer id (Godot 4's
//! handshake), which the load generator skips. The inbox is the default one.
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
        // 64 KiB messages exceed Godot's 65535-byte default. The rest is the server's default
        // (buffers kept while busy, 1 MiB inbox), not the bare connection's.
        ws: ws::Config {
            max_message_size: 1 << 20,
            outbound_buffer_size: 1 << 20,
            ..ServerConfig::default().ws
        },
        ..ServerConfig::default()
    };
    let addr: ListenAddr = format!("127.0.0.1:{port}").parse()?;
    let mut server = Server::bind(&[addr], config)?;
    eprintln!("mpmio_echo: listening on 127.0.0.1:{port}");
    server.run(&Stop::new(), None, |server| {
        let peer = server.peer_mut();
        while peer.poll_event().is_some() {}
        while let Some(from) = peer.packet_peer() {
            // Outbound full: the packet stays queued (back-pressure) until the next turn.
            if peer.forward_packet(Target::Peer(from)).is_err() {
                break;
            }
        }
        None
    })?;
    Ok(())
}
