//! `MultipeerWebRTCPeerConnection`: Godot's `WebRTCPeerConnection` over [`Connection`].
//!
//! Signals (`session_description_created`, `ice_candidate_created`, `data_channel_received`)
//! are queued by the engine and emitted from `poll`, as webrtc-native does, so that a handler
//! calling back into the connection (`set_local_description` from
//! `session_description_created`) never meets a connection in the middle of a call.

use core::cell::RefCell;
use core::time::Duration;
use std::rc::Rc;
use std::time::Instant;

use godot::classes::web_rtc_peer_connection::{
    ConnectionState as GdConnectionState, GatheringState, SignalingState as GdSignalingState,
};
use godot::classes::{IWebRtcPeerConnectionExtension, WebRtcDataChannel, WebRtcPeerConnectionExtension};
use godot::global::{Error, godot_error, godot_warn};
use godot::prelude::*;
use multipeer_std::webrtc::{IceServer, WebRtcConfig};

use crate::data_channel::MultipeerWebRtcDataChannel;
use crate::engine::{
    ChannelSpec, Connection, ConnectionState, Drops, EngineError, GatheringState as Gathering, Signal,
    SignalingState, local_ips, stun_servers,
};
use crate::guard::guarded;

/// The least time between two drop warnings of one connection, so that sustained loss does
/// not flood Godot's output.
const WARNING_INTERVAL: Duration = Duration::from_secs(2);

/// The engine shared by a connection and its data channels (Godot calls them all from the
/// main thread).
pub(crate) type Shared = Rc<RefCell<Connection>>;

/// Godot's `WebRTCPeerConnection` (through `WebRTCPeerConnectionExtension`) on multipeer's
/// str0m engine; differs in that `stuns:` servers of `iceServers` are not used (host,
/// server-reflexive and `turn:`/`turns:` relay candidates are).
#[derive(GodotClass)]
#[class(tool, base = WebRtcPeerConnectionExtension, init, rename = MultipeerWebRTCPeerConnection)]
pub struct MultipeerWebRtcPeerConnection {
    base: Base<WebRtcPeerConnectionExtension>,
    engine: Option<Shared>,
    /// A panic happened inside this connection: every later call fails.
    poisoned: bool,
    /// Drops already reported with a warning.
    reported: Drops,
    /// When the last drop warning was printed (at most one per [`WARNING_INTERVAL`]).
    last_warning: Option<Instant>,
    /// The failure was reported.
    failure_reported: bool,
}

fn error_of(e: &EngineError) -> Error {
    match e {
        EngineError::State(_) => Error::ERR_UNAVAILABLE,
        EngineError::Invalid(_) | EngineError::TooLarge { .. } => Error::ERR_INVALID_PARAMETER,
        EngineError::Full => Error::ERR_BUSY,
        EngineError::Io(_) => Error::ERR_CANT_CREATE,
    }
}

/// Reports an engine error as a Godot error and maps it.
pub(crate) fn fail(method: &str, e: &EngineError) -> Error {
    godot_error!("multipeer: {method}: {e}");
    error_of(e)
}

fn int_of(config: &VarDictionary, key: &str) -> Result<Option<i64>, EngineError> {
    match config.get(key) {
        None => Ok(None),
        Some(v) => {
            v.try_to::<i64>().map(Some).map_err(|_| EngineError::Invalid(format!("{key} must be an int")))
        }
    }
}

fn u16_of(config: &VarDictionary, key: &str) -> Result<Option<u16>, EngineError> {
    int_of(config, key)?
        .map(|v| u16::try_from(v).map_err(|_| EngineError::Invalid(format!("{key} out of range: {v}"))))
        .transpose()
}

fn bool_of(config: &VarDictionary, key: &str, default: bool) -> Result<bool, EngineError> {
    match config.get(key) {
        None => Ok(default),
        Some(v) => v.try_to::<bool>().map_err(|_| EngineError::Invalid(format!("{key} must be a bool"))),
    }
}

