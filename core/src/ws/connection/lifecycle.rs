//! The end of a connection and the clock: closing, aborting, timeouts, EOF, and the events
//! they produce.

use super::{CloseRecord, Connection, MaskKeys, Phase, Timers};
use crate::buffer::Storage;
use crate::time::{Instant, earliest};
use crate::ws::close::{CloseInfo, CloseReason, Initiator};
use crate::ws::frame::{CloseCode, MAX_CONTROL_PAYLOAD, OpCode};
use crate::ws::handshake::HandshakeError;
use crate::ws::{Error, Event, SendError};

impl<S: Storage, R: MaskKeys> Connection<S, R> {
    /// Starts the closing handshake (Godot: `close(code, reason)`).
    ///
    /// While connecting, the handshake is abandoned instead ([`Event::HandshakeFailed`] with
    /// [`HandshakeError::ConnectionClosed`]). Closing twice does nothing.
    ///
    /// # Errors
    /// [`SendError::InvalidCloseCode`] for codes that may not be sent (1005, 1006, 1015, …);
    /// [`SendError::ControlTooLong`] for a reason over 123 bytes; [`SendError::Full`] when the
    /// outbound storage has no room left for the Close frame (nothing changes; retry after
    /// writing output).
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), SendError> {
        if !code.is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode(code.0));
        }
        let reason_buf = CloseReason::new(reason).ok_or(SendError::ControlTooLong)?;
        match self.phase {
            Phase::Open => {
                let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
                payload[..2].copy_from_slice(&code.0.to_be_bytes());
                payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
                self.push_control(OpCode::Close, &payload[..2 + reason.len()]).map_err(|()| self.full())?;
                self.close = CloseRecord::Sent(code, reason_buf);
                self.phase = Phase::CloseSent;
                self.timers.ping = None;
                self.timers.close = Some(now + self.config.close_timeout);
            }
            Phase::AwaitingResponse | Phase::ReadingRequest | Phase::AwaitingAccept => {
                self.out.clear();
                self.fail_handshake(HandshakeError::ConnectionClosed);
            }
            Phase::CloseSent | Phase::Closed => {}
        }
        Ok(())
    }

    /// Restarts the close timeout from `now` if a Close was sent and its answer is awaited:
    /// for a close started by a caller that did not know the time.
    pub fn restart_close_timer(&mut self, now: Instant) {
        if self.phase == Phase::CloseSent {
            self.timers.close = Some(now + self.config.close_timeout);
        }
    }

    /// Ends the connection at once without a closing handshake (Godot: `close(-1)`); the
    /// transport may be released immediately.
    pub fn abort(&mut self) {
        self.out.clear();
        match self.phase {
            Phase::Open | Phase::CloseSent => {
                self.end(CloseCode::ABNORMAL, "", Initiator::Local, None, false);
            }
            Phase::AwaitingResponse | Phase::ReadingRequest | Phase::AwaitingAccept => {
                self.fail_handshake(HandshakeError::ConnectionClosed);
            }
            Phase::Closed => {}
        }
        self.phase = Phase::Closed;
        self.finished = true;
        self.timers = Timers::default();
    }

    /// Records the end of an open connection and schedules the transport release.
    pub(super) fn end(
        &mut self,
        code: CloseCode,
        reason: &str,
        initiator: Initiator,
        error: Option<Error>,
        clean: bool,
    ) {
        self.phase = Phase::Closed;
        self.timers.ping = None;
        if !matches!(self.close, CloseRecord::Done(_)) {
            let reason = CloseReason::truncated(reason);
            self.close = CloseRecord::Done(CloseInfo { code, reason, initiator, error, clean });
            self.pending.end = true;
        }
    }
    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        if core::mem::take(&mut self.pending.request) {
            return Some(Event::Request);
        }
        if core::mem::take(&mut self.pending.open) {
            return Some(Event::Open);
        }
        if let Some(p) = self.pending.pong.take() {
            return Some(Event::Pong(p));
        }
        if core::mem::take(&mut self.pending.end) {
            if let Some(e) = self.handshake_error {
                return Some(Event::HandshakeFailed(e));
            }
            return self.close_info().cloned().map(Event::Closed);
        }
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = &self.timers;
        earliest(earliest(earliest(t.handshake, t.close), t.ping), t.release)
    }

    /// Fires the timers due at `now`; calling it early or twice does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.timers.release.is_some_and(|t| now >= t) {
            self.timers.release = None;
            // Only what is empty goes; storage still in use is looked at again later.
            self.inbound.release_if_empty();
            self.out.release_if_empty();
        }
        if self.timers.handshake.is_some_and(|t| now >= t) {
            self.timers.handshake = None;
            match self.phase {
                Phase::ReadingRequest | Phase::AwaitingAccept => {
                    let e = HandshakeError::Timeout;
                    self.reject_with(e.http_status(), &e, e);
                }
                Phase::AwaitingResponse => {
                    self.out.clear();
                    self.fail_handshake(HandshakeError::Timeout);
                }
                _ => {}
            }
        }
        if self.timers.close.is_some_and(|t| now >= t) {
            self.timers.close = None;
            if self.phase == Phase::CloseSent {
                let (code, reason) = self.close.sent();
                self.end(code, reason.as_str(), Initiator::Local, Some(Error::CloseTimeout), false);
                self.out.clear();
            }
            // A client that waited for the server to close TCP stops waiting.
            self.finished = true;
        }
        if let Some(due) = self.timers.ping.filter(|&t| now >= t) {
            if self.phase != Phase::Open {
                self.timers.ping = None;
            } else if self.timers.awaiting_pong {
                self.out.clear();
                let e = Error::KeepaliveTimeout;
                self.end(e.close_code(), "", Initiator::Library, Some(e), false);
                self.finished = true;
            } else {
                // A ping that finds no room (storage full of data) is skipped, not awaited.
                self.timers.awaiting_pong = self.push_control(OpCode::Ping, &[]).is_ok();
                let interval = self.config.heartbeat_interval.unwrap_or_default();
                self.timers.ping = Some(due.max(now) + interval);
            }
        }
        // Whatever is still held is looked at again a delay from now.
        self.hold_buffers();
    }

    /// Reports that the transport's read side ended (EOF or reset).
    pub fn handle_eof(&mut self, _now: Instant) {
        match self.phase {
            Phase::AwaitingResponse | Phase::ReadingRequest | Phase::AwaitingAccept => {
                self.out.clear();
                self.fail_handshake(HandshakeError::ConnectionClosed);
            }
            Phase::Open => {
                self.out.clear();
                let e = Error::ConnectionReset;
                self.end(e.close_code(), "", Initiator::Remote, Some(e), false);
            }
            Phase::CloseSent => {
                // Our Close went unanswered, as when the close times out: the code sent is
                // the one on record (Godot's `get_close_code()`: received, else sent).
                self.out.clear();
                let (code, reason) = self.close.sent();
                self.end(code, reason.as_str(), Initiator::Local, Some(Error::ConnectionReset), false);
            }
            Phase::Closed => {}
        }
        self.timers = Timers::default();
        self.finished = true;
    }
}
