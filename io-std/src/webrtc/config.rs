//! What the engine needs to know about this host: the addresses to gather host candidates on,
//! ICE servers, and SCTP buffer sizes.

use core::net::{IpAddr, Ipv4Addr};
use core::ops::RangeInclusive;
use core::time::Duration;

/// An entry of `iceServers` (Godot's `WebRTCPeerConnection.initialize({"iceServers": [...]})`).
///
/// `stun:` URLs are used: the engine asks every server at once for the mapped address of its
/// socket (a STUN Binding request, given up after 3.5 s) and signals it to every peer as a
/// server-reflexive candidate.
/// `turn:` URLs with `username` and `credential` (long-term credentials) get an allocation on
/// that server per socket, whose relayed address is signalled as a relay candidate; the
/// client reaches the server over UDP, or over TCP with `?transport=tcp`; `turns:` URLs
/// (default port 5349) reach it over TLS on TCP (RFC 7065), the certificate checked against
/// the URL's host with the webpki roots and [`WebRtcConfig::turn_trusted_cas`]. The relayed
/// address is UDP whatever the transport, as browsers allocate it. DTLS to the server
/// (`turns:` with `?transport=udp`) is refused and reported in `EngineStats::last_error`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp` or `turns:host:port` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    pub username: Option<String>,
    /// TURN credential (the long-term password).
    pub credential: Option<String>,
}

impl IceServer {
    /// A STUN server, e.g. `IceServer::stun("stun:127.0.0.1:3478")`.
    #[must_use]
    pub fn stun(url: impl Into<String>) -> Self {
        Self { urls: vec![url.into()], username: None, credential: None }
    }

    /// A TURN server with long-term credentials, e.g.
    /// `IceServer::turn("turn:127.0.0.1:3478", "user", "secret")`.
    #[must_use]
    pub fn turn(url: impl Into<String>, username: impl Into<String>, credential: impl Into<String>) -> Self {
        Self { urls: vec![url.into()], username: Some(username.into()), credential: Some(credential.into()) }
    }
}

/// `host:port` of a `stun:`/`turn:` URL's rest (the query removed), `default_port` if none.
fn host_port(rest: &str, default_port: u16) -> String {
    let rest = rest.split('?').next().unwrap_or(rest);
    let has_port = rest.rsplit_once(':').is_some_and(|(h, p)| !h.ends_with(':') && p.parse::<u16>().is_ok());
    if has_port { rest.to_string() } else { format!("{rest}:{default_port}") }
}

/// The host of a `host:port` made by [`host_port`], IPv6 brackets removed: the name a TLS
/// server's certificate is checked against.
fn host_of(address: &str) -> String {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).to_string()
}

/// How a TURN client reaches its server (`?transport=` of a `turn:` URL in Godot's
/// `iceServers`, TLS for `turns:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnTransport {
    /// `?transport=udp` or none: over the engine's UDP socket.
    Udp,
    /// `?transport=tcp`: over a TCP connection of its own.
    Tcp,
    /// `turns:` (with `?transport=tcp` or none): over TLS on a TCP connection of its own.
    Tls,
}

/// A usable `turn:`/`turns:` entry of Godot's `iceServers`: server `host:port` and host,
/// transport, user name, credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnServer {
    /// `host:port` (port 3478, or 5349 for `turns:`, when the URL has none), not resolved yet.
    pub address: String,
    /// The URL's host without brackets (the TLS server name).
    pub host: String,
    /// How the client reaches the server.
    pub transport: TurnTransport,
    /// The entry's `username`.
    pub username: String,
    /// The entry's `credential` (the long-term password).
    pub credential: String,
}

/// The browser-safe UDP payload budget: a 1191-byte SCTP packet (libwebrtc's
/// `kMaxSafeMTUSize` path budget) in a DTLS 1.2 AES-GCM record (13 + 8 + 16 bytes).
pub const MAX_UDP_PAYLOAD: usize = 1228;

