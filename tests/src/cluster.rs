//! A NATS server for the cluster tests (the distribution's `nats-server`, JetStream on, on a
//! free loopback port, in a temporary store directory) and a forger that publishes arbitrary
//! bytes on any subject, as anyone with access to the broker could.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// A running `nats-server`, stopped (and its store removed) on drop.
pub struct Nats {
    child: Child,
    addr: SocketAddr,
    store: PathBuf,
}

/// Where `nats-server` is: `$NATS_SERVER`, else the Debian package's path, else `PATH`.
fn program() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return path.into();
    }
    let debian = PathBuf::from("/usr/sbin/nats-server");
    if debian.is_file() { debian } else { PathBuf::from("nats-server") }
}

impl Nats {
    /// Starts `nats-server -js` on a free loopback port and waits until it accepts clients.
    ///
    /// # Panics
    /// If it is not installed (`apt-get install nats-server`) or does not start within 10 s.
    #[must_use]
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let store = std::env::temp_dir().join(format!("multipeer-nats-{}-{port}", std::process::id()));
        let child = Self::spawn(port, &store);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let nats = Self { child, addr, store };
        nats.wait_listening();
        nats
    }

    fn spawn(port: u16, store: &std::path::Path) -> Child {
        Command::new(program())
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (apt-get install nats-server)")
    }

    fn wait_listening(&self) {
        let end = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.addr).is_err() {
            assert!(Instant::now() < end, "nats-server did not listen on {}", self.addr);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (a broker outage); [`restart`](Self::restart) brings it back.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port with the same store.
    ///
    /// # Panics
    /// If it does not listen within 10 s.
    pub fn restart(&mut self) {
        self.child = Self::spawn(self.addr.port(), &self.store);
        self.wait_listening();
    }

    /// `nats://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Publishes `payload` on `subject` over a connection of its own (the NATS text protocol's
    /// `CONNECT` and `PUB`, then a `PING` answered once the server has taken the message).
    ///
    /// # Panics
    /// If the server does not take it.
    pub fn forge(&self, subject: &str, payload: &[u8]) {
        let mut stream = TcpStream::connect(self.addr).expect("connect to nats-server");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut info = String::new();
        reader.read_line(&mut info).expect("INFO");
        assert!(info.starts_with("INFO"), "{info}");
        let mut out = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nPUB {subject} {}\r\n",
            payload.len()
        )
        .into_bytes();
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\nPING\r\n");
        stream.write_all(&out).expect("publish");
        let mut pong = String::new();
        reader.read_line(&mut pong).expect("PONG");
        assert!(pong.starts_with("PONG"), "nats-server refused the message: {pong}");
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
