//! When a connection gives its queues' storage back: at once, or after
//! [`Config::buffer_release_delay`] for a connection that keeps needing it.

use super::{Connection, MaskKeys, Phase};
use crate::buffer::Storage;
#[cfg(doc)]
use crate::ws::Config;

impl<S: Storage, R: MaskKeys> Connection<S, R> {
    /// Gives back storage that is no longer needed, at once or after the configured delay
    /// (see [`Config::buffer_release_delay`]).
    pub(super) fn hold_buffers(&mut self) {
        // A closed connection's transport is about to be dropped with all it holds.
        if self.phase == Phase::Closed {
            self.timers.release = None;
            return;
        }
        match self.config.buffer_release_delay {
            None => {
                self.inbound.release_if_empty();
                self.out.release_if_empty();
            }
            Some(delay) => {
                // Only a connection that needed storage again soon after giving it back keeps
                // it: one that carried a single exchange (a handshake, one message) holds
                // nothing, so a connect storm does not raise the heap by every connection's
                // handshake buffers for the length of the delay. One that keeps it keeps all
                // of it, whatever its size: giving back storage above a few KiB each time its
                // queue emptied made every large message pay for regrowing it (by doubling,
                // zero-filled, often on fresh pages), which was a third of a 64 KiB echo
                // server's CPU. The release timer still gives it back once it sits empty.
                let chatty = self.timers.released_at.is_some_and(|at| self.now < at + delay);
                if !chatty {
                    let released = self.inbound.release_if_empty() | self.out.release_if_empty();
                    if released && core::mem::take(&mut self.timers.carried_data) {
                        self.timers.released_at = Some(self.now);
                    }
                }
                if self.timers.release.is_none() && self.buffer_footprint() > 0 {
                    self.timers.release = Some(self.now + delay);
                }
            }
        }
    }
}
