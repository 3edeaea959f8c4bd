//! One connection's byte pipe: a mio TCP stream, optionally wrapped in a TLS session
//! (multipeer-std's [`TlsSession`](multipeer_std::tls::TlsSession), the one TLS implementation
//! of both adapters), moving bytes between the socket and a core machine.
//!
//! Reads go into the adapter's one shared scratch buffer (plain) or stay in the TLS session's own
//! plaintext buffer (TLS) and are offered to the machine from there; only bytes the machine
//! refused (back-pressure) are copied, into a per-connection buffer that exists only while it
//! holds them. Plain writes go straight from the machine's transmit slice to the socket.

use std::io::{self, Read as _, Write as _};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::error::TransportError;
#[cfg(feature = "tls")]
use crate::tls::{Plaintext, TlsError, TlsSession, rustls};

/// The core side of a transport: one connection of a `peer::Server`, or a `peer::Client`.
pub(crate) trait Machine {
    /// Offers received bytes; returns how many were taken.
    fn input(&mut self, bytes: &[u8]) -> usize;
    /// The byte stream ended or failed.
    fn eof(&mut self);
    /// The bytes waiting to be written.
    fn output(&self) -> Option<&[u8]>;
    /// `n` bytes of [`output`](Self::output) were written.
    fn consume(&mut self, n: usize);
}

/// How a read pass ended.
#[derive(Debug)]
pub(crate) enum ReadEnd {
    /// The socket has nothing more for now.
    Drained,
    /// The machine refused bytes; wait until it has room.
    Paused,
    /// The per-pass byte budget ran out with data possibly left: read again soon.
    Budget,
    /// The stream ended (the machine was told), with the transport error if it failed.
    Ended(Option<TransportError>),
}

/// A connection's socket and TLS session.
#[derive(Debug)]
pub(crate) struct Transport {
    stream: TcpStream,
    #[cfg(feature = "tls")]
    tls: Option<Box<TlsSession>>,
    /// Plain bytes the machine refused, offered again on resume; unallocated when empty.
    held: Vec<u8>,
    /// The interest currently registered.
    registered: Option<Interest>,
    /// Client: the TCP connection is still being established.
    connecting: bool,
    /// The machine refused input: do not read until it takes what is held.
    paused: bool,
    /// The read side is over (end of stream, error, or TLS failure).
    read_done: bool,
    /// The last write hit `WouldBlock` with output left.
    write_blocked: bool,
    /// An event reported the peer's end of stream (or an error): reads go on until the socket
    /// says so, since no later event will tell of an end that already arrived.
    read_closed_seen: bool,
    /// Writing failed: output is discarded so the machine can finish.
    dead: bool,
    /// The machine is done and our side is shut down; input is read and discarded until the
    /// peer closes, so unread input never makes the kernel answer with a reset, which can
    /// destroy our last bytes (a Close frame, an HTTP refusal) before the peer reads them.
    lingering: bool,
}

impl Transport {
    /// A transport over an accepted or connecting stream.
    pub(crate) fn new(stream: TcpStream, connecting: bool) -> Self {
        Self {
            stream,
            #[cfg(feature = "tls")]
            tls: None,
            held: Vec::new(),
            registered: None,
            connecting,
            paused: false,
            read_done: false,
            write_blocked: false,
            read_closed_seen: false,
            dead: false,
            lingering: false,
        }
    }

    /// Wraps the stream in a TLS session (before any byte moved).
    #[cfg(feature = "tls")]
    pub(crate) fn set_tls(&mut self, session: rustls::Connection) {
        self.tls = Some(Box::new(TlsSession::new(session)));
    }

    /// The socket.
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Replaces the socket of a client whose connection attempt failed (next address).
    pub(crate) fn replace_stream(&mut self, registry: &Registry, stream: TcpStream) {
        let _ = registry.deregister(&mut self.stream);
        self.stream = stream;
        self.registered = None;
        self.connecting = true;
    }

    /// Whether the machine refused input that is still held.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether the TCP connection is still being established.
    pub(crate) fn is_connecting(&self) -> bool {
        self.connecting
    }

    /// Whether the socket refused output and a writable event is awaited: writing before it
    /// comes would only fail again.
    pub(crate) fn is_write_blocked(&self) -> bool {
        self.write_blocked
    }

