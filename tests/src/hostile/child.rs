//! The server in a child process (the `soak_server` binary of this crate, which runs
//! multipeer-mio's `Server::run`), so a test can read its resident memory from `/proc` and stop
//! it, and its status lines as numbers.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

/// One `status` line: `key=value` pairs.
pub type Status = HashMap<String, u64>;

/// A running server child.
pub struct Child {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    addr: SocketAddr,
    last: Status,
}

fn parse(line: &str) -> Status {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect()
}

impl Child {
    /// Starts `bin` (pass `env!("CARGO_BIN_EXE_soak_server")`) with `args` and waits until it
    /// listens.
    ///
    /// # Panics
    /// If it does not start listening within ten seconds.
    #[must_use]
    pub fn start(bin: &str, args: &[&str]) -> Self {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the server child");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(10)).expect("the child listens");
        let addr = first.strip_prefix("listening ").and_then(|a| a.parse().ok()).expect("an address");
        Self { child, stdin, lines, addr, last: Status::new() }
    }

    /// The child's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where it listens.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Its resident memory now and at its peak, in bytes.
    ///
    /// # Panics
    /// If `/proc` cannot be read.
    #[must_use]
    pub fn rss(&self) -> (u64, u64) {
        super::rss(self.pid()).expect("/proc/PID/status")
    }

    /// The latest status line.
    pub fn status(&mut self) -> &Status {
        while let Ok(line) = self.lines.try_recv() {
            self.last = parse(&line);
        }
        &self.last
    }

    /// One value of the latest status line (0 if absent).
    pub fn get(&mut self, key: &str) -> u64 {
        self.status().get(key).copied().unwrap_or(0)
    }

    /// Waits for a status line on which `done` holds; panics with `what` after `limit`.
    pub fn wait(&mut self, what: &str, limit: Duration, done: impl Fn(&Status) -> bool) -> Status {
        let end = Instant::now() + limit;
        loop {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(20)) {
                self.last = parse(&line);
            }
            if !self.last.is_empty() && done(&self.last) {
                return self.last.clone();
            }
            assert!(Instant::now() < end, "timed out waiting for {what}: {:?}", self.last);
        }
    }

    /// Asks it to stop (every peer closed with 1001) and waits for it to exit; returns the
    /// final status line.
    ///
    /// # Panics
    /// If it does not exit within ten seconds, or exits with an error.
    pub fn stop(mut self) -> Status {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"stop\n");
        }
        let end = Instant::now() + Duration::from_secs(10);
        let mut last = None;
        while Instant::now() < end {
            while let Ok(line) = self.lines.try_recv() {
                if line.starts_with("final") {
                    last = Some(parse(&line));
                }
            }
            if let Some(status) = self.child.try_wait().expect("wait") {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    if line.starts_with("final") {
                        last = Some(parse(&line));
                    }
                }
                assert!(status.success(), "server child exited with {status}");
                return last.expect("a final status line");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("server child did not exit");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Our own child, by its handle: never outlive the test.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
