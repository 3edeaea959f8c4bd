//! Seeds of the multiplayer, WebRTC and signalling targets, built from the vectors of
//! `godot-protocol.md` §10.2–10.6 and `webrtc.md` §4.2.

use super::input::Output;
use super::multiplayer::{ClientOp, ServerOp, ServerSetup, encode_client_run, encode_server_run};
use super::signaling::{LobbyOp, encode_signaling_run};
use super::webrtc::{MeshOp, encode_mesh_run};

/// §10.2: Godot 3 messages, server → client and client → server.
pub const GODOT3_MESSAGES: &[(&str, &[u8])] = &[
    ("sys-id-12345", &[0x03, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x39, 0x30, 0, 0]),
    ("sys-add-1", &[0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0]),
    ("sys-add-12345", &[0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x39, 0x30, 0, 0]),
    ("sys-del-12345", &[0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x39, 0x30, 0, 0]),
    ("client-to-server-raw", &[0x00, 0x39, 0x30, 0, 0, 0x01, 0, 0, 0, 0x04, 0xab]),
    ("server-to-12345", &[0x00, 0x01, 0, 0, 0, 0x39, 0x30, 0, 0, 0x04, 0xab]),
    ("broadcast-except-12345", &[0x00, 0x01, 0, 0, 0, 0xc7, 0xcf, 0xff, 0xff, 0x04, 0xab]),
    ("client-to-67890", &[0x00, 0x39, 0x30, 0, 0, 0x32, 0x09, 0x01, 0x00, 0x04, 0xab]),
    ("too-short", &[0x00, 0x01, 0x02]),
];

/// §10.3: Godot 4 SceneMultiplayer SYS packets and their neighbours.
pub const SCENE_PACKETS: &[(&str, &[u8])] = &[
    ("add-peer-12345", &[0x07, 0x01, 0x39, 0x30, 0, 0]),
    ("del-peer-12345", &[0x07, 0x02, 0x39, 0x30, 0, 0]),
    ("relay-to-67890", &[0x07, 0x03, 0x32, 0x09, 0x01, 0x00, 0x03, 0xab]),
    ("relay-from-12345", &[0x07, 0x03, 0x39, 0x30, 0, 0, 0x03, 0xab]),
    ("relay-broadcast", &[0x07, 0x03, 0, 0, 0, 0, 0x03, 0xab]),
    ("relay-except-67890", &[0x07, 0x03, 0xce, 0xf6, 0xfe, 0xff, 0x03, 0xab]),
    ("relay-except-server", &[0x07, 0x03, 0xff, 0xff, 0xff, 0xff, 0x03, 0xab]),
    ("relay-empty", &[0x07, 0x03, 0, 0, 0, 0]),
    ("direct-raw", &[0x03, 0x61, 0x62]),
    ("auth-complete", &[0x07, 0x00]),
    ("unknown-sys", &[0x0f, 0x09, 0, 0, 0, 0]),
];