/// `create_data_channel`'s config dictionary, as Godot documents it.
fn channel_spec(label: &str, config: &VarDictionary) -> Result<ChannelSpec, EngineError> {
    let negotiated = bool_of(config, "negotiated", false)?;
    let id = u16_of(config, "id")?;
    let spec = ChannelSpec {
        label: label.to_string(),
        negotiated: if negotiated {
            Some(id.ok_or_else(|| EngineError::Invalid(String::from("negotiated needs an id")))?)
        } else {
            None
        },
        ordered: bool_of(config, "ordered", true)?,
        // Godot's own WebRTCMultiplayerPeer writes `maxPacketLifetime` (lower-case t); the
        // W3C name is `maxPacketLifeTime`. Browsers and webrtc-native ignore the misspelling,
        // leaving Godot's "unreliable" lanes reliable; here both spellings count, so those
        // lanes are unreliable as Godot means them (as in multipeer's own mesh).
        max_packet_lifetime: match u16_of(config, "maxPacketLifeTime")? {
            Some(ms) => Some(ms),
            None => u16_of(config, "maxPacketLifetime")?,
        },
        max_retransmits: u16_of(config, "maxRetransmits")?,
        protocol: match config.get("protocol") {
            None => String::new(),
            Some(v) => v
                .try_to::<GString>()
                .map_err(|_| EngineError::Invalid(String::from("protocol must be a String")))?
                .to_string(),
        },
    };
    if spec.max_packet_lifetime.is_some() && spec.max_retransmits.is_some() {
        return Err(EngineError::Invalid(String::from("maxPacketLifeTime and maxRetransmits are exclusive")));
    }
    Ok(spec)
}

/// `initialize`'s `iceServers`: every entry needs `urls` (a String or an Array of them) of a
/// `stun:`/`stuns:`/`turn:`/`turns:` scheme, and may have `username` and `credential`.
fn ice_servers(config: &VarDictionary) -> Result<Vec<IceServer>, EngineError> {
    let Some(servers) = config.get("iceServers") else { return Ok(Vec::new()) };
    let servers = servers
        .try_to::<VarArray>()
        .map_err(|_| EngineError::Invalid(String::from("iceServers must be an Array")))?;
    let mut all = Vec::new();
    for server in servers.iter_shared() {
        let mut entry = IceServer::default();
        let server = server
            .try_to::<VarDictionary>()
            .map_err(|_| EngineError::Invalid(String::from("an iceServers entry must be a Dictionary")))?;
        let urls = server
            .get("urls")
            .ok_or_else(|| EngineError::Invalid(String::from("iceServers entry without urls")))?;
        let urls: Vec<String> = if let Ok(url) = urls.try_to::<GString>() {
            vec![url.to_string()]
        } else {
            let list = urls
                .try_to::<VarArray>()
                .map_err(|_| EngineError::Invalid(String::from("urls must be a String or Array")))?;
            list.iter_shared().map(|u| u.to_string()).collect()
        };
        for url in urls {
            let scheme = url.split(':').next().unwrap_or_default();
            if !matches!(scheme, "stun" | "stuns" | "turn" | "turns") {
                return Err(EngineError::Invalid(format!("ICE server URL {url:?}")));
            }
            entry.urls.push(url);
        }
        let text = |key: &str| server.get(key).map(|v| v.to_string());
        entry.username = text("username");
        entry.credential = text("credential");
        all.push(entry);
    }
    Ok(all)
}

/// `initialize`'s `iceTransportPolicy` (W3C `RTCIceTransportPolicy`, which Godot passes on
/// as given): whether it is `"relay"`.
fn relay_only(config: &VarDictionary) -> Result<bool, EngineError> {
    match config.get("iceTransportPolicy").map(|v| v.to_string()).as_deref() {
        None | Some("all") => Ok(false),
        Some("relay") => Ok(true),
        Some(other) => Err(EngineError::Invalid(format!("iceTransportPolicy {other:?}"))),
    }
}

impl MultipeerWebRtcPeerConnection {
    /// Runs `body` with the engine, unless poisoned; a panic poisons this connection.
    fn with_engine<R>(&mut self, method: &str, failed: R, body: impl FnOnce(&mut Connection) -> R) -> R {
        if self.poisoned {
            godot_error!("multipeer: {method} on a connection that failed after a panic");
            return failed;
        }
        let Some(engine) = self.engine.clone() else {
            return failed;
        };
        let mut panicked = true;
        let result = guarded(method, None, || {
            let r = body(&mut engine.borrow_mut());
            panicked = false;
            Some(r)
        });
        if panicked {
            self.poisoned = true;
        }
        result.unwrap_or(failed)
    }

    fn get<R>(&self, method: &str, failed: R, body: impl FnOnce(&Connection) -> R) -> R {
        if self.poisoned {
            return failed;
        }
        let Some(engine) = self.engine.as_ref() else { return failed };
        guarded(method, None, || Some(body(&engine.borrow()))).unwrap_or(failed)
    }

