//! The client's randomness: a ChaCha12 CSPRNG seeded from the operating system.

use chacha20::ChaCha12Rng;
use multipeer::rand_core::SeedableRng as _;

use crate::Error;

/// A fresh CSPRNG for one client connection (its `Sec-WebSocket-Key` and frame masks), seeded
/// from the operating system's generator.
///
/// # Errors
/// [`Error::Rng`] when the operating system cannot supply randomness.
pub fn client_rng() -> Result<ChaCha12Rng, Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(Error::Rng)?;
    Ok(ChaCha12Rng::from_seed(seed))
}

#[cfg(test)]
mod tests {
    use multipeer::rand_core::Rng as _;

    use super::*;

    #[test]
    fn each_connection_gets_its_own_stream() {
        let mut a = client_rng().unwrap();
        let mut b = client_rng().unwrap();
        let (xa, xb) = ((a.next_u64(), a.next_u64()), (b.next_u64(), b.next_u64()));
        assert_ne!(xa, xb, "two OS seeds produced the same stream");
    }
}
