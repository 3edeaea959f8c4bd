//! The cluster link over NATS (feature `cluster`): the official `async-nats` client on a thread
//! of its own (a current-thread tokio runtime), joined to the mio loop by two bounded channels
//! and the loop's waker. The core decides everything ([`multipeer::peer::ClusterOutput`]); this
//! only carries bytes, holds the node-index lease and reports the broker's state.
//!
//! The node index is a lease in a JetStream key-value bucket (`mp_<cluster>_nodes`): key
//! `node_<k>` is taken with an atomic create (it fails if another instance holds it), renewed
//! every second with a compare-and-set on its revision, and freed by the bucket's age limit
//! ([`LEASE_AGE`]) when its holder dies. Two live instances can never hold the same index.

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use async_nats::jetstream::{kv, stream};
use futures_util::StreamExt as _;
use multipeer::peer::cluster::{MAX_NODES, node_subject, room_subject};
use multipeer::peer::{ClusterConfig, ClusterOutput};
use tokio::sync::mpsc;

use crate::{Server, Stop};

/// How long a node-index lease outlives its last renewal: longer than the failure deadline, so
/// an index is never reused while other instances may still hold its peers.
pub const LEASE_AGE: Duration = Duration::from_secs(10);
/// How often the lease is renewed.
const LEASE_RENEWAL: Duration = Duration::from_secs(1);
/// Bound of each channel between the loop and the NATS thread, in messages.
const CHANNEL: usize = 1 << 14;
/// Most broker messages handed to the core per loop turn (the loop stays responsive).
const BATCH: usize = 4096;

/// Where and how an instance joins its cluster (`multipeer serve --cluster`).
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The NATS server(s): `nats://HOST:4222`, `tls://HOST:4222`, several separated by commas.
    pub url: String,
    /// The cluster's name: the subject namespace `mp.<cluster>.>` and the lease bucket.
    pub cluster: String,
    /// This instance's name (`--node NAME`), in logs, status and heartbeats.
    pub node_name: String,
    /// A pinned node index (`--node-index K`); `None` takes the first free one.
    pub node_index: Option<u8>,
    /// A NATS credentials file (`.creds`: user JWT and nkey seed).
    pub credentials: Option<PathBuf>,
    /// A CA certificate (PEM) the broker's TLS certificate must chain to.
    pub tls_ca: Option<PathBuf>,
}

/// What the link tells the loop.
enum Incoming {
    Message(Vec<u8>),
    Broker(async_nats::Event),
    LeaseLost,
}

/// What the loop asks of the link.
enum Command {
    Output(ClusterOutput),
    Shutdown,
}

/// The broker's state as the loop saw it last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterLinkStatus {
    /// Connected to the broker now.
    pub connected: bool,
    /// Times the connection was lost since start.
    pub outages: u64,
    /// Times the broker reported this instance as a slow consumer (it dropped messages).
    pub slow_consumer: u64,
    /// Messages the core produced that did not fit the channel to the NATS thread.
    pub dropped_out: u64,
    /// Times the channel to the NATS thread was full (the broker slower than this instance);
    /// the core's outbox held the rest until it had room.
    pub channel_full: u64,
    /// The node-index lease was lost (another instance holds the index): this instance must stop.
    pub lease_lost: bool,
}

/// A running cluster link; dropping it releases the lease and stops the thread.
pub struct ClusterLink {
    commands: mpsc::Sender<Command>,
    incoming: mpsc::Receiver<Incoming>,
    pending: Arc<AtomicBool>,
    /// Raised by the loop when the channel to the NATS thread was full.
    channel_full: Arc<AtomicBool>,
    index: u8,
    epoch: u64,
    name: String,
    status: ClusterLinkStatus,
    thread: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClusterLink").field("index", &self.index).field("status", &self.status).finish()
    }
}

