//! # multipeer
//!
//! Godot's multiplayer networking — `WebSocketMultiplayerPeer` (Godot 3.x and 4.x) and the
//! WebRTC mesh — as a `no_std`, sans-IO protocol core. Every machine here takes bytes and time
//! in and gives bytes and events out; sockets, TLS, clocks and randomness belong to the caller
//! (the `multipeer-std` and `multipeer-mio` crates, or your own event loop).
//!
//! ## The drive loop
//!
//! Every state machine ([`ws::Connection`], and the peer types built on it) has the same verbs,
//! called in this order:
//!
//! 1. **Input.** Bytes read from the transport go to `handle_input(now, bytes)`, which returns
//!    how many it accepted. Fewer than offered is back-pressure: keep the rest and offer it again
//!    after step 3 (reading messages frees room) or step 2 (writing output lets pongs drain).
//!    End of stream goes to `handle_eof(now)`.
//! 2. **Output.** While `poll_transmit()` returns bytes, write them; report how many the
//!    transport took with `consume_transmit(n)`. All frames ready for a connection come back
//!    as one slice, so one write per readiness event sends them all.
//! 3. **Messages and events.** Read received messages (`peek_message`/`pop_message` or
//!    `recv`), and drain `poll_event()` until it returns `None`.
//! 4. **Sleep** until the transport is readable (or writable, if output remains) or until
//!    `poll_timeout()`, whichever is first; at that time call `handle_timeout(now)` — early or
//!    repeated calls do nothing — and go back to step 2.
//!
//! Commands (`send`, `ping`, `close`, `accept`, …) may be called at any point; drain steps 2
//! and 3 after them. When `is_finished()` is true and nothing is left to transmit, release the
//! transport.
//!
//! ## Contract
//!
//! * **Time is a parameter** ([`Instant`], microseconds from the caller's epoch). The core never
//!   reads a clock; the handshake timeout, keepalive and close timeout all live here.
//! * **Randomness is injected** through `rand_core` ([`rand_core::CryptoRng`] for mask keys and
//!   handshake keys).
//! * **Peer bytes never panic** and never make the core allocate from a length the peer
//!   claims. Malformed input fails that connection with the RFC close code and an event.
//!   Caller misuse returns `Err`. "Need more bytes" is not an error.
//! * **Everything is bounded**: handshake size, header count, message size, queued messages,
//!   queued outbound bytes, fragments per message, pending pongs. Overflow is visible: an error
//!   from the command, back-pressure on input, or a close with a reason — never a silent drop.
//! * **Storage** is heap-backed and grows on demand ([`VecStorage`], feature `alloc`) or
//!   fixed-size ([`FixedStorage`]), through one code path.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

mod buffer;
mod copy;
mod godot_error;
mod log;
#[cfg(feature = "alloc")]
pub mod mesh;
pub mod peer;
pub mod queue;
pub mod scene;
#[cfg(feature = "alloc")]
pub mod signaling;
mod time;
pub mod variant;
pub mod ws;

#[cfg(feature = "alloc")]
pub use buffer::VecStorage;
pub use buffer::{Buffer, CapacityError, Fixed, FixedStorage, Storage};
pub use godot_error::GodotError;
pub use rand_core;
pub use time::Instant;
