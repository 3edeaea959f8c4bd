//! A server and clients on one mio poll over loopback, with everything they report recorded.
#![allow(dead_code, unreachable_pub)]

use core::net::SocketAddr;
use core::time::Duration;
use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::peer::{Event, MultiplayerPeer, PeerId};
use multipeer_mio::{Client, ClientOptions, ConnectError, ReadBuffer, Server};

/// Tokens from here on are clients (the server's range starts at 0).
const CLIENT_TOKENS: usize = 1 << 20;

/// What one side saw.
#[derive(Debug, Default)]
pub struct Log {
    pub events: Vec<Event>,
    pub packets: Vec<(PeerId, Vec<u8>)>,
    /// While set, packets stay queued in the peer (events are still read).
    pub paused: bool,
}

impl Log {
    pub fn got(&self, from: PeerId, data: &[u8]) -> bool {
        self.packets.iter().any(|(f, d)| *f == from && d == data)
    }

    pub fn got_data(&self, data: &[u8]) -> bool {
        self.packets.iter().any(|(_, d)| d == data)
    }

    fn drain(&mut self, peer: &mut impl MultiplayerPeer) {
        while let Some(event) = peer.poll_event() {
            self.events.push(event);
        }
        while let Some(packet) = peer.peek_packet().filter(|_| !self.paused) {
            self.packets.push((packet.info.from, packet.data.to_vec()));
            peer.pop_packet();
        }
        // Events raised while packets were read.
        while let Some(event) = peer.poll_event() {
            self.events.push(event);
        }
    }
}

/// A server and its clients sharing one poll.
pub struct Net {
    pub poll: Poll,
    events: Events,
    pub server: Server,
    pub clients: Vec<Client>,
    pub buf: ReadBuffer,
    pub server_log: Log,
    pub client_logs: Vec<Log>,
}

impl Net {
    pub fn new(mut server: Server) -> Self {
        let poll = Poll::new().unwrap();
        server.register(poll.registry(), Token(0)).unwrap();
        assert!(server.token_count() < CLIENT_TOKENS);
        Self {
            poll,
            events: Events::with_capacity(256),
            server,
            clients: Vec::new(),
            buf: ReadBuffer::new(),
            server_log: Log::default(),
            client_logs: Vec::new(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addrs()[0]
    }

    /// `scheme://127.0.0.1:port/`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}/", self.addr().port())
    }

    /// Starts a client; returns its index.
    pub fn connect(&mut self, url: &str, options: &ClientOptions) -> Result<usize, ConnectError> {
        let token = Token(CLIENT_TOKENS + self.clients.len());
        let client = Client::connect(self.poll.registry(), token, url, options)?;
        self.clients.push(client);
        self.client_logs.push(Log::default());
        Ok(self.clients.len() - 1)
    }

    pub fn client(&mut self, i: usize) -> &mut multipeer_mio::CoreClient {
        self.clients[i].peer_mut()
    }

    pub fn id(&self, i: usize) -> PeerId {
        self.clients[i].peer().unique_id().expect("client has an id")
    }

    /// One poll of at most `max`, then every timer, every log and every flush.
    pub fn turn(&mut self, max: Duration) {
        let mut sleep = self.server.poll_timeout().map_or(max, |t| t.min(max));
        for c in &self.clients {
            if let Some(t) = c.poll_timeout() {
                sleep = sleep.min(t);
            }
        }
        self.poll.poll(&mut self.events, Some(sleep)).unwrap();
        let registry = self.poll.registry();
        for event in self.events.iter() {
            if self.server.handle_event(registry, event) {
                continue;
            }
            let i = event.token().0 - CLIENT_TOKENS;
            self.clients[i].handle_event(registry, event, &mut self.buf);
        }
        self.server.handle_timeout(registry);
        for c in &mut self.clients {
            c.handle_timeout(registry, &mut self.buf);
        }
        self.server_log.drain(self.server.peer_mut());
        for (c, log) in self.clients.iter_mut().zip(&mut self.client_logs) {
            log.drain(c.peer_mut());
        }
        self.flush();
    }

    /// Writes what commands queued.
    pub fn flush(&mut self) {
        let registry = self.poll.registry();
        self.server.flush(registry);
        for c in &mut self.clients {
            c.flush(registry, &mut self.buf);
        }
    }

    /// Turns until `done` holds or `limit` passes; returns whether it held.
    pub fn drive_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if done(self) {
                return true;
            }
            self.turn(Duration::from_millis(20));
        }
        done(self)
    }

    /// Turns for `time`, whatever happens.
    pub fn drive_for(&mut self, time: Duration) {
        let end = Instant::now() + time;
        while Instant::now() < end {
            self.turn(Duration::from_millis(10));
        }
    }

    /// Whether client `i` finished joining.
    pub fn joined(&self, i: usize) -> bool {
        self.client_logs[i].events.contains(&Event::ConnectionSucceeded)
    }

    /// Whether client `i` failed to join.
    pub fn failed(&self, i: usize) -> bool {
        self.client_logs[i].events.iter().any(|e| matches!(e, Event::ConnectionFailed(_)))
    }
}

/// Certificates made at test time.
#[cfg(feature = "tls")]
pub mod certs {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    /// A CA, as PEM, able to sign leaves.
    pub struct Ca {
        pub pem: String,
        params: CertificateParams,
        key: KeyPair,
    }

    /// A leaf certificate chain and its key, as PEM.
    pub struct Leaf {
        pub chain_pem: String,
        pub key_pem: String,
    }

    impl Ca {
        pub fn new(name: &str) -> Self {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let pem = params.self_signed(&key).unwrap().pem();
            Self { pem, params, key }
        }

        /// A leaf for `names` (DNS names or IP addresses), optionally already expired.
        pub fn leaf(&self, names: &[&str], expired: bool) -> Leaf {
            let key = KeyPair::generate().unwrap();
            let mut params =
                CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
            params.distinguished_name.push(DnType::CommonName, names[0]);
            if expired {
                params.not_before = rcgen::date_time_ymd(2000, 1, 1);
                params.not_after = rcgen::date_time_ymd(2001, 1, 1);
            }
            let issuer = Issuer::from_params(&self.params, &self.key);
            let cert = params.signed_by(&key, &issuer).unwrap();
            Leaf { chain_pem: cert.pem(), key_pem: key.serialize_pem() }
        }
    }

    /// A self-signed leaf for `names`.
    pub fn self_signed(names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.self_signed(&key).unwrap();
        Leaf { chain_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}
