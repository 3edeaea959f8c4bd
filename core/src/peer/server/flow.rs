//! Relay flow control: the cost of a receiver that cannot keep up falls on the sender that
//! outruns it.
//!
//! A relayed packet is queued for every one of its targets or for none. When a target has no
//! room, the packet stays in its sender's connection and the sender *waits* on that target:
//! nothing more is routed from it, its inbound queue fills, the adapter stops reading its
//! socket and TCP slows the sender down. Packets already read are never dropped and reach
//! every target in order. When the target writes bytes, the senders waiting on it are woken
//! and served round robin, one packet each per turn, so one flooder cannot take all the room
//! that a slow receiver frees.
//!
//! A receiver that is full, has someone waiting on it, and writes nothing for
//! [`ServerConfig::slow_peer_timeout`](super::ServerConfig::slow_peer_timeout) is evicted
//! (1008), which frees its senders. A receiver that reads slowly but steadily writes something
//! every few milliseconds and is never evicted.
//!
//! Optional per-peer inbound limits (packets and bytes per second, token buckets) hold a
//! sender's packets the same way; a sender held by its limit for most of a slow-peer timeout
//! is disconnected.

use core::time::Duration;

use rand_core::CryptoRng;

use super::Server;
use crate::peer::DisconnectReason;
use crate::time::Instant;
use crate::ws::CloseCode;

/// Close reason sent to a receiver evicted for not draining its queue.
pub(super) const SLOW_PEER_REASON: &str = "slow peer: outbound queue full, not draining";
/// Close reason sent to a sender that stayed above its inbound rate limit.
pub(super) const RATE_LIMIT_REASON: &str = "inbound rate limit exceeded";

/// Queue room a relayed packet leaves free for the server's own announcements (`ADD_PEER`,
/// `DEL_PEER`): at most this many messages, and eight bytes each (the largest announcement
/// payload is a Godot 3 system message of 8 bytes plus frame header).
const RESERVED_MESSAGES: usize = 64;
const RESERVED_BYTES_PER_MESSAGE: usize = 16;

/// A time that may be unset, in 8 bytes (`Option<Instant>` takes 16): the connection state is
/// kept small because every idle connection carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp(u64);

impl Stamp {
    pub(super) const UNSET: Self = Self(u64::MAX);

    pub(super) fn at(now: Instant) -> Self {
        Self(now.as_micros().min(u64::MAX - 1))
    }

    pub(super) fn get(self) -> Option<Instant> {
        (self != Self::UNSET).then(|| Instant::from_micros(self.0))
    }
}

impl Default for Stamp {
    fn default() -> Self {
        Self::UNSET
    }
}

/// Flow-control state of one connection, as a sender and as a receiver.
#[derive(Debug)]
pub(super) struct ConnFlow {
    /// As a sender: the slot whose queue has no room for our next packet (`u32::MAX`: none).
    waiting_on: u32,
    /// As a receiver: senders waiting for room in our queue.
    waiters: u32,
    /// As a sender: since when it waits (for [`ServerStats::blocked_micros`](super::ServerStats)).
    waiting_since: Stamp,
    /// As a receiver: a sender found us full, and we have written nothing since.
    stalled_since: Stamp,
    /// As a sender, when the server limits inbound rates (allocated on the first packet).
    rate: Option<alloc::boxed::Box<RateState>>,
}

impl Default for ConnFlow {
    fn default() -> Self {
        Self {
            waiting_on: u32::MAX,
            waiters: 0,
            waiting_since: Stamp::UNSET,
            stalled_since: Stamp::UNSET,
            rate: None,
        }
    }
}

/// Inbound budget of one sender.
#[derive(Debug, Default)]
struct RateState {
    packets: Bucket,
    bytes: Bucket,
    /// Held by its rate limit until then.
    throttled_until: Stamp,
    /// Start of the window in which its time held by the rate limit is summed.
    over_limit_since: Stamp,
    /// Microseconds held by the rate limit in the window, waits that ended.
    held_micros: u64,
    /// Since when the packet being offered waits for its budget.
    held_since: Stamp,
}

/// Share of the slow-peer timeout a sender must spend held by its rate limit, in one window of
/// that length, to be disconnected: a flooder is held nearly all the time, while a sender that
/// burst once and then kept under its limit spends only the burst's drain held. Time is
/// measured from hold to admission, so a late timer never makes a flooder look compliant.
const OVER_LIMIT_SHARE_PERCENT: u64 = 80;

impl ConnFlow {
    fn waiting_on(&self) -> Option<u32> {
        (self.waiting_on != u32::MAX).then_some(self.waiting_on)
    }

    fn throttled_until(&self) -> Option<Instant> {
        self.rate.as_ref().and_then(|r| r.throttled_until.get())
    }

    /// Whether routing from this connection must wait.
    pub(super) fn is_held(&self) -> bool {
        self.waiting_on().is_some() || self.throttled_until().is_some()
    }