impl ClusterLink {
    /// Connects to the broker and takes a node index; the loops watching `wake` are woken
    /// (without raising it, see [`Stop::wake`]) whenever messages arrive. Waits at most 10 s.
    ///
    /// # Errors
    /// The broker cannot be reached, JetStream is off, or no index is free.
    pub fn start(options: ClusterOptions, wake: &Stop) -> Result<Self, String> {
        if options.cluster.is_empty()
            || !options.cluster.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err("the cluster name uses ASCII letters, digits, '-' and '_'".into());
        }
        let (commands, command_rx) = mpsc::channel(CHANNEL);
        let (incoming_tx, incoming) = mpsc::channel(CHANNEL);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let pending = Arc::new(AtomicBool::new(false));
        let channel_full = Arc::new(AtomicBool::new(false));
        let waker = Waker { stop: wake.clone(), pending: pending.clone() };
        let full = channel_full.clone();
        let name = options.node_name.clone();
        let thread = std::thread::Builder::new()
            .name("multipeer-nats".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot start the NATS runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(link(options, command_rx, incoming_tx, waker, full, ready_tx));
            })
            .map_err(|e| format!("cannot start the NATS thread: {e}"))?;
        let (index, epoch) = match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(taken)) => taken,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("the NATS server did not answer within 10 s".into()),
        };
        let status = ClusterLinkStatus { connected: true, ..ClusterLinkStatus::default() };
        Ok(Self {
            commands,
            incoming,
            pending,
            channel_full,
            index,
            epoch,
            name,
            status,
            thread: Some(thread),
        })
    }

    /// The node index this instance holds.
    #[must_use]
    pub fn node_index(&self) -> u8 {
        self.index
    }

    /// The core's cluster configuration for this instance (the defaults of CLUSTER.md).
    #[must_use]
    pub fn config(&self) -> ClusterConfig {
        ClusterConfig::new(self.index, self.epoch, &self.name)
    }

    /// The broker's state.
    #[must_use]
    pub fn status(&self) -> ClusterLinkStatus {
        self.status
    }

    /// Moves messages between the server's core and the broker; returns how soon to call again
    /// (`Some(ZERO)`: more is waiting).
    pub fn pump(&mut self, server: &mut Server) -> Option<Duration> {
        self.pending.store(false, Ordering::SeqCst);
        let mut more = false;
        let now = server.now();
        for _ in 0..BATCH {
            match self.incoming.try_recv() {
                Ok(Incoming::Message(bytes)) => server.peer_mut().handle_cluster(now, &bytes),
                Ok(Incoming::Broker(event)) => match event {
                    async_nats::Event::Connected => self.status.connected = true,
                    async_nats::Event::Disconnected => {
                        self.status.connected = false;
                        self.status.outages += 1;
                    }
                    async_nats::Event::SlowConsumer(_) => self.status.slow_consumer += 1,
                    _ => {}
                },
                Ok(Incoming::LeaseLost) => self.status.lease_lost = true,
                Err(mpsc::error::TryRecvError::Empty | mpsc::error::TryRecvError::Disconnected) => break,
            }
            more = true;
        }
        // Only as much as the channel takes leaves the core; the rest waits in its bounded
        // outbox, and the NATS thread wakes the loop when it has taken a message from a full
        // channel (flag raised before the last look at the room, so no wake-up is missed).
        loop {
            while self.commands.capacity() > 0 {
                let Some(output) = server.peer_mut().poll_cluster() else {
                    return more.then_some(Duration::ZERO);
                };
                if self.commands.try_send(Command::Output(output)).is_err() {
                    self.status.dropped_out += 1;
                }
            }
            self.channel_full.store(true, Ordering::SeqCst);
            if self.commands.capacity() == 0 {
                self.status.channel_full += 1;
                return more.then_some(Duration::ZERO);
            }
        }
    }
}