    fn emit(&mut self, signals: Vec<Signal>) {
        for signal in signals {
            match signal {
                Signal::Description { kind, sdp } => {
                    self.base_mut()
                        .emit_signal("session_description_created", &[kind.to_variant(), sdp.to_variant()]);
                }
                Signal::Candidate { mid, index, candidate } => {
                    self.base_mut().emit_signal(
                        "ice_candidate_created",
                        &[mid.to_variant(), index.to_variant(), candidate.to_variant()],
                    );
                }
                Signal::ChannelReceived(key) => {
                    let Some(engine) = self.engine.clone() else { continue };
                    let channel = MultipeerWebRtcDataChannel::wrap(engine, key);
                    self.base_mut().emit_signal("data_channel_received", &[channel.to_variant()]);
                }
            }
        }
    }

    /// Warns about new drops (at most once per [`WARNING_INTERVAL`], summed), so that loss
    /// inside the engine is visible in Godot's output.
    fn report_drops(&mut self, drops: Drops) {
        let old = self.reported;
        if drops == old || self.last_warning.is_some_and(|at| at.elapsed() < WARNING_INTERVAL) {
            return;
        }
        self.last_warning = Some(Instant::now());
        if drops.inbox_full > old.inbox_full {
            godot_warn!(
                "multipeer: {} received messages dropped: a data channel's inbox was full (read faster)",
                drops.inbox_full - old.inbox_full
            );
        }
        if drops.expired > old.expired {
            godot_warn!(
                "multipeer: {} messages on maxPacketLifeTime channels expired before SCTP took them",
                drops.expired - old.expired
            );
        }
        if drops.outbox_full > old.outbox_full {
            godot_warn!(
                "multipeer: {} put_packet calls refused with ERR_BUSY: the send queue was full",
                drops.outbox_full - old.outbox_full
            );
        }
        if drops.signals > old.signals {
            godot_warn!(
                "multipeer: {} signals dropped: too many queued between polls",
                drops.signals - old.signals
            );
        }
        if drops.send_errors > old.send_errors {
            godot_warn!(
                "multipeer: {} datagrams the socket refused to send",
                drops.send_errors - old.send_errors
            );
        }
        self.reported = drops;
    }
}

impl Drop for MultipeerWebRtcPeerConnection {
    /// A connection the game drops without `close` is closed (as webrtc-native does), so the
    /// remote learns at once instead of at its ICE timeout; its channels then report closed.
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take()
            && let Ok(mut engine) = engine.try_borrow_mut()
        {
            let _ = crate::guard::catch(|| engine.close());
        }
    }
}

#[godot_api]
impl IWebRtcPeerConnectionExtension for MultipeerWebRtcPeerConnection {
    fn get_connection_state(&self) -> GdConnectionState {
        self.get("get_connection_state", GdConnectionState::FAILED, |c| match c.state {
            ConnectionState::New => GdConnectionState::NEW,
            ConnectionState::Connecting => GdConnectionState::CONNECTING,
            ConnectionState::Connected => GdConnectionState::CONNECTED,
            ConnectionState::Disconnected => GdConnectionState::DISCONNECTED,
            ConnectionState::Failed => GdConnectionState::FAILED,
            ConnectionState::Closed => GdConnectionState::CLOSED,
        })
    }

    fn get_gathering_state(&self) -> GatheringState {
        self.get("get_gathering_state", GatheringState::NEW, |c| match c.gathering_state() {
            Gathering::New => GatheringState::NEW,
            Gathering::Gathering => GatheringState::GATHERING,
            Gathering::Complete => GatheringState::COMPLETE,
        })
    }

    fn get_signaling_state(&self) -> GdSignalingState {
        self.get("get_signaling_state", GdSignalingState::CLOSED, |c| match c.signaling {
            SignalingState::Stable => GdSignalingState::STABLE,
            SignalingState::HaveLocalOffer => GdSignalingState::HAVE_LOCAL_OFFER,
            SignalingState::HaveRemoteOffer => GdSignalingState::HAVE_REMOTE_OFFER,
            SignalingState::Closed => GdSignalingState::CLOSED,
        })
    }

