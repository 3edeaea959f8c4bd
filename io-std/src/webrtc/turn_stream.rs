//! The stream under a TURN client that reaches its server over TCP (`turn:…?transport=tcp`)
//! or TLS (`turns:`, RFC 7065): a non-blocking `TcpStream`, optionally a rustls session
//! between it and the TURN frames ([`TlsSession`], the one TLS implementation of the
//! adapters), the framing of RFC 8656 §12 (STUN messages and padded ChannelData, cut by their
//! lengths), and a bounded backlog of what the kernel has no room for yet.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;

use crate::tls::{Plaintext, TlsError, TlsSession};

/// Bytes of TURN frames a link holds while the kernel's send buffer is full (encrypted, with
/// TLS); beyond, a frame is dropped whole (never cut, which would break the framing), as a
/// full UDP socket drops a datagram.
const MAX_TCP_BACKLOG: usize = 256 * 1024;

/// Bytes TLS adds to each record it seals a frame in, at most: a 5-byte header, an explicit
/// nonce of 8 (TLS 1.2) and a 16-byte tag; rounded up, and one record per 16 KiB of frame.
const TLS_RECORD_OVERHEAD: usize = 40;

/// How long connecting to a TURN server over TCP (and the TLS handshake over it) may take: an
/// unreachable server is reported then, like a silent UDP one.
pub(super) const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes read from a link in one drive, so that one busy relay leaves the others a turn.
pub(super) const MAX_TCP_READ_PER_DRIVE: usize = 256 * 1024;

/// The largest frame a TURN server sends on a stream: ChannelData of 64 KiB, padded.
pub(super) const MAX_TCP_FRAME: usize = 4 + 65_535 + 3;

/// The next whole frame at the start of a TURN stream: (its length with padding, the length of
/// the STUN message or ChannelData in it); `Ok(None)` until it is all there; `Err` for bytes
/// that start neither (RFC 8656 §12: the top two bits tell them apart).
pub(super) fn stream_frame(bytes: &[u8]) -> Result<Option<(usize, usize)>, ()> {
    let (Some(first), Some(length)) = (bytes.first(), bytes.get(2..4)) else { return Ok(None) };
    let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
    let (content, total) = match first >> 6 {
        // A STUN message: a 20-byte header, a length that is a multiple of 4.
        0 => (20 + length, 20 + length),
        // ChannelData: a 4-byte header, padded to 4 bytes on streams.
        1 => (4 + length, (4 + length + 3) & !3),
        _ => return Err(()),
    };
    Ok((bytes.len() >= total).then_some((total, content)))
}

/// A TCP connection to a TURN server, non-blocking from its first byte, with TLS over it for
/// `turns:`.
pub(super) struct TcpLink {
    stream: TcpStream,
    /// Our end of it: the TURN client's local address.
    pub(super) local: SocketAddr,
    connected: bool,
    /// The TLS session for `turns:`: frames are sealed into it, records come out of it into
    /// the backlog, so the backlog bounds what rustls would otherwise buffer.
    tls: Option<TlsSession>,
    /// Why the connection is over (the server closed it, sent what is no TURN frame, or TLS
    /// failed).
    ended: Option<String>,
    /// Bytes read (decrypted, with TLS) but not yet a whole frame.
    pub(super) incoming: Vec<u8>,
    /// Bytes (the first maybe partly written) waiting for room in the kernel's buffer.
    backlog: Vec<u8>,
}