/// The default str0m MTU target (see [`WebRtcConfig::mtu`]).
///
/// str0m's own default (1150) is not enough: sctp-proto 0.10.8 bundles small DATA chunks
/// counting neither the 4-byte padding of each chunk nor the header of the chunk being added,
/// so a burst of 1-byte messages makes an SCTP packet up to 20/17 of its budget (1249-byte UDP
/// payloads were seen here with 2-byte messages). str0m gives SCTP `target − 60` bytes; with a
/// target of 1058 the worst bundle is 58 one-byte chunks, 12 + 58 × 20 = 1172 bytes of SCTP and
/// 1209 bytes of UDP payload, under [`MAX_UDP_PAYLOAD`].
pub const DEFAULT_MTU: usize = 1058;

/// Engine settings shared by every peer connection of a [`WebRtcMultiplayerPeer`].
///
/// [`WebRtcMultiplayerPeer`]: super::WebRtcMultiplayerPeer
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcConfig {
    /// The local addresses to bind a UDP socket on, each giving one host
    /// candidate (default: `127.0.0.1` only, which reaches peers on this machine). Use the
    /// addresses of the interfaces the game should be reachable on; `0.0.0.0` is refused since
    /// a wildcard is no candidate.
    pub local_ips: Vec<IpAddr>,
    /// STUN and TURN servers (see [`IceServer`]).
    pub ice_servers: Vec<IceServer>,
    /// Bytes the data channels of one peer may hold unacknowledged (str0m's
    /// `sctp_max_buffered_amount`); messages beyond wait in the adapter's outbox.
    pub sctp_send_buffer: usize,
    /// The largest message this side accepts, advertised as `a=max-message-size`.
    pub max_message_size: u32,
    /// Bytes of messages one peer may have waiting in the adapter's outbox for send-buffer
    /// room; beyond it `put_packet` fails with `PutError::Full`.
    pub outbox_limit: usize,
    /// `SO_RCVBUF` asked for each UDP socket (default 2 MiB; the kernel caps it).
    pub socket_receive_buffer: usize,
    /// Whether the peers share one socket per local address (the default) or each get
    /// their own.
    pub socket_layout: SocketLayout,
    /// The ports to bind, the first free one taken (default: any port the system picks). A
    /// firewall then needs only this range open; with [`SocketLayout::PerMesh`] one port per
    /// local address is used whatever the number of peers.
    pub ports: Option<RangeInclusive<u16>>,
    /// str0m's MTU target: the size it fragments DTLS and SCTP for (default [`DEFAULT_MTU`];
    /// str0m accepts 576..=1500).
    pub mtu: usize,
    /// How ICE checks a working pair and when it gives up on a peer that stopped answering.
    pub ice_timing: IceTiming,
    /// Signal relay candidates only (`iceTransportPolicy: "relay"` of the W3C API, which
    /// Godot's `WebRTCPeerConnection` passes through on the web): no host or server-reflexive
    /// address is revealed, and a peer fails at once when no TURN allocation succeeded.
    pub relay_only: bool,
    /// CA certificates (DER) trusted for `turns:` servers besides the webpki roots (Mozilla's
    /// programme), for a private TURN server with its own CA or a self-signed certificate.
    /// Browsers take the system's store instead and Godot has no such setting. A certificate
    /// rustls cannot parse fails the `turns:` allocations with the reason.
    pub turn_trusted_cas: Vec<Vec<u8>>,
}

/// How the engine's UDP sockets are shared among the peers of a mesh. Godot's
/// `WebRTCPeerConnection` (libdatachannel, libwebrtc) binds sockets per connection; a mesh of
/// 16 then holds 15 sockets and needs 15 ports open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SocketLayout {
    /// One socket per local address for every peer: datagrams are told apart by remote address
    /// and, for ICE checks, by the ICE user name (str0m's `Rtc::accepts`).
    #[default]
    PerMesh,
    /// One socket per local address for each peer, as Godot's desktop builds do.
    PerPeer,
}

