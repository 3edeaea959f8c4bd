//! A Godot multiplayer client on multipeer-mio's `Client`, `ws://` and `wss://`: the
//! stand-in for `tests/interop/godot/g4_client.gd` / `g3_client.gd` that the Godot interop
//! runner uses where a client of ours must speak TLS to a real Godot server (`ci.sh`'s
//! `mio-clients-tls` combinations). The scenes' script is
//! [`multipeer_tests::interop_client`]; this binary drives multipeer-mio's client with it.
//!
//! ```text
//! cargo build -p multipeer-tests --bin mio_client
//! MP_URL=wss://127.0.0.1:9443 MP_TLS=ca MP_TLS_CA=ca.crt MP_NAME=B target/debug/mio_client
//! ```
//!
//! TLS for `wss://`: `MP_TLS=ca` trusts only the PEM certificate `MP_TLS_CA` and checks the
//! host name (`TlsOptions::client_with`, Godot's `TLSOptions.client(cert)`; `MP_TLS_NAME`
//! overrides the name), `MP_TLS=unsafe` trusts anything (`TlsOptions::client_unsafe`), unset
//! uses `TlsOptions::client()` (webpki roots).

use core::time::Duration;
use std::process::ExitCode;
use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::peer::{ClientConfig, MultiplayerPeer as _, PeerId, Protocol, PutError, Target};
use multipeer::ws::{self, CloseCode};
use multipeer_mio::{Client, ClientOptions, ReadBuffer, TlsOptions};
use multipeer_tests::interop_client::{Script, ScriptPeer, env_f64, env_or};

/// The socket side: one io-mio client on its own poll.
struct Net {
    poll: Poll,
    events: Events,
    client: Client,
    buf: ReadBuffer,
}

impl Net {
    /// One turn: wait for readiness (at most `max`), handle it and the timers.
    fn turn(&mut self, max: Duration) {
        let wait = self.client.poll_timeout().map_or(max, |t| t.min(max));
        if let Err(e) = self.poll.poll(&mut self.events, Some(wait)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                println!("INFO poll_error error={}", e.to_string().replace(' ', "_"));
            }
        }
        for event in self.events.iter() {
            self.client.handle_event(self.poll.registry(), event, &mut self.buf);
        }
        self.client.handle_timeout(self.poll.registry(), &mut self.buf);
    }

    fn flush(&mut self) {
        self.client.flush(self.poll.registry(), &mut self.buf);
    }
}

impl ScriptPeer for Net {
    fn send_to(&mut self, target: Target, packet: &[u8]) -> Result<(), PutError> {
        let peer = self.client.peer_mut();
        peer.set_target_peer(target);
        // Written at once, as Godot hands each message to its socket: the outbound limit then
        // bounds what the socket has not taken, not one turn's sends.
        peer.put_packet(packet).inspect(|()| self.flush())
    }

    fn unique_id(&self) -> Option<PeerId> {
        self.client.peer().unique_id()
    }

    fn close_with(&mut self, code: CloseCode, reason: &str) -> bool {
        let now = self.client.now();
        let closed = self.client.peer_mut().disconnect_peer_with(now, PeerId::SERVER, code, reason, false);
        self.flush();
        closed.is_ok()
    }

    fn close(&mut self) {
        let now = self.client.now();
        self.client.peer_mut().close(now);
        self.flush();
    }
}

/// The TLS options the environment asks for (`MP_TLS`, `MP_TLS_CA`, `MP_TLS_NAME`).
fn tls_options() -> Result<Option<TlsOptions>, String> {
    match env_or("MP_TLS", "").as_str() {
        "" => Ok(None),
        "unsafe" => Ok(Some(TlsOptions::client_unsafe())),
        "ca" => {
            let path = env_or("MP_TLS_CA", "");
            let pem = std::fs::read(&path).map_err(|e| format!("cannot read MP_TLS_CA {path:?}: {e}"))?;
            let name = std::env::var("MP_TLS_NAME").ok().filter(|n| !n.is_empty());
            TlsOptions::client_with(&pem, name.as_deref()).map(Some).map_err(|e| e.to_string())
        }
        other => Err(format!("MP_TLS must be ca or unsafe, not {other:?}")),
    }
}

