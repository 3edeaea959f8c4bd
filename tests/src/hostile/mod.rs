//! Shared pieces of the hostile-input, fault, flow and soak suites (`tests/hostile_*.rs`,
//! `tests/faults_*.rs`, `tests/relay_flow.rs`, `tests/soak*.rs`): the real server on a thread
//! ([`server::Harness`]), in a child process ([`child::Child`], for RSS) or as the `multipeer
//! serve` binary itself ([`serve::Serve`]), attackers on raw sockets ([`raw::Raw`]), numbered
//! floods in both wire protocols ([`flood`]), honest peers that keep relaying and checking every
//! packet ([`honest::Honest`]), and an impaired link ([`proxy::Proxy`]).
//!
//! Everything is bounded: every wait has a time limit, every loop a count or a deadline.

pub mod child;
pub mod flood;
pub mod honest;
pub mod proxy;
pub mod raw;
pub mod serve;
pub mod server;

use core::time::Duration;

use multipeer::peer::ServerConfig;

/// A server configuration with short timers, so timeouts are tested in well under a second.
#[must_use]
pub fn quick_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.ws.handshake_timeout = Duration::from_millis(600);
    config.ws.close_timeout = Duration::from_millis(600);
    config
}

/// The resident set size of process `pid` in bytes (`VmRSS`), and its peak (`VmHWM`).
#[must_use]
pub fn rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