    /// Whether the transport cannot carry bytes any more.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead
    }

    /// Whether bytes may be written at once, outside the machine's queue (write-through): a
    /// plain TCP stream, connected, alive, with no output blocked (anything queued by the
    /// machine must go first, and the machine checks that itself).
    pub(crate) fn can_write_now(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return false;
        }
        !(self.connecting || self.dead || self.write_blocked || self.lingering)
    }

    /// Writes `parts` at once, in one vectored write (up to 32 slices); returns how many bytes
    /// the socket took.
    /// 0 when it would block (the caller queues the rest, and the write that follows waits
    /// for writability) or failed: a failed socket fails again when the queue is written,
    /// and that write reports it.
    pub(crate) fn write_now(&mut self, parts: &[&[u8]]) -> usize {
        // Up to 16 frames, header and payload each; parts beyond are left to the queue.
        let mut slices = [io::IoSlice::new(&[]); 32];
        let count = parts.len().min(slices.len());
        for (slice, part) in slices.iter_mut().zip(parts) {
            *slice = io::IoSlice::new(part);
        }
        let slices = &slices[..count];
        loop {
            match self.stream.write_vectored(slices) {
                // A short write leaves the rest to the queue, whose write hears `WouldBlock`.
                Ok(n) => return n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if e.kind() == io::ErrorKind::WouldBlock {
                        self.write_blocked = true;
                    }
                    return 0;
                }
            }
        }
    }

    /// Registers or re-registers the stream for the interest its state needs: readable always,
    /// writable only while connecting or while output waits for socket space.
    pub(crate) fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let wanted = if (self.connecting || self.write_blocked) && !self.lingering {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        match self.registered {
            Some(current) if current == wanted => Ok(()),
            Some(_) => {
                registry.reregister(&mut self.stream, token, wanted).map(|()| self.registered = Some(wanted))
            }
            None => {
                registry.register(&mut self.stream, token, wanted).map(|()| self.registered = Some(wanted))
            }
        }
    }

    /// Client: checks a connecting socket after a readiness event. `Ok(true)` once connected.
    ///
    /// # Errors
    /// The connection attempt failed.
    pub(crate) fn finish_connect(&mut self) -> io::Result<bool> {
        if !self.connecting {
            return Ok(true);
        }
        if let Some(error) = self.stream.take_error()? {
            return Err(error);
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connecting = false;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// An event reported the peer's end of stream or an error.
    pub(crate) fn saw_read_closed(&mut self) {
        self.read_closed_seen = true;
    }

    /// Reads until the socket is drained, the machine pushes back, or `budget` bytes were read.
    pub(crate) fn read(&mut self, machine: &mut impl Machine, scratch: &mut [u8], budget: usize) -> ReadEnd {
        if self.read_done || self.connecting {
            return ReadEnd::Drained;
        }
        if self.paused {
            return ReadEnd::Paused;
        }
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return self.read_tls(machine, budget);
        }
        let mut total = 0;
        loop {
            if total >= budget {
                return ReadEnd::Budget;
            }
            match self.stream.read(scratch) {
                Ok(0) => return self.end(machine, None),
                Ok(n) => {
                    total += n;
                    let taken = machine.input(&scratch[..n]);
                    if taken < n {
                        self.held.extend_from_slice(&scratch[taken..n]);
                        self.paused = true;
                        return ReadEnd::Paused;
                    }
                    // A read that did not fill the buffer emptied the socket: bytes arriving
                    // later raise a new edge-triggered event (epoll and kqueue queue one per
                    // arrival), so reading on to hear `WouldBlock` would only cost a syscall
                    // per event (a tenth of a relay's syscalls). tokio's `PollEvented` does
                    // the same. Not once the end of stream was reported: it may be waiting
                    // behind these bytes with no event to come. mio on Windows re-arms only
                    // after `WouldBlock`.
                    if cfg!(unix) && n < scratch.len() && !self.read_closed_seen {
                        return ReadEnd::Drained;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadEnd::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.end(machine, Some(TransportError::Io(e))),
            }
        }
    }

    /// Offers the held bytes again; when all are taken, reading continues.
    pub(crate) fn resume(
        &mut self,
        machine: &mut impl Machine,
        scratch: &mut [u8],
        budget: usize,
    ) -> ReadEnd {
        if !self.paused {
            return ReadEnd::Drained;
        }
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            // The refused plaintext is still in the session's buffer; the read pass offers it first.
            self.paused = false;
            return self.read_tls(machine, budget);
        }
        let taken = machine.input(&self.held);
        if taken < self.held.len() {
            self.held.drain(..taken);
            return ReadEnd::Paused;
        }
        // Give the memory back: an idle connection holds no input buffer.
        self.held = Vec::new();
        self.paused = false;
        self.read(machine, scratch, budget)
    }

    /// The read side ended: tell the machine once.
    fn end(&mut self, machine: &mut impl Machine, error: Option<TransportError>) -> ReadEnd {
        self.read_done = true;
        self.paused = false;
        self.held = Vec::new();
        machine.eof();
        ReadEnd::Ended(error)
    }

    #[cfg(feature = "tls")]
    fn read_tls(&mut self, machine: &mut impl Machine, budget: usize) -> ReadEnd {
        let Some(tls) = self.tls.as_deref_mut() else { return ReadEnd::Drained };
        let mut total = 0;
        loop {
            // Plaintext already decrypted goes to the machine first, from the session's buffer.
            loop {
                match tls.plaintext() {
                    Plaintext::Data(plain) => {
                        let len = plain.len();
                        let taken = machine.input(plain);
                        tls.consume(taken);
                        if taken < len {
                            self.paused = true;
                            return ReadEnd::Paused;
                        }
                    }
                    Plaintext::Empty => break,
                    // A close_notify, or TCP closed without one (many peers do this; the core
                    // judges by the WebSocket Close).
                    Plaintext::Closed | Plaintext::Truncated => return self.end(machine, None),
                }
            }
            if total >= budget {
                return ReadEnd::Budget;
            }
            match tls.read_from(&mut self.stream) {
                // The end of the stream shows as Closed or Truncated on the next pass.
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadEnd::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // A failed session (its alert was sent); the socket is no use any more.
                    let error = match TlsError::from_io(&e) {
                        Some(tls) => {
                            self.dead = true;
                            TransportError::Tls(tls.clone())
                        }
                        None => TransportError::Io(e),
                    };
                    return self.end(machine, Some(error));
                }
            }
        }
    }

    /// Whether TLS has records of its own to send (handshake messages, alerts).
    pub(crate) fn wants_write(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.wants_write();
        }
        false
    }

    /// Writes the machine's output until it is all written or the socket would block.
    ///
    /// # Errors
    /// The socket failed; the machine was told the stream ended and its output is discarded.
    pub(crate) fn write(&mut self, machine: &mut impl Machine) -> Result<(), TransportError> {
        if self.dead {
            discard(machine);
            return Ok(());
        }
        if self.connecting {
            return Ok(());
        }
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return self.write_tls(machine);
        }
        loop {
            let Some(bytes) = machine.output() else {
                self.write_blocked = false;
                return Ok(());
            };
            match self.stream.write(bytes) {
                Ok(0) => return Err(self.fail_write(machine, io::ErrorKind::WriteZero.into())),
                Ok(n) => machine.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail_write(machine, e)),
            }
        }
    }

    #[cfg(feature = "tls")]
    fn write_tls(&mut self, machine: &mut impl Machine) -> Result<(), TransportError> {
        let Some(tls) = self.tls.as_deref_mut() else { return Ok(()) };
        loop {
            let mut moved = false;
            // Encryption needs a copy anyway: the session takes plaintext up to its buffer limit.
            if let Some(bytes) = machine.output() {
                if let Ok(n @ 1..) = tls.encrypt(bytes) {
                    machine.consume(n);
                    moved = true;
                }
            }
            while tls.wants_write() {
                match tls.write_to(&mut self.stream) {
                    Ok(0) => return Err(self.fail_write(machine, io::ErrorKind::WriteZero.into())),
                    Ok(_) => moved = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.write_blocked = true;
                        return Ok(());
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.fail_write(machine, e)),
                }
            }
            if !moved {
                self.write_blocked = false;
                return Ok(());
            }
        }
    }

    fn fail_write(&mut self, machine: &mut impl Machine, error: io::Error) -> TransportError {
        self.dead = true;
        self.write_blocked = false;
        if !self.read_done {
            self.end(machine, None);
        }
        discard(machine);
        TransportError::Io(error)
    }

    /// Marks the transport unusable (a failed connect, a TLS session that could not start) and
    /// tells the machine its stream ended.
    pub(crate) fn kill(&mut self, machine: &mut impl Machine) {
        self.dead = true;
        self.connecting = false;
        if !self.read_done {
            self.end(machine, None);
        }
        discard(machine);
    }

    /// After the machine released the connection: says goodbye to a TLS peer (best effort),
    /// ends our sending direction, and keeps reading (and discarding) until the peer closes.
    /// Returns `false` when there is nothing to wait for (the peer closed already, the socket
    /// failed, the connect never finished): close it at once.
    pub(crate) fn start_linger(&mut self) -> bool {
        if self.dead || self.connecting || self.read_done {
            return false;
        }
        self.say_goodbye();
        // Whatever the peer still sends is discarded; it must not be refused (paused).
        self.paused = false;
        self.held = Vec::new();
        self.write_blocked = false;
        self.lingering = self.stream.shutdown(std::net::Shutdown::Write).is_ok();
        self.lingering
    }

    /// Whether the transport lingers (see [`start_linger`](Self::start_linger)).
    pub(crate) fn is_lingering(&self) -> bool {
        self.lingering
    }

    /// Whether a lingering transport is done: the peer closed, or the socket failed.
    pub(crate) fn linger_done(&self) -> bool {
        self.read_done || self.dead
    }

    /// A TLS `close_notify`, best effort.
    fn say_goodbye(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_deref_mut() {
            if !self.dead && !self.connecting {
                tls.send_close_notify();
                let _ = tls.write_to(&mut self.stream);
            }
        }
    }

    /// Deregisters and closes the socket, saying goodbye to a TLS peer first (best effort).
    pub(crate) fn close(mut self, registry: &Registry) {
        if !self.lingering {
            self.say_goodbye();
        }
        if self.registered.is_some() {
            let _ = registry.deregister(&mut self.stream);
        }
    }
}

/// Drops every byte the machine wants to send: the transport cannot carry them.
fn discard(machine: &mut impl Machine) {
    while let Some(bytes) = machine.output() {
        let n = bytes.len();
        machine.consume(n);
    }
}