/// `webrtc.md` §4.2: DCEP vectors V1–V6 and N1–N4.
pub const DCEP_MESSAGES: &[(&str, &[u8])] = &[
    ("v1-reliable", b"\x03\x00\x01\x00\x00\x00\x00\x00\x00\x08\x00\x00reliable"),
    ("v2-ordered-timed", b"\x03\x02\x01\x00\x00\x00\x00\x01\x00\x07\x00\x00ordered"),
    ("v3-unordered-timed", b"\x03\x82\x01\x00\x00\x00\x00\x01\x00\x0a\x00\x00unreliable"),
    ("v4-minimum", b"\x03\x81\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    ("v5-chat-json", b"\x03\x80\x02\x00\x00\x00\x00\x00\x00\x04\x00\x04chatjson"),
    ("v6-ack", b"\x02"),
    ("n1-truncated", b"\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    ("n2-label-beyond", b"\x03\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00ab"),
    ("n3-channel-type", b"\x03\x7f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    ("n4-label-not-utf8", b"\x03\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\xff"),
];

/// Every seed of these targets.
#[must_use]
pub fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, bytes) in GODOT3_MESSAGES {
        out.push(("godot3_header", *name, bytes.to_vec()));
    }
    for (name, bytes) in SCENE_PACKETS {
        out.push(("scene_sys", *name, bytes.to_vec()));
    }
    for (name, bytes) in DCEP_MESSAGES {
        out.push(("dcep", *name, bytes.to_vec()));
    }
    for (name, bytes) in server_seeds() {
        out.push(("server_stateful", name, bytes));
    }
    for (name, bytes) in client_seeds() {
        out.push(("client_stateful", name, bytes));
    }
    for (name, bytes) in mesh_seeds() {
        out.push(("mesh_stateful", name, bytes));
    }
    for (name, bytes) in signaling_seeds() {
        out.push(("signaling", name, bytes));
    }
    for (name, bytes) in super::lobby_client::seeds() {
        out.push(("lobby_client", name, bytes));
    }
    out
}

const ALL: u16 = u16::MAX;

fn server_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use ServerOp::{
        Accept, Close, Disconnect, Eof, Events, Packet, Pop, Put, Raw, Request, Service, Transmit,
    };
    let joined = |n: u8| {
        let mut ops = Vec::new();
        for c in 0..n {
            ops.push(Accept(c));
        }
        for c in 0..n {
            ops.push(Request { conn: c, mode: 1 | (c << 2) });
            ops.push(Transmit { conn: c, n: ALL });
        }
        ops.push(Events);
        ops
    };
    // Relays to the first peer (selector 2), to everyone (0), to everyone but the first (4), to
    // the server (1); a direct `send_bytes` (§10.3); the application reads, sends and kicks.
    let mut godot4 = joined(3);
    godot4.extend([
        Packet { conn: 1, kind: 1, peer: 2, payload: vec![0x03, 0xab] },
        Packet { conn: 2, kind: 1, peer: 0, payload: vec![0x03, 0xab] },
        Packet { conn: 0, kind: 1, peer: 4, payload: vec![0x03, 0xab] },
        Packet { conn: 0, kind: 1, peer: 1, payload: vec![0x03, 0xab] },
        Packet { conn: 1, kind: 0, peer: 0, payload: vec![0x03, 0x61, 0x62] },
        Pop(0),
        Pop(1),
        Pop(255),
        Put { peer: 0, len: 2 },
        Put { peer: 2 | 8, len: 300 },
        Transmit { conn: 0x80, n: 7 },
        Transmit { conn: 0x80, n: ALL },
        Disconnect { peer: 0, how: 0 },
        Events,
        Service,
        Eof(1),
        Service,
        Events,
        Close,
    ]);
    // §10.2: data from the sender to a peer and to all but one, a spoofed sender, a system
    // type from a client, a 3-byte message.
    let mut godot3 = joined(2);
    godot3.extend([
        Packet { conn: 0, kind: 2, peer: 2 | 8, payload: vec![0x04, 0xab] },
        Packet { conn: 1, kind: 2, peer: 4 | 8, payload: vec![0x04, 0xab] },
        Packet { conn: 1, kind: 2, peer: 1, payload: vec![0x04, 0xab] },
        Packet { conn: 0, kind: 3, peer: 2, payload: vec![0x04, 0xab] },
        Packet { conn: 0, kind: 3 | 4, peer: 2, payload: vec![] },
        Packet { conn: 0, kind: 0, peer: 0, payload: vec![0x00, 0x01, 0x02] },
        Pop(0),
        Put { peer: 2, len: 2 },
        Put { peer: 4, len: 2 },
        Disconnect { peer: 1, how: 2 | 4 },
        Events,
        Transmit { conn: 0x80, n: ALL },
        Service,
        Events,
    ]);
    // Two peers, a one-packet inbox and 64-byte messages: input is held back until read.
    let mut tight = joined(2);
    tight.extend([
        Accept(2),
        Packet { conn: 0, kind: 1, peer: 1, payload: vec![0x03; 20] },
        Packet { conn: 0, kind: 0, peer: 0, payload: vec![0x03; 20] },
        Packet { conn: 0, kind: 0, peer: 0, payload: vec![0x03; 20] },
        Packet { conn: 1, kind: 0, peer: 0, payload: vec![0x03; 100] },
        Service,
        Pop(0),
        Service,
        Pop(0),
        Service,
        Put { peer: 0, len: 60 },
        Put { peer: 0, len: 60 },
        Put { peer: 0, len: 60 },
        ServerOp::Advance(0x80 | 5),
        Transmit { conn: 0, n: 9 },
        ServerOp::Advance(0xff),
        Service,
        Events,
    ]);
    // Origins and addresses: three from one IP (two allowed), a bad Origin, refusal, a
    // handshake that never comes.
    let origins = vec![
        Accept(0),
        Accept(0),
        Accept(0),
        Accept(1),
        // Bits 5–7 also pick the protocols offered: both offer "chat", which the setup supports.
        Request { conn: 0, mode: 0x80 | 0x40 | 0x20 | 1 },
        Request { conn: 1, mode: 0x80 | 0x20 | 1 },
        ServerOp::Refuse,
        Request { conn: 2, mode: 1 },
        ServerOp::Refuse,
        Transmit { conn: 0x80, n: ALL },
        Transmit { conn: 0x80, n: ALL },
        Events,
        Service,
        Accept(0),
        ServerOp::Advance(0xff),
        Service,
        Events,
    ];
    // A Close frame from a peer, a ping, then the transport ends; raw garbage on another.
    let closing = vec![
        Accept(0),
        Accept(1),
        Request { conn: 0, mode: 1 },
        Request { conn: 1, mode: 1 },
        ServerOp::Frame { conn: 0, head: 0x89, payload: b"hi".to_vec() },
        ServerOp::Frame { conn: 0, head: 0x88, payload: b"\x03\xe9going".to_vec() },
        Raw { conn: 1, bytes: b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00".to_vec() },
        Events,
        Transmit { conn: 0x80, n: ALL },
        Transmit { conn: 0x80, n: ALL },
        Service,
        Eof(0),
        Service,
    ];
    let origin_setup = ServerSetup([0b1011_1110, 0xff, 0b0011_1111, 0x55]);
    // Rooms by path (setup bit 0x40: two rooms of two at most): the default room, two peers in
    // `/a`, a third for `/a` (full: 503), `/b?x=1` (too many rooms: 503), a hostile path (400);
    // relays inside `/a`, and to a peer of the other room (dropped as unknown).
    let rooms_setup = ServerSetup([ServerSetup::GODOT4.0[0] | 0x40, 0xff, 0b0011_1111, 0x55]);
    let mut rooms = Vec::new();
    for c in 0..4 {
        rooms.push(Accept(c));
    }
    for (conn, mode) in [(0, 1), (1, 0x11), (2, 0x11), (3, 0x11), (4, 0x21), (5, 0x31)] {
        if conn >= 4 {
            // A refused connection was released: a new one takes its place.
            rooms.extend([Eof(conn - 1), Service, Accept(0)]);
        }
        rooms.push(Request { conn, mode });
        rooms.push(Transmit { conn, n: ALL });
    }
    rooms.extend([
        Events,
        Packet { conn: 1, kind: 1, peer: 0, payload: vec![0x03, 0xab] },
        Packet { conn: 2, kind: 1, peer: 2, payload: vec![0x03, 0xab] },
        Packet { conn: 0, kind: 1, peer: 3, payload: vec![0x03, 0xab] },
        Transmit { conn: 0x80, n: ALL },
        Transmit { conn: 0x80, n: ALL },
        Disconnect { peer: 2, how: 0 },
        Service,
        Events,
        Close,
    ]);
    // Large packets, held in their connections for the application: with relay, one is
    // copied out when a relay arrives behind it; echoed from where it lies, forwarded to
    // everyone; a sender leaves while its packet waits, another is kicked.
    let mut held = joined(3);
    held.extend([
        Packet { conn: 0, kind: 0x80, peer: 1, payload: vec![0x00, 0x11] },
        Packet { conn: 0, kind: 0x81, peer: 2 | 8, payload: vec![0x00, 0x12] },
        Pop(2),
        Packet { conn: 1, kind: 0x80, peer: 1, payload: vec![0x00, 0x13] },
        Pop(2 | 4),
        Packet { conn: 2, kind: 0x80, peer: 1, payload: vec![0x00, 0x14] },
        Packet { conn: 1, kind: 0x80, peer: 1, payload: vec![0x00, 0x15] },
        Eof(2),
        Disconnect { peer: 1, how: 0 },
        Events,
        Service,
        Pop(0),
        Pop(1),
        Service,
        Transmit { conn: 0x80, n: ALL },
        Events,
        Close,
    ]);
    let no_relay = ServerSetup([ServerSetup::GODOT4.0[0] & !2, 0xff, 0b0011_1111, 0x55]);
    vec![
        ("held-large-packets", encode_server_run(ServerSetup::GODOT4, &held)),
        ("held-large-packets-no-relay", encode_server_run(no_relay, &held)),
        ("rooms-by-path", encode_server_run(rooms_setup, &rooms)),
        ("godot4-relay-session", encode_server_run(ServerSetup::GODOT4, &godot4)),
        ("godot3-session", encode_server_run(ServerSetup::GODOT3, &godot3)),
        ("tight-limits", encode_server_run(ServerSetup::TIGHT, &tight)),
        ("origins-addresses-refusal", encode_server_run(origin_setup, &origins)),
        ("peer-closes", encode_server_run(ServerSetup::GODOT4, &closing)),
    ]
}

fn client_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use ClientOp::{Advance, Close, Events, Frame, Message, Pop, Put, Raw, Transmit};
    // Selector 7 names peer 67890, 1 the server, 2 peer 2.
    let godot4 = vec![
        Events,
        Message { kind: 1, id: 7, payload: vec![] },
        Message { kind: 1, id: 2, payload: vec![] },
        Message { kind: 3, id: 7, payload: vec![0xab] },
        Frame { head: 0x82, payload: vec![0x03, 0x61, 0x62] },
        Pop(0),
        Pop(255),
        Put { target: 1, len: 2 },
        Put { target: 7, len: 1 },
        Put { target: 3, len: 1 },
        Transmit(ALL),
        Message { kind: 2, id: 7, payload: vec![] },
        Message { kind: 4 | 9 << 3, id: 7, payload: vec![] },
        Events,
        Frame { head: 0x88, payload: b"\x03\xe9going".to_vec() },
        Events,
        Transmit(ALL),
    ];
    let godot3 = vec![
        Events,
        Message { kind: 6, id: 7, payload: vec![] },
        Message { kind: 7, id: 7, payload: vec![0x04, 0xab] },
        Message { kind: 7, id: 4, payload: vec![0x04, 0xab] },
        Frame { head: 0x82, payload: vec![0x00, 0x01, 0x02] },
        Pop(0),
        Pop(1),
        Put { target: 7, len: 1 },
        Put { target: 4, len: 1 },
        Message { kind: 6 | 8, id: 7, payload: vec![] },
        Events,
        ClientOp::Disconnect(0),
        Events,
        Transmit(ALL),
    ];
    let no_id = 32;
    vec![
        ("godot4-relay", encode_client_run(0b10, &godot4)),
        ("godot3", encode_client_run(0b1, &godot3)),
        (
            "godot4-id-5-bytes",
            encode_client_run(no_id, &[Frame { head: 0x82, payload: vec![9, 3, 0, 0, 0] }, Events]),
        ),
        ("godot4-id-1", encode_client_run(no_id, &[Frame { head: 0x82, payload: vec![1, 0, 0, 0] }, Events])),
        (
            "godot3-id-then-add",
            encode_client_run(
                no_id | 1,
                &[
                    Message { kind: 5, id: 0, payload: vec![] },
                    Message { kind: 6, id: 1, payload: vec![] },
                    Events,
                ],
            ),
        ),
        ("http-400", encode_client_run(16, &[Raw(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()), Events])),
        ("id-timeout", encode_client_run(no_id, &[Advance(0xff), Advance(0xff), Events, Transmit(ALL)])),
        (
            "heartbeat-tight",
            encode_client_run(
                0b1110,
                &[
                    Advance(0x80 | 1),
                    Transmit(ALL),
                    Message { kind: 0, id: 0, payload: vec![0; 70] },
                    Advance(0xff),
                    Advance(0xff),
                    Events,
                    Close,
                ],
            ),
        ),
    ]
}

