//! When a connection gives its queues' storage back: at once, or after
//! [`Config::buffer_release_delay`] for a connection that keeps needing it.

use super::{Connection, MaskKeys, Phase};
use crate::buffer::Storage;
#[cfg(doc)]
use crate::ws::Config;

/// Storage each queue keeps while busy when [`Config::buffer_release_delay`] is set; more is
/// given back as soon as the queue empties (see `hold_buffers`).
const KEEP_WHILE_BUSY: usize = 8 * 1024;

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
                // Storage above a few KiB goes back as soon as it empties all the same: kept by
                // every connection, it spreads a busy server's working set beyond the caches
                // (500 connections echoing 16 KiB spent 30 % more CPU per message keeping it),
                // while the allocator hands the block just freed, still cached, to the next
                // connection that needs one.
                if self.inbound.footprint() > KEEP_WHILE_BUSY {
                    self.inbound.release_if_empty();
                }
                if self.out.footprint() > KEEP_WHILE_BUSY {
                    self.out.release_if_empty();
                }
                // Only a connection that needed storage again soon after giving it back keeps
                // it: one that carried a single exchange (a handshake, one message) holds
                // nothing, so a connect storm does not raise the heap by every connection's
                // handshake buffers for the length of the delay.
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
