//! Server-reflexive candidates: each socket asks the `stun:` servers of `iceServers` for its
//! mapped address (multipeer-std's Binding request and response parser), retried until
//! answered or given up.

use core::net::SocketAddr;
use core::time::Duration;
use std::net::ToSocketAddrs;
use std::time::Instant;

use multipeer_std::webrtc::stun::{binding_request, parse_binding_success};
use str0m::Candidate;

use super::{Connection, Signal};

/// How often a STUN Binding request is sent again while unanswered.
const STUN_RETRY: Duration = Duration::from_millis(500);
/// When an unanswered STUN server is given up.
pub(super) const STUN_GIVE_UP: Duration = Duration::from_millis(3500);

/// One STUN server asked for the mapped address of one socket.
#[derive(Debug)]
pub(super) struct StunQuery {
    pub(super) server: SocketAddr,
    pub(super) socket: usize,
    pub(super) transaction: [u8; 12],
    pub(super) next_send: Instant,
    pub(super) give_up: Instant,
}

impl Connection {
    /// Sends the STUN requests that are due and gives up on servers that never answered.
    pub(super) fn ask_stun(&mut self, now: Instant) {
        self.stun.retain(|q| now < q.give_up);
        for query in &mut self.stun {
            if now >= query.next_send {
                query.next_send = now + STUN_RETRY;
                let request = binding_request(query.transaction);
                if self.sockets[query.socket].0.send_to(&request, query.server).is_err() {
                    self.drops.send_errors += 1;
                }
            }
        }
    }

    /// Whether `datagram` answers one of our STUN queries; a mapped address becomes a
    /// server-reflexive candidate.
    pub(super) fn stun_answer(&mut self, socket: usize, source: SocketAddr, datagram: &[u8]) -> bool {
        let position = self.stun.iter().position(|q| q.socket == socket && q.server == source);
        let Some(index) = position else { return false };
        let Some(mapped) = parse_binding_success(datagram, &self.stun[index].transaction) else {
            return false;
        };
        self.stun.swap_remove(index);
        let base = self.sockets[socket].1;
        // str0m drops a reflexive candidate equal to a host one; nothing new to signal then.
        let added = Candidate::server_reflexive(mapped, base, "udp")
            .ok()
            .and_then(|c| self.rtc.add_local_candidate(c));
        if let Some(candidate) = added.map(Candidate::to_sdp_string) {
            if self.described {
                let mid = self.mid.clone();
                self.signal(Signal::Candidate { mid, index: 0, candidate });
            } else {
                self.unsent_candidates.push(candidate);
            }
        }
        true
    }
}

/// The STUN servers of `stun:` URLs (`stun:host` or `stun:host:port`, default port 3478),
/// resolved; `stuns:` URLs are not used, `turn:`/`turns:` ones are the relays' (see the README).
pub fn stun_servers<'a>(urls: impl IntoIterator<Item = &'a str>) -> Vec<SocketAddr> {
    let mut servers = Vec::new();
    for url in urls {
        let Some(rest) = url.strip_prefix("stun:") else { continue };
        let rest = rest.split('?').next().unwrap_or(rest);
        let has_port =
            rest.rsplit_once(':').is_some_and(|(h, p)| !h.ends_with(':') && p.parse::<u16>().is_ok());
        let target = if has_port { rest.to_string() } else { format!("{rest}:3478") };
        // Name resolution blocks; a server that does not resolve is skipped like one that
        // never answers.
        if let Ok(addrs) = target.to_socket_addrs() {
            servers.extend(addrs);
        }
    }
    servers
}
