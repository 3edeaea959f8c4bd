//! The command line: `multipeer serve [OPTIONS]`.

use core::time::Duration;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use lexopt::ValueExt as _;
use multipeer::peer::{Protocol, RoomMode, ServerConfig, validate_room_name, validate_room_prefix};
use multipeer_mio::ListenAddr;

use crate::deflate;

pub(crate) const HELP: &str = concat!(
    "\
multipeer — a Godot multiplayer relay server (WebSocketMultiplayerPeer, Godot 4 and 3)

Usage: multipeer serve [OPTIONS]
       multipeer lobby [OPTIONS]   WebRTC signalling server (Godot's webrtc_signaling demo
                                   protocol); see 'multipeer lobby --help'

Godot clients connect with WebSocketMultiplayerPeer.create_client(\"ws://HOST:PORT\") (or wss://
with --tls-cert/--tls-key). The server is peer 1; it gives each client its id and, for Godot 4,
speaks SceneMultiplayer's relay so clients with multiplayer.server_relay = true see and reach
each other. Packets addressed to the server itself are read and counted.

Options:
  --protocol godot4|godot3     Wire protocol: Godot 4.x/Redot (default) or Godot 3.x
  --no-relay                   Godot 4: do not relay between clients (SceneMultiplayer
                               server_relay off); Godot 3 always relays
  --auth-token TOKEN           Godot 4: clients must authenticate (SceneMultiplayer auth) by
                               sending TOKEN: in the game's peer_authenticating,
                               multiplayer.send_auth(1, token.to_utf8_buffer()) and
                               complete_auth(1). Wrong or missing tokens are closed (1008
                               \"authentication failed\") at the auth timeout; peers are
                               announced and relayed only once admitted. The relay is then
                               SceneMultiplayer's, with the same flow control as below. One
                               world only: --rooms defaults to off with it, and other modes
                               are refused (SceneMultiplayer's relay knows no rooms yet)
  --auth-timeout SECS          SceneMultiplayer auth_timeout with --auth-token (3)
  --listen ADDR                Where to listen, repeatable; default 127.0.0.1:9080.
                               ADDR is IP:PORT, [IPv6]:PORT, or *:PORT for every interface
                               (Godot's bind_address \"*\")
  --tls-cert FILE              PEM certificate chain, leaf first (TLSOptions.server certificate)
  --tls-key FILE               PEM private key (TLSOptions.server key); both make it wss://
  --max-peers N                Most connections at once, joined or handshaking (default 4096);
                               more are closed at accept
  --refuse-new-connections     Answer new upgrade requests with 503
                               (MultiplayerPeer.refuse_new_connections)
  --allowed-origin ORIGIN      Accept browser pages from this Origin only (e.g.
                               https://game.example), repeatable; other Origins get 403.
                               Native clients send no Origin and always pass
  --max-connections-per-ip N   Most connections at once from one IP address (handshaking or
                               joined); more are closed at accept (default no limit)

Rooms (each an independent world: its own peers, ids, relay, ADD_PEER/DEL_PEER and limits):
  --rooms path|declared|off    path (default): the URL path names the room, ws://HOST:PORT/NAME
                               (create_client's URL); ws://HOST:PORT/ is the default room, so
                               clients that give no path all meet there. declared: only rooms
                               given with --room exist, others get HTTP 404. off: one world
                               whatever the path (Godot's own server ignores the path)
  --room NAME                  A room that always exists (repeatable); '/' is the default room.
                               Names: 1-64 of A-Z a-z 0-9 - _ . (not starting with '.');
                               other paths get HTTP 400
  --room-prefix /PREFIX        Rooms live under this path (behind a path-routing proxy):
                               /PREFIX/NAME, /PREFIX is the default room, other paths get 404
  --max-rooms N                Most rooms at once, declared ones included (4096); a request
                               for one more gets HTTP 503
  --max-peers-per-room N       Most members of one room, on every instance of a cluster
                               (default only --max-peers); one more gets HTTP 503
One protocol per server: Godot 3 and Godot 4 clients never share a room, so a deployment
serving both runs one server per protocol (two ports).

Cluster (rooms shared by several instances through NATS; see CLUSTER.md; built with the
`cluster` feature):
  --cluster URL                Join the cluster through this NATS server (nats://HOST:4222,
                               tls://HOST:4222; JetStream on, for the node-index lease). A
                               room's members may then live on any instance
  --node NAME                  This instance's name in logs and status (default: the host:port
                               of the first --listen)
  --node-index K               Hold node index K (0-63) rather than the first free one; refused
                               while a live instance holds it
  --cluster-name NAME          Subject namespace mp.NAME.> and lease bucket (default multipeer)
  --cluster-creds FILE         NATS credentials file (user JWT and nkey seed)
  --cluster-tls-ca FILE        CA certificate (PEM) of the broker's TLS certificate; requires TLS

Relay flow control (a sender waits while a receiver's queue is full; nothing is dropped):
  --slow-peer-timeout SECS     Disconnect (1008) a peer whose queue stays full with a sender
                               waiting and that writes nothing for this long; 0 = never (10)
  --max-inbound-packets-per-second N
                               Most packets a second routed from one peer; beyond it its input
                               waits, and a peer over it for the slow-peer timeout is
                               disconnected (default no limit, as Godot)
  --max-inbound-bytes-per-second BYTES
                               The same for payload bytes (default no limit)

WebSocketMultiplayerPeer properties (Godot 4.4 defaults; with --protocol godot3, 3.x's
set_buffers(64, 1024, 64, 1024) as 3.x applies it on the wire):
  --inbound-buffer-size BYTES  inbound_buffer_size: largest message and most bytes queued from
                               one peer (65535; Godot 3: 65536)
  --outbound-buffer-size BYTES outbound_buffer_size: largest message to one peer (65535)
  --max-queued-packets N       max_queued_packets, each way (4096; Godot 3: 1023 in, 1024 out)
  --handshake-timeout SECS     handshake_timeout, TCP accept to WebSocket open, TLS included (3)
  --heartbeat-interval SECS    heartbeat_interval: ping this often, drop peers that do not
                               answer; 0 = off (default off)
  --supported-protocol P       supported_protocols entry, repeatable
  --handshake-header LINE      handshake_headers entry (\"Name: value\"), repeatable

",
    deflate::deflate_help!(),
    "
Output:
  --quiet                      No status line
  --verbose                    Also log every event and every packet sent to the server
  --stats-json FILE            Each second, replace FILE with the counters in JSON: totals,
                               every room (peers, connections, traffic) and the busiest rooms
                               (written to FILE.tmp, then renamed: readers never see half)
  -h, --help                   This help
  -V, --version                The version

Each second a status line on stderr shows peers, rooms and the busiest ones, packets and bytes
per second in and out, and packets dropped, connections rejected, senders waiting for slow receivers and slow peers evicted.
Ctrl-C or SIGTERM closes every peer with code 1001 (going away) and exits once they are gone
(a second Ctrl-C exits at once).

Exit status: 0 after a clean shutdown, 1 when the server cannot start (address in use,
unreadable certificate or key), 2 for bad command-line usage.
"
);

/// Godot 3.x `set_buffers(64, 1024, 64, 1024)` as 3.2.3 enforces it: largest inbound message.
const GODOT3_INBOUND_BYTES: usize = 1 << 16;
/// Inbound packet slots of 3.x's ring (1024 − 1).
const GODOT3_INBOUND_PACKETS: usize = 1023;
/// Largest outbound message (a 64 KiB ring holds 2^16 − 1 bytes).
const GODOT3_OUTBOUND_BYTES: usize = (1 << 16) - 1;
/// Outbound packet slots.
const GODOT3_OUTBOUND_PACKETS: usize = 1024;

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Command {
    Help,
    Version,
    Serve(Box<ServeOptions>),
}

/// `multipeer serve` settings.
#[derive(Debug)]
pub(crate) struct ServeOptions {
    pub(crate) config: ServerConfig,
    pub(crate) listen: Vec<ListenAddr>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    pub(crate) quiet: bool,
    pub(crate) verbose: bool,
    /// `--auth-token`: SceneMultiplayer auth with this token.
    pub(crate) auth_token: Option<String>,
    /// `--auth-timeout`: SceneMultiplayer's `auth_timeout`.
    pub(crate) auth_timeout: Duration,
    pub(crate) stats_json: Option<PathBuf>,
    /// `--cluster` and its companions.
    pub(crate) cluster: Option<ClusterArgs>,
}

/// `--cluster URL` and the flags that go with it.
#[derive(Debug, Default, Clone)]
pub(crate) struct ClusterArgs {
    pub(crate) url: String,
    pub(crate) node: Option<String>,
    pub(crate) node_index: Option<u8>,
    pub(crate) name: String,
    pub(crate) credentials: Option<PathBuf>,
    pub(crate) tls_ca: Option<PathBuf>,
}

/// A usage error, reported with exit status 2.
#[derive(Debug)]
pub(crate) struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<lexopt::Error> for UsageError {
    fn from(e: lexopt::Error) -> Self {
        Self(e.to_string())
    }
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let mut serve = false;
    let mut options = ServeOptions {
        config: ServerConfig::default(),
        listen: Vec::new(),
        tls_cert: None,
        tls_key: None,
        quiet: false,
        verbose: false,
        auth_token: None,
        auth_timeout: Duration::from_secs(3),
        stats_json: None,
        cluster: None,
    };
    let mut cluster = ClusterArgs { name: "multipeer".into(), ..ClusterArgs::default() };
    let mut relay = true;
    // Whether --rooms was given: with --auth-token the default becomes one world.
    let mut rooms_chosen = false;
    // Buffer flags given explicitly win over the protocol's defaults, whatever their order.
    let (mut inbound, mut outbound, mut queued) = (None, None, None);
    let config = &mut options.config;
    config.rooms.mode = RoomMode::ByPath;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Value(word) if !serve && word == "serve" => serve = true,
            Value(word) if !serve && word == "help" => return Ok(Command::Help),
            Long("protocol") => {
                config.protocol = match parser.value()?.string()?.as_str() {
                    "godot4" | "4" => Protocol::Godot4,
                    "godot3" | "3" => Protocol::Godot3,
                    other => {
                        return Err(usage(format!("--protocol must be godot4 or godot3, not {other:?}")));
                    }
                }
            }
            Long("no-relay") => relay = false,
            Long("auth-token") => {
                let token = parser.value()?.string()?;
                if token.is_empty() {
                    return Err(usage("--auth-token must not be empty (send_auth refuses empty data)"));
                }
                options.auth_token = Some(token);
            }
            Long("auth-timeout") => {
                let secs = seconds(&mut parser, "--auth-timeout")?;
                if secs.is_zero() {
                    return Err(usage("--auth-timeout must be more than 0"));
                }
                options.auth_timeout = secs;
            }
            Long("listen") => {
                let text = parser.value()?.string()?;
                let addr = text.parse().map_err(|_| {
                    usage(format!("--listen {text:?}: expected IP:PORT, [IPv6]:PORT or *:PORT"))
                })?;
                options.listen.push(addr);
            }
            Long("tls-cert") => options.tls_cert = Some(parser.value()?.into()),
            Long("tls-key") => options.tls_key = Some(parser.value()?.into()),
            Long("max-peers") => config.max_peers = positive(&mut parser, "--max-peers")?,
            Long("refuse-new-connections") => config.refuse_new_connections = true,
            Long("allowed-origin") => {
                let origin = parser.value()?.string()?.trim().to_owned();
                if origin.is_empty() || origin.contains(|c: char| c.is_whitespace() || c.is_control()) {
                    return Err(usage(format!(
                        "--allowed-origin {origin:?}: expected an origin like https://host"
                    )));
                }
                config.allowed_origins.push(origin);
            }
            Long("max-connections-per-ip") => {
                config.max_connections_per_ip = Some(positive(&mut parser, "--max-connections-per-ip")?);
            }
            Long("slow-peer-timeout") => {
                let secs = seconds(&mut parser, "--slow-peer-timeout")?;
                config.slow_peer_timeout = (!secs.is_zero()).then_some(secs);
            }
            Long("max-inbound-packets-per-second") => {
                let n: usize = positive(&mut parser, "--max-inbound-packets-per-second")?;
                let n = u32::try_from(n)
                    .map_err(|_| usage("--max-inbound-packets-per-second: at most 4294967295"))?;
                config.max_inbound_packets_per_second = Some(n);
            }
            Long("max-inbound-bytes-per-second") => {
                let n: usize = positive(&mut parser, "--max-inbound-bytes-per-second")?;
                config.max_inbound_bytes_per_second = Some(n as u64);
            }
            Long("inbound-buffer-size") => inbound = Some(positive(&mut parser, "--inbound-buffer-size")?),
            Long("outbound-buffer-size") => {
                outbound = Some(positive(&mut parser, "--outbound-buffer-size")?);
            }
            Long("max-queued-packets") => queued = Some(positive(&mut parser, "--max-queued-packets")?),
            Long("handshake-timeout") => {
                let secs = seconds(&mut parser, "--handshake-timeout")?;
                if secs.is_zero() {
                    return Err(usage("--handshake-timeout must be more than 0 (Godot requires it too)"));
                }
                config.ws.handshake_timeout = secs;
            }
            Long("heartbeat-interval") => {
                let secs = seconds(&mut parser, "--heartbeat-interval")?;
                config.ws.heartbeat_interval = (!secs.is_zero()).then_some(secs);
            }
            Long("supported-protocol") => {
                let protocol = parser.value()?.string()?.trim().to_owned();
                if protocol.is_empty() || protocol.contains(|c: char| c.is_whitespace() || c == ',') {
                    return Err(usage(format!("--supported-protocol {protocol:?} is not a protocol token")));
                }
                config.supported_protocols.push(protocol);
            }
            Long("handshake-header") => {
                let line = parser.value()?.string()?;
                let valid = line.split_once(':').is_some_and(|(name, _)| !name.trim().is_empty())
                    && !line.contains(['\r', '\n']);
                if !valid {
                    return Err(usage(format!("--handshake-header {line:?}: expected \"Name: value\"")));
                }
                config.handshake_headers.push(line);
            }
            Long("rooms") => {
                rooms_chosen = true;
                config.rooms.mode = match parser.value()?.string()?.as_str() {
                    "path" => RoomMode::ByPath,
                    "declared" => RoomMode::Declared,
                    "off" => RoomMode::Single,
                    other => {
                        return Err(usage(format!("--rooms must be path, declared or off, not {other:?}")));
                    }
                }
            }
            Long("room") => {
                let text = parser.value()?.string()?;
                let name = text.strip_prefix('/').unwrap_or(&text);
                validate_room_name(name).map_err(|e| usage(format!("--room {text:?}: {e}")))?;
                config.rooms.declared.push(name.to_owned());
            }
            Long("room-prefix") => {
                let prefix = parser.value()?.string()?;
                validate_room_prefix(&prefix).map_err(|e| {
                    usage(format!("--room-prefix {prefix:?}: expected /NAME or /NAME/NAME ({e})"))
                })?;
                config.rooms.prefix = prefix;
            }
            Long("max-rooms") => config.rooms.max_rooms = positive(&mut parser, "--max-rooms")?,
            Long("max-peers-per-room") => {
                config.rooms.max_peers_per_room = Some(positive(&mut parser, "--max-peers-per-room")?);
            }
            Long("stats-json") => options.stats_json = Some(parser.value()?.into()),
            Long("cluster") => cluster.url = parser.value()?.string()?,
            Long("node") => {
                let name = parser.value()?.string()?;
                if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(usage("--node: 1-64 printable ASCII characters, no spaces"));
                }
                cluster.node = Some(name);
            }
            Long("node-index") => {
                let k = parser.value()?.string()?;
                cluster.node_index = Some(
                    k.parse().ok().filter(|&k: &u8| k < 64).ok_or_else(|| usage("--node-index: 0 to 63"))?,
                );
            }
            Long("cluster-name") => {
                let name = parser.value()?.string()?;
                if name.is_empty()
                    || name.len() > 32
                    || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(usage("--cluster-name: 1-32 of A-Z a-z 0-9 - _"));
                }
                cluster.name = name;
            }
            Long("cluster-creds") => cluster.credentials = Some(parser.value()?.into()),
            Long("cluster-tls-ca") => cluster.tls_ca = Some(parser.value()?.into()),
            Long(flag) if deflate::is_flag(flag) => {
                let flag = flag.to_owned();
                deflate::apply(&flag, &mut parser, &mut config.ws.permessage_deflate)?;
            }
            Long("quiet") | Short('q') => options.quiet = true,
            Long("verbose") | Short('v') => options.verbose = true,
            _ => return Err(arg.unexpected().into()),
        }
    }
    if !serve {
        return Err(usage("missing command: multipeer serve [OPTIONS]"));
    }
    if !relay && config.protocol == Protocol::Godot3 {
        return Err(usage("--no-relay: Godot 3 servers always relay"));
    }
    if options.auth_token.is_some() && config.protocol == Protocol::Godot3 {
        return Err(usage("--auth-token: Godot 3 has no SceneMultiplayer auth"));
    }
    config.relay = relay;
    if !cluster.url.is_empty() {
        if options.auth_token.is_some() {
            return Err(usage(
                "--cluster: not with --auth-token (SceneMultiplayer's relay knows no cluster yet)",
            ));
        }
        options.cluster = Some(cluster);
    } else if cluster.node.is_some() || cluster.node_index.is_some() || cluster.credentials.is_some() {
        return Err(usage("--node, --node-index and --cluster-creds need --cluster URL"));
    }
    if options.auth_token.is_some() && config.rooms.mode != RoomMode::Single {
        // SceneMultiplayer relays among all of its admitted peers: it knows no rooms yet, so
        // rooms would leak announcements and relays between them.
        if rooms_chosen || !config.rooms.declared.is_empty() || !config.rooms.prefix.is_empty() {
            return Err(usage(
                "--auth-token works with one world only (--rooms off); rooms are not supported with it yet",
            ));
        }
        config.rooms.mode = RoomMode::Single;
    }
    let rooms = &config.rooms;
    if rooms.mode == RoomMode::Single && (!rooms.declared.is_empty() || !rooms.prefix.is_empty()) {
        return Err(usage("--room and --room-prefix need rooms (--rooms path or declared)"));
    }
    if rooms.mode == RoomMode::Declared && rooms.declared.is_empty() {
        return Err(usage("--rooms declared needs at least one --room NAME"));
    }
    if rooms.declared.len() > rooms.max_rooms {
        return Err(usage("more --room declarations than --max-rooms"));
    }
    if config.protocol == Protocol::Godot3 {
        // Godot 3's default `set_buffers(64, 1024, 64, 1024)` on the wire (as
        // `WebSocketMultiplayerPeer::godot3()` of multipeer-std): 3.2.3 accepts messages of up
        // to 2^16 bytes (its wslay limit; larger ones get Close 1009), has 1023 inbound packet
        // slots, and sends at most 2^16 - 1 bytes per message from 1024 outbound slots.
        config.ws.max_message_size = GODOT3_INBOUND_BYTES;
        config.ws.max_queued_messages = GODOT3_INBOUND_PACKETS;
        config.ws.outbound_buffer_size = GODOT3_OUTBOUND_BYTES;
        config.ws.max_outbound_messages = GODOT3_OUTBOUND_PACKETS;
    }
    if let Some(bytes) = inbound {
        config.ws.max_message_size = bytes;
    }
    if let Some(bytes) = outbound {
        config.ws.outbound_buffer_size = bytes;
    }
    if let Some(n) = queued {
        config.ws.max_queued_messages = n;
        config.ws.max_outbound_messages = n;
    }
    if options.tls_cert.is_some() != options.tls_key.is_some() {
        return Err(usage("--tls-cert and --tls-key go together"));
    }
    if options.listen.is_empty() {
        options.listen.push(ListenAddr::One(([127, 0, 0, 1], 9080).into()));
    }
    Ok(Command::Serve(Box::new(options)))
}

fn positive(parser: &mut lexopt::Parser, flag: &str) -> Result<usize, UsageError> {
    let text = parser.value()?.string()?;
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(usage(format!("{flag} {text:?}: expected a whole number above 0"))),
    }
}

fn seconds(parser: &mut lexopt::Parser, flag: &str) -> Result<Duration, UsageError> {
    let text = parser.value()?.string()?;
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| usage(format!("{flag} {text:?}: expected seconds, like 3 or 0.5")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<ServeOptions, UsageError> {
        let args = core::iter::once("serve").chain(args.iter().copied()).map(OsString::from);
        match parse(args)? {
            Command::Serve(options) => Ok(*options),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_are_godot_4_with_relay_on_localhost_9080_and_rooms_by_path() {
        let mut options = serve(&[]).unwrap();
        assert_eq!(options.config.rooms.mode, RoomMode::ByPath);
        options.config.rooms.mode = RoomMode::Single;
        assert_eq!(options.config, ServerConfig::default());
        assert_eq!(options.listen, [ListenAddr::One("127.0.0.1:9080".parse().unwrap())]);
    }

    #[test]
    fn godot_properties_map_to_the_config() {
        let options = serve(&[
            "--protocol=godot3",
            "--listen",
            "*:7000",
            "--listen=[::1]:7001",
            "--max-peers",
            "10",
            "--inbound-buffer-size=1000",
            "--outbound-buffer-size=2000",
            "--max-queued-packets=30",
            "--handshake-timeout=0.5",
            "--heartbeat-interval=2",
            "--supported-protocol",
            " chat ",
            "--handshake-header=X-Game: demo",
            "--refuse-new-connections",
        ])
        .unwrap();
        let c = &options.config;
        assert_eq!(c.protocol, Protocol::Godot3);
        assert_eq!(options.listen, [ListenAddr::All(7000), ListenAddr::One("[::1]:7001".parse().unwrap())]);
        assert_eq!((c.max_peers, c.ws.max_message_size, c.ws.outbound_buffer_size), (10, 1000, 2000));
        assert_eq!((c.ws.max_queued_messages, c.ws.max_outbound_messages), (30, 30));
        assert_eq!(c.ws.handshake_timeout, Duration::from_millis(500));
        assert_eq!(c.ws.heartbeat_interval, Some(Duration::from_secs(2)));
        assert_eq!(c.supported_protocols, ["chat"]);
        assert_eq!(c.handshake_headers, ["X-Game: demo"]);
        assert!(c.refuse_new_connections);
        assert!(!serve(&["--no-relay"]).unwrap().config.relay);
        let auth = serve(&["--auth-token", "s3cret", "--auth-timeout=1.5"]).unwrap();
        assert_eq!(
            (auth.auth_token.as_deref(), auth.auth_timeout),
            (Some("s3cret"), Duration::from_millis(1500))
        );
        assert_eq!(serve(&[]).unwrap().auth_token, None);
    }

    #[test]
    fn cluster_flags_are_checked() {
        let c = serve(&["--cluster", "nats://127.0.0.1:4222", "--node", "a", "--node-index", "5"]).unwrap();
        let c = c.cluster.unwrap();
        assert_eq!(
            (c.url.as_str(), c.node.as_deref(), c.node_index, c.name.as_str()),
            ("nats://127.0.0.1:4222", Some("a"), Some(5), "multipeer")
        );
        assert!(serve(&[]).unwrap().cluster.is_none());
        for (args, error) in [
            (&["--node", "a"][..], "need --cluster"),
            (&["--cluster", "nats://x", "--node-index", "64"], "0 to 63"),
            (&["--cluster", "nats://x", "--node", "a b"], "printable"),
            (&["--cluster", "nats://x", "--cluster-name", "a.b"], "--cluster-name"),
            (&["--cluster", "nats://x", "--auth-token", "t"], "not with --auth-token"),
        ] {
            let e = serve(args).unwrap_err().to_string();
            assert!(e.contains(error), "{args:?}: {e}");
        }
    }

    #[test]
    fn godot3_gets_godot3_buffers_unless_given() {
        let c = serve(&["--protocol", "godot3"]).unwrap().config;
        assert_eq!((c.ws.max_message_size, c.ws.max_queued_messages), (65536, 1023));
        assert_eq!((c.ws.outbound_buffer_size, c.ws.max_outbound_messages), (65535, 1024));
        // The server's queue room beyond one message stays.
        assert_eq!(c.ws.outbound_queue_size, ServerConfig::default().ws.outbound_queue_size);
        let c = serve(&["--inbound-buffer-size=1000", "--protocol=godot3", "--max-queued-packets=7"])
            .unwrap()
            .config;
        assert_eq!(
            (c.ws.max_message_size, c.ws.max_queued_messages, c.ws.max_outbound_messages),
            (1000, 7, 7)
        );
        assert_eq!(c.ws.outbound_buffer_size, 65535);
    }

    #[test]
    fn origin_allow_list_and_per_ip_cap() {
        let options = serve(&[
            "--allowed-origin",
            "https://game.example",
            "--allowed-origin=http://localhost:8060",
            "--max-connections-per-ip=8",
        ])
        .unwrap();
        assert_eq!(options.config.allowed_origins, ["https://game.example", "http://localhost:8060"]);
        assert_eq!(options.config.max_connections_per_ip, Some(8));
        let defaults = serve(&[]).unwrap().config;
        assert!(defaults.allowed_origins.is_empty());
        assert_eq!(defaults.max_connections_per_ip, None);
        assert_eq!(defaults.slow_peer_timeout, Some(multipeer::peer::DEFAULT_SLOW_PEER_TIMEOUT));
        assert_eq!(
            (defaults.max_inbound_packets_per_second, defaults.max_inbound_bytes_per_second),
            (None, None)
        );
        let flow = serve(&[
            "--slow-peer-timeout=2.5",
            "--max-inbound-packets-per-second=100",
            "--max-inbound-bytes-per-second",
            "65536",
        ])
        .unwrap()
        .config;
        assert_eq!(flow.slow_peer_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(
            (flow.max_inbound_packets_per_second, flow.max_inbound_bytes_per_second),
            (Some(100), Some(65536))
        );
        assert_eq!(serve(&["--slow-peer-timeout=0"]).unwrap().config.slow_peer_timeout, None);
        for (args, needle) in [
            (&["--allowed-origin", ""][..], "expected an origin"),
            (&["--allowed-origin", "https://a b"], "expected an origin"),
            (&["--max-connections-per-ip", "0"], "above 0"),
        ] {
            let err = serve(args).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn rooms_flags_map_to_the_config_and_bad_names_are_refused() {
        let c = serve(&[
            "--rooms=declared",
            "--room",
            "/",
            "--room=red",
            "--room=/blue",
            "--room-prefix=/play",
            "--max-rooms=3",
            "--max-peers-per-room=4",
        ])
        .unwrap()
        .config
        .rooms;
        assert_eq!(
            (c.mode, c.declared, c.prefix.as_str()),
            (RoomMode::Declared, vec!["".into(), "red".into(), "blue".into()], "/play")
        );
        assert_eq!((c.max_rooms, c.max_peers_per_room), (3, Some(4)));
        assert_eq!(serve(&["--rooms", "off"]).unwrap().config.rooms.mode, RoomMode::Single);
        assert_eq!(serve(&["--stats-json=/tmp/s.json"]).unwrap().stats_json, Some("/tmp/s.json".into()));
        for (args, needle) in [
            (&["--rooms", "many"][..], "path, declared or off"),
            (&["--room", "../etc"], "--room"),
            (&["--room", "a b"], "--room"),
            (&["--room", &"x".repeat(65)], "longer than 64"),
            (&["--room-prefix", "play"], "expected /NAME"),
            (&["--room-prefix", "/play/"], "expected /NAME"),
            (&["--rooms=off", "--room=a"], "need rooms"),
            (&["--rooms=declared"], "at least one --room"),
            (&["--max-rooms=1", "--room=a", "--room=b"], "more --room"),
            (&["--max-peers-per-room=0"], "above 0"),
        ] {
            let err = serve(args).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn permessage_deflate_flags() {
        use multipeer::ws::deflate::DeflateConfig;
        assert_eq!(serve(&[]).unwrap().config.ws.permessage_deflate, None);
        let on = serve(&["--permessage-deflate"]).unwrap().config.ws.permessage_deflate;
        assert_eq!(on, Some(DeflateConfig::DEFAULT));
        let tuned = serve(&[
            "--deflate-window-bits=10",
            "--deflate-no-context-takeover",
            "--deflate-level",
            "1",
            "--deflate-max-connections=100",
        ])
        .unwrap()
        .config
        .ws
        .permessage_deflate
        .unwrap();
        assert_eq!((tuned.max_window_bits, tuned.peer_max_window_bits), (10, 10));
        assert!(tuned.no_context_takeover && tuned.peer_no_context_takeover);
        assert_eq!((tuned.level, tuned.max_connections), (1, 100));
        for (args, needle) in [
            (&["--deflate-window-bits=16"][..], "from 8 to 15"),
            (&["--deflate-level=11"], "from 0 to 10"),
            (&["--deflate-max-connections=0"], "from 1 to 65534"),
            (&["--deflate-frobnicate"], "deflate-frobnicate"),
        ] {
            let err = serve(args).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn bad_usage_is_explained() {
        for (args, needle) in [
            (&["--protocol", "godot5"][..], "godot4 or godot3"),
            (&["--listen", "localhost:80"], "expected IP:PORT"),
            (&["--max-peers", "0"], "above 0"),
            (&["--handshake-timeout", "0"], "more than 0"),
            (&["--heartbeat-interval", "soon"], "expected seconds"),
            (&["--handshake-header", "no colon"], "Name: value"),
            (&["--tls-cert", "a.pem"], "go together"),
            (&["--protocol=godot3", "--no-relay"], "always relay"),
            (&["--protocol=godot3", "--auth-token=t"], "no SceneMultiplayer auth"),
            (&["--auth-token="], "not be empty"),
            (&["--auth-token=t", "--rooms=path"], "one world only"),
            (&["--auth-token=t", "--room=a", "--rooms=declared"], "one world only"),
            (&["--auth-timeout=0"], "more than 0"),
            (&["--frobnicate"], "frobnicate"),
        ] {
            let err = serve(args).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
        assert!(parse(["listen".into()]).is_err());
        assert!(matches!(parse(["serve".into(), "--help".into()]), Ok(Command::Help)));
    }
}