impl Drop for ClusterLink {
    fn drop(&mut self) {
        let _ = self.commands.try_send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Wakes the loop once per batch of messages, not once per message.
#[derive(Clone)]
struct Waker {
    stop: Stop,
    pending: Arc<AtomicBool>,
}

impl Waker {
    fn wake(&self) {
        if !self.pending.swap(true, Ordering::SeqCst) {
            self.stop.wake();
        }
    }
}

/// The epoch of this process: microseconds since the Unix epoch, so a later start of the same
/// index has a larger one (clocks of one deployment agree within far less than a restart).
fn epoch_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

async fn link(
    options: ClusterOptions,
    mut commands: mpsc::Receiver<Command>,
    incoming: mpsc::Sender<Incoming>,
    waker: Waker,
    channel_full: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<Result<(u8, u64), String>>,
) {
    let events = incoming.clone();
    let event_waker = waker.clone();
    let mut connect = async_nats::ConnectOptions::new()
        .name(format!("multipeer {}", options.node_name))
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let (events, waker) = (events.clone(), event_waker.clone());
            async move {
                if events.try_send(Incoming::Broker(event)).is_ok() {
                    waker.wake();
                }
            }
        });
    if let Some(path) = &options.credentials {
        connect = match connect.credentials_file(path).await {
            Ok(connect) => connect,
            Err(e) => {
                let _ = ready.send(Err(format!("cannot read the NATS credentials {}: {e}", path.display())));
                return;
            }
        };
    }
    if let Some(path) = &options.tls_ca {
        connect = connect.add_root_certificates(path.clone()).require_tls(true);
    }
    let client = match connect.connect(options.url.as_str()).await {
        Ok(client) => client,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot connect to NATS at {}: {e}", options.url)));
            return;
        }
    };
    let epoch = epoch_now();
    let lease = match Lease::take(&client, &options, epoch).await {
        Ok(lease) => lease,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut lease = lease;
    let node_subject = node_subject(&options.cluster);
    let mut subscriptions: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    match client.subscribe(node_subject.clone()).await {
        Ok(subscriber) => {
            subscriptions
                .insert(String::new(), tokio::spawn(forward(subscriber, incoming.clone(), waker.clone())));
        }
        Err(e) => {
            let _ = ready.send(Err(format!("cannot subscribe to {node_subject}: {e}")));
            return;
        }
    }
    let _ = ready.send(Ok((lease.index, epoch)));
    let mut renewal = tokio::time::interval(LEASE_RENEWAL);
    loop {
        tokio::select! {
            command = commands.recv() => match command.inspect(|_| {
                // The loop found the channel full: there is room again, wake it to send more.
                if channel_full.swap(false, Ordering::SeqCst) {
                    waker.wake();
                }
            }) {
                Some(Command::Output(ClusterOutput::PublishRoom { room, message })) => {
                    // Failures while the broker is away are the outage reported by events.
                    let _ = client.publish(room_subject(&options.cluster, &room), message.into()).await;
                }
                Some(Command::Output(ClusterOutput::PublishNode(message))) => {
                    let _ = client.publish(node_subject.clone(), message.into()).await;
                }
                Some(Command::Output(ClusterOutput::Subscribe(room))) => {
                    if let Ok(subscriber) = client.subscribe(room_subject(&options.cluster, &room)).await {
                        let task = tokio::spawn(forward(subscriber, incoming.clone(), waker.clone()));
                        if let Some(old) = subscriptions.insert(room, task) {
                            old.abort();
                        }
                    }
                }
                Some(Command::Output(ClusterOutput::Unsubscribe(room))) => {
                    // Dropping the subscriber (with its task) unsubscribes.
                    if let Some(task) = subscriptions.remove(&room) {
                        task.abort();
                    }
                }
                Some(Command::Shutdown) | None => break,
            },
            _ = renewal.tick() => {
                // Bounded: with the broker away the request would wait for its own timeout.
                let renewed = tokio::time::timeout(LEASE_RENEWAL, lease.renew()).await;
                if renewed == Ok(false) && incoming.send(Incoming::LeaseLost).await.is_ok() {
                    waker.wake();
                }
            }
        }
    }
    for task in subscriptions.into_values() {
        task.abort();
    }
    // Free the index at once for a restart, rather than after the age limit; bounded, as the
    // broker may be away (the age limit frees it then).
    let release = async {
        let _ = lease.store.delete(lease.key()).await;
        let _ = client.flush().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), release).await;
}

