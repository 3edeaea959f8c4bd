//! The permessage-deflate flags `multipeer serve` and `multipeer lobby` share.

use multipeer::ws::deflate::{DeflateConfig, MAX_WINDOW_BITS, MIN_WINDOW_BITS};

use crate::args::UsageError;

/// The help text of the flags, for `concat!` into each command's help.
macro_rules! deflate_help {
    () => {
        "\
permessage-deflate (RFC 7692; browsers offer it, Godot's own WebSocket never does, so Godot
clients are unaffected):
  --permessage-deflate         Accept it from clients that offer it: messages that shrink
                               are sent compressed, compressed ones are read
  --deflate-window-bits N      Largest LZ77 window, 8-15, of our compressor and asked of the
                               client's (15); below 15 each message is compressed alone
  --deflate-no-context-takeover
                               Compress each message alone, both ways: nothing is kept between
                               messages (no idle memory), for a worse ratio
  --deflate-level N            Compression level 0-10 (3)
  --deflate-max-connections N  Compress on at most N connections at once (up to about 350 KiB
                               each with context takeover); later ones go uncompressed
                               (default no limit, at most 65534)
Any --deflate-* flag implies --permessage-deflate.
"
    };
}
pub(crate) use deflate_help;

/// Applies `flag` (without its leading dashes, one [`is_flag`] accepts), reading its value
/// from `parser`.
pub(crate) fn apply(
    flag: &str,
    parser: &mut lexopt::Parser,
    config: &mut Option<DeflateConfig>,
) -> Result<(), UsageError> {
    let deflate = config.get_or_insert(DeflateConfig::DEFAULT);
    match flag {
        "permessage-deflate" => {}
        "deflate-window-bits" => {
            let bits = number(parser, flag, MIN_WINDOW_BITS.into(), MAX_WINDOW_BITS.into())? as u8;
            deflate.max_window_bits = bits;
            deflate.peer_max_window_bits = bits;
        }
        "deflate-no-context-takeover" => {
            deflate.no_context_takeover = true;
            deflate.peer_no_context_takeover = true;
        }
        "deflate-level" => deflate.level = number(parser, flag, 0, 10)? as u8,
        "deflate-max-connections" => {
            deflate.max_connections = number(parser, flag, 1, u64::from(u16::MAX) - 1)? as u16;
        }
        _ => return Err(lexopt::Error::UnexpectedOption(format!("--{flag}")).into()),
    }
    Ok(())
}

/// Whether `flag` (without dashes) is one of ours.
pub(crate) fn is_flag(flag: &str) -> bool {
    flag == "permessage-deflate" || flag.starts_with("deflate-")
}

fn number(parser: &mut lexopt::Parser, flag: &str, min: u64, max: u64) -> Result<u64, UsageError> {
    use lexopt::ValueExt as _;
    let text = parser.value()?.string()?;
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => {
            let message = format!("--{flag} {text:?}: expected a whole number from {min} to {max}");
            Err(lexopt::Error::Custom(message.into()).into())
        }
    }
}
