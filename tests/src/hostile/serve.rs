//! The real `multipeer serve` binary in a child process: started on a free loopback port, its
//! once-a-second status lines read as numbers, its resident memory read from `/proc`, stopped
//! with SIGTERM as an operator would.
//!
//! Cargo gives a test the path of its own package's binaries only (`CARGO_BIN_EXE_*`), and
//! `multipeer` belongs to multipeer-mio, so [`binary`] builds it (once per test process, with
//! the cargo and the profile that built the test, into the same target directory) and returns
//! its path. Building first, rather than taking whatever file is there, means a test never runs
//! a stale server.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Instant;

/// The `multipeer` binary, built if needed with the profile of the running test.
///
/// # Panics
/// If it cannot be built.
#[must_use]
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build(None))
}

/// The `multipeer` binary built with the `cluster` feature (`--cluster nats://...`), kept as
/// `multipeer-cluster` beside the default one so that neither build replaces the other's.
///
/// # Panics
/// If it cannot be built.
#[must_use]
pub fn cluster_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let built = build(Some("cluster"));
        let copy = built.with_file_name(format!("multipeer-cluster{}", std::env::consts::EXE_SUFFIX));
        // Copied, then renamed over the old copy: a copy still running elsewhere keeps its file.
        let fresh = copy.with_extension(format!("{}.new", std::process::id()));
        std::fs::copy(&built, &fresh).expect("copy the cluster build of multipeer");
        std::fs::rename(&fresh, &copy).expect("replace the cluster build of multipeer");
        copy
    })
}

fn build(feature: Option<&str>) -> PathBuf {
    // A test runs as TARGET/PROFILE/deps/NAME-HASH, a binary (cluster_bench) as
    // TARGET/PROFILE/NAME; the server goes to TARGET/PROFILE.
    let exe = std::env::current_exe().expect("the test's own path");
    let parent = exe.parent().expect("TARGET/PROFILE");
    let profile_dir =
        if parent.ends_with("deps") { parent.parent().expect("TARGET/PROFILE/deps") } else { parent }
            .to_path_buf();
    let target_dir = profile_dir.parent().expect("TARGET");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let started = Instant::now();
    let mut command = Command::new(cargo);
    // What cargo set for this test's own run would make the build differ from a plain
    // `cargo build` (build scripts see it) and rebuild shared dependencies back and forth.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_the_test =
            ["CARGO_PKG_", "CARGO_BIN_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_PRIMARY_"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
                || ["CARGO_TARGET_TMPDIR", "OUT_DIR", "RUST_TEST_THREADS"].contains(&&*name);
        if set_for_the_test {
            command.env_remove(&*name);
        }
    }
    let output = command
        .args(["build", "--locked", "--quiet", "-p", "multipeer-mio", "--bin", "multipeer", "--profile"])
        .arg(&profile)
        .args(feature.map(|f| ["--features", f]).into_iter().flatten())
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run cargo build for the multipeer binary");
    assert!(
        output.status.success(),
        "cargo build -p multipeer-mio --bin multipeer failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = profile_dir.join(format!("multipeer{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "no binary at {}", path.display());
    eprintln!("multipeer binary: {} (built or checked in {:.1?})", path.display(), started.elapsed());
    path
}

/// One status line of `multipeer serve`, as numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Status {
    /// Joined peers.
    pub peers: u64,
    /// Packets dropped (with a reported reason).
    pub dropped: u64,
    /// Senders waiting for room at a receiver now.
    pub waiting_senders: u64,
    /// Times a sender had to wait.
    pub waits: u64,
    /// Seconds senders spent waiting (one decimal).
    pub waited_secs: f64,
    /// Receivers evicted for not draining.
    pub evicted: u64,
    /// Times a sender was held by its inbound rate limit.
    pub throttled: u64,
    /// Senders disconnected for staying over it.
    pub rate_cut: u64,
}

/// The number after `key ` in `line` (`"waiting senders 2"` → 2).
fn after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    let number: String = rest.trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    number.parse().ok()
}

impl Status {
    /// Parses a status line; `None` for other lines.
    #[must_use]
    pub fn parse(line: &str) -> Option<Self> {
        if !line.contains(" peers (") || !line.contains("| waiting senders") {
            return None;
        }
        let int = |key: &str| after(line, key).map_or(0, |v| v as u64);
        // "waiting senders N (W waits, S s)": the part in brackets only once someone waited.
        let waits = line.find("waiting senders").and_then(|at| {
            let bracket = &line[at..line[at..].find('|').map_or(line.len(), |end| at + end)];
            let inner = bracket.split_once('(')?.1;
            let (w, s) = inner.split_once(" waits, ")?;
            Some((w.trim().parse().ok()?, s.trim_end_matches([')', ' ', 's']).trim().parse().ok()?))
        });
        // "rate-limited T times, C cut off"
        let (throttled, rate_cut) = line.find("rate-limited ").map_or((0, 0), |at| {
            let rest = &line[at..];
            (
                after(rest, "rate-limited").map_or(0, |v| v as u64),
                after(rest, "times,").map_or(0, |v| v as u64),
            )
        });
        Some(Self {
            peers: line.split_whitespace().next()?.parse().ok()?,
            dropped: int("| dropped"),
            waiting_senders: int("| waiting senders"),
            waits: waits.map_or(0, |(w, _)| w),
            waited_secs: waits.map_or(0.0, |(_, s)| s),
            evicted: int("| evicted slow peers"),
            throttled,
            rate_cut,
        })
    }
}

