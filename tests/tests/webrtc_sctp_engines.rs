//! SCTP engine interop under loss: webrtc-sctp 0.17.2 (tokio-bound, the design card's crate,
//! here only a test peer) sends to sctp-proto 0.10.8 (the version str0m uses, driven sans-IO
//! like str0m drives it) over an in-memory link that drops packets.
//!
//! Streams as Godot lays them out: 1 reliable ordered, 2 ordered with a 1 ms lifetime
//! (PR-SCTP "timed"), 3 unordered with a 1 ms lifetime. The sender writes `COUNT` messages on
//! each; once the association is up, the link drops every `DROP_EVERY`-th packet from sender to
//! receiver that carries DATA, and delays every packet by `LINK_DELAY` (in order). Checked:
//! stream 1 delivers everything in order; stream 2 drops (the lost messages are abandoned and
//! skipped with FORWARD-TSN) but never reorders; stream 3 drops and delivers out of order,
//! without duplicates.
//!
//! Only DATA packets are counted for the drops: counting every packet let the sender's cycle
//! lock in phase with the drops on a loaded machine, so that every third packet was a
//! FORWARD-TSN and hardly any DATA was lost (stream 2 arrived whole, and the check that it
//! drops failed; CI stop 22).
//!
//! Both engines descend from pion/sctp (through webrtc-rs), so this test cannot catch bugs they
//! share: the 1228-byte MTU was one such bug, present in both. Independent SCTP stacks
//! (usrsctp in libdatachannel, dcSCTP in Chromium, aiortc's own) are exercised by
//! `tests/interop/webrtc/run.sh`. The webrtc-sctp side uses the real clock (its timed policy
//! reads `SystemTime`), so exact counts vary from run to run; the assertions do not depend on
//! them.
#![cfg(feature = "webrtc")]

use core::net::SocketAddr;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use sctp_proto::{
    AssociationHandle, DatagramEvent, Endpoint, EndpointConfig, Event, Payload, ServerConfig, StreamEvent,
};
use tokio::sync::{Mutex, mpsc};
use webrtc_sctp::association::{Association, Config};
use webrtc_sctp::chunk::chunk_payload_data::PayloadProtocolIdentifier;
use webrtc_sctp::stream::ReliabilityType;
use webrtc_util::conn::Conn;

const COUNT: u32 = 300;
const DROP_EVERY: u64 = 3;
/// Packets let through untouched first: the handshake.
const CLEAN_START: u64 = 8;
/// One-way delay from sender to receiver. A retransmission needs a SACK that saw later
/// packets, so it comes at least this long after the first send: well past the 1 ms lifetime,
/// so webrtc-sctp always abandons a lost timed chunk. Without the delay a retransmission could
/// go out within the same millisecond, the chunk was delivered late instead of abandoned, and
/// the "lost messages are abandoned" check failed now and then (CI, stop 22).
const LINK_DELAY: Duration = Duration::from_millis(5);

/// The webrtc-sctp side of the link: what it sends goes to the receiver, minus the losses.
struct LossyConn {
    /// Packets with the time they may be delivered; `delay_link` holds them until then.
    to_receiver: mpsc::UnboundedSender<(tokio::time::Instant, Vec<u8>)>,
    from_receiver: Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    sent: AtomicU64,
    data_sent: AtomicU64,
    dropped: Arc<AtomicU64>,
}

/// The stream of each DATA chunk in an SCTP packet (RFC 9260 3.3.1), skipping the 12-byte
/// common header.
fn data_streams(packet: &[u8]) -> impl Iterator<Item = u16> + '_ {
    let mut at = 12;
    core::iter::from_fn(move || {
        while let Some(header) = packet.get(at..at + 4) {
            let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
            let chunk = packet.get(at..at + len.max(4))?;
            at += (len.max(4) + 3) & !3;
            if header[0] == 0 && chunk.len() >= 10 {
                return Some(u16::from_be_bytes([chunk[8], chunk[9]]));
            }
        }
        None
    })
}

fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5000))
}

#[async_trait]
impl Conn for LossyConn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Ok(())
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        let packet = self.from_receiver.lock().await.recv().await;
        let packet = packet.ok_or(webrtc_util::Error::ErrClosedListener)?;
        let n = packet.len().min(buf.len());
        buf[..n].copy_from_slice(&packet[..n]);
        Ok(n)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        Ok((self.recv(buf).await?, addr()))
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        let carries_data = n > CLEAN_START && data_streams(buf).next().is_some();
        let data_n = if carries_data { self.data_sent.fetch_add(1, Ordering::Relaxed) + 1 } else { 0 };
        if carries_data && data_n % DROP_EVERY == 0 {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            let _ = self.to_receiver.send((tokio::time::Instant::now() + LINK_DELAY, buf.to_vec()));
        }
        Ok(buf.len())
    }

    async fn send_to(&self, buf: &[u8], _target: SocketAddr) -> webrtc_util::Result<usize> {
        self.send(buf).await
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(addr())
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(addr())
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn core::any::Any + Send + Sync) {
        self
    }
}

/// Delivers each packet at its time, in the order sent.
async fn delay_link(
    mut incoming: mpsc::UnboundedReceiver<(tokio::time::Instant, Vec<u8>)>,
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
) {
    while let Some((at, packet)) = incoming.recv().await {
        tokio::time::sleep_until(at).await;
        if outgoing.send(packet).is_err() {
            return;
        }
    }
}

/// What the sctp-proto side received: (stream, sequence number) in delivery order.
type Received = Arc<Mutex<Vec<(u16, u32)>>>;

