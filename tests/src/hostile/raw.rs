//! A hand-driven TCP socket that speaks just enough HTTP and RFC 6455 to attack a server: any
//! bytes, any frame header (lengths the header cannot honestly carry included), and blocking
//! reads bounded in time that report exactly what came back.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::io::{self, Read as _, Write as _};
use std::net::TcpStream;
use std::time::Instant;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

/// How long a read waits before the test fails.
pub const READ_LIMIT: Duration = Duration::from_secs(10);

/// The 24-character key of RFC 6455 §1.3's example.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A frame read from the server (never masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// FIN bit.
    pub fin: bool,
    /// The 4-bit opcode.
    pub opcode: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// A Close frame's code (1005 when it carries none).
    #[must_use]
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8).then(|| match self.payload.get(..2) {
            Some(c) => u16::from_be_bytes([c[0], c[1]]),
            None => 1005,
        })
    }

    /// A Close frame's reason.
    #[must_use]
    pub fn close_reason(&self) -> String {
        String::from_utf8_lossy(self.payload.get(2..).unwrap_or_default()).into_owned()
    }
}

/// How a connection ended, seen from the attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// An orderly end of stream (FIN).
    Eof,
    /// The server reset the connection (RST), which is also a release.
    Reset,
}

/// A frame header with whatever length it claims, masked with `mask` if given; the payload
/// is the caller's to send (or not).
#[must_use]
pub fn header(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, len: u64) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0x0f)];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(m | len as u8),
        126..=0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A whole client frame: header and payload masked with a fixed key.
#[must_use]
pub fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = header(fin, rsv, opcode, Some(key), payload.len() as u64);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// A masked binary message in one frame.
#[must_use]
pub fn binary(payload: &[u8]) -> Vec<u8> {
    frame(true, 0, 0x2, payload)
}

