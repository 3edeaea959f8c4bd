//! Relay candidates: each `turn:` server of `iceServers` gets an allocation on the
//! connection's socket of its address family (multipeer-std's [`TurnRelay`], over UDP or,
//! with `?transport=tcp`, TCP), whose relayed address is signalled as a relay candidate. What
//! str0m sends from a relayed address goes through its relay; what a relay brings back is
//! handed to str0m as a datagram received on the relayed address. With
//! `iceTransportPolicy: "relay"` the host and server-reflexive candidates are neither
//! gathered nor answered, and the connection fails once every allocation failed.

use core::net::{IpAddr, SocketAddr};
use std::net::{ToSocketAddrs, UdpSocket};
use std::time::Instant;

use multipeer_std::tls::TlsOptions;
use multipeer_std::webrtc::turn::{RelayState, TurnRelay};
use multipeer_std::webrtc::{EngineStats, TurnServer, TurnTransport};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Input};

use super::{Connection, Signal};

/// Remote addresses remembered to permit on relays allocated after they were signalled (as
/// many as a relay permits).
const MAX_REMOTE_IPS: usize = 64;
/// Relay errors kept for the Godot log between two polls; beyond, they are counted only.
const MAX_RELAY_ERRORS: usize = 16;

/// The TURN relays of one connection.
#[derive(Default)]
pub(super) struct Relays {
    relays: Vec<TurnRelay>,
    /// `iceTransportPolicy: "relay"`.
    pub(super) relay_only: bool,
    /// The remote's candidate addresses, permitted on every relay once allocated.
    remote_ips: Vec<IpAddr>,
    /// Allocation failures not yet printed.
    errors: Vec<String>,
    /// Counters of the TURN traffic (multipeer-std's engine counters).
    pub(super) stats: EngineStats,
}

impl Relays {
    /// Starts one allocation per server, on the first socket of its address family (and of
    /// loopback if the server is on loopback). A server whose name does not resolve, or that
    /// no socket can reach, is reported as an error.
    pub(super) fn start(
        sockets: &[(UdpSocket, SocketAddr)],
        servers: &[TurnServer],
        relay_only: bool,
    ) -> Self {
        let mut relays = Self { relay_only, ..Self::default() };
        // `turns:` servers are checked against the webpki roots, as a browser checks them.
        let tls = servers
            .iter()
            .any(|s| s.transport == TurnTransport::Tls)
            .then(|| Ok::<_, String>(TlsOptions::client()));
        for server in servers {
            // Name resolution blocks, as for `stun:` servers.
            let Ok(resolved) = server.address.to_socket_addrs() else {
                relays.error(format!("TURN server {}: the name does not resolve", server.address));
                continue;
            };
            let usable = resolved.into_iter().find_map(|addr| {
                let socket = sockets.iter().position(|(_, l)| {
                    l.is_ipv4() == addr.is_ipv4() && l.ip().is_loopback() == addr.ip().is_loopback()
                });
                socket.map(|s| (s, addr))
            });
            let Some((socket, addr)) = usable else {
                relays.error(format!(
                    "TURN server {}: no address reachable from the local ones",
                    server.address
                ));
                continue;
            };
            relays.relays.push(TurnRelay::allocate(socket, sockets[socket].1, addr, server, tls.as_ref()));
        }
        relays
    }

    fn error(&mut self, reason: String) {
        self.stats.turn_failures += 1;
        if self.errors.len() < MAX_RELAY_ERRORS {
            self.errors.push(reason);
        }
    }

    /// Whether an allocation is still pending (ICE gathering goes on).
    pub(super) fn allocating(&self) -> bool {
        self.relays.iter().any(|r| *r.state() == RelayState::Allocating)
    }

    /// Whether no allocation is there or pending: a relay-only connection cannot connect.
    fn exhausted(&self) -> bool {
        self.relays.iter().all(|r| matches!(r.state(), RelayState::Failed(_)))
    }

    /// Whether `source` is the TURN server of a relay on socket `socket`.
    pub(super) fn is_server(&self, socket: usize, source: SocketAddr) -> bool {
        self.relays.iter().any(|r| r.socket() == socket && r.server() == source)
    }
}

impl Connection {
    /// The allocation failures since the last call, for the Godot log.
    pub fn take_relay_errors(&mut self) -> Vec<String> {
        core::mem::take(&mut self.relays.errors)
    }

    /// The TURN counters: allocations failed, relayed datagrams sent and received.
    pub fn relay_stats(&self) -> &EngineStats {
        &self.relays.stats
    }

    /// The relayed addresses allocated so far.
    pub fn relayed_addrs(&self) -> Vec<SocketAddr> {
        self.relays.relays.iter().filter_map(TurnRelay::relayed).collect()
    }

