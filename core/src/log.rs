//! One internal logging macro: `log` when the feature is on, nothing otherwise.

#[cfg(feature = "log")]
#[allow(unused_macros)]
macro_rules! trace {
    ($($arg:tt)*) => { ::log::trace!($($arg)*) };
}

#[cfg(not(feature = "log"))]
#[allow(unused_macros)]
macro_rules! trace {
    ($($arg:tt)*) => {{
        if false {
            let _ = ::core::format_args!($($arg)*);
        }
    }};
}

#[allow(unused_imports, unused_macros)]
pub(crate) use trace;
