//! The reference model of traffic: every packet put, what each receiver must get, and the
//! drops the server must report.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chacha20::ChaCha8Rng;
use multipeer::Instant;
use multipeer::peer::{ConnectionStatus, DropReason, MultiplayerPeer, PeerId, PutError, Target};

use super::world::{World, below, ghost, seq};

// ----- the reference model of traffic ----------------------------------------------------

pub(crate) struct Sent {
    pub(crate) from: PeerId,
    pub(crate) target: Target,
    pub(crate) at: Instant,
    pub(crate) payload: Vec<u8>,
}

/// Every packet put (in the order each sender's `put_packet` accepted it), and what the
/// applications wait to send: outbox 0 is the server's, `1 + k` client `k`'s.
#[derive(Default)]
pub(crate) struct Traffic {
    pub(crate) sent: Vec<Sent>,
    pub(crate) next_seq: u32,
    pub(crate) outbox: Vec<VecDeque<(Target, Vec<u8>)>>,
    /// Drops the server must report: sender and reason.
    pub(crate) drops: Vec<(PeerId, DropReason)>,
    /// `put_packet` calls refused with `Full` (the sender felt back-pressure).
    pub(crate) full: u64,
}

impl Traffic {
    pub(crate) fn new(clients: usize) -> Self {
        Self { outbox: vec![VecDeque::new(); clients + 1], ..Self::default() }
    }

    /// A unique payload of `len` bytes (at least 5); byte 0 is SceneMultiplayer's RAW command,
    /// so a Godot 4 relay never mistakes it for a system message.
    pub(crate) fn payload(&mut self, len: usize) -> Vec<u8> {
        self.next_seq += 1;
        let seq = self.next_seq;
        let mut p = vec![3];
        p.extend_from_slice(&seq.to_le_bytes());
        p.extend((5..len.max(5)).map(|i| (seq as usize).wrapping_mul(31).wrapping_add(i) as u8));
        p
    }

    /// What `to` must receive from `from`, in order.
    pub(crate) fn expected(&self, to: PeerId, from: PeerId) -> Vec<&[u8]> {
        let f = |s: &&Sent| s.from == from && s.target.includes(to, from);
        self.sent.iter().filter(f).map(|s| &s.payload[..]).collect()
    }

    /// Sends what the outbox of `sender` holds, in order, until a `Full`.
    pub(crate) fn flush(&mut self, world: &mut World, sender: Option<usize>) {
        let now = world.now();
        let outbox = sender.map_or(0, |k| k + 1);
        while let Some((target, payload)) = self.outbox[outbox].front() {
            let target = &target.normalized();
            let (from, result): (PeerId, Result<(), PutError>) = match sender {
                None => {
                    let server = &mut world.star.server;
                    server.set_target_peer(*target);
                    (PeerId::SERVER, server.put_packet(payload))
                }
                Some(k) => {
                    let client = world.client(k);
                    if client.connection_status() != ConnectionStatus::Connected {
                        self.outbox[outbox].clear();
                        return;
                    }
                    client.set_target_peer(*target);
                    (client.unique_id().unwrap(), client.put_packet(payload))
                }
            };
            match (sender, *target, result) {
                (_, _, Err(PutError::Full)) => {
                    self.full += 1;
                    return;
                }
                (None, Target::Server, r) => assert_eq!(r, Err(PutError::UnknownPeer(PeerId::SERVER))),
                (None, Target::Peer(p), r) if p == ghost() => assert_eq!(r, Err(PutError::UnknownPeer(p))),
                (_, target, r) => {
                    assert_eq!(r, Ok(()), "{from:?} → {target:?}");
                    match target {
                        Target::Peer(p) if p == from => self.drops.push((from, DropReason::TargetIsSender)),
                        Target::Peer(p) if p == ghost() => {
                            self.drops.push((from, DropReason::UnknownTarget(p.get())));
                        }
                        _ => {}
                    }
                    let payload = payload.clone();
                    self.sent.push(Sent { from, target, at: now, payload });
                }
            }
            self.outbox[outbox].pop_front();
        }
    }

    pub(crate) fn flush_all(&mut self, world: &mut World) {
        self.flush(world, None);
        for k in 0..world.star.len() {
            self.flush(world, Some(k));
        }
    }
}

/// A target for `own` to send to, chosen from the peers it believes connected; with `bad`,
/// sometimes one that must be dropped (itself, a peer nobody has, the server from itself).
pub(crate) fn random_target(rng: &mut ChaCha8Rng, own: PeerId, view: &BTreeSet<PeerId>, bad: bool) -> Target {
    let clients: Vec<PeerId> = view.iter().copied().filter(|p| !p.is_server() && *p != own).collect();
    let some_client = |rng: &mut ChaCha8Rng| clients.get(below(rng, clients.len() as u64) as usize).copied();
    let choice = below(rng, if bad { 9 } else { 7 });
    match choice {
        0 => Target::Broadcast,
        1 if !own.is_server() => Target::Server,
        2 | 3 => some_client(rng).map_or(Target::Broadcast, Target::Peer),
        4 | 5 => some_client(rng).map_or(Target::Broadcast, Target::AllExcept),
        1 | 6 => Target::AllExcept(PeerId::SERVER),
        7 => Target::Peer(own),
        _ => Target::Peer(ghost()),
    }
}

/// The kind of a target, as its sender sees it: a name and whether the server sent it.
pub(crate) fn kind(from: PeerId, target: Target) -> (bool, &'static str) {
    let name = match target.normalized() {
        Target::Broadcast => "broadcast",
        Target::Server => "server",
        Target::Peer(p) if p == from => "itself",
        Target::Peer(p) if p == ghost() => "ghost",
        Target::Peer(_) => "one peer",
        Target::AllExcept(p) if p.is_server() => "all but the server",
        Target::AllExcept(_) => "all but one peer",
    };
    (from.is_server(), name)
}

/// Every application's deliveries match the model: exactly from a sender in `exact_from` to a
/// receiver in `exact_to`, a prefix (in order, nothing duplicated or skipped) otherwise.
pub(crate) fn check_deliveries(
    world: &World,
    traffic: &Traffic,
    ids: &[PeerId],
    (exact_from, exact_to): (&BTreeSet<PeerId>, &BTreeSet<PeerId>),
    ctx: &str,
) {
    let payloads: BTreeMap<u32, &[u8]> =
        traffic.sent.iter().map(|s| (seq(&s.payload), &s.payload[..])).collect();
    let senders: BTreeSet<PeerId> = ids.iter().copied().chain([PeerId::SERVER]).collect();
    let receivers = ids.iter().zip(&world.seen).chain([(&PeerId::SERVER, &world.server_seen)]);
    for (&to, seen) in receivers {
        for (from, data) in &seen.packets {
            assert!(senders.contains(from), "{ctx}: {to:?} got a packet from unknown {from:?}");
            assert_eq!(payloads.get(&seq(data)), Some(&&data[..]), "{ctx}: {to:?} got a corrupt packet");
        }
        for &from in &senders {
            let got: Vec<u32> = seen.from(from).into_iter().map(seq).collect();
            let want: Vec<u32> = traffic.expected(to, from).into_iter().map(seq).collect();
            if exact_to.contains(&to) && exact_from.contains(&from) {
                assert_eq!(got, want, "{ctx}: {from:?} → {to:?}");
            } else {
                assert!(
                    want.starts_with(&got),
                    "{ctx}: {from:?} → {to:?}: {got:?} is not a prefix of {want:?}"
                );
            }
        }
    }
}