    /// The earliest flow-control deadline of this connection.
    pub(super) fn deadline(&self, slow_peer_timeout: Option<Duration>) -> Option<Instant> {
        let stall = slow_peer_timeout.and_then(|t| Some(self.stalled_since.get()? + t));
        let over = slow_peer_timeout.and_then(|t| Some(self.rate.as_ref()?.over_limit_since.get()? + t));
        crate::time::earliest(crate::time::earliest(stall, over), self.throttled_until())
    }
}

/// A token bucket in micro-units: one second of traffic fits, a packet larger than that passes
/// once the bucket is full (the bucket goes into debt), so no packet is held forever.
#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    tokens: i64,
    at: Option<Instant>,
}

impl Bucket {
    /// Refills for the time since the last look; returns the tokens now.
    fn refill(&mut self, now: Instant, per_second: u64) -> i64 {
        let capacity = per_second.saturating_mul(1_000_000).min(i64::MAX as u64) as i64;
        let elapsed = self.at.map_or(u64::MAX, |at| now.saturating_duration_since(at).as_micros() as u64);
        self.at = Some(now);
        let gained = elapsed.saturating_mul(per_second).min(i64::MAX as u64) as i64;
        self.tokens = self.tokens.saturating_add(gained).min(capacity);
        self.tokens
    }

    /// How long until the bucket allows a packet again (zero when it does now).
    fn wait(&mut self, now: Instant, per_second: u64) -> Duration {
        let tokens = self.refill(now, per_second);
        if tokens > 0 || per_second == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(tokens.unsigned_abs() / per_second + 1)
    }

    fn charge(&mut self, cost: u64) {
        self.tokens = self.tokens.saturating_sub(cost.saturating_mul(1_000_000).min(i64::MAX as u64) as i64);
    }
}

impl<R: CryptoRng> Server<R> {
    /// Whether the connection at `index` can take a relayed packet of `len` bytes and still
    /// leave room for the server's own announcements. A packet larger than the connection
    /// accepts at all is not waited for: it is dropped and reported when delivered.
    pub(super) fn has_relay_room(&self, index: u32, len: usize) -> bool {
        let Some(c) = self.slots[index as usize].conn.as_ref() else { return true };
        if c.ws.state() != crate::ws::State::Open {
            // Closing: it takes nothing more, and nobody waits for it.
            return true;
        }
        let ws = c.ws.config();
        if len > ws.outbound_buffer_size {
            return true;
        }
        let messages = (ws.max_outbound_messages / 8).min(RESERVED_MESSAGES);
        let bytes = (ws.outbound_queue_limit() / 8).min(RESERVED_MESSAGES * RESERVED_BYTES_PER_MESSAGE);
        c.ws.can_send(len)
            && c.ws.queued_outbound_messages().saturating_add(1 + messages) <= ws.max_outbound_messages
            && c.ws.buffered_amount().saturating_add(len + bytes) <= ws.outbound_queue_limit()
    }

    /// The first joined peer among `targets` without room for `len` bytes.
    pub(super) fn first_without_room(&self, targets: &[u32], len: usize) -> Option<u32> {
        targets.iter().copied().find(|&index| !self.has_relay_room(index, len))
    }

    /// A sender (out of its slot, being routed) must wait for room at `target`.
    pub(super) fn wait_on(&mut self, src: &mut ConnFlow, src_index: u32, target: u32) {
        src.waiting_on = target;
        src.waiting_since = Stamp::at(self.now);
        self.relay_blocked.push_back(src_index);
        self.stats.relay_waits += 1;
        self.stats.blocked_senders += 1;
        if let Some(t) = self.slots[target as usize].conn.as_mut() {
            t.flow.waiters += 1;
        }
        self.mark_stalled(target);
    }

    /// Someone found `index` full: start its slow-peer clock unless it already runs.
    pub(super) fn mark_stalled(&mut self, index: u32) {
        let now = self.now;
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
        if c.flow.stalled_since.get().is_none() {
            c.flow.stalled_since = Stamp::at(now);
            if self.timeless {
                // `put_packet` knows no time: the clock restarts at the next call that does.
                self.rearm.push(index);
            }
            self.schedule(index);
        }
    }

    /// `index` wrote bytes (or left): its slow-peer clock stops, and the senders waiting on it
    /// are served again.
    pub(super) fn made_progress(&mut self, index: u32) {
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
        c.flow.stalled_since = Stamp::UNSET;
        if c.flow.waiters == 0 {
            return;
        }
        c.flow.waiters = 0;
        for _ in 0..self.relay_blocked.len() {
            let Some(sender) = self.relay_blocked.pop_front() else { break };
            let Some(s) = self.slots[sender as usize].conn.as_mut() else { continue };
            if s.flow.waiting_on() != Some(index) {
                self.relay_blocked.push_back(sender);
                continue;
            }
            Self::stop_waiting(&mut s.flow, self.now, &mut self.stats);
            self.ready.push_back(sender);
        }
        self.schedule(index);
    }

    /// The time became known after a timeless call: a slow-peer clock started then counts
    /// from now.
    pub(super) fn restart_stall_clock(&mut self, index: u32) {
        let now = self.now;
        if let Some(c) = self.slots[index as usize].conn.as_mut() {
            if c.flow.stalled_since.get().is_some() {
                c.flow.stalled_since = Stamp::at(now);
            }
        }
    }

