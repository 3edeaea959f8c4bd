//! Codec micro-benchmarks (issue 7): decode (header + unmask + UTF-8 for text) and encode
//! (header + mask) of one message, for multipeer, tungstenite, fastwebsockets and
//! embedded-websocket, with a memcpy of the same bytes as the physical limit; and the server's
//! handshake (parse the request, compute the accept key, write the response).
//!
//! Every decoder starts from the encoded frame in memory and ends with the message in memory
//! the library owns (its message queue, its read buffer, or the caller's `to` buffer), which
//! is what each does with bytes from a socket: multipeer copies-and-unmasks from the caller's
//! slice into its queue in one pass; tungstenite and fastwebsockets read from a stream into
//! their buffer (here the stream is in memory, so that read is a memcpy) and unmask in place;
//! embedded-websocket unmasks from `from` into `to`.
//!
//! Throughput is payload bytes per second; criterion reports it next to each time.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use multipeer::ws::{self, Connection, MessageKind};
use multipeer::{Instant, VecStorage};
use multipeer_bench::wire;

const SIZES: [usize; 6] = [16, 125, 1024, 16 * 1024, 64 * 1024, 1024 * 1024];
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn label(size: usize) -> String {
    match size {
        s if s >= 1024 * 1024 => format!("{}MiB", s / (1024 * 1024)),
        s if s >= 1024 => format!("{}KiB", s / 1024),
        s => format!("{s}B"),
    }
}

/// ASCII payload: valid UTF-8 for text frames, same bytes for binary ones.
fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

fn opcode(text: bool) -> u8 {
    if text { 1 } else { 2 }
}

/// A frame as the peer of `role` sends it: masked towards a server, plain towards a client.
fn frame_to(server: bool, text: bool, data: &[u8]) -> Vec<u8> {
    if server { wire::client_frame(opcode(text), data, MASK) } else { wire::server_frame(opcode(text), data) }
}

// ----- multipeer ---------------------------------------------------------------------------

fn mp_config() -> ws::Config {
    // Room for the 1 MiB case, and buffers kept while busy as `peer::Server` keeps them
    // (`ServerConfig::default`); everything else is Godot's default.
    ws::Config {
        max_message_size: 2 << 20,
        outbound_buffer_size: 2 << 20,
        buffer_release_delay: Some(std::time::Duration::from_secs(1)),
        ..ws::Config::default()
    }
}

type MpServer = Connection<VecStorage>;
type MpClient = Connection<VecStorage, chacha20::ChaCha12Rng>;

fn drain<S: multipeer::Storage, R: ws::MaskKeys>(conn: &mut Connection<S, R>) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = conn.poll_transmit() {
        out.extend_from_slice(b);
        let n = b.len();
        conn.consume_transmit(n);
    }
    out
}

/// An open client/server pair, handshaken through each other.
fn mp_pair() -> (MpClient, MpServer) {
    use multipeer::rand_core::SeedableRng as _;
    let now = Instant::ZERO;
    let req = ws::handshake::ClientRequest {
        host: "localhost",
        port: None,
        resource: "/",
        protocols: &[],
        extra_headers: &[],
    };
    let mut client =
        MpClient::client(now, &req, mp_config(), chacha20::ChaCha12Rng::seed_from_u64(7)).expect("client");
    let mut server = MpServer::server(now, mp_config());
    let request = drain(&mut client);
    assert_eq!(server.handle_input(now, &request), request.len());
    assert_eq!(server.poll_event(), Some(ws::Event::Request));
    server.accept(now, None, &[]).expect("accept");
    let response = drain(&mut server);
    assert_eq!(client.handle_input(now, &response), response.len());
    while client.poll_event().is_some() {}
    while server.poll_event().is_some() {}
    (client, server)
}

