//! The host's clocks, through std (wasi:clocks on wasm32-wasip2).

use crate::client::Clock;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

pub struct HostClock;

impl Clock for HostClock {
    fn monotonic(&self) -> Duration {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed()
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
