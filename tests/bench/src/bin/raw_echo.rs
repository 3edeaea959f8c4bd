//! Raw TCP echo server on mio, one thread: the ceiling any WebSocket echo server is measured
//! against (same event loop shape as the multipeer servers, no framing at all).
//!
//! usage: raw_echo PORT

use std::io::{ErrorKind, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet written back (the socket's send buffer was full).
    backlog: Vec<u8>,
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(9001);
    let mut listener = TcpListener::bind(([127, 0, 0, 1], port).into())?;
    let mut poll = Poll::new()?;
    poll.registry().register(&mut listener, Token(0), Interest::READABLE)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    eprintln!("raw_echo: listening on 127.0.0.1:{port}");
    loop {
        poll.poll(&mut events, None)?;
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
                    conns[i] = Some(Conn { stream, backlog: Vec::new() });
                }
                continue;
            }
            let i = ev.token().0 - 1;
            let Some(conn) = conns[i].as_mut() else { continue };
            if service(conn, &mut buf).is_err() {
                let mut c = conns[i].take().expect("present");
                let _ = poll.registry().deregister(&mut c.stream);
                free.push(i);
            }
        }
    }
}

/// Most bytes read before they are written back, so one write serves many reads.
const COALESCE: usize = 256 * 1024;

/// Reads until the socket would block, then echoes everything in one write: the same
/// one-write-per-readiness shape as the WebSocket servers, so raw TCP is their ceiling.
fn service(conn: &mut Conn, buf: &mut [u8]) -> Result<(), ()> {
    if !flush(conn)? {
        return Ok(());
    }
    loop {
        match conn.stream.read(buf) {
            Ok(0) => return Err(()),
            Ok(n) => {
                conn.backlog.extend_from_slice(&buf[..n]);
                if conn.backlog.len() >= COALESCE && !flush(conn)? {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    flush(conn).map(|_| ())
}

/// Writes the backlog; `Ok(false)` when the socket is full.
fn flush(conn: &mut Conn) -> Result<bool, ()> {
    while !conn.backlog.is_empty() {
        match conn.stream.write(&conn.backlog) {
            Ok(n) => {
                conn.backlog.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    Ok(true)
}