/// ICE connectivity-check timing (str0m's STUN timing), which decides how soon a peer that
/// vanished without closing (its game crashed, its network went away) is reported as
/// disconnected. A pair is given up once `max_retransmits` checks in a row went unanswered,
/// the waits between them doubling from `initial_rto` up to `max_rto`, and no check came from
/// the remote for 15 s (str0m keeps such a pair alive for browsers that answer checks late;
/// that floor is not configurable). Measured on loopback: 21.5 s with the defaults, 15.0 s
/// with 100 ms, 200 ms and 4. Raise them for players on lossy mobile links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IceTiming {
    /// The wait before the first retransmission of a check (default 250 ms).
    pub initial_rto: Duration,
    /// The longest wait between retransmissions, and the interval between checks on a working
    /// pair (default 3 s).
    pub max_rto: Duration,
    /// Unanswered checks in a row that end a pair (default 9).
    pub max_retransmits: usize,
}

impl Default for IceTiming {
    fn default() -> Self {
        Self { initial_rto: Duration::from_millis(250), max_rto: Duration::from_secs(3), max_retransmits: 9 }
    }
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            local_ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            ice_servers: Vec::new(),
            sctp_send_buffer: 1 << 20,
            max_message_size: 256 * 1024,
            outbox_limit: 4 << 20,
            mtu: DEFAULT_MTU,
            socket_receive_buffer: 2 << 20,
            socket_layout: SocketLayout::PerMesh,
            ports: None,
            relay_only: false,
            ice_timing: IceTiming::default(),
            turn_trusted_cas: Vec::new(),
        }
    }
}

impl WebRtcConfig {
    /// Gather host candidates on these addresses instead of `127.0.0.1`.
    #[must_use]
    pub fn local_ips(mut self, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.local_ips = ips.into_iter().collect();
        self
    }

    /// Binds the UDP sockets on the first free port of `ports` (a single port: `p..=p`).
    #[must_use]
    pub fn ports(mut self, ports: RangeInclusive<u16>) -> Self {
        self.ports = Some(ports);
        self
    }

    /// Shares one socket per local address among the peers, or gives each peer its own.
    #[must_use]
    pub fn socket_layout(mut self, layout: SocketLayout) -> Self {
        self.socket_layout = layout;
        self
    }

    /// Adds an ICE server.
    #[must_use]
    pub fn ice_server(mut self, server: IceServer) -> Self {
        self.ice_servers.push(server);
        self
    }

    /// Signals relay candidates only (see [`relay_only`](Self::relay_only)).
    #[must_use]
    pub fn relay_only(mut self, relay_only: bool) -> Self {
        self.relay_only = relay_only;
        self
    }

    /// Trusts the CA certificate `der` for `turns:` servers as well as the webpki roots (see
    /// [`turn_trusted_cas`](Self::turn_trusted_cas)).
    #[must_use]
    pub fn trust_turn_ca(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.turn_trusted_cas.push(der.into());
        self
    }

