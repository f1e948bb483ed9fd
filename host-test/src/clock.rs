//! Virtual time shared by the component's WASI clocks and the mock Mangopay, so expiry tests
//! advance time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// Wall time at virtual time zero: 2026-11-28T00:00:00Z.
pub const WALL_ORIGIN: Duration = Duration::from_secs(1_795_824_000);

/// A clock that moves only when told to. Clones share the same time.
#[derive(Clone, Default)]
pub struct VirtualClock {
    nanos: Arc<AtomicU64>,
    /// How far this clone's wall clock runs ahead of the others': another machine's clock.
    ahead: Duration,
}

impl VirtualClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Monotonic time since virtual time zero.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }

    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).expect("a sane step");
        self.nanos.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Wall time since the Unix epoch.
    pub fn wall(&self) -> Duration {
        WALL_ORIGIN + self.now() + self.ahead
    }

    /// The same time, on a machine whose wall clock is `ahead` of this one's (monotonic time
    /// is not compared across machines).
    pub fn skewed(&self, ahead: Duration) -> VirtualClock {
        VirtualClock {
            nanos: self.nanos.clone(),
            ahead: self.ahead + ahead,
        }
    }

    pub fn monotonic_clock(&self) -> impl HostMonotonicClock + 'static {
        Monotonic(self.clone())
    }

    pub fn wall_clock(&self) -> impl HostWallClock + 'static {
        Wall(self.clone())
    }
}

struct Monotonic(VirtualClock);

impl HostMonotonicClock for Monotonic {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        self.0.nanos.load(Ordering::SeqCst)
    }
}

struct Wall(VirtualClock);

impl HostWallClock for Wall {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        self.0.wall()
    }
}
