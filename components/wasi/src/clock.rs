//! The host's clocks: wasi:clocks directly for the monotonic one read on every call.

use mangopay_auth::Clock;
use std::time::{Duration, SystemTime};

/// The host's clocks, as the core reads them.
pub struct HostClock;

impl Clock for HostClock {
    fn monotonic(&self) -> Duration {
        // Read on every authorization: straight from wasi:clocks, not through libc's
        // clock_gettime and std's Instant.
        Duration::from_nanos(wasip2::clocks::monotonic_clock::now())
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