    /// Runs the relays' timers, reads those over TCP, and signals new relay candidates.
    pub(super) fn drive_relays(&mut self) {
        let mut delivered = Vec::new();
        for index in 0..self.relays.relays.len() {
            let relay = &mut self.relays.relays[index];
            let Some((socket, local)) = self.sockets.get(relay.socket()) else { continue };
            let local = *local;
            // Driven on every poll, not only when its timer is due: the client reports an
            // answer's outcome (allocated, refused) through the events a drive collects.
            let change = relay.drive(socket, &mut self.relays.stats);
            let relayed = relay.relayed();
            relay.read_tcp(socket, &mut self.relays.stats, |peer, data| {
                if let Some(relayed) = relayed {
                    delivered.push((peer, relayed, data.to_vec()));
                }
            });
            match change {
                Some(RelayState::Allocated(relayed)) => {
                    for ip in self.relays.remote_ips.clone() {
                        let relay = &mut self.relays.relays[index];
                        relay.permit(ip, socket, &mut self.relays.stats);
                    }
                    let candidate = Candidate::relayed(relayed, local, "udp").ok();
                    if let Some(line) = candidate.and_then(|c| self.rtc.add_local_candidate(c)) {
                        let line = line.to_sdp_string();
                        if self.described {
                            let mid = self.mid.clone();
                            self.signal(Signal::Candidate { mid, index: 0, candidate: line });
                        } else {
                            self.unsent_candidates.push(line);
                        }
                    }
                }
                Some(RelayState::Failed(reason)) => self.relays.error(reason),
                _ => {}
            }
        }
        for (peer, relayed, data) in delivered {
            self.relayed_input(peer, relayed, &data);
        }
        if self.relays.relay_only && self.relays.exhausted() && !self.closed() {
            self.fail(String::from("iceTransportPolicy is \"relay\", but no TURN allocation succeeded"));
        }
    }

    /// A datagram from the TURN server of a relay on socket `socket`: the relay's own answers,
    /// or peer datagrams it relayed, handed to str0m.
    pub(super) fn relay_datagram(&mut self, socket: usize, source: SocketAddr, datagram: &[u8]) {
        let Some((udp, local)) = self.sockets.get(socket) else { return };
        let Some(relay) =
            self.relays.relays.iter_mut().find(|r| r.socket() == socket && r.server() == source)
        else {
            return;
        };
        let relayed = relay.relayed();
        let mut delivered = Vec::new();
        relay.receive(*local, datagram, udp, &mut self.relays.stats, |peer, data| {
            if let Some(relayed) = relayed {
                delivered.push((peer, relayed, data.to_vec()));
            }
        });
        for (peer, relayed, data) in delivered {
            self.relayed_input(peer, relayed, &data);
        }
    }

    fn relayed_input(&mut self, peer: SocketAddr, relayed: SocketAddr, data: &[u8]) {
        if self.closed() {
            return;
        }
        let Ok(receive) = Receive::new(Protocol::Udp, peer, relayed, data) else { return };
        if let Err(e) = self.rtc.handle_input(Input::Receive(Instant::now(), receive)) {
            self.fail(format!("receive: {e}"));
            return;
        }
        self.drain_outputs();
    }

    /// Sends what str0m sends from `source` through the relay allocated there; false when
    /// `source` is no relayed address.
    pub(super) fn relay_send(&mut self, source: SocketAddr, destination: SocketAddr, data: &[u8]) -> bool {
        let Some(relay) = self.relays.relays.iter_mut().find(|r| r.relayed() == Some(source)) else {
            return false;
        };
        if let Some((socket, _)) = self.sockets.get(relay.socket()) {
            relay.send(destination, data, socket, &mut self.relays.stats);
        }
        true
    }

    /// Lets a remote candidate's address reach us through every relay (before our own checks
    /// to it go out, so that its checks are not refused by the server).
    pub(super) fn relay_permit(&mut self, remote: IpAddr) {
        if !self.relays.remote_ips.contains(&remote) && self.relays.remote_ips.len() < MAX_REMOTE_IPS {
            self.relays.remote_ips.push(remote);
        }
        for relay in &mut self.relays.relays {
            if let Some((socket, _)) = self.sockets.get(relay.socket()) {
                relay.permit(remote, socket, &mut self.relays.stats);
            }
        }
    }

    /// Deletes every allocation (best effort).
    pub(super) fn close_relays(&mut self) {
        for relay in &mut self.relays.relays {
            if let Some((socket, _)) = self.sockets.get(relay.socket()) {
                relay.close(socket, &mut self.relays.stats);
            }
        }
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