    fn initialize(&mut self, config: VarDictionary) -> Error {
        if self.poisoned {
            return Error::FAILED;
        }
        let created = guarded("initialize", Err(EngineError::State("panicked")), || {
            let servers = ice_servers(&config)?;
            let relay_only = relay_only(&config)?;
            let urls = servers.iter().flat_map(|s| &s.urls);
            let stun = stun_servers(urls.map(String::as_str));
            // multipeer-std's parser: usable `turn:` entries, and why the others are not used.
            let ice = WebRtcConfig { ice_servers: servers, ..WebRtcConfig::default() };
            let mut turn = Vec::new();
            for server in ice.turn_servers() {
                match server {
                    Ok(server) => turn.push(server),
                    Err(reason) => godot_warn!("multipeer: iceServers: {reason}"),
                }
            }
            Connection::with_relays(&local_ips(), &stun, &turn, relay_only)
        });
        match created {
            Ok(connection) => {
                if let Some(old) = self.engine.replace(Rc::new(RefCell::new(connection))) {
                    old.borrow_mut().close();
                }
                Error::OK
            }
            Err(e) => fail("initialize", &e),
        }
    }

    fn create_data_channel(
        &mut self,
        label: GString,
        config: VarDictionary,
    ) -> Option<Gd<WebRtcDataChannel>> {
        let Some(engine) = self.engine.clone() else {
            godot_error!("multipeer: create_data_channel before initialize");
            return None;
        };
        let label = label.to_string();
        let key = self.with_engine("create_data_channel", None, |c| {
            // The `fault-injection` feature (tests only) proves the panic boundary from GDScript.
            #[cfg(feature = "fault-injection")]
            if label == "multipeer-fault:panic" {
                panic!("fault injected by the label {label:?}");
            }
            match channel_spec(&label, &config).and_then(|spec| c.create_data_channel(spec)) {
                Ok(key) => Some(key),
                Err(e) => {
                    fail("create_data_channel", &e);
                    None
                }
            }
        })?;
        Some(MultipeerWebRtcDataChannel::wrap(engine, key).upcast())
    }

    fn create_offer(&mut self) -> Error {
        self.with_engine("create_offer", Error::FAILED, |c| match c.create_offer() {
            Ok(()) => Error::OK,
            Err(e) => fail("create_offer", &e),
        })
    }

    fn set_remote_description(&mut self, kind: GString, sdp: GString) -> Error {
        let (kind, sdp) = (kind.to_string(), sdp.to_string());
        self.with_engine("set_remote_description", Error::FAILED, |c| {
            match c.set_remote_description(&kind, &sdp) {
                Ok(()) => Error::OK,
                Err(e) => fail("set_remote_description", &e),
            }
        })
    }

    fn set_local_description(&mut self, kind: GString, sdp: GString) -> Error {
        let (kind, sdp) = (kind.to_string(), sdp.to_string());
        self.with_engine("set_local_description", Error::FAILED, |c| {
            match c.set_local_description(&kind, &sdp) {
                Ok(()) => Error::OK,
                Err(e) => fail("set_local_description", &e),
            }
        })
    }

    fn add_ice_candidate(&mut self, _mid: GString, _index: i32, candidate: GString) -> Error {
        let candidate = candidate.to_string();
        self.with_engine("add_ice_candidate", Error::FAILED, |c| match c.add_ice_candidate(&candidate) {
            Ok(()) => Error::OK,
            // A candidate we cannot use (an mDNS name) is not worth an error in the log: a
            // browser ignores those too.
            Err(e) => error_of(&e),
        })
    }

    fn poll(&mut self) -> Error {
        let polled = self.with_engine("poll", None, |c| {
            c.poll();
            Some((c.take_signals(), c.drops, c.failure.clone(), c.take_relay_errors()))
        });
        let Some((signals, drops, failure, relay_errors)) = polled else {
            return if self.engine.is_some() { Error::FAILED } else { Error::ERR_UNCONFIGURED };
        };
        self.report_drops(drops);
        // At most one per TURN server and allocation (bounded in the engine).
        for reason in relay_errors {
            godot_error!("multipeer: TURN allocation failed: {reason}");
        }
        if let Some(failure) = failure
            && !self.failure_reported
        {
            self.failure_reported = true;
            godot_error!("multipeer: the WebRTC connection failed: {failure}");
        }
        self.emit(signals);
        Error::OK
    }

    fn close(&mut self) {
        self.with_engine("close", (), Connection::close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_godot_errors() {
        assert_eq!(error_of(&EngineError::Full), Error::ERR_BUSY);
        assert_eq!(error_of(&EngineError::TooLarge { max: 1 }), Error::ERR_INVALID_PARAMETER);
        assert_eq!(error_of(&EngineError::State("x")), Error::ERR_UNAVAILABLE);
    }
}
