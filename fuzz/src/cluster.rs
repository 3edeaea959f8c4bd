//! `cluster`: the cluster message codec (`peer::cluster`) and a server's cluster link fed
//! whatever the broker might deliver.
//!
//! The input is the codec's own check first (anything that decodes re-encodes to the same
//! bytes), then a sequence of broker messages for a server that is node 0 of a cluster: each
//! is one length byte and that many bytes (the rest when shorter), with the clock moved on by
//! 100 ms after every message whose length byte is odd, so heartbeats and the failure deadline
//! run. Whatever it is fed, the server must not panic, and everything it asks the broker to
//! publish must decode as a message of its own node.

use multipeer::Instant;
use multipeer::peer::cluster::{self, ClusterMessage};
use multipeer::peer::{ClusterConfig, ClusterOutput, RoomConfig, RoomMode, Server, ServerConfig};

use multipeer::rand_core::SeedableRng as _;

use super::input::Output;

/// The `cluster` target.
pub fn cluster(data: &[u8]) {
    if let Ok((stamp, message)) = cluster::decode(data) {
        let mut again = Vec::new();
        cluster::encode(stamp, &message, &mut again).expect("a decoded message encodes");
        assert_eq!(again, data, "decode and encode disagree");
    }
    let rooms = RoomConfig { mode: RoomMode::ByPath, declared: vec!["a".into()], ..RoomConfig::default() };
    let config = ServerConfig { rooms, ..ServerConfig::default() };
    let mut server = Server::new(config, chacha20::ChaCha8Rng::from_seed([7; 32]));
    let mut now = Instant::ZERO;
    let node = ClusterConfig::new(0, 1, "fuzz");
    let own = node.node;
    server.join_cluster(now, node);
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (message, after) = tail.split_at(usize::from(len).min(tail.len()));
        rest = after;
        server.handle_cluster(now, message);
        if len % 2 == 1 {
            now += core::time::Duration::from_millis(100);
            server.handle_timeout(now);
        }
        while let Some(output) = server.poll_cluster() {
            let bytes = match output {
                ClusterOutput::PublishRoom { message, .. } | ClusterOutput::PublishNode(message) => message,
                ClusterOutput::Subscribe(_) | ClusterOutput::Unsubscribe(_) => continue,
            };
            let (stamp, _) = cluster::decode(&bytes).expect("the server publishes valid messages");
            assert_eq!(stamp, own, "the server publishes in its own name");
        }
    }
    let stats = server.cluster_stats().expect("in a cluster");
    assert!(stats.remote_peers <= 256 * 64, "remote peers are bounded by what was announced");
}

/// Seeds: one message of every kind, alone and as a broker sequence.
#[must_use]
pub fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    use multipeer::peer::PeerId;
    use multipeer::peer::cluster::{NodeStamp, PacketDest};
    let stamp = NodeStamp { index: 3, epoch: 5 };
    let peer = PeerId::new(64 * 9 + 3).expect("an id");
    let messages: [(&str, ClusterMessage<'_>); 6] = [
        ("join", ClusterMessage::Join { room: "a", peer }),
        ("leave", ClusterMessage::Leave { room: "a", peer }),
        (
            "packet",
            ClusterMessage::Packet {
                room: "a",
                from: peer,
                dest: PacketDest::All,
                seq: 0,
                payload: b"\x01\x02",
            },
        ),
        (
            "packet-except-server",
            ClusterMessage::Packet {
                room: "a",
                from: peer,
                dest: PacketDest::AllExcept(PeerId::SERVER),
                seq: 1,
                payload: b"x",
            },
        ),
        ("sync", ClusterMessage::Sync { room: "a" }),
        ("heartbeat", ClusterMessage::Heartbeat { name: "node-3" }),
    ];
    let mut out = Vec::new();
    let mut sequence = Output::default();
    for (name, message) in &messages {
        let mut bytes = Vec::new();
        cluster::encode(stamp, message, &mut bytes).expect("encodes");
        out.push(("cluster", *name, bytes.clone()));
        // Then a one-byte (odd length) message: the clock moves, heartbeats and deadlines run.
        sequence.raw(&[bytes.len() as u8]).raw(&bytes).raw(&[1, 0]);
    }
    out.push(("cluster", "sequence", sequence.bytes));
    out
}
