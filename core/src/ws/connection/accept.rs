//! The server's accept-or-reject step: the application inspects the upgrade request, then
//! answers it with 101 or an HTTP error.

use core::fmt;

use super::{Connection, MaskKeys, Phase};
use crate::buffer::Storage;
use crate::time::Instant;
use crate::ws::SendError;
use crate::ws::handshake::{self, HandshakeError, HeadWriter, Request};

impl<S: Storage, R: MaskKeys> Connection<S, R> {
    /// The pending upgrade request, parsed into `headers` (its length bounds the header
    /// count); `None` unless an [`Event::Request`](crate::ws::Event::Request) is awaiting [`accept`](Self::accept) or
    /// [`reject`](Self::reject).
    #[must_use]
    pub fn request<'h, 'b>(&'b self, headers: &'h mut [httparse::Header<'b>]) -> Option<Request<'h, 'b>> {
        if self.phase != Phase::AwaitingAccept {
            return None;
        }
        handshake::parse_request(self.inbound.scratch_slice(), headers).ok()
    }

    /// Accepts the pending request with `101 Switching Protocols`.
    ///
    /// `protocol` should be one the client offered (see [`handshake::select_protocol`]);
    /// `extra_headers` are `"Name: value"` lines (Godot: `handshake_headers`).
    ///
    /// # Errors
    /// [`SendError::WrongState`] without a pending request; [`SendError::Handshake`] for a
    /// protocol name or header line that cannot be sent.
    pub fn accept(
        &mut self,
        now: Instant,
        protocol: Option<&str>,
        extra_headers: &[&str],
    ) -> Result<(), SendError> {
        if self.phase != Phase::AwaitingAccept {
            return Err(SendError::WrongState);
        }
        handshake::check_accept(protocol, extra_headers).map_err(SendError::Handshake)?;
        let accept = self.accept;
        #[cfg(feature = "deflate")]
        let (agreed, extensions) =
            self.extension_answer().map_or((None, Default::default()), |(p, l)| (Some(p), l));
        #[cfg(not(feature = "deflate"))]
        let extensions = super::deflate::ExtensionLine::new();
        let mut counter = HeadWriter::counter();
        handshake::write_accept(&mut counter, &accept, protocol, &extensions, extra_headers);
        let len = counter.len();
        self.out
            .push_raw(len, len, |dst| {
                let w = &mut HeadWriter::into_slice(dst);
                handshake::write_accept(w, &accept, protocol, &extensions, extra_headers);
            })
            .map_err(|()| SendError::Full { queued_bytes: 0, queued_messages: 0 })?;
        #[cfg(feature = "deflate")]
        self.start_deflate(agreed);
        self.protocol.clear();
        let _ = self.protocol.extend_from_slice(protocol.unwrap_or("").as_bytes());
        self.open(now);
        Ok(())
    }

    /// Accepts the pending request choosing the subprotocol by Godot's rules from `supported`
    /// (Godot: `supported_protocols`), or rejects it with 400 when they find none.
    ///
    /// # Errors
    /// As [`accept`](Self::accept).
    pub fn accept_supported<P: AsRef<str>>(
        &mut self,
        now: Instant,
        supported: &[P],
        extra_headers: &[&str],
    ) -> Result<(), SendError> {
        if self.phase != Phase::AwaitingAccept {
            return Err(SendError::WrongState);
        }
        let mut headers = [httparse::EMPTY_HEADER; crate::ws::MAX_HEADERS];
        let choice = match self.request(&mut headers[..self.config.max_headers]) {
            Some(req) => handshake::select_protocol(req.protocols(), supported).map(|p| {
                p.and_then(|p| heapless::String::<{ handshake::MAX_PROTOCOL_LEN }>::try_from(p).ok())
            }),
            None => Err(HandshakeError::MalformedHttp),
        };
        match choice {
            Ok(protocol) => self.accept(now, protocol.as_deref(), extra_headers),
            Err(e) => {
                self.reject_with(e.http_status(), &e, e);
                Ok(())
            }
        }
    }

    /// Rejects the pending request with an HTTP `status` (e.g. 403) and `reason` as the body.
    ///
    /// # Errors
    /// [`SendError::WrongState`] without a pending request.
    pub fn reject(&mut self, status: u16, reason: &str) -> Result<(), SendError> {
        if self.phase != Phase::AwaitingAccept {
            return Err(SendError::WrongState);
        }
        let status = if (400..=599).contains(&status) { status } else { 400 };
        self.reject_with(status, &reason, HandshakeError::Rejected(status));
        Ok(())
    }

    pub(super) fn reject_with(&mut self, status: u16, why: &dyn fmt::Display, error: HandshakeError) {
        let mut counter = HeadWriter::counter();
        handshake::write_reject(&mut counter, status, why);
        let len = counter.len();
        let _ = self.out.push_raw(len, len, |dst| {
            handshake::write_reject(&mut HeadWriter::into_slice(dst), status, why);
        });
        self.fail_handshake(error);
    }
}
