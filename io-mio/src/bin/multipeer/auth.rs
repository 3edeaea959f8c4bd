//! `multipeer serve --auth-token`: the server's `auth_callback`. SceneMultiplayer (the core's
//! machine) runs the protocol: pending peers, the `07 00` exchange, admission and the relay's
//! announcements only after both sides completed, the timeout and the close; this only checks
//! the token and says what happened.

use std::collections::BTreeSet;

use multipeer::peer::PeerId;
use multipeer::scene::{AUTH_FAILED_CODE, AUTH_FAILED_REASON, SceneEvent};
use multipeer_mio::Server;

/// Most peers remembered as having sent a wrong token (the rest are reported as "no token").
const MAX_REMEMBERED: usize = 4096;

/// Admits the peers that send the token, and counts and explains the ones that fail.
pub(crate) struct AuthGate {
    token: Vec<u8>,
    /// Pending peers that sent a wrong token.
    wrong: BTreeSet<PeerId>,
    pub(crate) admitted: u64,
    pub(crate) refused: u64,
}

impl AuthGate {
    pub(crate) fn new(token: &str) -> Self {
        Self { token: token.as_bytes().to_vec(), wrong: BTreeSet::new(), admitted: 0, refused: 0 }
    }

    /// Acts on one SceneMultiplayer event; returns a line for the log when a peer is refused.
    pub(crate) fn handle(&mut self, server: &mut Server, event: &SceneEvent) -> Option<String> {
        match event {
            SceneEvent::AuthData { peer, data } if same(data, &self.token) => {
                server.complete_auth(*peer).err().map(|e| format!("peer {peer}: complete_auth failed: {e}"))
            }
            SceneEvent::AuthData { peer, .. } => {
                if self.wrong.len() < MAX_REMEMBERED {
                    self.wrong.insert(*peer);
                }
                Some(format!("peer {peer}: wrong auth token, closed at the auth timeout"))
            }
            SceneEvent::PeerConnected(_) => {
                self.admitted += 1;
                None
            }
            SceneEvent::PeerAuthenticationFailed(peer) => {
                self.refused += 1;
                let why = if self.wrong.remove(peer) { "wrong token" } else { "no token" };
                Some(format!(
                    "peer {peer}: authentication failed ({why}): closed with {} \"{AUTH_FAILED_REASON}\" (unless it left first)",
                    AUTH_FAILED_CODE.0
                ))
            }
            _ => None,
        }
    }
}

/// Compares in time independent of where the bytes differ (the length is not secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"s3cret", b"s3cret"));
        assert!(!same(b"s3cret", b"s3creT"));
        assert!(!same(b"s3cret", b"s3cre"));
        assert!(!same(b"", b"x"));
    }
}