fn mesh_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use MeshOp::{Add, Close, Closed, Drain, Local, Message, Open, Pop, Put, Remote, State};
    let open_all = |peer: u8, n: u8| (1..=n).map(move |c| Open { peer, channel: c });
    // `create_mesh(2)` with channels_config [UNRELIABLE, RELIABLE] (§10.6): peers 1 and 3.
    let mut mesh = vec![Add(0), Add(2), Drain, Remote { peer: 0, len: 20 }, Local(0), Local(16)];
    mesh.extend(open_all(0, 5));
    mesh.extend(open_all(2, 5));
    mesh.extend([
        Message { peer: 0, channel: 1, payload: b"a".to_vec() },
        Message { peer: 2, channel: 5, payload: b"b".to_vec() },
        Message { peer: 0, channel: 7, payload: b"unknown".to_vec() },
        Pop,
        Pop,
        Put { target: 0, how: 2 << 2 | 2, len: 3 },
        Put { target: 2 | 2 << 2, how: 1, len: 3 },
        Drain,
        Closed { peer: 2, channel: 2 },
        Drain,
        Close,
        Drain,
    ]);
    let mut client = vec![Add(0), Add(1), Remote { peer: 32, len: 40 }, Drain];
    client.extend(open_all(0, 3));
    client.extend([Drain, Put { target: 1, how: 2, len: 4 }, State(3 << 3), Drain, Add(0)]);
    // 3.x server compatibility: peer 3 connects before the server (1), then the server leaves.
    let mut compat = vec![Add(2), Add(0)];
    compat.extend(open_all(2, 3));
    compat.push(Drain);
    compat.extend(open_all(0, 3));
    compat.extend([Drain, State(2 << 3), Drain, MeshOp::Remove(2), Drain]);
    // Server with 2-message, 16-byte lanes: the reliable lane fills and holds, the unreliable
    // one drops its oldest.
    let mut tight = vec![Add(1)];
    tight.extend(open_all(1, 3));
    for _ in 0..3 {
        tight.push(Message { peer: 1, channel: 1, payload: vec![1; 6] });
        tight.push(Message { peer: 1, channel: 3, payload: vec![3; 6] });
    }
    tight.extend([Message { peer: 1, channel: 3, payload: vec![3; 40] }, Pop, Pop, Drain, Pop, Pop, Pop]);
    vec![
        ("mesh-godot-channels", encode_mesh_run(2 << 3, &mesh)),
        ("client", encode_mesh_run(2, &client)),
        ("server-compatibility", encode_mesh_run(3, &compat)),
        ("server-tight-lanes", encode_mesh_run(1 << 5 | 1, &tight)),
    ]
}

