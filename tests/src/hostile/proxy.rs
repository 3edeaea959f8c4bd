//! An impaired link of our own: a TCP proxy on loopback that delays, splits and stalls the
//! byte stream, and can partition or cut it.
//!
//! `tc netem` is not available on these machines (the kernel has no `sch_netem`, and there is
//! no iptables or nft for a random drop), so loss is modelled the way TCP shows it to the
//! application: a lost segment is retransmitted after a timeout, so everything behind it waits
//! (head-of-line blocking). Each segment is delayed by `latency` plus seeded jitter, and with
//! probability `loss` by a retransmission stall of `rto` on top; order is kept, bytes are never
//! dropped or altered, exactly as the kernel would deliver them after recovery.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Instant;

/// How the link misbehaves.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// One-way delay of every segment.
    pub latency: Duration,
    /// Up to this much more, uniformly.
    pub jitter: Duration,
    /// Probability that a segment is "lost" and arrives `rto` later.
    pub loss: f64,
    /// The retransmission stall of a lost segment.
    pub rto: Duration,
    /// Largest segment; reads are split into random pieces of 1 to this many bytes.
    pub max_segment: usize,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for Impairment {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
            loss: 0.02,
            rto: Duration::from_millis(200),
            max_segment: 1400,
            seed: 1,
        }
    }
}

/// Counters of a proxy.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes forwarded, both directions.
    pub bytes: AtomicU64,
    /// Segments forwarded.
    pub segments: AtomicU64,
    /// Segments that took a retransmission stall.
    pub stalls: AtomicU64,
}

/// A running proxy.
pub struct Proxy {
    addr: SocketAddr,
    partitioned: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    /// What went through.
    pub counters: Arc<Counters>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Proxy {
    /// Listens on 127.0.0.1 and forwards every connection to `upstream` through `impairment`.
    ///
    /// # Panics
    /// If it cannot listen.
    #[must_use]
    pub fn start(upstream: SocketAddr, impairment: Impairment) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listen");
        let addr = listener.local_addr().expect("proxy address");
        let partitioned = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let counters = Arc::new(Counters::default());
        {
            let (partitioned, closed, streams, counters) =
                (partitioned.clone(), closed.clone(), streams.clone(), counters.clone());
            listener.set_nonblocking(true).expect("nonblocking listener");
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !closed.load(Ordering::SeqCst) {
                    let Ok((down, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    let _ = down.set_nonblocking(false);
                    let Ok(up) = TcpStream::connect(upstream) else { continue };
                    let _ = (down.set_nodelay(true), up.set_nodelay(true));
                    n += 1;
                    let mut list = streams.lock().unwrap_or_else(PoisonError::into_inner);
                    for (from, to, dir) in [(&down, &up, 0), (&up, &down, 1)] {
                        let (from, to) = (from.try_clone().expect("clone"), to.try_clone().expect("clone"));
                        let seed = impairment.seed ^ (n << 8) ^ dir;
                        pump(
                            from,
                            to,
                            impairment,
                            seed,
                            partitioned.clone(),
                            closed.clone(),
                            counters.clone(),
                        );
                    }
                    list.push(down);
                    list.push(up);
                }
            });
        }
        Self { addr, partitioned, closed, streams, counters }
    }

    /// Where clients connect.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Stops forwarding in both directions without closing anything: a pulled cable, as
    /// both ends see it (their sockets stay open, nothing arrives).
    pub fn partition(&self) {
        self.partitioned.store(true, Ordering::SeqCst);
    }

    /// Ends the partition.
    pub fn heal(&self) {
        self.partitioned.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        for s in self.streams.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// One direction: a reader thread that cuts and schedules segments, a writer thread that
/// delivers them on time and in order. The channel is bounded, so a stalled writer stops the
/// reader and TCP back-pressure reaches the sender, as on a real path.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    imp: Impairment,
    seed: u64,
    partitioned: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let (tx, rx) = mpsc::sync_channel::<(Instant, Vec<u8>)>(256);
    let (w_partitioned, w_closed, w_counters) = (partitioned.clone(), closed.clone(), counters.clone());
    std::thread::spawn(move || {
        let mut rng = Rng(seed.max(1));
        let mut buf = vec![0u8; 64 * 1024];
        let mut last = Instant::now();
        let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
        while !closed.load(Ordering::SeqCst) {
            if partitioned.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    continue;
                }
                Err(_) => break,
            };
            let mut at = 0;
            while at < n {
                let len = (1 + (rng.next() as usize) % imp.max_segment.max(1)).min(n - at);
                let jitter = imp.jitter.mul_f64(rng.unit());
                let mut due = Instant::now() + imp.latency + jitter;
                if rng.unit() < imp.loss {
                    due += imp.rto;
                    counters.stalls.fetch_add(1, Ordering::Relaxed);
                }
                // In order: a segment never overtakes the one before it.
                due = due.max(last);
                last = due;
                if tx.send((due, buf[at..at + len].to_vec())).is_err() {
                    return;
                }
                at += len;
            }
        }
        drop(tx);
    });
    std::thread::spawn(move || {
        while let Ok((due, bytes)) = rx.recv() {
            // A partition holds what is in flight, too.
            while w_partitioned.load(Ordering::SeqCst) && !w_closed.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
            w_counters.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            w_counters.segments.fetch_add(1, Ordering::Relaxed);
        }
        // The source ended: pass the end on (half-close), as the kernel would.
        let _ = to.shutdown(Shutdown::Write);
    });
}
