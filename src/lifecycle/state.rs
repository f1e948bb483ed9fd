//! What a client remembers between calls: the held token, where it came from, the block
//! (cool-down or `Retry-After`) and the strikes that double it, and how many token requests
//! it sent. `Lifecycle` keeps one in a `RefCell`.

use crate::error::Error;
use crate::retry::{self, Failure};
use crate::settings::CoolDown;
use crate::shared::stored::TokenMark;
use crate::token::{HeldToken, Source};
use std::rc::Rc;
use std::time::Duration;

/// A held token and what a client remembers between calls.
#[derive(Default)]
pub(super) struct State {
    /// Shared with the drivers it is handed to (`Ready`): a handle, not a copy of the secret.
    pub(super) held: Option<Rc<HeldToken>>,
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

/// What a caller gets while a block lasts (`State::while_blocked`).
pub(super) enum Blocked {
    /// The held token, which still lives.
    Serve(Rc<HeldToken>),
    /// The blocking error, with the time left.
    Fail(Error),
}

pub(super) struct Block {
    pub(super) until: Duration,
    pub(super) error: Error,
}

impl State {
    /// The held token if it still lives at `now` (`ALIVE_GUARD` left).
    pub(super) fn alive(&self, now: Duration) -> Option<&Rc<HeldToken>> {
        self.held.as_ref().filter(|t| t.is_alive(now))
    }

    /// The held token, served from this instance's cache, if it still lives at `now`.
    fn serve_alive(&mut self, now: Duration) -> Option<Rc<HeldToken>> {
        serve_alive(&self.held, &mut self.source, now)
    }

    /// `token`, held from now on, as `source` gave it.
    pub(super) fn hold(&mut self, token: HeldToken, source: Source) -> Rc<HeldToken> {
        self.source = Some(source);
        self.held.insert(Rc::new(token)).clone()
    }

    /// While a block lasts at `now`: the held token if it still lives, else the blocking
    /// error. `None` once no block forbids a token request.
    pub(super) fn while_blocked(&mut self, now: Duration) -> Option<Blocked> {
        let block = self.block.as_ref().filter(|b| now < b.until)?;
        Some(match serve_alive(&self.held, &mut self.source, now) {
            Some(token) => Blocked::Serve(token),
            None => Blocked::Fail(block.error.clone().with_retry_in(block.until - now)),
        })
    }

    /// A token was fetched: it is held, and handed to the driver.
    pub(super) fn fetched(&mut self, token: HeldToken) -> Rc<HeldToken> {
        self.recovered();
        self.hold(token, Source::FreshFetch)
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
    /// more). Gives the held token if it may still be served, and the pause.
    pub(super) fn failed(
        &mut self,
        failure: &Failure,
        strikes: u32,
        now: Duration,
        cool_down: &CoolDown,
    ) -> (Result<Rc<HeldToken>, Error>, Option<Duration>) {
        let alive = self.serve_alive(now);
        self.strikes = self.strikes.max(strikes);
        if retry::is_credential_failure(&failure.error) {
            self.strikes = self.strikes.saturating_add(1);
        }
        let pause = retry::pause_after(failure, self.strikes, alive.is_some(), cool_down);
        if let Some(pause) = pause {
            self.block = Some(Block {
                until: now.saturating_add(pause),
                error: failure.error.clone(),
            });
        }
        if let Some(token) = alive {
            return (Ok(token), pause);
        }
        let error = match pause {
            Some(pause) => failure.error.clone().with_retry_in(pause),
            None => failure.error.clone(),
        };
        (Err(error), pause)
    }

    /// A cool-down another instance published: no token request for `remaining`. Meanwhile
    /// the held token if it still lives, else the cool-down's error.
    pub(super) fn blocked_by_fleet(
        &mut self,
        error: Error,
        remaining: Duration,
        now: Duration,
    ) -> Result<Rc<HeldToken>, Error> {
        let served = self
            .serve_alive(now)
            .ok_or_else(|| error.clone().with_retry_in(remaining));
        self.block = Some(Block {
            until: now.saturating_add(remaining),
            error,
        });
        served
    }
}

/// `held` if it still lives at `now`, served from this instance's cache (`source`).
fn serve_alive(
    held: &Option<Rc<HeldToken>>,
    source: &mut Option<Source>,
    now: Duration,
) -> Option<Rc<HeldToken>> {
    let token = held.as_ref().filter(|t| t.is_alive(now))?.clone();
    *source = Some(Source::InstanceCache);
    Some(token)
}
