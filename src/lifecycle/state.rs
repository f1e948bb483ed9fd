//! What a client remembers between calls: the held token, where it came from, the block
//! (cool-down or `Retry-After`) and the strikes that double it, and how many token requests
//! it sent. `Lifecycle` keeps one in a `RefCell`.

use crate::error::Error;
use crate::retry::{self, Failure};
use crate::settings::CoolDown;
use crate::shared::TokenMark;
use crate::token::{HeldToken, Source};
use std::time::Duration;

/// A held token and what a client remembers between calls.
#[derive(Default)]
pub(super) struct State {
    pub(super) held: Option<HeldToken>,
    pub(super) source: Option<Source>,
    /// No token request before `until`; meanwhile calls get `error` (or the held token while
    /// it lives).
    pub(super) block: Option<Block>,
    /// Consecutive credential failures, for the doubling cool-down.
    pub(super) strikes: u32,
    /// The store's token entry at the latest failure, when this instance failed as the lease
    /// holder: a token published since then means the fleet recovered.
    pub(super) failed_over: Option<TokenMark>,
    pub(super) token_requests: u64,
}

pub(super) struct Block {
    pub(super) until: Duration,
    pub(super) error: Error,
}

impl State {
    pub(super) fn alive(&self, now: Duration) -> bool {
        self.held.as_ref().is_some_and(|t| t.is_alive(now))
    }

    /// While a block lasts: the held token if it still lives, else the blocking error.
    /// `None` once no block forbids a token request.
    pub(super) fn while_blocked(&mut self, now: Duration) -> Option<Result<(), Error>> {
        let block = self.block.as_ref().filter(|b| now < b.until)?;
        if self.alive(now) {
            self.source = Some(Source::InstanceCache);
            return Some(Ok(()));
        }
        Some(Err(block.error.clone().with_retry_in(block.until - now)))
    }

    pub(super) fn fetched(&mut self, token: HeldToken) {
        self.recovered();
        self.held = Some(token);
        self.source = Some(Source::FreshFetch);
    }

    /// A token came (this instance's or the fleet's): the cool-down is over and the strikes
    /// start again from zero.
    pub(super) fn recovered(&mut self) {
        self.block = None;
        self.strikes = 0;
        self.failed_over = None;
    }

    /// Blocks token requests as `retry::pause_after` says, `strikes` being the consecutive
    /// credential failures before this one (this instance's or the fleet's, whichever knows
    /// more). Gives `Ok` if the held token may still be served, and the pause.
    pub(super) fn failed(
        &mut self,
        failure: &Failure,
        strikes: u32,
        now: Duration,
        cool_down: &CoolDown,
    ) -> (Result<(), Error>, Option<Duration>) {
        let alive = self.alive(now);
        self.strikes = self.strikes.max(strikes);
        if retry::is_credential_failure(&failure.error) {
            self.strikes = self.strikes.saturating_add(1);
        }
        let pause = retry::pause_after(failure, self.strikes, alive, cool_down);
        if let Some(pause) = pause {
            self.block = Some(Block {
                until: now.saturating_add(pause),
                error: failure.error.clone(),
            });
        }
        if alive {
            self.source = Some(Source::InstanceCache);
            return (Ok(()), pause);
        }
        let error = match pause {
            Some(pause) => failure.error.clone().with_retry_in(pause),
            None => failure.error.clone(),
        };
        (Err(error), pause)
    }

    /// A cool-down another instance published: no token request for `remaining`.
    pub(super) fn blocked_by_fleet(&mut self, error: Error, remaining: Duration, now: Duration) {
        self.block = Some(Block {
            until: now.saturating_add(remaining),
            error,
        });
    }
}
