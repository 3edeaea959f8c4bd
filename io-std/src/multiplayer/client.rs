//! The client side of the facade: one non-blocking stream (TCP, or TLS over TCP for `wss://`)
//! driven by [`peer::Client`]'s transport verbs.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Instant as StdInstant;

use chacha20::ChaCha12Rng;
use multipeer::VecStorage;
use multipeer::peer::{self, ClientConfig, ConnectError};
use multipeer::ws::handshake::{ClientRequest, Scheme, Url};

use super::linger::Linger;
use crate::driver::open_stream;
use crate::{ClientOptions, Clock, Error, MaybeTlsStream, Transport as _, client_rng};

/// The client's TLS options (Godot's `tls_client_options`); without the `tls` feature a type
/// with no value, so that no options can be given.
#[cfg(feature = "tls")]
pub(super) type TlsClientOptions = crate::tls::TlsOptions;
/// The client's TLS options; without the `tls` feature, none can exist.
#[cfg(not(feature = "tls"))]
pub(super) type TlsClientOptions = core::convert::Infallible;

/// Most read calls in one poll.
const MAX_READS_PER_POLL: usize = 16;
/// How often a background connect is checked for its result (std cannot wait for it together
/// with anything else).
const CONNECT_CHECK: Duration = Duration::from_millis(5);

/// How `create_client` opens the TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opening {
    /// In a background thread, as Godot's `create_client` (which returns at once and reports
    /// a failed connect as `connection_failed`).
    Background,
    /// In the calling thread; a failed connect is returned as the error.
    Blocking,
}

/// A client connection.
pub(super) struct ClientSide {
    pub(super) core: peer::Client<VecStorage, ChaCha12Rng>,
    pub(super) clock: Clock,
    /// The transport, until the core is finished with it.
    stream: Option<MaybeTlsStream>,
    /// The background connect, until it delivers the transport or fails.
    opening: Option<Receiver<Result<MaybeTlsStream, Error>>>,
    /// Why the transport failed (TCP reset, TLS), the first time it did.
    error: Option<Error>,
    /// The connection is TLS.
    tls: bool,
    peer_addr: Option<SocketAddr>,
    /// Input the core refused under back-pressure, offered again before anything is read.
    held: Vec<u8>,
    read_closed: bool,
    /// The read budget ran out.
    more: bool,
}

impl ClientSide {
    /// Starts a client: parses the URL and prepares the upgrade request (their errors are
    /// returned), then opens TCP (within `config.ws.handshake_timeout`) as `opening` says and
    /// wraps it in TLS for `wss://` (`tls`, or [`TlsOptions::client`] when `None`). The
    /// handshake timer counts from now, as Godot's does, and covers the connect and TLS; a
    /// background connect that outlives it is dropped when it ends (the thread lives at most
    /// that long, plus the system resolver's own timeouts).
    ///
    /// [`TlsOptions::client`]: crate::tls::TlsOptions::client
    #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
    pub(super) fn connect(
        url: &str,
        protocols: &[String],
        headers: &[String],
        config: ClientConfig,
        tls: Option<TlsClientOptions>,
        opening: Opening,
    ) -> Result<Self, Error> {
        let parsed = Url::parse(url)?;
        if cfg!(not(feature = "tls")) && parsed.scheme == Scheme::Wss {
            return Err(Error::TlsUnsupported);
        }
        let clock = Clock::new();
        let start = clock.now();
        let rng = client_rng()?;
        let protocols: Vec<&str> = protocols.iter().map(String::as_str).collect();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let request = ClientRequest {
            protocols: &protocols,
            extra_headers: &headers,
            ..ClientRequest::from_url(&parsed)
        };
        let core = peer::Client::new(start, &request, config, rng).map_err(|e| match e {
            ConnectError::Url(e) => Error::Url(e),
            ConnectError::Handshake(e) => Error::Handshake(e),
            // `ConnectError` is non-exhaustive; every present variant is mapped above.
            _ => Error::Handshake(multipeer::ws::HandshakeError::MalformedHttp),
        })?;
        let options = ClientOptions {
            #[cfg(feature = "tls")]
            tls,
            ..ClientOptions::new().connect_timeout(config.ws.handshake_timeout)
        };
        let mut side = Self {
            core,
            clock,
            peer_addr: None,
            tls: parsed.scheme == Scheme::Wss,
            stream: None,
            opening: None,
            error: None,
            held: Vec::new(),
            read_closed: false,
            more: false,
        };
        match opening {
            Opening::Blocking => side.opened(open_stream(url, &options, true)?),
            Opening::Background => {
                // One slot: the thread never blocks on a receiver that is gone.
                let (done, result) = mpsc::sync_channel(1);
                let url = url.to_owned();
                std::thread::Builder::new()
                    .name("multipeer-connect".into())
                    .spawn(move || {
                        let _ = done.send(open_stream(&url, &options, true));
                    })
                    .map_err(Error::Io)?;
                side.opening = Some(result);
            }
        }
        Ok(side)
    }

    /// The transport is open: the upgrade request goes out with the next flush.
    fn opened(&mut self, stream: MaybeTlsStream) {
        self.peer_addr = stream.peer_addr().ok();
        self.stream = Some(stream);
    }