/// A valid upgrade request with `extra` header lines.
#[must_use]
pub fn request(extra: &[&str]) -> Vec<u8> {
    let mut head = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// An attacker's connection.
#[derive(Debug)]
pub struct Raw {
    /// The socket (blocking, with read and write timeouts).
    pub stream: TcpStream,
    /// Bytes read and not yet consumed.
    pending: Vec<u8>,
}

impl Raw {
    /// Connects from the default loopback address.
    ///
    /// # Panics
    /// If the connection cannot be made.
    #[must_use]
    pub fn connect(addr: SocketAddr) -> Self {
        Self::try_connect_from(None, addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }

    /// Connects from `source` (any 127.0.0.0/8 address works on Linux loopback), so caps per
    /// address can be exercised without touching the honest peers' address.
    ///
    /// # Errors
    /// The connection failed.
    pub fn try_connect_from(source: Option<IpAddr>, addr: SocketAddr) -> io::Result<Self> {
        Self::try_connect_with(source, None, addr)
    }

    /// Connects from `source`, with a receive buffer of `rcvbuf` bytes (the kernel doubles it),
    /// so a slow reader's backlog reaches the server sooner.
    ///
    /// # Errors
    /// The connection failed.
    pub fn try_connect_with(
        source: Option<IpAddr>,
        rcvbuf: Option<usize>,
        addr: SocketAddr,
    ) -> io::Result<Self> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size)?;
        }
        if let Some(ip) = source {
            socket.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
        }
        socket.connect_timeout(&SockAddr::from(addr), Duration::from_secs(5))?;
        let stream: TcpStream = socket.into();
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(50)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        Ok(Self { stream, pending: Vec::new() })
    }

    /// Wraps an accepted stream (a fake server's side).
    #[must_use]
    pub fn from_stream(stream: TcpStream) -> Self {
        Self { stream, pending: Vec::new() }
    }

    /// Connects from `source`.
    ///
    /// # Panics
    /// If the connection cannot be made.
    #[must_use]
    pub fn connect_from(source: IpAddr, addr: SocketAddr) -> Self {
        Self::try_connect_from(Some(source), addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }

    /// Connects and completes a valid upgrade (101), leaving anything after the head unread.
    ///
    /// # Panics
    /// If the server does not answer 101.
    #[must_use]
    pub fn upgraded(addr: SocketAddr) -> Self {
        let mut raw = Self::connect(addr);
        raw.send(&request(&[])).expect("request sent");
        let (status, head) = raw.read_head(READ_LIMIT).expect("a response head");
        assert_eq!(status, 101, "{head}");
        raw
    }

    /// Upgrades and reads the Godot 4 id message; returns the socket and the id.
    ///
    /// # Panics
    /// If the server does not upgrade or the first message is not a 4-byte id.
    #[must_use]
    pub fn joined_godot4(addr: SocketAddr) -> (Self, u32) {
        Self::joined_godot4_from(Self::connect(addr))
    }

    /// Upgrades `raw` and reads the Godot 4 id message.
    ///
    /// # Panics
    /// If the server does not upgrade or the first message is not a 4-byte id.
    #[must_use]
    pub fn joined_godot4_from(mut raw: Self) -> (Self, u32) {
        raw.send(&request(&[])).expect("request sent");
        let (status, head) = raw.read_head(READ_LIMIT).expect("a response head");
        assert_eq!(status, 101, "{head}");
        let frame = raw.read_frame(READ_LIMIT).expect("the id message");
        assert_eq!((frame.opcode, frame.payload.len()), (0x2, 4), "{frame:?}");
        let id = u32::from_le_bytes(frame.payload[..4].try_into().unwrap_or_default());
        (raw, id)
    }

    /// Upgrades and reads the Godot 3 greeting (`SYS_ID`, `SYS_ADD(1)`); returns the id.
    ///
    /// # Panics
    /// If the greeting is not as Godot 3 sends it.
    #[must_use]
    pub fn joined_godot3(addr: SocketAddr) -> (Self, u32) {
        let mut raw = Self::upgraded(addr);
        let id_msg = raw.read_frame(READ_LIMIT).expect("SYS_ID");
        assert_eq!((id_msg.payload.len(), id_msg.payload[0]), (13, 3), "{id_msg:?}");
        let id = u32::from_le_bytes(id_msg.payload[9..13].try_into().unwrap_or_default());
        let add = raw.read_frame(READ_LIMIT).expect("SYS_ADD(1)");
        assert_eq!((add.payload[0], &add.payload[9..]), (1, &1u32.to_le_bytes()[..]), "{add:?}");
        (raw, id)
    }

    /// Writes all of `bytes`.
    ///
    /// # Errors
    /// The socket failed (the server may have closed it).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads more bytes into `pending`; `Ok(0)` at end of stream, `Ok(None)` on timeout.
    fn fill(&mut self) -> io::Result<Option<usize>> {
        let mut buf = [0u8; 16 * 1024];
        match self.stream.read(&mut buf) {
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                Ok(Some(n))
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads an HTTP response head; returns its status and the head as text.
    ///
    /// # Errors
    /// End of stream or a socket error first, or nothing within `limit`.
    pub fn read_head(&mut self, limit: Duration) -> io::Result<(u16, String)> {
        let end = Instant::now() + limit;
        loop {
            if let Some(at) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.pending.drain(..at + 4).collect();
                let text = String::from_utf8_lossy(&head).into_owned();
                let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                return Ok((status, text));
            }
            if Instant::now() >= end {
                return Err(io::ErrorKind::TimedOut.into());
            }
            if self.fill()? == Some(0) {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Reads the status of an HTTP error answer and its body (from Content-Length).
    ///
    /// # Errors
    /// As [`read_head`](Self::read_head).
    pub fn read_rejection(&mut self, limit: Duration) -> io::Result<(u16, String)> {
        let (status, head) = self.read_head(limit)?;
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let end = Instant::now() + limit;
        while self.pending.len() < len && Instant::now() < end {
            if self.fill()? == Some(0) {
                break;
            }
        }
        let body: Vec<u8> = self.pending.drain(..len.min(self.pending.len())).collect();
        Ok((status, String::from_utf8_lossy(&body).trim().to_owned()))
    }

    /// Reads one whole frame.
    ///
    /// # Errors
    /// End of stream or a socket error first, or nothing within `limit`.
    pub fn read_frame(&mut self, limit: Duration) -> io::Result<Frame> {
        let end = Instant::now() + limit;
        loop {
            if let Some((frame, used)) = parse_frame(&self.pending) {
                self.pending.drain(..used);
                return Ok(frame);
            }
            if Instant::now() >= end {
                return Err(io::ErrorKind::TimedOut.into());
            }
            if self.fill()? == Some(0) {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Reads frames until a Close; returns it and how many frames came before it.
    ///
    /// # Errors
    /// As [`read_frame`](Self::read_frame).
    pub fn read_close(&mut self, limit: Duration) -> io::Result<(Frame, usize)> {
        let end = Instant::now() + limit;
        let mut before = 0;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let frame = self.read_frame(left)?;
            if frame.opcode == 0x8 {
                return Ok((frame, before));
            }
            before += 1;
        }
    }

    /// Waits until the server ends the connection; returns how, and the bytes that came
    /// before the end.
    ///
    /// # Errors
    /// `TimedOut` if the connection is still open after `limit`.
    pub fn wait_end(&mut self, limit: Duration) -> io::Result<(End, Vec<u8>)> {
        let end = Instant::now() + limit;
        loop {
            match self.fill() {
                Ok(Some(0)) => return Ok((End::Eof, core::mem::take(&mut self.pending))),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) => {
                    return Ok((End::Reset, core::mem::take(&mut self.pending)));
                }
                Err(e) => return Err(e),
            }
            if Instant::now() >= end {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
    }

    /// Whether the server has said or done nothing for `time` (the connection stays open).
    ///
    /// # Errors
    /// A socket error.
    pub fn silent_for(&mut self, time: Duration) -> io::Result<bool> {
        let end = Instant::now() + time;
        while Instant::now() < end {
            if self.fill()?.is_some() {
                return Ok(false);
            }
        }
        Ok(self.pending.is_empty())
    }

    /// Bytes read and not yet consumed.
    #[must_use]
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Drops the connection with an RST instead of a FIN (SO_LINGER 0), as a crashed or
    /// unplugged peer's kernel would.
    pub fn reset(self) {
        let _ = SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        drop(self);
    }
}

/// Parses one server frame from the front of `buf`; `None` if incomplete.
#[must_use]
pub fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => (u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])), 4),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let key = if masked {
        let k: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(k)
    } else {
        None
    };
    let len = usize::try_from(len).ok()?;
    let mut payload = buf.get(at..at.checked_add(len)?)?.to_vec();
    if let Some(k) = key {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= k[i % 4];
        }
    }
    Some((Frame { fin: b0 & 0x80 != 0, opcode: b0 & 0x0f, payload }, at + len))
}