    /// The `host:port` of every `stun:` URL (default port 3478).
    pub(crate) fn stun_servers(&self) -> impl Iterator<Item = String> + '_ {
        self.ice_servers
            .iter()
            .flat_map(|s| s.urls.iter())
            .filter_map(|url| url.strip_prefix("stun:").map(|rest| host_port(rest, 3478)))
    }

    /// Every `turn:` and `turns:` URL, with its transport and its entry's credentials (`Ok`),
    /// and every TURN URL this engine cannot use (`Err`, with the reason): DTLS, an unknown
    /// transport, no credentials. Godot's `iceServers` are parsed as browsers parse them.
    pub fn turn_servers(&self) -> impl Iterator<Item = Result<TurnServer, String>> + '_ {
        self.ice_servers.iter().flat_map(|s| s.urls.iter().map(move |url| (s, url))).filter_map(|(s, url)| {
            let (rest, tls) = match (url.strip_prefix("turn:"), url.strip_prefix("turns:")) {
                (Some(rest), _) => (rest, false),
                (None, Some(rest)) => (rest, true),
                (None, None) => return None,
            };
            let (transport, default_port) = match (rest.split_once('?').map(|(_, query)| query), tls) {
                (None | Some("transport=udp"), false) => (TurnTransport::Udp, 3478),
                (Some("transport=tcp"), false) => (TurnTransport::Tcp, 3478),
                (None | Some("transport=tcp"), true) => (TurnTransport::Tls, 5349),
                (Some("transport=udp"), true) => {
                    return Some(Err(format!("{url}: TURN over DTLS is not supported (over TLS it is)")));
                }
                (Some(other), _) => return Some(Err(format!("{url}: unknown TURN parameters {other:?}"))),
            };
            let (Some(username), Some(credential)) = (&s.username, &s.credential) else {
                return Some(Err(format!("{url}: TURN needs a username and a credential")));
            };
            let address = host_port(rest, default_port);
            Some(Ok(TurnServer {
                host: host_of(&address),
                address,
                transport,
                username: username.clone(),
                credential: credential.clone(),
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_urls_become_servers_with_their_credentials() {
        let config = WebRtcConfig::default()
            .ice_server(IceServer::turn("turn:127.0.0.1?transport=udp", "u", "p"))
            .ice_server(IceServer::turn("turns:example.org:5350", "u", "p"))
            .ice_server(IceServer::turn("turn:example.org:3479?transport=tcp", "u", "p"))
            .ice_server(IceServer::stun("turn:[::1]:3480"))
            .ice_server(IceServer::turn("turn:example.org?transport=sctp", "u", "p"))
            .ice_server(IceServer::turn("turns:[::1]?transport=tcp", "u", "p"))
            .ice_server(IceServer::turn("turns:example.org", "u", "p"))
            .ice_server(IceServer::turn("turns:example.org?transport=udp", "u", "p"));
        let servers: Vec<_> = config.turn_servers().collect();
        let server = |address: &str, host: &str, transport| TurnServer {
            address: address.into(),
            host: host.into(),
            transport,
            username: "u".into(),
            credential: "p".into(),
        };
        assert_eq!(servers[0], Ok(server("127.0.0.1:3478", "127.0.0.1", TurnTransport::Udp)));
        assert_eq!(servers[1], Ok(server("example.org:5350", "example.org", TurnTransport::Tls)));
        assert_eq!(servers[2], Ok(server("example.org:3479", "example.org", TurnTransport::Tcp)));
        assert!(servers[3].as_ref().is_err_and(|e| e.contains("credential")));
        assert!(servers[4].as_ref().is_err_and(|e| e.contains("transport=sctp")));
        assert_eq!(servers[5], Ok(server("[::1]:5349", "::1", TurnTransport::Tls)));
        assert_eq!(servers[6], Ok(server("example.org:5349", "example.org", TurnTransport::Tls)));
        assert!(servers[7].as_ref().is_err_and(|e| e.contains("DTLS is not supported")));
        assert_eq!(servers.len(), 8);
        assert_eq!(config.stun_servers().count(), 0);
    }

    #[test]
    fn stun_urls_become_addresses_and_turn_is_ignored() {
        let config = WebRtcConfig::default()
            .ice_server(IceServer::stun("stun:127.0.0.1:3479"))
            .ice_server(IceServer::stun("stun:stun.example"))
            .ice_server(IceServer {
                urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
                username: Some("u".into()),
                credential: Some("p".into()),
            });
        let servers: Vec<String> = config.stun_servers().collect();
        assert_eq!(servers, ["127.0.0.1:3479", "stun.example:3478"]);
    }
}
