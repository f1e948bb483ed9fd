//! `Sharing`: the shared store as a renewal's driver calls it (a look, a publication, a
//! refused token, the health), `Shared`'s only way in so that every call logs a change of
//! the store's health; and `Unshared`, for a client without a store.

use super::{Acquired, Lead, Outcome, Shared};
use crate::log::Logger;
use crate::ports::Clock;
use crate::retry::Deadline;
use crate::token::StoreHealth;
use std::time::Duration;

/// The shared store as renewal uses it: a driver answers the renewal's `Action::Look` with
/// `acquire` and carries out its `Action::Publish` with `finish`; `Shared`'s only way in, so
/// that every call logs a change of the store's health. Behind a trait object so
/// that the store's code (and SHA-256, the entry's JSON) is linked only into a component that
/// makes a store-backed client: the world without a store is ~20 KB smaller. Each call logs a
/// change of the store's health.
pub trait Sharing<C> {
    fn acquire(
        &self,
        clock: &C,
        held_alive: bool,
        deadline: &Deadline,
        pause: Duration,
    ) -> Acquired;
    fn finish(&self, clock: &C, lead: Lead, outcome: Outcome);
    fn reject(&self, clock: &C, token: &str);
    fn health(&self) -> (StoreHealth, Option<String>);
    /// Logs the store's health through `log` (the client's logger).
    fn set_logger(&mut self, log: Logger);
}

impl<C: Clock> Sharing<C> for Shared {
    fn acquire(
        &self,
        clock: &C,
        held_alive: bool,
        deadline: &Deadline,
        pause: Duration,
    ) -> Acquired {
        let acquired = self.try_acquire(clock, held_alive, deadline, pause);
        self.health_logged(clock);
        acquired
    }

    fn finish(&self, clock: &C, lead: Lead, outcome: Outcome) {
        self.publish(clock, lead, outcome);
        self.health_logged(clock);
    }

    fn reject(&self, clock: &C, token: &str) {
        self.forget(clock, token);
        self.health_logged(clock);
    }

    fn health(&self) -> (StoreHealth, Option<String>) {
        Shared::health(self)
    }

    fn set_logger(&mut self, log: Logger) {
        self.log = log;
    }
}

/// No store: each instance fetches its own token (`Acquired::Unshared`).
pub struct Unshared;

impl<C> Sharing<C> for Unshared {
    fn acquire(&self, _: &C, _: bool, _: &Deadline, _: Duration) -> Acquired {
        Acquired::Unshared
    }

    fn finish(&self, _: &C, _: Lead, _: Outcome) {}

    fn reject(&self, _: &C, _: &str) {}

    fn health(&self) -> (StoreHealth, Option<String>) {
        (StoreHealth::NotConfigured, None)
    }

    fn set_logger(&mut self, _: Logger) {}
}
