//! Peer id generation.

use rand_core::CryptoRng;

use super::PeerId;

/// Draws a client id in 2..=2^31−1 that `taken` does not report as in use
/// (Godot: `generate_unique_id`, which does not check for collisions — this does).
///
/// Ids are drawn from a cryptographic RNG so that a client cannot predict another's id.
/// `taken` must leave some id free; with fewer than 2^30 peers a free id is found within a few
/// draws, and the draw is bounded regardless.
pub fn generate_unique_id(rng: &mut impl CryptoRng, mut taken: impl FnMut(PeerId) -> bool) -> Option<PeerId> {
    // 64 draws fail only if more than 2^30 ids are taken (probability < 2^-64 otherwise).
    for _ in 0..64 {
        let raw = rng.next_u32() & PeerId::MAX;
        if let Some(id) = PeerId::new(raw).filter(|id| !id.is_server() && !taken(*id)) {
            return Some(id);
        }
    }
    None
}
