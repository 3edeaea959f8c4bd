//! Shared pieces of the benchmark crate: in-memory streams for the codec benches and the
//! WebSocket wire helpers the load generator and the servers use.
#![allow(missing_docs)]

pub mod wire;
