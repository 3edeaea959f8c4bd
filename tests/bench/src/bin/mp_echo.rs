//! multipeer WebSocket echo server: `ws::Connection` driven by a minimal mio loop in the shape
//! of multipeer-mio (one shared 64 KiB read buffer, the core takes bytes straight from it,
//! one vectored write per readiness event). It measures the core plus the thinnest adapter.
//!
//! usage: mp_echo PORT

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use multipeer::ws::{self, Connection, Event, State};
use multipeer::{Instant, VecStorage};

struct Conn {
    stream: TcpStream,
    ws: Connection<VecStorage>,
    /// Input the core refused (back-pressure); offered again first.
    held: Vec<u8>,
}

/// Most slices in one vectored write.
const IOV: usize = 64;
/// How often the connections' timers (buffer release, handshake timeout) are looked at.
const TIMER_TICK: Duration = Duration::from_millis(250);

fn config() -> ws::Config {
    // 64 KiB messages (the 10 × 64 KiB case) exceed Godot's 65535-byte default; outbound room
    // for several such echoes in flight; buffers kept while busy, as `peer::Server` keeps them.
    ws::Config {
        max_message_size: 1 << 20,
        outbound_buffer_size: 4 << 20,
        buffer_release_delay: Some(TIMER_TICK * 4),
        ..ws::Config::default()
    }
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(9004);
    let mut listener = TcpListener::bind(([127, 0, 0, 1], port).into())?;
    let mut poll = Poll::new()?;
    poll.registry().register(&mut listener, Token(0), Interest::READABLE)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let start = std::time::Instant::now();
    eprintln!("mp_echo: listening on 127.0.0.1:{port}");
    let mut next_tick = Instant::ZERO + TIMER_TICK;
    loop {
        poll.poll(&mut events, Some(TIMER_TICK))?;
        let now = Instant::from_micros(start.elapsed().as_micros() as u64);
        if now >= next_tick {
            // Timers at a coarse tick, as an adapter with a timer wheel would fire them.
            next_tick = now + TIMER_TICK;
            for conn in conns.iter_mut().flatten() {
                if conn.ws.poll_timeout().is_some_and(|t| t <= now) {
                    conn.ws.handle_timeout(now);
                    // A timer may queue output (a handshake's 408); a failed write shows at the
                    // connection's next readiness event.
                    let _ = flush(conn);
                }
            }
        }
        for ev in &events {
            if ev.token() == Token(0) {
                while let Ok((mut stream, _)) = listener.accept() {
                    let _ = stream.set_nodelay(true);
                    let i = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    poll.registry().register(
                        &mut stream,
                        Token(i + 1),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    conns[i] = Some(Conn { stream, ws: Connection::server(now, config()), held: Vec::new() });
                }
                continue;
            }
            let i = ev.token().0 - 1;
            let Some(conn) = conns[i].as_mut() else { continue };
            if service(conn, now, &mut buf).is_err() {
                let mut c = conns[i].take().expect("present");
                let _ = poll.registry().deregister(&mut c.stream);
                free.push(i);
            }
        }
    }
}

/// Reads until the socket would block (or the core pushes back), echoing every message, then
/// writes everything queued in one vectored write.
fn service(conn: &mut Conn, now: Instant, buf: &mut [u8]) -> Result<(), ()> {
    loop {
        if !conn.held.is_empty() {
            let used = conn.ws.handle_input(now, &conn.held);
            conn.held.drain(..used);
        }
        events(conn, now)?;
        let stalled = echo(conn);
        if stalled || !conn.held.is_empty() {
            // The outbound queue is full: write, and read again only once it drained.
            if !flush(conn)? {
                return Ok(());
            }
            if echo(conn) {
                return Ok(());
            }
            continue;
        }
        match conn.stream.read(buf) {
            Ok(0) => {
                conn.ws.handle_eof(now);
                return Err(());
            }
            Ok(n) => {
                let used = conn.ws.handle_input(now, &buf[..n]);
                if used < n {
                    conn.held.extend_from_slice(&buf[used..n]);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    events(conn, now)?;
    echo(conn);
    flush(conn)?;
    if conn.ws.is_finished() && conn.ws.poll_transmit().is_none() {
        return Err(());
    }
    Ok(())
}

fn events(conn: &mut Conn, now: Instant) -> Result<(), ()> {
    while let Some(ev) = conn.ws.poll_event() {
        match ev {
            Event::Request => conn.ws.accept(now, None, &[]).map_err(|_| ())?,
            Event::HandshakeFailed(_) => return Err(()),
            _ => {}
        }
    }
    Ok(())
}

/// Echoes queued messages; `true` when one did not fit the outbound queue.
fn echo(conn: &mut Conn) -> bool {
    if conn.ws.state() != State::Open {
        while conn.ws.pop_message() {}
        return false;
    }
    // Each message goes from the inbound queue straight into the outbound one; one that does
    // not fit stays queued until the socket takes what is ahead of it.
    loop {
        match conn.ws.forward_message() {
            Ok(Some(_)) => {}
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

/// Writes queued frames; `Ok(false)` when the socket is full.
fn flush(conn: &mut Conn) -> Result<bool, ()> {
    loop {
        let mut chunks: [&[u8]; IOV] = [&[]; IOV];
        let n = conn.ws.transmit_chunks(&mut chunks);
        if n == 0 {
            return Ok(true);
        }
        let mut iov = [IoSlice::new(&[]); IOV];
        for (slot, chunk) in iov.iter_mut().zip(&chunks[..n]) {
            *slot = IoSlice::new(chunk);
        }
        match conn.stream.write_vectored(&iov[..n]) {
            Ok(w) => conn.ws.consume_transmit(w),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
}