impl TcpLink {
    /// Starts connecting from `local_ip` (the engine's address of that family) to `server`,
    /// with `tls` over the connection once it is up.
    pub(super) fn connect(local_ip: IpAddr, server: SocketAddr, tls: Option<TlsSession>) -> io::Result<Self> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(server),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.bind(&SocketAddr::new(local_ip, 0).into())?;
        socket.set_nonblocking(true)?;
        // ICE checks and SCTP are latency-bound; Nagle would hold them back.
        socket.set_tcp_nodelay(true)?;
        // A non-blocking connect reports "in progress" (an error kind std names only on
        // nightly); the outcome then comes from `SO_ERROR`. Errors known at once are returned.
        match socket.connect(&server.into()) {
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionRefused
                        | ErrorKind::NetworkUnreachable
                        | ErrorKind::HostUnreachable
                        | ErrorKind::AddrNotAvailable
                        | ErrorKind::PermissionDenied
                        | ErrorKind::InvalidInput
                ) =>
            {
                return Err(e);
            }
            Ok(()) | Err(_) => {}
        }
        let stream = TcpStream::from(socket);
        let local = stream.local_addr()?;
        Ok(Self {
            stream,
            local,
            connected: false,
            tls,
            ended: None,
            incoming: Vec::new(),
            backlog: Vec::new(),
        })
    }

    /// What runs under the TURN messages: "TLS" or "TCP", for reasons given to the user.
    pub(super) fn transport_name(&self) -> &'static str {
        if self.tls.is_some() { "TLS" } else { "TCP" }
    }

    /// Whether the TCP connection is up (the TLS handshake may still run).
    pub(super) fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether TURN frames can flow: connected, and the TLS handshake done.
    pub(super) fn is_ready(&self) -> bool {
        self.connected && self.ended.is_none() && self.tls.as_ref().is_none_or(|t| !t.is_handshaking())
    }

    /// Whether the link is up ([`is_ready`](Self::is_ready)); `Err` once it failed.
    pub(super) fn poll_ready(&mut self) -> io::Result<bool> {
        if let Some(why) = &self.ended {
            return Err(io::Error::new(ErrorKind::ConnectionReset, why.clone()));
        }
        if !self.connected {
            if let Some(e) = self.stream.take_error()? {
                return Err(e);
            }
            match self.stream.peer_addr() {
                Ok(_) => self.connected = true,
                Err(e) if e.kind() == ErrorKind::NotConnected => return Ok(false),
                Err(e) => return Err(e),
            }
            // The ClientHello goes out now; the rest of the handshake runs in the reads.
            self.write_backlog();
        }
        Ok(self.is_ready())
    }

    /// Moves the TLS records rustls has sealed into the backlog (writing into a `Vec` cannot
    /// fail), so that everything waiting to be written is counted in one place.
    fn take_records(&mut self) {
        let Some(tls) = &mut self.tls else { return };
        while tls.wants_write() {
            if !matches!(tls.write_to(&mut self.backlog), Ok(n) if n > 0) {
                break;
            }
        }
    }

    /// Writes what the kernel takes of the backlog.
    pub(super) fn write_backlog(&mut self) {
        self.take_records();
        while self.connected && !self.backlog.is_empty() {
            match self.stream.write(&self.backlog) {
                Ok(0) | Err(_) => break,
                Ok(n) => drop(self.backlog.drain(..n)),
            }
        }
    }

    /// Queues one whole frame (or drops it whole when the backlog is full); false if dropped.
    /// ChannelData is padded to a multiple of 4 bytes, as streams need (RFC 8656 §12.5), which
    /// turn-client-proto 0.7.3 leaves out.
    pub(super) fn send(&mut self, frame: &[u8]) -> bool {
        let padding =
            if frame.first().is_some_and(|b| b & 0xC0 == 0x40) { (4 - frame.len() % 4) % 4 } else { 0 };
        if padding == 0 {
            return self.send_padded(frame);
        }
        let mut padded = Vec::with_capacity(frame.len() + padding);
        padded.extend_from_slice(frame);
        padded.resize(frame.len() + padding, 0);
        self.send_padded(&padded)
    }

    fn send_padded(&mut self, frame: &[u8]) -> bool {
        if self.ended.is_some() {
            return false;
        }
        self.write_backlog();
        if self.tls.is_some() {
            return self.seal(frame);
        }
        if self.connected && self.backlog.is_empty() {
            match self.stream.write(frame) {
                Ok(n) if n == frame.len() => return true,
                Ok(n) => {
                    self.backlog.extend_from_slice(&frame[n..]);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
        }
        if self.backlog.len() + frame.len() > MAX_TCP_BACKLOG {
            return false;
        }
        self.backlog.extend_from_slice(frame);
        true
    }

    /// Seals a frame into TLS records at the end of the backlog and writes what the kernel
    /// takes; dropped whole when its records would not fit in the backlog, or before the
    /// handshake completed (the client is not driven until then).
    fn seal(&mut self, frame: &[u8]) -> bool {
        let sealed = frame.len() + (frame.len() / 16_384 + 1) * TLS_RECORD_OVERHEAD;
        if !self.is_ready() || self.backlog.len() + sealed > MAX_TCP_BACKLOG {
            return false;
        }
        let mut offset = 0;
        while offset < frame.len() {
            let Some(tls) = &mut self.tls else { return false };
            // rustls takes at most its buffer limit at a time; the records are moved out
            // before each next part, so the whole frame goes in.
            match tls.encrypt(&frame[offset..]) {
                Ok(n) if n > 0 => offset += n,
                _ => return false,
            }
            self.take_records();
        }
        self.write_backlog();
        true
    }

    /// One read from the server (decrypted, with TLS) appended to `incoming`: the bytes taken
    /// from the socket, or `None` when there is nothing more to read now or the link ended
    /// (the reason kept for [`poll_ready`](Self::poll_ready)).
    pub(super) fn read_some(&mut self) -> Option<usize> {
        if !self.connected || self.ended.is_some() {
            return None;
        }
        let result = match &mut self.tls {
            None => {
                let mut buf = [0u8; 4096];
                let read = self.stream.read(&mut buf);
                if let Ok(n) = read {
                    self.incoming.extend_from_slice(&buf[..n]);
                }
                read
            }
            // What rustls has to write while reading (an alert when the session fails) goes
            // through the backlog, behind the records already there.
            Some(tls) => tls.read_from(&mut Pipe { stream: &self.stream, backlog: &mut self.backlog }),
        };
        let n = match result {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => return Some(0),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(e) => {
                self.ended = Some(match TlsError::from_io(&e) {
                    Some(tls) => tls.to_string(),
                    None => e.to_string(),
                });
                self.write_backlog();
                return None;
            }
        };
        let mut closed = n == 0;
        if let Some(tls) = &mut self.tls {
            loop {
                match tls.plaintext() {
                    Plaintext::Data(data) => {
                        let len = data.len();
                        self.incoming.extend_from_slice(data);
                        tls.consume(len);
                    }
                    Plaintext::Empty => break,
                    Plaintext::Closed | Plaintext::Truncated => {
                        closed = true;
                        break;
                    }
                }
            }
            // Handshake messages of ours, or a key update, that reading produced.
            self.write_backlog();
        }
        if closed {
            self.ended = Some(String::from("the server closed the connection"));
            return None;
        }
        Some(n)
    }

    /// Marks the link broken (the server sent what is no TURN stream).
    pub(super) fn end(&mut self, why: &str) {
        self.ended = Some(why.to_string());
    }

    /// Ends the TLS session with a `close_notify` (best effort) before the link is dropped.
    pub(super) fn close(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
        }
        self.write_backlog();
    }
}