/// Drives an sctp-proto server endpoint the way str0m does: datagrams in, timeouts, transmits
/// out, stream reads on every readable event.
async fn run_receiver(
    mut incoming: mpsc::UnboundedReceiver<Vec<u8>>,
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    received: Received,
    until: Instant,
) {
    let mut endpoint =
        Endpoint::new(Arc::new(EndpointConfig::default()), Some(Arc::new(ServerConfig::default())));
    let mut assoc: Option<(AssociationHandle, sctp_proto::Association)> = None;
    while Instant::now() < until {
        let timeout = assoc.as_ref().and_then(|(_, a)| a.poll_timeout());
        let sleep =
            timeout.map_or(Duration::from_millis(10), |t| t.saturating_duration_since(Instant::now()));
        let packet = tokio::select! {
            p = incoming.recv() => match p { Some(p) => Some(p), None => return },
            () = tokio::time::sleep(sleep.min(Duration::from_millis(10))) => None,
        };
        let now = Instant::now();
        if let Some(p) = packet {
            match endpoint.handle(now, addr(), None, None, Bytes::from(p)) {
                Some((handle, DatagramEvent::NewAssociation(a))) if assoc.is_none() => {
                    assoc = Some((handle, a))
                }
                Some((_, DatagramEvent::AssociationEvent(e))) => {
                    if let Some((_, a)) = assoc.as_mut() {
                        a.handle_event(e);
                    }
                }
                _ => {}
            }
        }
        while let Some(t) = endpoint.poll_transmit() {
            if let Payload::RawEncode(v) = t.payload {
                v.into_iter().for_each(|b| drop(outgoing.send(b.to_vec())));
            }
        }
        let Some((handle, a)) = assoc.as_mut() else { continue };
        a.handle_timeout(now);
        while let Some(e) = a.poll_endpoint_event() {
            if let Some(back) = endpoint.handle_event(*handle, e) {
                a.handle_event(back);
            }
        }
        while let Some(t) = a.poll_transmit(now) {
            if let Payload::RawEncode(v) = t.payload {
                v.into_iter().for_each(|b| drop(outgoing.send(b.to_vec())));
            }
        }
        while let Some(event) = a.poll() {
            let id = match event {
                Event::Stream(StreamEvent::Opened { id } | StreamEvent::Readable { id }) => id,
                _ => continue,
            };
            while a.accept_stream().is_some() {}
            let Ok(mut stream) = a.stream(id) else { continue };
            while let Ok(Some(chunks)) = stream.read_sctp() {
                let mut buf = vec![0u8; chunks.len()];
                if chunks.read(&mut buf).is_ok() && buf.len() >= 4 {
                    let seq = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                    received.lock().await.push((id, seq));
                }
            }
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn webrtc_sctp_to_sctp_proto_under_loss() {
    let started = Instant::now();
    let (to_link, link_in) = mpsc::unbounded_channel();
    let (to_receiver, receiver_in) = mpsc::unbounded_channel();
    let link = tokio::spawn(delay_link(link_in, to_receiver));
    let (to_sender, sender_in) = mpsc::unbounded_channel();
    let dropped = Arc::new(AtomicU64::new(0));
    let conn = Arc::new(LossyConn {
        to_receiver: to_link,
        from_receiver: Mutex::new(sender_in),
        sent: AtomicU64::new(0),
        data_sent: AtomicU64::new(0),
        dropped: Arc::clone(&dropped),
    });
    let received: Received = Arc::default();
    let until = Instant::now() + Duration::from_secs(60);
    let receiver = tokio::spawn(run_receiver(receiver_in, to_sender, Arc::clone(&received), until));

    let sender = Association::client(Config {
        net_conn: conn,
        max_receive_buffer_size: 0,
        max_message_size: 0,
        mtu: 0,
        name: "webrtc-sctp".into(),
        // RFC 8841: 5000 on both sides, as sctp-proto assumes.
        local_port: 5000,
        remote_port: 5000,
    })
    .await
    .unwrap();
    let lanes = [
        (1u16, false, ReliabilityType::Reliable, 0),
        (2, false, ReliabilityType::Timed, 1),
        (3, true, ReliabilityType::Timed, 1),
    ];
    let mut streams = Vec::new();
    for (id, unordered, kind, value) in lanes {
        let s = sender.open_stream(id, PayloadProtocolIdentifier::Binary).await.unwrap();
        s.set_reliability_params(unordered, kind, value);
        streams.push(s);
    }
    for seq in 0..COUNT {
        for s in &streams {
            let mut message = seq.to_be_bytes().to_vec();
            message.resize(200, 0xab);
            s.write_sctp(&Bytes::from(message), PayloadProtocolIdentifier::Binary).await.unwrap();
        }
    }
    // Wait for the reliable stream to complete, then for stragglers.
    loop {
        assert!(Instant::now() < until, "reliable stream incomplete");
        let done = received.lock().await.iter().filter(|(id, _)| *id == 1).count() == COUNT as usize;
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    receiver.abort();
    link.abort();
    let _ = sender.close().await;

    let got = received.lock().await.clone();
    let lane = |id: u16| got.iter().filter(|(s, _)| *s == id).map(|(_, q)| *q).collect::<Vec<_>>();
    let (reliable, ordered, unordered) = (lane(1), lane(2), lane(3));
    let out_of_order = unordered.windows(2).filter(|w| w[1] < w[0]).count();
    eprintln!(
        "dropped every {DROP_EVERY}rd DATA packet ({} in all); stream 1 {}/{COUNT}, stream 2 {}/{COUNT}, \
         stream 3 {}/{COUNT} ({out_of_order} out of order); {:?}",
        dropped.load(Ordering::Relaxed),
        reliable.len(),
        ordered.len(),
        unordered.len(),
        started.elapsed()
    );
    assert_eq!(reliable, (0..COUNT).collect::<Vec<_>>(), "reliable: everything, in order");
    assert!(ordered.windows(2).all(|w| w[0] < w[1]), "ordered timed: never reordered");
    assert!(ordered.len() < COUNT as usize, "ordered timed: lost messages are abandoned");
    let mut distinct = unordered.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), unordered.len(), "unordered timed: no duplicates");
    assert!(unordered.len() < COUNT as usize || out_of_order > 0, "unordered timed: drops or reorders");
}
