//! Test suites for multipeer that need more than one crate or more than one machine: the
//! deterministic simulation ([`sim`]) used by `tests/ws_simulation.rs` (and, later, by the
//! multiplayer layer with a server and N clients), interop runners against real peers
//! (tungstenite, Autobahn|Testsuite, Godot) and the helper binaries they start.

pub mod cluster;
pub mod hostile;
pub mod interop_client;
pub mod room_player;
pub mod sim;
pub mod soak;

/// A JSON game-state message of about `size` bytes (at least `size`, at most one player entry
/// more): a tick and a list of players with names, positions, health and teams drawn from
/// `seed`, text as lobbies and state dumps send it. The benchmarks and the permessage-deflate
/// interop checks use it.
#[must_use]
pub fn json_like_message(size: usize, seed: usize) -> String {
    use core::fmt::Write as _;
    const TEAMS: [&str; 4] = ["red", "blue", "green", "gold"];
    let mut x = (seed as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = format!("{{\"type\":\"state\",\"tick\":{},\"players\":[", seed * 7 + 1);
    let mut first = true;
    while out.len() + 2 < size {
        let r = next();
        let _ = write!(
            out,
            "{}{{\"id\":{},\"name\":\"player_{}\",\"x\":{}.{},\"y\":{}.{},\"hp\":{},\"team\":\"{}\"}}",
            if first { "" } else { "," },
            r % 100_000,
            r >> 20 & 0xfff,
            (r >> 8) % 2000,
            (r >> 4) % 100,
            (r >> 12) % 2000,
            (r >> 24) % 100,
            (r >> 32) % 101,
            TEAMS[(r >> 40) as usize % 4],
        );
        first = false;
    }
    out.push_str("]}");
    out
}
