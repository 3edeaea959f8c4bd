//! Sockets whose connection is over: our side is shut down, and the peer's remaining input is
//! read and discarded until it closes too (or a deadline passes), so the kernel never answers
//! unread input with a reset that could destroy our last bytes (a Close frame, an HTTP
//! refusal) on their way out. The same rule as the single-connection driver's linger.

use std::io::{ErrorKind, Read};
use std::net::{Shutdown, TcpStream};
use std::time::Instant as StdInstant;

/// Most read calls per socket in one [`Linger::poll`].
const MAX_READS: usize = 8;

/// Closed connections draining their peer's input.
#[derive(Debug, Default)]
pub(super) struct Linger {
    sockets: Vec<(TcpStream, StdInstant)>,
}

impl Linger {
    /// Shuts our side of `stream` down and keeps reading it until the peer closes or
    /// `until`; a stream whose peer already closed is dropped at once.
    pub(super) fn add(&mut self, stream: TcpStream, peer_closed: bool, until: StdInstant) {
        // The peer may be gone already; there is nothing left to tell it either way.
        let _ = stream.shutdown(Shutdown::Write);
        if !peer_closed {
            self.sockets.push((stream, until));
        }
    }

    /// Discards what arrived; drops the sockets whose peer closed or whose time is up.
    pub(super) fn poll(&mut self, scratch: &mut [u8]) {
        let now = StdInstant::now();
        self.sockets.retain_mut(|(stream, until)| {
            if now >= *until {
                return false;
            }
            for _ in 0..MAX_READS {
                match stream.read(scratch) {
                    Ok(0) => return false,
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                    Err(_) => return false,
                }
            }
            true
        });
    }

    /// When the last lingering socket is dropped at the latest.
    pub(super) fn deadline(&self) -> Option<StdInstant> {
        self.sockets.iter().map(|(_, until)| *until).min()
    }

    /// Whether no socket is lingering.
    pub(super) fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }
}
