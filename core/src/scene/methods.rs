//! A node's RPC methods, numbered as Godot numbers them (`scene-multiplayer.md` §3.2), and the
//! checksum of their names that `SIMPLIFY_PATH` carries (§2).
//!
//! Godot builds the table from two dictionaries: the node-level config (`Node.rpc_config`)
//! and the script's `@rpc` annotations. Within each, names sort by Unicode code point (which is
//! the byte order of UTF-8, Rust's `str` order). A script method's id is its index; a node-level
//! method's id is `0x8000 | index`. Both sides must declare the same names, or the ids shift
//! silently; only the checksum (an md5 of the names) tells.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use md5::{Digest, Md5};

use crate::peer::TransferMode;

/// Bit 15 of a method id: a node-level (`rpc_config`) method.
const NODE_LEVEL: u16 = 0x8000;

/// Who may call a method: Godot's `MultiplayerAPI.RPCMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum RpcMode {
    /// `RPC_MODE_DISABLED` (0): nobody.
    Disabled,
    /// `RPC_MODE_ANY_PEER` (1): every peer.
    AnyPeer,
    /// `RPC_MODE_AUTHORITY` (2, the default): only the node's multiplayer authority.
    #[default]
    Authority,
}

/// One method's RPC configuration: the fields of `@rpc(...)` / `rpc_config(method, {...})`,
/// with Godot's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct RpcConfig {
    /// `rpc_mode` (default authority).
    pub rpc_mode: RpcMode,
    /// `transfer_mode` (default reliable).
    pub transfer_mode: TransferMode,
    /// `call_local` (default false): the caller runs it too.
    pub call_local: bool,
    /// `channel` (default 0).
    pub channel: u8,
}

/// A table with more methods of one kind than 15-bit ids can number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyMethods;

impl fmt::Display for TooManyMethods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("more than 32768 RPC methods of one kind")
    }
}

impl core::error::Error for TooManyMethods {}

/// A node's RPC methods in Godot's order: the table behind `get_node_rpc_config`, the method
/// ids of `REMOTE_CALL` and the `SIMPLIFY_PATH` checksum.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RpcMethods {
    /// `@rpc` methods of the script (inherited ones included), sorted by name.
    script: Vec<(String, RpcConfig)>,
    /// `rpc_config` methods of the node, sorted by name.
    node: Vec<(String, RpcConfig)>,
}

fn insert(list: &mut Vec<(String, RpcConfig)>, name: &str, config: RpcConfig) -> Result<(), TooManyMethods> {
    match list.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) => list[i].1 = config,
        Err(_) if list.len() >= usize::from(NODE_LEVEL) => return Err(TooManyMethods),
        Err(i) => list.insert(i, (name.into(), config)),
    }
    Ok(())
}

impl RpcMethods {
    /// An empty table.
    #[must_use]
    pub const fn new() -> Self {
        Self { script: Vec::new(), node: Vec::new() }
    }

    /// Declares a script method (`@rpc`); declaring a name again replaces its config.
    ///
    /// # Errors
    /// [`TooManyMethods`] past 32768 script methods.
    pub fn add_script_method(&mut self, name: &str, config: RpcConfig) -> Result<&mut Self, TooManyMethods> {
        insert(&mut self.script, name, config)?;
        Ok(self)
    }

    /// Declares a node-level method (`Node.rpc_config`); declaring a name again replaces its
    /// config.
    ///
    /// # Errors
    /// [`TooManyMethods`] past 32768 node-level methods.
    pub fn add_node_method(&mut self, name: &str, config: RpcConfig) -> Result<&mut Self, TooManyMethods> {
        insert(&mut self.node, name, config)?;
        Ok(self)
    }

    /// The id Godot sends for `name`: its script id, else its node-level id (a name in both
    /// is sent with the script id).
    #[must_use]
    pub fn id(&self, name: &str) -> Option<u16> {
        let find = |list: &[(String, RpcConfig)]| list.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok();
        // Indices are below 0x8000: `insert` refuses more.
        if let Some(i) = find(&self.script) {
            return u16::try_from(i).ok();
        }
        find(&self.node).and_then(|i| u16::try_from(i).ok()).map(|i| NODE_LEVEL | i)
    }

    /// The method an id names, and its config (Godot accepts both ids of a name in both
    /// dictionaries).
    #[must_use]
    pub fn method(&self, id: u16) -> Option<(&str, &RpcConfig)> {
        let (list, index) =
            if id & NODE_LEVEL != 0 { (&self.node, id & !NODE_LEVEL) } else { (&self.script, id) };
        list.get(usize::from(index)).map(|(name, config)| (name.as_str(), config))
    }

    /// The `SIMPLIFY_PATH` checksum: the md5, in lowercase hex, of the node-level names then
    /// the script names, each in id order (`d41d8cd98f00b204e9800998ecf8427e` for none).
    #[must_use]
    pub fn checksum(&self) -> [u8; 32] {
        let mut md5 = Md5::new();
        for (name, _) in self.node.iter().chain(&self.script) {
            md5.update(name.as_bytes());
        }
        let digest = md5.finalize();
        let mut hex = [0; 32];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(digest.iter()) {
            pair[0] = b"0123456789abcdef"[usize::from(byte >> 4)];
            pair[1] = b"0123456789abcdef"[usize::from(byte & 15)];
        }
        hex
    }
}
