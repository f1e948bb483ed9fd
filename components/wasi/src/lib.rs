//! The WASI 0.2 calls every mangopay-auth component makes beside its world, through the one
//! bindings source (the `wasip2` crate): the host clock the core reads, and the operator log
//! on stderr. The WASI 0.2 worlds (`mangopay-auth-guest`) and the WASI 0.3 middleware share
//! them.
#![cfg(target_arch = "wasm32")]

mod clock;

pub use clock::HostClock;

use mangopay_auth::log::{LEVEL_VAR, Level, Logger, Sink};
use std::rc::Rc;

/// Operator lines go to stderr, which every platform captures.
struct Stderr;

impl Sink for Stderr {
    fn write_line(&self, line: &str) {
        // Straight to wasi:cli/stderr, in one write, so that lines of instances sharing a log
        // stay whole (std's buffered stderr costs more code). A line that cannot be written is
        // dropped: logging never fails a call.
        let _ = wasip2::cli::stderr::get_stderr()
            .blocking_write_and_flush(format!("{line}\n").as_bytes());
    }
}

/// The operator log at the level from `MANGOPAY_AUTH_LOG` (`warn` when unset or unknown).
pub fn logger() -> Logger {
    let level = std::env::var(LEVEL_VAR)
        .ok()
        .and_then(|value| Level::parse(&value))
        .unwrap_or(Level::DEFAULT);
    Logger::new(level, Rc::new(Stderr))
}
