//! The server side of the facade: listening sockets and one non-blocking stream (TCP, or TLS
//! over TCP for a `wss://` server) per core connection, driven by [`peer::Server`]'s transport
//! verbs.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::TcpListener;
use std::time::Instant as StdInstant;

use chacha20::ChaCha12Rng;
use multipeer::peer::{self, ConnId, ServerConfig};

use super::TransportFailure;
use super::linger::Linger;
use crate::{Clock, Error, MaybeTlsStream, Transport as _};

/// Most connections accepted per listener in one poll; the rest wait for the next poll.
const MAX_ACCEPTS_PER_POLL: usize = 64;
/// Most read calls per connection in one poll, so one busy peer cannot starve the others.
const MAX_READS_PER_POLL: usize = 16;
/// Most separate slices handed to one vectored write.
const WRITE_CHUNKS: usize = 16;
/// How soon a write the transport refused is tried again.
const WRITE_RETRY: Duration = Duration::from_millis(2);
/// Most transport failures kept for `poll_transport_failure`; more are counted only.
const MAX_QUEUED_FAILURES: usize = 256;

/// The server's TLS options (Godot's `tls_server_options`); without the `tls` feature a type
/// with no value, so that no options can be given.
#[cfg(feature = "tls")]
pub(super) type TlsServerOptions = crate::tls::TlsOptions;
/// The server's TLS options; without the `tls` feature, none can exist.
#[cfg(not(feature = "tls"))]
pub(super) type TlsServerOptions = core::convert::Infallible;

/// Where to listen: Godot's `bind_address`.
pub(super) fn listen(port: u16, bind_address: &str) -> io::Result<Vec<TcpListener>> {
    let listeners = if bind_address == "*" {
        // Godot's "*" is every interface, IPv6 and IPv4. On systems where an IPv6 socket is
        // dual-stack by default (Linux), [::] already takes IPv4 and the second bind reports
        // the port in use; elsewhere both sockets are needed.
        let v6 = TcpListener::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port));
        let port = match &v6 {
            Ok(l) => l.local_addr()?.port(),
            Err(_) => port,
        };
        let v4 = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
        match (v6, v4) {
            (Ok(a), Ok(b)) => vec![a, b],
            (Ok(a), Err(e)) if e.kind() == ErrorKind::AddrInUse => vec![a],
            (Ok(_), Err(e)) => return Err(e),
            (Err(_), Ok(b)) => vec![b],
            (Err(_), Err(e)) => return Err(e),
        }
    } else {
        let ip: IpAddr = bind_address.parse().map_err(|_| {
            io::Error::new(ErrorKind::InvalidInput, "bind address is neither \"*\" nor an IP")
        })?;
        vec![TcpListener::bind(SocketAddr::new(ip, port))?]
    };
    for l in &listeners {
        l.set_nonblocking(true)?;
    }
    Ok(listeners)
}

/// A transport of one core connection.
struct Socket {
    stream: MaybeTlsStream,
    /// Input the core refused under back-pressure, offered again before anything is read.
    held: Vec<u8>,
    read_closed: bool,
}

/// A listening multiplayer server.
pub(super) struct ServerSide {
    pub(super) core: peer::Server<ChaCha12Rng>,
    pub(super) clock: Clock,
    listeners: Vec<TcpListener>,
    /// Every accepted connection is wrapped in TLS with these (`wss://`).
    tls: Option<TlsServerOptions>,
    sockets: HashMap<ConnId, Socket>,
    /// Transport failures (TLS, resets) not read yet, oldest first.
    failures: VecDeque<TransportFailure>,
    /// Failures dropped because the queue was full.
    pub(super) unreported_failures: u64,
    /// Connections with output the transport has not taken yet.
    unwritten: Vec<ConnId>,
    /// Scratch list of connections, reused each poll.
    order: Vec<ConnId>,
    /// A per-poll budget ran out: there may be more to do at once.
    more: bool,
}

impl ServerSide {
    pub(super) fn new(
        listeners: Vec<TcpListener>,
        config: ServerConfig,
        rng: ChaCha12Rng,
        tls: Option<TlsServerOptions>,
    ) -> Self {
        Self {
            core: peer::Server::new(config, rng),
            clock: Clock::new(),
            listeners,
            tls,
            sockets: HashMap::new(),
            failures: VecDeque::new(),
            unreported_failures: 0,
            unwritten: Vec::new(),
            order: Vec::new(),
            more: false,
        }
    }