/// The socket to read TLS records from, and the backlog to put what rustls writes meanwhile.
struct Pipe<'a> {
    stream: &'a TcpStream,
    backlog: &'a mut Vec<u8>,
}

impl Read for Pipe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for Pipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.backlog.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_frames_are_cut_at_their_length_and_channel_data_padding() {
        // A STUN message header announcing 4 bytes of attributes.
        let mut stun = vec![0x01, 0x01, 0x00, 0x04];
        stun.extend_from_slice(&[0; 20]);
        assert_eq!(stream_frame(&stun), Ok(Some((24, 24))));
        assert_eq!(stream_frame(&stun[..23]), Ok(None));
        // ChannelData of 5 bytes: 9 with its header, 12 with the padding, which must be there.
        let channel = [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0, 0x40];
        assert_eq!(stream_frame(&channel), Ok(Some((12, 9))));
        assert_eq!(stream_frame(&channel[..11]), Ok(None));
        assert_eq!(stream_frame(&[0x40]), Ok(None));
        // Neither (the top bits 10 or 11): the stream is broken.
        assert_eq!(stream_frame(&[0x80, 0, 0, 0]), Err(()));
        assert_eq!(stream_frame(&[0xC0, 0, 0, 0]), Err(()));
        // The longest frame announced waits for its bytes.
        assert_eq!(stream_frame(&[0x7F, 0xFF, 0xFF, 0xFF]), Ok(None));
    }

    /// A TLS server on loopback that completes its handshake, waits for the number of bytes to
    /// read (not reading meanwhile, so the client's buffers fill), and returns what it read.
    fn stalled_tls_server()
    -> (SocketAddr, Vec<u8>, std::sync::mpsc::Sender<usize>, std::thread::JoinHandle<Vec<u8>>) {
        use rcgen::{CertificateParams, KeyPair};
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().self_signed(&key).unwrap();
        let options =
            crate::tls::TlsOptions::server(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
        let config = options.server_config().unwrap().clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (expect, expected) = std::sync::mpsc::channel::<usize>();
        let server = std::thread::spawn(move || {
            let (mut tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut conn = rustls::ServerConnection::new(config).unwrap();
            while conn.is_handshaking() {
                conn.complete_io(&mut tcp).unwrap();
            }
            let expected = expected.recv().unwrap();
            let mut plain = Vec::new();
            let mut chunk = [0u8; 16_384];
            while plain.len() < expected {
                if conn.read_tls(&mut tcp).unwrap() == 0 {
                    break;
                }
                conn.process_new_packets().unwrap();
                while let Ok(n) = conn.reader().read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    plain.extend_from_slice(&chunk[..n]);
                }
            }
            plain
        });
        (addr, cert.der().to_vec(), expect, server)
    }

    #[test]
    fn a_tls_link_bounds_its_backlog_with_what_rustls_sealed_and_drops_frames_whole() {
        let (server, ca, expect, reader) = stalled_tls_server();
        let options = crate::tls::TlsOptions::client_also_trusting([ca.as_slice()]).unwrap();
        let session = TlsSession::client(&options, "127.0.0.1").unwrap();
        let mut link = TcpLink::connect(server.ip(), server, Some(session)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !link.poll_ready().unwrap() {
            assert!(std::time::Instant::now() < deadline, "no TLS handshake");
            link.read_some();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(link.transport_name(), "TLS");
        // ChannelData frames of 60000 bytes (no padding), each filled with its number, until
        // one is refused: the server reads nothing, so the kernel's buffers fill first.
        let frame = |i: usize| {
            let mut f = vec![0x40, 0x00, 0xEA, 0x60];
            f.resize(4 + 60_000, i as u8);
            f
        };
        let mut accepted = 0;
        while link.send(&frame(accepted)) {
            accepted += 1;
            assert!(accepted < 2_000, "the backlog never filled");
        }
        eprintln!(
            "{accepted} frames taken, {} bytes in the backlog at the first refusal",
            link.backlog.len()
        );
        // Refused because the backlog was full (less room than a sealed frame), not for an error.
        assert!(link.backlog.len() <= MAX_TCP_BACKLOG, "{}", link.backlog.len());
        assert!(
            link.backlog.len() > MAX_TCP_BACKLOG - 60_004 - 4 * TLS_RECORD_OVERHEAD,
            "{}",
            link.backlog.len()
        );
        assert!(
            link.tls.as_ref().is_some_and(|t| !t.wants_write()),
            "rustls holds nothing beyond the backlog"
        );
        // The server reads now: every accepted frame arrives whole and in order, no other.
        expect.send(accepted * 60_004).unwrap();
        while !link.backlog.is_empty() {
            assert!(std::time::Instant::now() < deadline + Duration::from_secs(10), "backlog not written");
            link.write_backlog();
            std::thread::sleep(Duration::from_millis(1));
        }
        let plain = reader.join().unwrap();
        assert_eq!(plain.len(), accepted * 60_004);
        for (i, got) in plain.chunks(60_004).enumerate() {
            assert_eq!(stream_frame(got), Ok(Some((60_004, 60_004))));
            assert!(got[4..].iter().all(|&b| b == i as u8), "frame {i}");
        }
    }
}