fn mp_decode<S: multipeer::Storage, R: ws::MaskKeys>(conn: &mut Connection<S, R>, frame: &[u8]) {
    let used = conn.handle_input(Instant::ZERO, frame);
    debug_assert_eq!(used, frame.len());
    black_box(conn.peek_message());
    conn.pop_message();
}

fn mp_encode<S: multipeer::Storage, R: ws::MaskKeys>(conn: &mut Connection<S, R>, data: &[u8]) {
    conn.send(MessageKind::Binary, data).expect("send");
    while let Some(b) = conn.poll_transmit() {
        let n = black_box(b).len();
        conn.consume_transmit(n);
    }
}

// ----- in-memory streams for the stream-based libraries -------------------------------------

/// A stream that yields the same encoded frame forever and swallows writes.
struct Cycle {
    data: Vec<u8>,
    at: usize,
}

impl Cycle {
    fn new(data: Vec<u8>) -> Self {
        Self { data, at: 0 }
    }

    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at = (self.at + n) % self.data.len();
        n
    }
}

impl Read for Cycle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.fill(buf))
    }
}

impl Write for Cycle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        black_box(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl tokio::io::AsyncRead for Cycle {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Cycle {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        black_box(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(bufs.iter().map(|b| black_box(b).len()).sum()))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Polls a future that never waits (its stream is in memory) to completion.
fn now_or_never<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("in-memory stream never waits"),
    }
}

// ----- tungstenite ----------------------------------------------------------------------------

fn tung_role(server: bool) -> tungstenite::protocol::Role {
    if server { tungstenite::protocol::Role::Server } else { tungstenite::protocol::Role::Client }
}

fn tung_socket(server: bool, stream: Cycle) -> tungstenite::WebSocket<Cycle> {
    tungstenite::WebSocket::from_raw_socket(stream, tung_role(server), None)
}

// ----- fastwebsockets -----------------------------------------------------------------------

fn fws_role(server: bool) -> fastwebsockets::Role {
    if server { fastwebsockets::Role::Server } else { fastwebsockets::Role::Client }
}

// ----- embedded-websocket -------------------------------------------------------------------

/// A xorshift generator for embedded-websocket's client masks (its API wants `RngCore`).
struct XorShift(u64);

impl rand_core::RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

fn ews_server() -> embedded_websocket::WebSocketServer {
    let mut ws = embedded_websocket::WebSocketServer::new_server();
    ws.state = embedded_websocket::WebSocketState::Open;
    ws
}

fn ews_client() -> embedded_websocket::WebSocketClient<XorShift> {
    let mut ws = embedded_websocket::WebSocketClient::new_client(XorShift(0x9e37_79b9_7f4a_7c15));
    ws.state = embedded_websocket::WebSocketState::Open;
    ws
}

// ----- benches -------------------------------------------------------------------------------

fn decode(c: &mut Criterion) {
    for (server, role) in [(true, "server"), (false, "client")] {
        for text in [false, true] {
            let kind = if text { "text" } else { "binary" };
            let mut g = c.benchmark_group(format!("decode/{role}/{kind}"));
            for size in SIZES {
                let data = payload(size);
                let frame = frame_to(server, text, &data);
                g.throughput(Throughput::Bytes(size as u64));
                let id = |lib: &str| BenchmarkId::new(lib, label(size));

                let mut dst = vec![0u8; size];
                g.bench_function(id("memcpy"), |b| {
                    b.iter(|| {
                        dst.copy_from_slice(black_box(&data));
                        black_box(&dst);
                    })
                });

                let (mut client, mut srv) = mp_pair();
                g.bench_function(id("multipeer"), |b| {
                    if server {
                        b.iter(|| mp_decode(&mut srv, black_box(&frame)));
                    } else {
                        b.iter(|| mp_decode(&mut client, black_box(&frame)));
                    }
                });

                let mut t = tung_socket(server, Cycle::new(frame.clone()));
                g.bench_function(id("tungstenite"), |b| {
                    b.iter(|| black_box(t.read().expect("tungstenite read")));
                });

                let mut f =
                    fastwebsockets::WebSocket::after_handshake(Cycle::new(frame.clone()), fws_role(server));
                f.set_max_message_size(4 << 20);
                g.bench_function(id("fastwebsockets"), |b| {
                    b.iter(|| {
                        let frame = now_or_never(f.read_frame()).expect("fastwebsockets read");
                        black_box(&frame.payload[..]);
                    })
                });

                let mut to = vec![0u8; size];
                let mut es = ews_server();
                let mut ec = ews_client();
                g.bench_function(id("embedded-websocket"), |b| {
                    b.iter(|| {
                        let r = if server {
                            es.read(black_box(&frame), &mut to)
                        } else {
                            ec.read(black_box(&frame), &mut to)
                        }
                        .expect("embedded read");
                        debug_assert!(r.end_of_message && r.len_to == size);
                        // embedded-websocket leaves UTF-8 to the caller; validate as a user must.
                        if text {
                            black_box(std::str::from_utf8(&to[..r.len_to]).is_ok());
                        }
                        black_box(&to);
                    })
                });
            }
            g.finish();
        }
    }
}

fn encode(c: &mut Criterion) {
    for (server, role) in [(true, "server"), (false, "client")] {
        let mut g = c.benchmark_group(format!("encode/{role}/binary"));
        for size in SIZES {
            let data = payload(size);
            g.throughput(Throughput::Bytes(size as u64));
            let id = |lib: &str| BenchmarkId::new(lib, label(size));

            let mut dst = vec![0u8; size];
            g.bench_function(id("memcpy"), |b| {
                b.iter(|| {
                    dst.copy_from_slice(black_box(&data));
                    black_box(&dst);
                })
            });

            let (mut client, mut srv) = mp_pair();
            g.bench_function(id("multipeer"), |b| {
                if server {
                    b.iter(|| mp_encode(&mut srv, black_box(&data)));
                } else {
                    b.iter(|| mp_encode(&mut client, black_box(&data)));
                }
            });

            // tungstenite owns its messages as `Bytes`; cloning one is a reference count, so
            // only the library's own work (header, mask, copy into its write buffer) is timed.
            let msg = tungstenite::Message::Binary(tungstenite::Bytes::from(data.clone()));
            let mut t = tung_socket(server, Cycle::new(vec![0]));
            g.bench_function(id("tungstenite"), |b| {
                b.iter(|| t.send(black_box(msg.clone())).expect("tungstenite send"));
            });

            // fastwebsockets writes small frames through its buffer and large ones (above its
            // 1 KiB writev threshold) straight from the caller's payload; a client masks that
            // payload in place, so it must be the caller's own mutable copy.
            let mut f = fastwebsockets::WebSocket::after_handshake(Cycle::new(vec![0]), fws_role(server));
            let mut owned = data.clone();
            g.bench_function(id("fastwebsockets"), |b| {
                b.iter(|| {
                    let frame = fastwebsockets::Frame::new(
                        true,
                        fastwebsockets::OpCode::Binary,
                        None,
                        fastwebsockets::Payload::BorrowedMut(&mut owned[..]),
                    );
                    now_or_never(f.write_frame(frame)).expect("fastwebsockets write");
                })
            });

            let mut to = vec![0u8; size + 14];
            let mut es = ews_server();
            let mut ec = ews_client();
            g.bench_function(id("embedded-websocket"), |b| {
                b.iter(|| {
                    let n = if server {
                        es.write(
                            embedded_websocket::WebSocketSendMessageType::Binary,
                            true,
                            black_box(&data),
                            &mut to,
                        )
                    } else {
                        ec.write(
                            embedded_websocket::WebSocketSendMessageType::Binary,
                            true,
                            black_box(&data),
                            &mut to,
                        )
                    }
                    .expect("embedded write");
                    black_box(&to[..n]);
                })
            });
        }
        g.finish();
    }
}

const BROWSER_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1:9080\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Godot/4.6\r\n\
Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:9080\r\nAccept-Encoding: gzip, deflate\r\n\r\n";

/// One request in, one response out; the stream for tungstenite's `accept`.
struct OneShot {
    input: &'static [u8],
}

impl Read for OneShot {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for OneShot {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        black_box(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake/server");
    g.throughput(Throughput::Elements(1));
    g.bench_function("multipeer", |b| {
        b.iter(|| {
            let mut conn = MpServer::server(Instant::ZERO, ws::Config::default());
            conn.handle_input(Instant::ZERO, black_box(BROWSER_REQUEST));
            assert_eq!(conn.poll_event(), Some(ws::Event::Request));
            conn.accept(Instant::ZERO, None, &[]).expect("accept");
            black_box(drain(&mut conn));
        })
    });
    g.bench_function("tungstenite", |b| {
        b.iter(|| black_box(tungstenite::accept(OneShot { input: black_box(BROWSER_REQUEST) }).is_ok()))
    });
    g.bench_function("embedded-websocket", |b| {
        let mut out = [0u8; 1024];
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            req.parse(black_box(BROWSER_REQUEST)).expect("parse");
            let ctx = embedded_websocket::read_http_header(req.headers.iter().map(|h| (h.name, h.value)))
                .expect("header")
                .expect("websocket request");
            let mut ws = embedded_websocket::WebSocketServer::new_server();
            let n = ws.server_accept(&ctx.sec_websocket_key, None, &mut out).expect("accept");
            black_box(&out[..n]);
        })
    });
    // fastwebsockets has no handshake of its own: it rides on hyper's HTTP server
    // (`fastwebsockets::upgrade`), so its handshake rate is measured end to end in the loopback
    // connect storm instead.
    g.finish();
}

/// Why the core copies payloads in 2 KiB blocks (`core/src/copy.rs`): one 64 KiB
/// `copy_from_slice` (glibc `memcpy`, `rep movsb` at this size) against the same copy in 2 KiB
/// blocks, with the destination 0, 5 bytes past, and 5 bytes before the source modulo 4 KiB (a
/// queued payload sits 5 bytes into its record, a 64 KiB server frame's 10 bytes into the frame).
fn copy_alignment(c: &mut Criterion) {
    const LEN: usize = 64 * 1024;
    let mut g = c.benchmark_group("copy/64KiB");
    g.throughput(Throughput::Bytes(LEN as u64));
    let src = vec![0x5au8; LEN + 8192];
    let mut dst = vec![0u8; LEN + 8192];
    // Page-aligned starts in both buffers, then the offsets under test.
    let page = |p: *const u8| (4096 - p as usize % 4096) % 4096;
    let (s0, d0) = (page(src.as_ptr()), page(dst.as_ptr()));
    for (name, s_off, d_off) in [("dst=src", 16, 16), ("dst=src+5", 5, 10), ("dst=src-5", 10, 5)] {
        g.bench_function(BenchmarkId::new("memcpy", name), |b| {
            b.iter(|| {
                dst[d0 + d_off..d0 + d_off + LEN]
                    .copy_from_slice(black_box(&src[s0 + s_off..s0 + s_off + LEN]));
                black_box(&dst);
            })
        });
        g.bench_function(BenchmarkId::new("blocks-2KiB", name), |b| {
            b.iter(|| {
                let from = black_box(&src[s0 + s_off..s0 + s_off + LEN]);
                for (d, s) in dst[d0 + d_off..d0 + d_off + LEN].chunks_mut(2048).zip(from.chunks(2048)) {
                    d.copy_from_slice(s);
                }
                black_box(&dst);
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_millis(1200))
        .sample_size(30);
    targets = decode, encode, handshake, copy_alignment
}
criterion_main!(benches);
