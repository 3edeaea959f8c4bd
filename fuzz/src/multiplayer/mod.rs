//! Stateful targets for WebSocket multiplayer: a `peer::Server` with several connections, and a
//! `peer::Client`, each driven like an adapter and an application would, in both protocols.
//!
//! Inputs are a few setup bytes, then ops until the input runs out ([`ServerOp`],
//! [`ClientOp`]). Ops usually carry well-formed protocol traffic (upgrade requests, masked
//! frames with Godot 4 SYS relays or Godot 3 headers addressed to live peers) so that joins,
//! relays and departures happen, interleaved with raw bytes, partial writes, timers and every
//! application command. The invariants are checked after every op.

use core::time::Duration;

use multipeer::Instant;

mod client;
mod server;

pub use client::{CLIENT_ID, ClientOp, ClientSummary, client_stateful, encode_client_run, run_client};
pub use server::{ServerOp, ServerSetup, ServerSummary, encode_server_run, run_server, server_stateful};

/// A frame as a client sends it (masked with `key`), shortest length form.
#[must_use]
pub fn masked_frame(head: u8, key: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = frame_head(head, 0x80, payload.len());
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// A frame as a server sends it (unmasked), shortest length form.
#[must_use]
pub fn server_frame(head: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_head(head, 0, payload.len());
    out.extend_from_slice(payload);
    out
}

fn frame_head(head: u8, mask: u8, len: usize) -> Vec<u8> {
    let mut out = vec![head];
    if len < 126 {
        out.push(mask | len as u8);
    } else if len <= 0xffff {
        out.push(mask | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out
}

/// The Origin the server setup allows, when it restricts origins.
pub const GOOD_ORIGIN: &str = "http://good.example";

/// Advances `now` by a step byte: µs, ms, 100 ms, or to `due` (1 s when nothing is due).
fn advance(now: Instant, due: Option<Instant>, step: u8) -> Instant {
    let n = u64::from(step & 63);
    match step >> 6 {
        0 => now + Duration::from_micros(n),
        1 => now + Duration::from_millis(n),
        2 => now + Duration::from_millis(n * 100),
        _ => due.map_or(now + Duration::from_secs(1), |t| t.max(now)),
    }
}

/// A payload of `len` bytes with a recognisable pattern.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}