/// Hands each message of `subscriber` to the loop; waits (and so lets NATS see a slow consumer)
/// when the loop's channel is full.
async fn forward(mut subscriber: async_nats::Subscriber, incoming: mpsc::Sender<Incoming>, waker: Waker) {
    while let Some(message) = subscriber.next().await {
        if incoming.send(Incoming::Message(message.payload.to_vec())).await.is_err() {
            return;
        }
        waker.wake();
    }
}

/// The node-index lease.
struct Lease {
    store: kv::Store,
    index: u8,
    revision: u64,
    /// The value held under the key: the node name and this process's epoch, unique to it.
    token: String,
}

impl Lease {
    fn key_of(index: u8) -> String {
        format!("node_{index}")
    }

    fn key(&self) -> String {
        Self::key_of(self.index)
    }

    async fn take(client: &async_nats::Client, options: &ClusterOptions, epoch: u64) -> Result<Self, String> {
        let token = format!("{} {epoch}", options.node_name);
        let jetstream = async_nats::jetstream::new(client.clone());
        let bucket = format!("mp_{}_nodes", options.cluster);
        // The bucket's stream as `create_key_value` would make it (one value per key, an age
        // limit), created directly: `create_key_value` first asks for the account's info, whose
        // answer from nats-server 2.9 (Debian 12) this client version cannot parse.
        let stream = stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age: LEASE_AGE,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: 1,
            ..stream::Config::default()
        };
        let opened = match jetstream.get_or_create_stream(stream).await {
            Ok(_) => jetstream.get_key_value(bucket.as_str()).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let store = opened.map_err(|e| {
            format!("cannot open the lease bucket {bucket} (JetStream on? nats-server -js): {e}")
        })?;
        let candidates: Vec<u8> = match options.node_index {
            Some(k) if k < MAX_NODES => vec![k],
            Some(k) => return Err(format!("node index {k} is not below {MAX_NODES}")),
            None => (0..MAX_NODES).collect(),
        };
        for index in candidates {
            if let Ok(revision) = store.create(Self::key_of(index), token.clone().into()).await {
                return Ok(Self { store, index, revision, token });
            }
        }
        Err(match options.node_index {
            Some(k) => format!("node index {k} is held by a live instance"),
            None => format!("all {MAX_NODES} node indexes are held by live instances"),
        })
    }

    /// Renews the lease; `false` when another instance holds the index now.
    async fn renew(&mut self) -> bool {
        match self.store.update(self.key(), self.token.clone().into(), self.revision).await {
            Ok(revision) => {
                self.revision = revision;
                true
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                // A renewal sent during an outage may have landed after all (the client queues
                // it), or the key expired meanwhile: ours if it holds our token, taken again if
                // it is free, lost only if another process holds it.
                match self.store.entry(self.key()).await {
                    Ok(Some(entry)) if entry.value == self.token.as_bytes() => {
                        self.revision = entry.revision;
                        true
                    }
                    Ok(Some(entry)) if entry.operation == kv::Operation::Put => false,
                    Ok(_) => match self.store.create(self.key(), self.token.clone().into()).await {
                        Ok(revision) => {
                            self.revision = revision;
                            true
                        }
                        Err(_) => false,
                    },
                    // The broker went away again: try at the next renewal.
                    Err(_) => true,
                }
            }
            // The broker is away: the outage is reported; try again at the next renewal.
            Err(_) => true,
        }
    }
}