    fn stop_waiting(flow: &mut ConnFlow, now: Instant, stats: &mut super::ServerStats) {
        flow.waiting_on = u32::MAX;
        if let Some(since) = core::mem::take(&mut flow.waiting_since).get() {
            stats.blocked_micros += now.saturating_duration_since(since).as_micros() as u64;
        }
        stats.blocked_senders = stats.blocked_senders.saturating_sub(1);
    }

    /// A connection leaves the relay for good: it waits on nobody any more.
    pub(super) fn forget_flow(&mut self, index: u32) {
        self.made_progress(index);
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
        c.flow.rate = None;
        let Some(target) = c.flow.waiting_on() else { return };
        Self::stop_waiting(&mut c.flow, self.now, &mut self.stats);
        self.relay_blocked.retain(|&s| s != index);
        if let Some(t) = self.slots[target as usize].conn.as_mut() {
            t.flow.waiters = t.flow.waiters.saturating_sub(1);
        }
    }

    /// Serves the senders woken since the last call, round robin, one packet each per turn,
    /// until each is empty or waits again. Not while a routing is under way (it runs at the
    /// end of every entry point instead).
    pub(super) fn serve_ready(&mut self) {
        if self.routing.is_some() {
            return;
        }
        while let Some(index) = self.ready.pop_front() {
            if self.route_some(index, 1) {
                self.ready.push_back(index);
            }
            self.schedule(index);
        }
    }

    /// Inbound rate limits: whether the sender (out of its slot, being routed) may route its
    /// next packet now; if not, it is held until its budget allows. The packet is charged by
    /// [`charge_rate`](Self::charge_rate) once it is routed (it may still wait for room).
    pub(super) fn within_rate(&mut self, src: &mut ConnFlow) -> bool {
        let (packets, bytes) =
            (self.config.max_inbound_packets_per_second, self.config.max_inbound_bytes_per_second);
        if packets.is_none() && bytes.is_none() {
            return true;
        }
        let now = self.now;
        let rate = src.rate.get_or_insert_with(Default::default);
        let wait = packets
            .map_or(Duration::ZERO, |p| rate.packets.wait(now, u64::from(p)))
            .max(bytes.map_or(Duration::ZERO, |b| rate.bytes.wait(now, b)));
        if wait.is_zero() {
            if let Some(since) = core::mem::take(&mut rate.held_since).get() {
                rate.held_micros += now.saturating_duration_since(since).as_micros() as u64;
            }
            return true;
        }
        rate.throttled_until = Stamp::at(now + wait);
        if rate.held_since.get().is_none() {
            rate.held_since = Stamp::at(now);
        }
        if rate.over_limit_since.get().is_none() {
            rate.over_limit_since = Stamp::at(now);
            rate.held_micros = 0;
        }
        self.stats.throttled += 1;
        false
    }

    /// Charges a routed packet of `len` bytes to its sender's inbound budget.
    pub(super) fn charge_rate(src: &mut ConnFlow, len: usize) {
        if let Some(rate) = src.rate.as_mut() {
            rate.packets.charge(1);
            rate.bytes.charge(len as u64);
        }
    }

    /// Acts on the flow-control deadlines of `index` that are due at `now`.
    pub(super) fn flow_timeout(&mut self, now: Instant, index: u32) {
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
        if c.peer.is_none() {
            return;
        }
        if let Some(rate) = c.flow.rate.as_mut() {
            if rate.throttled_until.get().is_some_and(|t| now >= t) {
                rate.throttled_until = Stamp::UNSET;
                self.ready.push_back(index);
            }
        }
        let Some(timeout) = self.config.slow_peer_timeout else { return };
        let over_limit = c.flow.rate.as_ref().and_then(|r| r.over_limit_since.get());
        if c.flow.stalled_since.get().is_some_and(|t| now >= t + timeout) {
            self.stats.slow_consumers += 1;
            let code = CloseCode::POLICY_VIOLATION;
            self.end_peer(index, DisconnectReason::SlowConsumer, code, SLOW_PEER_REASON, false);
        } else if over_limit.is_some_and(|t| now >= t + timeout) {
            let Some(rate) = c.flow.rate.as_mut() else { return };
            let held_now =
                rate.held_since.get().map_or(0, |s| now.saturating_duration_since(s).as_micros() as u64);
            let held = rate.held_micros.saturating_add(held_now);
            if held.saturating_mul(100)
                < (timeout.as_micros() as u64).saturating_mul(OVER_LIMIT_SHARE_PERCENT)
            {
                // Not held most of the window: a new window starts if it is held now.
                if rate.held_since.get().is_some() {
                    rate.over_limit_since = Stamp::at(now);
                    rate.held_since = Stamp::at(now);
                } else {
                    rate.over_limit_since = Stamp::UNSET;
                }
                rate.held_micros = 0;
                self.schedule(index);
                return;
            }
            self.stats.rate_limited += 1;
            let code = CloseCode::POLICY_VIOLATION;
            self.end_peer(index, DisconnectReason::RateLimited, code, RATE_LIMIT_REASON, false);
        }
    }
}