/// Godot 4.4+'s `WebSocketMultiplayerPeer` defaults, or Godot 3's `set_buffers(64, 1024, 64,
/// 1024)` as 3.x applies it on the wire (as multipeer-std's `WebSocketMultiplayerPeer::godot3`).
fn client_config(version: u8) -> ClientConfig {
    let mut config = ClientConfig::default();
    if version == 3 {
        config.protocol = Protocol::Godot3;
        config.ws = ws::Config {
            max_message_size: 1 << 16,
            max_queued_messages: 1023,
            outbound_buffer_size: (1 << 16) - 1,
            max_outbound_messages: 1024,
            ..ws::Config::GODOT
        };
    }
    if let Ok(outbound) = env_or("MP_OUTBOUND", "").parse::<usize>() {
        config.ws.outbound_buffer_size = outbound;
        println!("INFO outbound_buffer_size={outbound}");
    }
    config
}

fn main() -> ExitCode {
    let url = env_or("MP_URL", "ws://127.0.0.1:9080");
    let version: u8 = if env_or("MP_VERSION", "4") == "3" { 3 } else { 4 };
    let timeout = env_f64("MP_TIMEOUT", 25.0);
    let name = env_or("MP_NAME", "A");
    let scenario = env_or("MP_SCENARIO", "main");
    println!(
        "INFO role=client godot=multipeer-mio-{}_protocol{version} name={name} scenario={scenario} url={url}",
        env!("CARGO_PKG_VERSION"),
    );
    let tls = match tls_options() {
        Ok(tls) => tls,
        Err(e) => {
            println!("RESULT fail reason=tls_options error={}", e.replace(' ', "_"));
            return ExitCode::FAILURE;
        }
    };
    if tls.is_some() {
        println!("INFO tls={} ca={}", env_or("MP_TLS", ""), env_or("MP_TLS_CA", "-"));
    }
    let mut options = ClientOptions::new(client_config(version));
    options.tls = tls;
    let start = Instant::now();
    let net = Poll::new().map_err(|e| e.to_string()).and_then(|poll| {
        let client = Client::connect(poll.registry(), Token(0), &url, &options).map_err(|e| e.to_string())?;
        Ok(Net { poll, events: Events::with_capacity(64), client, buf: ReadBuffer::new() })
    });
    let net = match net {
        Ok(net) => net,
        Err(e) => {
            // Godot returns OK and reports connection_failed later; here connecting can fail at once.
            println!("EVENT create_client err=1 error={}", e.replace(' ', "_"));
            println!("EVENT connection_failed t_ms={}", start.elapsed().as_millis());
            let ok = scenario == "connect-only" && env_or("MP_EXPECT_FAIL", "0") == "1";
            println!("RESULT {}", if ok { "ok" } else { "fail reason=create_client" });
            return if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE };
        }
    };
    println!("EVENT create_client err=0");
    let mut script = Script::from_env(net, version);
    let mut reported_error = false;
    while script.finished().is_none() {
        script.peer.turn(Duration::from_millis(10));
        // In the order things happened, as Godot's signals and packets come.
        loop {
            let client = &mut script.peer.client;
            if client.peer_mut().event_is_next() {
                let Some(event) = client.peer_mut().poll_event() else { break };
                if !reported_error {
                    if let Some(error) = client.error() {
                        // Why the transport failed (a TLS certificate refused, a reset).
                        println!("INFO transport_error error={}", error.to_string().replace(' ', "_"));
                        reported_error = true;
                    }
                }
                script.on_event(event);
                continue;
            }
            let Some(packet) = client.peer().peek_packet() else { break };
            let (from, data) = (packet.info.from, packet.data.to_vec());
            client.peer_mut().pop_packet();
            script.on_packet(from, &data);
        }
        script.step(timeout);
        script.peer.flush();
    }
    // Let a last Close frame or packet reach the wire before the process ends.
    let end = Instant::now() + Duration::from_millis(300);
    while !script.peer.client.is_released() && Instant::now() < end {
        script.peer.turn(Duration::from_millis(10));
        script.peer.flush();
    }
    if script.finished() == Some(true) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