fn signaling_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use LobbyOp::{Advance, Binary, Connect, Disconnect, Message, Text};
    // Message kinds: 0 Join, 4 Offer, 5 Answer, 6 Candidate, 7 Seal; bit 3 makes id 0 (mesh).
    // Id selector 2 is the first id the server assigned; data selector 2 the first lobby.
    let lobby = vec![
        Connect,
        Connect,
        Connect,
        Message { conn: 0, kind: 0, id: 0, data: 0 },
        Message { conn: 1, kind: 0, id: 1, data: 2 },
        Message { conn: 2, kind: 0, id: 1, data: 2 },
        Message { conn: 1, kind: 4, id: 1, data: 0 },
        Message { conn: 0, kind: 5, id: 3, data: 0 },
        Message { conn: 2, kind: 6, id: 4, data: 0 },
        Message { conn: 2, kind: 6, id: 0x80 | 9, data: 0 },
        Message { conn: 1, kind: 7, id: 0, data: 0 },
        Message { conn: 0, kind: 7, id: 0, data: 0 },
        Connect,
        Message { conn: 3, kind: 0, id: 1, data: 2 },
        Advance(255),
        Advance(255),
    ];
    let host_leaves = vec![
        Connect,
        Connect,
        Message { conn: 0, kind: 0, id: 1, data: 0 },
        Message { conn: 1, kind: 0, id: 1, data: 2 },
        Disconnect(0),
        Binary(1),
        Connect,
        Text { conn: 2, text: b"{\"type\":0,\"id\":0,\"data\":\"\"}".to_vec() },
        Text { conn: 2, text: b"{\"type\":9}".to_vec() },
    ];
    let limits = vec![
        Connect,
        Connect,
        Connect,
        Message { conn: 0, kind: 0, id: 0, data: 0 },
        Connect,
        Message { conn: 3, kind: 0, id: 0, data: 0 },
        Advance(3),
        Advance(255),
    ];
    let join = br#"{"type": 0, "id": 0, "data": "ABCDEFGHIJKLMNOP", "extra": [1, {"a": null}, "\u00e9"]}"#;
    let offer = b"{\"type\":4,\"id\":1,\"data\":\"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\n\"}";
    let mut empty = Output::default();
    empty.slice(b"{}");
    vec![
        ("lobby-mesh-relay-seal", encode_signaling_run(join, 0xff, &lobby)),
        ("host-leaves", encode_signaling_run(offer, 0b1111_1111, &host_leaves)),
        ("limits-timeouts", encode_signaling_run(b"{\"type\":-1,\"id\":1e3}", 0b0000_0001, &limits)),
        ("codec-only", empty.bytes),
    ]
}