/// A running `multipeer serve`.
pub struct Serve {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    addr: SocketAddr,
    last: Status,
    /// Every status line seen, with when it was read.
    pub history: Vec<(Instant, Status)>,
    /// Other lines (startup, departures summary), for failure messages.
    pub other: Vec<String>,
}

impl Serve {
    /// Starts `multipeer serve --listen 127.0.0.1:0 ARGS` and waits until it listens.
    ///
    /// # Panics
    /// If it does not start listening within ten seconds.
    #[must_use]
    pub fn start(args: &[&str]) -> Self {
        Self::start_binary(binary(), args)
    }

    /// Starts `program serve --listen 127.0.0.1:0 ARGS` (a build of `multipeer`) and waits
    /// until it listens.
    ///
    /// # Panics
    /// If it does not start listening within ten seconds.
    #[must_use]
    pub fn start_binary(program: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(program)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn multipeer serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut other = Vec::new();
        let end = Instant::now() + Duration::from_secs(10);
        let addr = loop {
            let left = end.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).unwrap_or_else(|_| panic!("multipeer serve: {other:?}"));
            let addr = line
                .strip_prefix("multipeer: listening on ws://")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|a| a.parse().ok());
            other.push(line);
            if let Some(addr) = addr {
                break addr;
            }
        };
        Self { child, lines, addr, last: Status::default(), history: Vec::new(), other }
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

    /// Its resident memory now, in bytes.
    ///
    /// # Panics
    /// If `/proc` cannot be read.
    #[must_use]
    pub fn rss(&self) -> u64 {
        super::rss(self.pid()).expect("/proc/PID/status").0
    }

    fn take_line(&mut self, line: String) {
        match Status::parse(&line) {
            Some(status) => {
                self.last = status;
                self.history.push((Instant::now(), status));
            }
            None => self.other.push(line),
        }
    }

    /// The latest status line (one comes each second).
    pub fn status(&mut self) -> Status {
        while let Ok(line) = self.lines.try_recv() {
            self.take_line(line);
        }
        self.last
    }

    /// Waits for a status line on which `done` holds; panics with `what` after `limit`.
    pub fn wait(&mut self, what: &str, limit: Duration, done: impl Fn(&Status) -> bool) -> Status {
        let end = Instant::now() + limit;
        loop {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                self.take_line(line);
            }
            if !self.history.is_empty() && done(&self.last) {
                return self.last;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}: {:?}", self.last);
        }
    }

    /// Waits for a line of its output containing `needle` and returns it; panics after `limit`.
    pub fn wait_line(&mut self, needle: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                let found = line.contains(needle).then(|| line.clone());
                self.take_line(line);
                if let Some(line) = found {
                    return line;
                }
            }
            assert!(Instant::now() < end, "timed out waiting for a line with {needle:?}: {:?}", self.last);
        }
    }

    /// Ends it with SIGKILL, as a crash would (nothing is closed or announced), and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Lines of its output other than status lines, so far.
    pub fn other_lines(&mut self) -> &[String] {
        self.status();
        &self.other
    }

    /// Stops it with SIGTERM (every peer closed with 1001) and waits for it to exit; returns
    /// the last status line and its farewell line.
    ///
    /// # Panics
    /// If it does not exit cleanly within ten seconds.
    pub fn stop(mut self) -> (Status, String) {
        let pid = self.pid().to_string();
        let signalled = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(signalled.success(), "kill -TERM {pid}");
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.take_line(line);
                }
                assert!(status.success(), "multipeer serve exited with {status}: {:?}", self.other);
                let farewell = self.other.iter().rev().find(|l| l.contains("stopped:")).cloned();
                return (self.last, farewell.unwrap_or_default());
            }
            assert!(Instant::now() < end, "multipeer serve did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Our own child, by its handle: never outlive the test.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn status_lines_parse() {
        let line = "3 peers (4 conns) | in 1.2k pkt/s 19.0 MiB/s | out 2.4k pkt/s 38.0 MiB/s | to server 12 \
                    | dropped 2 (too short 2) | rejected 0 | waiting senders 1 (37 waits, 4.5 s) \
                    | evicted slow peers 1 | rate-limited 5 times, 1 cut off";
        let s = Status::parse(line).unwrap();
        assert_eq!((s.peers, s.dropped, s.waiting_senders, s.waits, s.evicted), (3, 2, 1, 37, 1));
        assert!((s.waited_secs - 4.5).abs() < 1e-9);
        assert_eq!((s.throttled, s.rate_cut), (5, 1));
        let quiet = "0 peers (0 conns) | in 0 pkt/s 0 B/s | out 0 pkt/s 0 B/s | to server 0 | dropped 0 \
                     | rejected 0 | waiting senders 0 | evicted slow peers 0";
        assert_eq!(Status::parse(quiet), Some(Status::default()));
        assert_eq!(Status::parse("multipeer: listening on ws://127.0.0.1:9080 (Godot 4, relay on)"), None);
    }
}