    /// Takes the background connect's result, if it has one: the transport, or the failure,
    /// which ends the connection as `connection_failed` (Godot's signal for it).
    fn finish_opening(&mut self) {
        let Some(opening) = &self.opening else { return };
        let result = match opening.try_recv() {
            Ok(result) => result,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => {
                Err(Error::Io(io::Error::other("the connect thread ended without a result")))
            }
        };
        self.opening = None;
        match result {
            // The handshake timed out meanwhile: dropping the stream closes it.
            Ok(_) if self.core.is_finished() => {}
            Ok(stream) => self.opened(stream),
            Err(e) => {
                self.read_closed = true;
                self.core.handle_eof(self.clock.now());
                self.error.get_or_insert(e);
            }
        }
    }

    /// The server's address.
    pub(super) fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// Whether the connection is TLS (`wss://`).
    pub(super) fn is_tls(&self) -> bool {
        self.tls
    }

    /// Why the transport failed, if it did (a TLS error, a reset).
    pub(super) fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The transport failed: the connection ends as if reset, and the cause is kept.
    fn fail(&mut self, error: io::Error) {
        self.read_closed = true;
        self.core.handle_eof(self.clock.now());
        if self.error.is_none() {
            self.error = Some(Error::from(error));
        }
    }

    /// One round of every non-blocking step: timers, reads, one write, release.
    pub(super) fn poll(&mut self, scratch: &mut [u8], linger: &mut Linger) {
        self.more = false;
        self.finish_opening();
        let now = self.clock.now();
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
        }
        self.read(scratch);
        self.flush();
        self.release(linger);
    }

    fn read(&mut self, scratch: &mut [u8]) {
        let now = self.clock.now();
        if !self.held.is_empty() {
            let used = self.core.handle_input(now, &self.held);
            self.held.drain(..used);
            if !self.held.is_empty() {
                return;
            }
            self.held = Vec::new();
        }
        let Some(stream) = self.stream.as_mut() else { return };
        if self.read_closed {
            return;
        }
        for _ in 0..MAX_READS_PER_POLL {
            match stream.read(scratch) {
                Ok(0) => {
                    self.read_closed = true;
                    self.core.handle_eof(now);
                    return;
                }
                Ok(n) => {
                    let used = self.core.handle_input(now, &scratch[..n]);
                    if used < n {
                        self.held.extend_from_slice(&scratch[used..n]);
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
        self.more = true;
    }

    /// Writes what the core queued (a client's frames are one contiguous slice), then the TLS
    /// records it became.
    pub(super) fn flush(&mut self) {
        let Some(stream) = self.stream.as_mut() else { return };
        let failed = loop {
            let Some(bytes) = self.core.poll_transmit() else {
                // A no-op for TCP; TLS records the socket did not take yet go now.
                match stream.flush() {
                    Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => break e,
                    _ => return,
                }
            };
            match stream.write(bytes) {
                Ok(0) => break ErrorKind::WriteZero.into(),
                Ok(n) => self.core.consume_transmit(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // The transport is unusable: the connection ends as if reset.
                Err(e) => break e,
            }
        };
        self.fail(failed);
    }

    /// Gives the transport up once the core is finished and everything is written.
    fn release(&mut self, linger: &mut Linger) {
        // TLS records still in the session are flushed once more by the hand-over (best
        // effort, as for a server's connections): a finished connection waits for nobody.
        if self.core.is_finished() && self.core.poll_transmit().is_none() {
            self.hand_over(linger);
        }
    }

    /// Moves the transport to `linger` (after the core's `close`, or once it is finished); a
    /// TLS session says `close_notify` first.
    pub(super) fn hand_over(&mut self, linger: &mut Linger) {
        // A connect still running delivers to nobody; its stream is dropped (closed) then.
        self.opening = None;
        if let Some(stream) = self.stream.take() {
            self.held = Vec::new();
            let close_timeout = self.core.connection().config().close_timeout;
            let until = self.clock.to_std(self.clock.now() + close_timeout);
            linger.add(stream.into_tcp(), self.read_closed, until);
        }
    }

    /// When to poll at the latest.
    pub(super) fn next_timeout(&self) -> Option<StdInstant> {
        if self.more {
            return Some(StdInstant::now());
        }
        if self.opening.is_some() {
            return Some(StdInstant::now() + CONNECT_CHECK);
        }
        let timer = self.core.poll_timeout().map(|t| self.clock.to_std(t));
        // std cannot wait for writability: retry a blocked write shortly.
        let unwritten =
            self.core.poll_transmit().is_some() || self.stream.as_ref().is_some_and(|s| s.wants_write());
        let retry =
            (self.stream.is_some() && unwritten).then(|| StdInstant::now() + Duration::from_millis(2));
        match (timer, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Waits until the server sends something, at most `timeout` (a blocking peek with a read
    /// timeout: a real readiness wait on the one socket).
    pub(super) fn wait_readable(&mut self, timeout: Duration) {
        let Some(stream) = self.stream.as_ref().map(MaybeTlsStream::tcp) else {
            let slice = if self.opening.is_some() { timeout.min(CONNECT_CHECK) } else { timeout };
            std::thread::sleep(slice);
            return;
        };
        if !self.held.is_empty() || self.read_closed {
            // Input is known to wait (or the peer is gone): only time can change anything.
            std::thread::sleep(timeout.min(Duration::from_millis(5)));
            return;
        }
        let waited = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1)))))
            .and_then(|()| stream.peek(&mut [0u8; 1]).map(drop));
        // Whatever happened (data, end of stream, timeout), the next poll sees it.
        let _ = waited;
        if let Err(e) = stream.set_read_timeout(None).and_then(|()| stream.set_nonblocking(true)) {
            // A socket that cannot go back to non-blocking mode would hang the next poll.
            self.fail(e);
            self.stream = None;
        }
    }
}
