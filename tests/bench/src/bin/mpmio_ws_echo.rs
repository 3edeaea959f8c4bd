//! multipeer-mio plain WebSocket echo server: `WebSocketServer` and its `run` loop, written as
//! a user would, echoing every message to its sender with `echo` (one copy, from the receive
//! queue into the send queue). No Godot framing.
//!
//! usage: mpmio_ws_echo PORT [MAX_CONNECTIONS]

use std::collections::BTreeSet;

use multipeer::ws::{self, SendError};
use multipeer_mio::{ConnectionId, ListenAddr, Stop, WebSocketEvent, WebSocketOptions, WebSocketServer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(9006);
    let max_connections: usize = args.next().and_then(|p| p.parse().ok()).unwrap_or(60_000);
    let options = WebSocketOptions {
        // 64 KiB messages exceed Godot's 65535-byte default.
        ws: ws::Config {
            max_message_size: 1 << 20,
            outbound_buffer_size: 1 << 20,
            ..WebSocketOptions::default().ws
        },
        max_connections,
        ..WebSocketOptions::default()
    };
    let addr: ListenAddr = format!("127.0.0.1:{port}").parse()?;
    let mut server = WebSocketServer::bind(&[addr], options)?;
    eprintln!("mpmio_ws_echo: listening on 127.0.0.1:{port}");
    // Connections whose echo waits for room in their send queue.
    let mut waiting: BTreeSet<ConnectionId> = BTreeSet::new();
    server.run(&Stop::new(), None, |server| {
        while let Some(event) = server.poll_event() {
            match event {
                WebSocketEvent::Messages(id) => {
                    waiting.insert(id);
                }
                WebSocketEvent::Released(id) => {
                    waiting.remove(&id);
                }
                _ => {}
            }
        }
        waiting.retain(|&id| {
            loop {
                match server.echo(id) {
                    Ok(Some(_)) => {}
                    Ok(None) => return false,
                    Err(SendError::Full { .. }) => return true,
                    Err(_) => {
                        while server.pop_message(id) {}
                        return false;
                    }
                }
            }
        });
        None
    })?;
    Ok(())
}
