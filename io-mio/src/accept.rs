//! The listening half every server here shares: listening sockets, the token range they and
//! the connections use, the accept loop and its pause after an `accept` error.

use core::net::SocketAddr;
use core::ops::Range;
use core::time::Duration;
use std::io;
use std::time::Instant;

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::error::{BindError, TransportError};
use crate::listen::{ListenAddr, bind_all};
#[cfg(feature = "tls")]
use crate::tls::TlsOptions;
use crate::transport::Transport;

/// How long accepting pauses after an `accept` error such as running out of descriptors;
/// waiting connections stay in the kernel's backlog meanwhile.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// What a readiness event of a server's token range is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready {
    /// Connections wait on this listener.
    Listener(usize),
    /// The connection in this slot is ready; `read_closed`: the peer's end of stream (or an
    /// error) came with it, so reads go on until the socket says so.
    Connection { index: usize, readable: bool, writable: bool, read_closed: bool },
}

/// A server's listening sockets and its token range: one token per listener, then one per
/// connection slot.
#[derive(Debug)]
pub(crate) struct Listeners {
    listeners: Vec<Option<TcpListener>>,
    local_addrs: Vec<SocketAddr>,
    first_token: Option<usize>,
    /// Connection slots after the listeners' tokens.
    slots: usize,
    paused_until: Option<Instant>,
}

impl Listeners {
    /// Listens on `addrs`, with room for `slots` connections in the token range.
    pub(crate) fn bind(addrs: &[ListenAddr], slots: usize) -> Result<Self, BindError> {
        let listeners = bind_all(addrs)?;
        let local_addrs = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();
        Ok(Self {
            listeners: listeners.into_iter().map(Some).collect(),
            local_addrs,
            first_token: None,
            slots,
            paused_until: None,
        })
    }

    pub(crate) fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Tokens used from the first: listeners, then connection slots.
    pub(crate) fn token_count(&self) -> usize {
        self.listeners.len() + self.slots
    }

    pub(crate) fn token_range(&self) -> Option<Range<usize>> {
        self.first_token.map(|first| first..first + self.token_count())
    }

    /// The token of connection slot `index`.
    pub(crate) fn token(&self, index: usize) -> Token {
        Token(self.first_token.unwrap_or(0) + self.listeners.len() + index)
    }

    /// Registers the listeners from `first`; `what` names the server in errors.
    pub(crate) fn register(&mut self, registry: &Registry, first: Token, what: &str) -> io::Result<()> {
        if self.first_token.is_some() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{what} already registered")));
        }
        if first.0.checked_add(self.token_count()).is_none() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "token range overflows"));
        }
        for (i, listener) in self.listeners.iter_mut().enumerate() {
            if let Some(listener) = listener {
                registry.register(listener, Token(first.0 + i), Interest::READABLE)?;
            }
        }
        self.first_token = Some(first.0);
        Ok(())
    }

    /// What `event` is about, or `None` when its token is not in this range.
    pub(crate) fn route(&self, event: &Event) -> Option<Ready> {
        let range = self.token_range().filter(|r| r.contains(&event.token().0))?;
        let offset = event.token().0 - range.start;
        if offset < self.listeners.len() {
            return Some(Ready::Listener(offset));
        }
        Some(Ready::Connection {
            index: offset - self.listeners.len(),
            readable: event.is_readable() || event.is_read_closed() || event.is_error(),
            writable: event.is_writable() || event.is_error(),
            read_closed: event.is_read_closed() || event.is_error(),
        })
    }

    /// Closes the listening sockets; connections already accepted stay.
    pub(crate) fn stop(&mut self, registry: &Registry) {
        for listener in &mut self.listeners {
            if let Some(mut l) = listener.take() {
                let _ = registry.deregister(&mut l);
            }
        }
    }

    /// How long until a paused accept is retried.
    pub(crate) fn pause_left(&self) -> Option<Duration> {
        self.paused_until.map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// The next connection waiting on `listener`: `Ok(None)` when none is (or accepting is
    /// paused); an error other than "would block" pauses accepting for a while.
    fn next(&mut self, listener: usize) -> io::Result<Option<(TcpStream, SocketAddr)>> {
        loop {
            let Some(Some(l)) = self.listeners.get(listener) else { return Ok(None) };
            if self.paused_until.is_some() {
                return Ok(None);
            }
            match l.accept() {
                Ok(accepted) => return Ok(Some(accepted)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => {}
                Err(e) => {
                    self.paused_until = Some(Instant::now() + ACCEPT_RETRY);
                    return Err(e);
                }
            }
        }
    }
}

/// The transport of an accepted connection, in TLS when the server has TLS options; with the
/// error that keeps it from starting, if any (the caller kills it and reports).
pub(crate) fn accepted_transport(
    stream: TcpStream,
    #[cfg(feature = "tls")] tls: Option<&TlsOptions>,
) -> (Transport, Option<TransportError>) {
    // Godot sets TCP_NODELAY too: game packets must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
    let mut transport = Transport::new(stream, false);
    #[cfg(feature = "tls")]
    if let Some(session) = tls.and_then(TlsOptions::new_server_session) {
        match session {
            Ok(session) => transport.set_tls(session),
            Err(e) => return (transport, Some(TransportError::Tls(e))),
        }
    }
    (transport, None)
}

/// A server that takes the connections its [`Listeners`] accept.
pub(crate) trait Accept {
    fn listeners(&mut self) -> &mut Listeners;
    /// Takes one accepted connection.
    fn take(&mut self, registry: &Registry, stream: TcpStream, addr: SocketAddr);
    /// `accept` failed (accepting pauses for a while).
    fn accept_failed(&mut self, error: io::Error);

    /// Accepts every connection waiting on `listener`.
    fn accept(&mut self, registry: &Registry, listener: usize) {
        loop {
            match self.listeners().next(listener) {
                Ok(Some((stream, addr))) => self.take(registry, stream, addr),
                Ok(None) => return,
                Err(e) => return self.accept_failed(e),
            }
        }
    }

    /// Accepts again on every listener once a pause after an error is over.
    fn retry_accept(&mut self, registry: &Registry) {
        let listeners = self.listeners();
        if listeners.paused_until.is_none_or(|at| at > Instant::now()) {
            return;
        }
        listeners.paused_until = None;
        for i in 0..listeners.listeners.len() {
            self.accept(registry, i);
        }
    }
}

/// The public methods of a server's token range, for a type with a `listeners` field: where it
/// listens, which tokens it uses and registering them.
macro_rules! token_range_methods {
    () => {
        /// The addresses actually listened on (with the port the system chose for port 0).
        #[must_use]
        pub fn local_addrs(&self) -> &[core::net::SocketAddr] {
            self.listeners.local_addrs()
        }

        /// Most tokens this server may use from its first: one per listener, then one per
        /// connection it may hold.
        #[must_use]
        pub fn token_count(&self) -> usize {
            self.listeners.token_count()
        }

        /// The tokens in use once registered.
        #[must_use]
        pub fn token_range(&self) -> Option<core::ops::Range<usize>> {
            self.listeners.token_range()
        }

        /// Registers the listeners with `registry`; connections use the tokens after them, up
        /// to [`token_count`](Self::token_count) in all from `first`.
        ///
        /// # Errors
        /// The registry refused a listener, or the server is already registered.
        pub fn register(&mut self, registry: &mio::Registry, first: mio::Token) -> std::io::Result<()> {
            self.listeners.register(registry, first, "server")
        }
    };
}
pub(crate) use token_range_methods;