    /// The next transport failure, oldest first.
    pub(super) fn poll_failure(&mut self) -> Option<TransportFailure> {
        self.failures.pop_front()
    }

    /// Whether connections are wrapped in TLS.
    pub(super) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The address of the first listening socket.
    pub(super) fn local_addr(&self) -> Option<SocketAddr> {
        self.listeners.first().and_then(|l| l.local_addr().ok())
    }

    /// One round of every non-blocking step; returns the first listener error, if any.
    pub(super) fn poll(&mut self, scratch: &mut [u8], linger: &mut Linger) -> io::Result<()> {
        self.more = false;
        let now = self.clock.now();
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
        }
        let accepted = self.accept_all();
        self.order.clear();
        self.order.extend(self.sockets.keys().copied());
        let order = core::mem::take(&mut self.order);
        for &conn in &order {
            self.read(conn, scratch);
        }
        self.order = order;
        while let Some(conn) = self.core.poll_resume() {
            self.read(conn, scratch);
        }
        self.flush();
        self.release(linger);
        accepted
    }

    fn accept_all(&mut self) -> io::Result<()> {
        let mut first_error = Ok(());
        for listener in &self.listeners {
            for n in 0.. {
                if n == MAX_ACCEPTS_PER_POLL {
                    self.more = true;
                    break;
                }
                let (stream, addr) = match listener.accept() {
                    Ok(pair) => pair,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => {
                        // Out of descriptors and the like: report it, keep serving the others.
                        if first_error.is_ok() {
                            first_error = Err(e);
                        }
                        break;
                    }
                };
                // A socket that cannot be configured is dropped like a refused one.
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                // Frames are coalesced per write already; Nagle would only add latency.
                let _ = stream.set_nodelay(true);
                // At capacity or closed: dropping the stream closes it, as Godot does.
                let Ok(conn) = self.core.accept(self.clock.now(), Some(addr)) else { continue };
                let stream = match &self.tls {
                    None => MaybeTlsStream::Plain(stream),
                    // The core's handshake timer, started by accept, covers the TLS handshake.
                    #[cfg(feature = "tls")]
                    Some(tls) => match crate::tls::TlsStream::server(stream, tls) {
                        Ok(stream) => MaybeTlsStream::from(stream),
                        Err(e) => {
                            let _ = self.core.handle_eof(self.clock.now(), conn);
                            queue_failure(
                                &mut self.failures,
                                &mut self.unreported_failures,
                                TransportFailure { addr: Some(addr), peer: None, error: Error::Tls(e) },
                            );
                            continue;
                        }
                    },
                    #[cfg(not(feature = "tls"))]
                    Some(never) => match *never {},
                };
                self.sockets.insert(conn, Socket { stream, held: Vec::new(), read_closed: false });
            }
        }
        first_error
    }

    /// Feeds `conn`'s held input, then what its transport has, to the core.
    fn read(&mut self, conn: ConnId, scratch: &mut [u8]) {
        let Some(socket) = self.sockets.get_mut(&conn) else { return };
        let now = self.clock.now();
        if !socket.held.is_empty() {
            let used = self.core.handle_input(now, conn, &socket.held).unwrap_or(socket.held.len());
            socket.held.drain(..used);
            if !socket.held.is_empty() {
                return;
            }
            socket.held = Vec::new();
        }
        if socket.read_closed {
            return;
        }
        let mut budget_spent = true;
        for _ in 0..MAX_READS_PER_POLL {
            match socket.stream.read(scratch) {
                Ok(0) => {
                    socket.read_closed = true;
                    let _ = self.core.handle_eof(now, conn);
                    budget_spent = false;
                    break;
                }
                Ok(n) => {
                    let used = self.core.handle_input(now, conn, &scratch[..n]).unwrap_or(n);
                    if used < n {
                        socket.held.extend_from_slice(&scratch[used..n]);
                        budget_spent = false;
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    budget_spent = false;
                    break;
                }
                Err(e) => {
                    // A reset or another failure ends the connection as end of stream does.
                    socket.read_closed = true;
                    let addr = socket.stream.tcp().peer_addr().ok();
                    let peer = self.core.peer_of(conn);
                    let _ = self.core.handle_eof(now, conn);
                    let failure = TransportFailure { addr, peer, error: Error::from(e) };
                    queue_failure(&mut self.failures, &mut self.unreported_failures, failure);
                    return;
                }
            }
        }
        self.more |= budget_spent;
        // TLS handshake records produced by what was read go out with the next flush.
        if socket.stream.wants_write() && !self.unwritten.contains(&conn) {
            self.unwritten.push(conn);
        }
    }

    /// Writes what the core queued, one vectored write per connection and round.
    pub(super) fn flush(&mut self) {
        while let Some(conn) = self.core.poll_transmit() {
            if !self.unwritten.contains(&conn) {
                self.unwritten.push(conn);
            }
        }
        let pending = core::mem::take(&mut self.unwritten);
        for &conn in &pending {
            if self.write(conn) == Written::Blocked {
                self.unwritten.push(conn);
            }
        }
        // Writes re-queue their connection in the core; those entries are already handled.
        while let Some(conn) = self.core.poll_transmit() {
            if self.core.transmit(conn).is_some() && !self.unwritten.contains(&conn) {
                self.unwritten.push(conn);
            }
        }
    }

    fn write(&mut self, conn: ConnId) -> Written {
        let Some(socket) = self.sockets.get_mut(&conn) else { return Written::Done };
        loop {
            let mut chunks: [&[u8]; WRITE_CHUNKS] = [&[]; WRITE_CHUNKS];
            let result = match self.core.transmit_chunks(conn, &mut chunks) {
                // A no-op for TCP; TLS records the socket did not take yet go now.
                0 => match socket.stream.flush() {
                    Ok(()) => return Written::Done,
                    Err(e) => Err(e),
                },
                1 => socket.stream.write(chunks[0]),
                // Shared (broadcast) frames sit between inline bytes: one vectored write.
                count => socket.stream.write_vectored(&chunks.map(IoSlice::new)[..count]),
            };
            match result {
                Ok(0) => {
                    socket.read_closed = true;
                    let _ = self.core.handle_eof(self.clock.now(), conn);
                    return Written::Done;
                }
                Ok(n) => {
                    let _ = self.core.consume_transmit(conn, n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Written::Blocked,
                Err(e) => {
                    // The transport is unusable: the connection ends as if reset.
                    socket.read_closed = true;
                    let addr = socket.stream.tcp().peer_addr().ok();
                    let peer = self.core.peer_of(conn);
                    let _ = self.core.handle_eof(self.clock.now(), conn);
                    let failure = TransportFailure { addr, peer, error: Error::from(e) };
                    queue_failure(&mut self.failures, &mut self.unreported_failures, failure);
                    return Written::Done;
                }
            }
        }
    }

    /// Closes the transports the core is done with.
    fn release(&mut self, linger: &mut Linger) {
        while let Some(conn) = self.core.poll_release() {
            self.unwritten.retain(|c| *c != conn);
            if let Some(socket) = self.sockets.remove(&conn) {
                let until = self.clock.to_std(self.clock.now() + self.core.config().ws.close_timeout);
                linger.add(socket.stream.into_tcp(), socket.read_closed, until);
            }
        }
    }

    /// Hands every transport to `linger` after writing what can be written now (after the
    /// core's `close`).
    pub(super) fn shut_down(mut self, linger: &mut Linger) {
        self.flush();
        self.release(linger);
        let until = self.clock.to_std(self.clock.now() + self.core.config().ws.close_timeout);
        for (_, socket) in self.sockets.drain() {
            linger.add(socket.stream.into_tcp(), socket.read_closed, until);
        }
    }

    /// When to poll at the latest.
    pub(super) fn next_timeout(&self) -> Option<StdInstant> {
        if self.more {
            return Some(StdInstant::now());
        }
        let timer = self.core.poll_timeout().map(|t| self.clock.to_std(t));
        // std cannot wait for writability: retry a blocked write shortly.
        let retry = (!self.unwritten.is_empty()).then(|| StdInstant::now() + WRITE_RETRY);
        match (timer, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Queues a transport failure, or counts it when the queue is full.
fn queue_failure(queue: &mut VecDeque<TransportFailure>, unreported: &mut u64, failure: TransportFailure) {
    if queue.len() >= MAX_QUEUED_FAILURES {
        *unreported += 1;
    } else {
        queue.push_back(failure);
    }
}

/// What one write attempt left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// Everything queued was written (or the connection ended).
    Done,
    /// The transport would block: try again on a later poll.
    Blocked,
}
