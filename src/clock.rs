//! The host's clocks, through std (wasi:clocks on wasm32-wasip2).

use crate::client::Clock;
use std::time::{Duration, SystemTime};

pub struct HostClock;

impl Clock for HostClock {
    fn monotonic(&self) -> Duration {
        // Read on every authorization: straight from wasi:clocks, not through libc's
        // clock_gettime and std's Instant.
        #[cfg(target_arch = "wasm32")]
        return Duration::from_nanos(waki::bindings::wasi::clocks::monotonic_clock::now());
        #[cfg(not(target_arch = "wasm32"))]
        {
            static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            ORIGIN.get_or_init(std::time::Instant::now).elapsed()
        }
    }

    fn wall(&self) -> Duration {
        // A host clock before 1970 reports the epoch; expiry never depends on it.
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}
