//! The boundary between Godot and Rust: a panic in a virtual method is caught here, reported
//! as a Godot error, and the call fails instead of unwinding into the engine.

use core::any::Any;
use core::panic::AssertUnwindSafe;
use std::panic::catch_unwind;

/// Runs `body`; a panic becomes `Err` with its message (the caller reports it and fails the
/// call).
pub fn catch<R>(body: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(body)).map_err(|payload| panic_message(payload.as_ref()))
}

/// Runs `body` for the Godot method `method`; on a panic prints a Godot error and returns
/// `failed`.
pub fn guarded<R>(method: &str, failed: R, body: impl FnOnce() -> R) -> R {
    match catch(body) {
        Ok(value) => value,
        Err(message) => {
            godot::global::godot_error!("multipeer: {method} panicked ({message}); the call failed");
            failed
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("non-string panic payload")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        assert_eq!(catch(|| 7), Ok(7));
        let caught = catch(|| -> i32 { panic!("boom {}", 42) });
        assert_eq!(caught, Err(String::from("boom 42")));
        let caught = catch(|| -> i32 { std::panic::panic_any(5_u8) });
        assert_eq!(caught, Err(String::from("non-string panic payload")));
    }
}
