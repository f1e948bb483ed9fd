//! Token lifecycle: the held token, when it is renewed, and what happens when renewal fails.
//! Owns `Lifecycle` and the renewal's steps (`Begin`, `Renewal`, `Action`); the token's types
//! are in `token`, what a client remembers between calls in `lifecycle::state`, and the
//! shared store is reached through `shared::Sharing`.
//!
//! A held token is handed out until its refresh point (expiry minus the margin). Past it, the
//! next call renews: unless a cool-down or `Retry-After` forbids it, it adopts a token another
//! instance shared, else fetches one. While a token has not expired (with `ALIVE_GUARD` to
//! spare) it is served through failed renewals. A 401 on the held token drops it.
//!
//! Instants are `Duration`s since the monotonic clock's origin, so that a wall-clock change
//! (NTP, a host with a wrong clock) cannot make a token look fresh or stale.
//!
//! Renewal is sans-IO, as rustls and quinn-proto keep their protocols: `begin` decides whether
//! a caller has a token, waits for another caller's renewal or renews, and a `Renewal` tells
//! its driver what to do next (`Action`: wait, send this token request, done) and hears how
//! each token request went. The blocking driver is `Lifecycle::renew` below, over the blocking
//! `Transport` of the WASI 0.2 components; the WASI 0.3 middleware drives the same steps with
//! `await`, so no rule is written twice.
//!
//! A driver calls, in this order (the blocking `with_token`/`renew` below, the middleware's
//! `Auth::bearer`/`renew` in components/middleware/src/auth.rs):
//! 1. the cached path at `now`: `with_token`'s held-token check, or `usable(now)`: a token
//!    before its refresh point is sent at once;
//! 2. `begin(now)` (through `flight::Flight::begin` where callers run concurrently, so that
//!    one of them renews): `Ready` sends its token, `Failed` is the caller's error, `Renew`
//!    goes on to 3;
//! 3. `next(&mut renewal, &deadline)` until it says `Done`: `Sleep(d)` waits `d` and counts
//!    it against the deadline, `Send(request)` sends the token request and hands its outcome
//!    to `answered`, `Done` gives the token to send (now held) or the error;
//! 4. after an API answer, `check_response`, and `rejected` when Mangopay refused the token
//!    sent, before one renewal and resend (`send`).
//!
//! Time comes in at 1 and 2; `next` still reads the clock and calls the shared store itself
//! (the store's answers are not yet inputs of the steps).

use crate::authorize::{self, HttpRequest, Verdict};
use crate::error::{self, Error};
use crate::log::{Field, Level, Logger, Value};
use crate::ports::{Clock, RawResponse, TokenRequest, Transport, TransportError};
use crate::redact;
use crate::retry::{self, Deadline, Failure};
use crate::secret::Secret;
use crate::settings::Settings;
use crate::shared::{Acquired, Lead, Outcome, WAIT_FIRST, millis, next_pause};
use crate::token::{Status, StoreHealth};
use crate::wire;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use zeroize::Zeroize;

mod state;

use state::State;
// Moved below this module (`token`, `shared`); kept here at their first paths.
pub use crate::shared::Sharing;
pub use crate::token::{ALIVE_GUARD, HeldToken, Source, effective_margin};

/// A client's token and everything needed to renew it.
pub struct Lifecycle<T, C> {
    pub settings: Settings,
    transport: T,
    clock: C,
    shared: Option<Box<dyn Sharing<C>>>,
    state: RefCell<State>,
    log: Logger,
}

impl<T, C: Clock> Lifecycle<T, C> {
    pub fn new(
        settings: Settings,
        transport: T,
        clock: C,
        shared: Option<Box<dyn Sharing<C>>>,
    ) -> Self {
        Lifecycle {
            settings,
            transport,
            clock,
            shared,
            state: RefCell::new(State::default()),
            log: Logger::default(),
        }
    }

    /// Logs this client's events through `log`.
    pub fn set_logger(&mut self, log: Logger) {
        self.log = log.for_client(&self.settings.client_id);
    }

    /// Logs `event` at `level` now.
    pub fn log(&self, level: Level, event: &str, fields: &[(Field, Value<'_>)]) {
        if self.log.enabled(level) {
            self.log.event(level, event, self.clock.wall(), fields);
        }
    }

    /// The store's health, as `store_health_logged` compares it.
    fn store_health(&self) -> Option<StoreHealth> {
        self.shared.as_deref().map(|s| s.health().0)
    }

    /// A line when the store's health changed since `before`.
    fn store_health_logged(&self, before: Option<StoreHealth>) {
        let (Some(shared), Some(before)) = (&self.shared, before) else {
            return;
        };
        match (before, shared.health()) {
            (StoreHealth::Unavailable, (StoreHealth::Ok, _)) => {
                self.log(Level::Info, "store-back", &[]);
            }
            (StoreHealth::Ok, (StoreHealth::Unavailable, detail)) => self.log(
                Level::Warn,
                "store-unavailable",
                &[(Field::Detail, Value::Text(detail.as_deref().unwrap_or("")))],
            ),
            _ => {}
        }
    }

    /// A deadline for a call starting now (`retry.budget-ms`).
    pub fn deadline(&self) -> Deadline {
        Deadline::start(&self.clock, self.settings.retry.budget)
    }

    /// Reads the answer to an API call `request` made with a token of this client (see
    /// `authorize::check_response`). A rejection counts only against the Bearer token the
    /// request carried (`rejected`); a request without one drops nothing.
    pub fn check_response(
        &self,
        request: &HttpRequest,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Verdict {
        let verdict = authorize::check_response(request, status, headers, body, &self.settings);
        match (&verdict, authorize::sent_token(request)) {
            (Verdict::TokenRejected(_), Some(sent)) => self.rejected(sent),
            (Verdict::ScaRequired(_), _) => self.log(Level::Info, "sca-required", &[]),
            _ => {}
        }
        verdict
    }

    /// The API refused `sent`, the Bearer token a request carried: drops the held token if it
    /// is that one (a token renewed since, or another one, is kept), and makes sure no instance
    /// is handed it from the store again (`Shared::reject`).
    pub fn rejected(&self, sent: &str) {
        {
            let mut state = self.state.borrow_mut();
            if state
                .held
                .as_ref()
                .is_some_and(|held| held.access_token.expose() == sent)
            {
                state.held = None;
            }
        }
        self.log(
            Level::Warn,
            "token-refused",
            &[(Field::Status, Value::Number(401))],
        );
        if let Some(shared) = &self.shared {
            let before = shared.health().0;
            shared.reject(&self.clock, sent);
            self.store_health_logged(Some(before));
        }
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// What the client holds and has done; sends nothing.
    pub fn status(&self) -> Status {
        let now = self.clock.monotonic();
        let state = self.state.borrow();
        let alive = state.held.as_ref().filter(|t| t.is_alive(now));
        let (store, store_error) = match &self.shared {
            None => (StoreHealth::NotConfigured, None),
            Some(shared) => shared.health(),
        };
        Status {
            held: alive.is_some(),
            source: state.source,
            expires_in_seconds: alive.map(|t| t.seconds_left(now)),
            token_requests: state.token_requests,
            cool_down: state
                .block
                .as_ref()
                .filter(|b| now < b.until)
                .map(|b| b.until - now),
            store,
            store_error,
        }
    }
}

impl<T: Transport, C: Clock> Lifecycle<T, C> {
    /// Runs `f` on a usable token. The held one while it is before its refresh point (the
    /// cached path: one clock read, no allocation); otherwise see `renew`, within the call's
    /// `deadline` (made only when needed: the cached path does not read the clock twice).
    pub fn with_token<R>(
        &self,
        deadline: Option<&Deadline>,
        f: impl FnOnce(&HeldToken, Duration) -> R,
    ) -> Result<R, Error> {
        let now = self.clock.monotonic();
        {
            let mut state = self.state.borrow_mut();
            if let Some(token) = state.held.as_ref().filter(|t| t.is_usable(now)) {
                let result = f(token, now);
                state.source = Some(Source::InstanceCache);
                return Ok(result);
            }
        }
        let own;
        let deadline = match deadline {
            Some(deadline) => deadline,
            None => {
                own = self.deadline();
                &own
            }
        };
        let ready = self.renew(now, deadline)?;
        Ok(f(&ready.token, ready.at))
    }

    /// Makes the held token one that may be sent, or says why there is none: `begin`, then
    /// the renewal's actions over the blocking transport and clock (the blocking driver).
    fn renew(&self, now: Duration, deadline: &Deadline) -> Result<Ready, Error> {
        let mut renewal = match self.begin(now) {
            Begin::Ready(ready) => return Ok(ready),
            Begin::Failed(error) => return Err(error),
            Begin::Renew(renewal) => renewal,
        };
        loop {
            match self.next(&mut renewal, deadline) {
                Action::Sleep(pause) => deadline.sleep(&self.clock, pause),
                Action::Send(request) => {
                    let response = self.transport.post_token(&request);
                    self.answered(&mut renewal, response);
                }
                Action::Done(result) => return result,
            }
        }
    }
}

/// A token that may be sent, as `Begin::Ready` and `Action::Done` hand it to their driver:
/// the held one (usable, or alive while a cool-down or another caller's renewal lasts) or one
/// just adopted or fetched, which the client now holds.
pub struct Ready {
    pub token: Rc<HeldToken>,
    /// The monotonic time after the work.
    pub at: Duration,
}

/// What a caller without a usable token does (`Lifecycle::begin`).
pub enum Begin {
    /// Send this token.
    Ready(Ready),
    /// No token may be sent, and none may be requested yet (a cool-down).
    Failed(Error),
    /// This caller renews: drive the `Renewal` (`Lifecycle::next`) to its end. A driver
    /// whose callers run concurrently lets one of them renew at a time (`flight`).
    Renew(Renewal),
}

/// What a renewal's driver does next.
pub enum Action<'a> {
    /// Wait this long, count it against the deadline (`Deadline::slept`), then ask again.
    Sleep(Duration),
    /// Send this token request and hand its outcome to `Lifecycle::answered`.
    Send(TokenRequest<'a>),
    /// The renewal ended: the token to send, or why no token may be sent.
    Done(Result<Ready, Error>),
}

/// A renewal under way: where it stands. It ends with `Action::Done`; then its driver drops it.
pub struct Renewal {
    /// Looking at the shared store (or not, without one), with this pause before the next
    /// look while another instance holds the lease; `None` once fetching.
    acquiring: Option<Duration>,
    /// The held token, if it lived when the renewal began: served while another instance
    /// renews (`Acquired::ServeAlive(None)`).
    held: Option<Rc<HeldToken>>,
    /// The store's lease, when this instance fetches as its holder.
    lead: Option<Lead>,
    started: Duration,
    attempts: u32,
    /// When the latest token request was sent (monotonic, wall).
    sent_at: (Duration, Duration),
    /// The latest token request's outcome, until it is acted on.
    outcome: Option<Result<HeldToken, Box<Failure>>>,
}

/// What the shared store's answer means for a renewal (`Lifecycle::acquire`).
enum StoreAnswer {
    /// Fetch a token: as the holder of the store's lease, or without the store (`None`: none
    /// is configured, or it failed).
    Fetch(Option<Lead>),
    /// Another instance holds the lease: wait this long, then look again.
    Wait(Duration),
    /// The renewal ends here: the token to send, or why no token may be sent.
    Done(Result<Ready, Error>),
}

impl<T, C: Clock> Lifecycle<T, C> {
    /// Where a caller without a usable token stands: the held token while a block lets it
    /// be served, the blocking error, or a renewal. Unless a cool-down or `Retry-After`
    /// forbids it (this instance's, or one the fleet shares), a renewal adopts a token shared
    /// by another instance, else fetches one (as the holder of the store's lease, or while
    /// another instance holds it this one waits, or serves its live token meanwhile).
    pub fn begin(&self, now: Duration) -> Begin {
        let mut state = self.state.borrow_mut();
        if let Some(served) = state.while_blocked(now) {
            return match served {
                Ok(token) => Begin::Ready(Ready { token, at: now }),
                Err(error) => Begin::Failed(error),
            };
        }
        Begin::Renew(Renewal {
            acquiring: Some(WAIT_FIRST),
            held: state.alive(now).cloned(),
            lead: None,
            started: now,
            attempts: 0,
            sent_at: (now, now),
            outcome: None,
        })
    }

    /// The held token's `Bearer` value while it is before its refresh point (the cached path
    /// of a driver that holds no borrow across its I/O).
    pub fn usable(&self, now: Duration) -> Option<Secret> {
        let bearer = self.held_bearer(now, false)?;
        self.state.borrow_mut().source = Some(Source::InstanceCache);
        Some(bearer)
    }

    /// The held token's `Bearer` value if it may be sent at `now` at all (usable, or alive:
    /// `ALIVE_GUARD` left): what a driver sends once `begin` or a renewal said `Ready`, and
    /// what callers send while another caller renews.
    pub fn sendable(&self, now: Duration) -> Option<Secret> {
        self.held_bearer(now, true)
    }

    fn held_bearer(&self, now: Duration, alive_will_do: bool) -> Option<Secret> {
        let state = self.state.borrow();
        let token = state.held.as_ref()?;
        (token.is_usable(now) || (alive_will_do && token.is_alive(now)))
            .then(|| token.bearer.clone())
    }

    /// The renewal's next step.
    pub fn next(&self, renewal: &mut Renewal, deadline: &Deadline) -> Action<'_> {
        if let Some(pause) = renewal.acquiring {
            match self.acquire(renewal.held.as_ref(), deadline, pause) {
                StoreAnswer::Fetch(lead) => {
                    renewal.acquiring = None;
                    renewal.lead = lead;
                    renewal.started = self.clock.monotonic();
                }
                StoreAnswer::Wait(pause) => {
                    renewal.acquiring = Some(next_pause(pause));
                    return Action::Sleep(pause);
                }
                StoreAnswer::Done(result) => return Action::Done(result),
            }
        }
        let Some(outcome) = renewal.outcome.take() else {
            renewal.attempts += 1;
            renewal.sent_at = (self.clock.monotonic(), self.clock.wall());
            return Action::Send(self.token_request(deadline));
        };
        if let Err(failure) = &outcome
            && retry::is_transient(&failure.error)
            && let Some(wait) = retry::next_wait(
                &self.settings.retry,
                &self.clock,
                deadline,
                renewal.attempts,
                failure.retry_after,
            )
        {
            return Action::Sleep(wait);
        }
        let lead = renewal.lead.take();
        Action::Done(self.fetched(outcome, lead, renewal.started, renewal.attempts))
    }

    /// How the token request the renewal sent went.
    pub fn answered(&self, renewal: &mut Renewal, response: Result<RawResponse, TransportError>) {
        renewal.outcome = Some(self.read_answer(response, renewal.sent_at));
    }

    /// The shared store's answer to a renewal (`StoreAnswer`) that began with `held` alive.
    fn acquire(
        &self,
        held: Option<&Rc<HeldToken>>,
        deadline: &Deadline,
        pause: Duration,
    ) -> StoreAnswer {
        let Some(shared) = self.shared.as_deref() else {
            return StoreAnswer::Fetch(None);
        };
        let health = self.store_health();
        let held_alive = held.is_some();
        let acquired = shared.acquire(&self.clock, held_alive, deadline, pause);
        self.store_health_logged(health);
        // A usable token in the store was fetched after any cool-down this instance knows
        // of: the fleet recovered, and the doubling starts again.
        if matches!(acquired, Acquired::Adopted(_)) {
            self.state.borrow_mut().recovered();
        }
        match acquired {
            Acquired::Adopted(token) | Acquired::ServeAlive(Some(token)) => {
                let now = self.clock.monotonic();
                self.log(
                    Level::Debug,
                    "token-adopted",
                    &[
                        (Field::Source, Value::Text("shared-store")),
                        (Field::SecondsLeft, Value::Number(token.seconds_left(now))),
                    ],
                );
                let token = self.state.borrow_mut().hold(token, Source::SharedStore);
                StoreAnswer::Done(Ok(Ready {
                    token,
                    at: self.clock.monotonic(),
                }))
            }
            // The store serves this instance's token only when told it lives (`held_alive`).
            Acquired::ServeAlive(None) => match held {
                Some(token) => {
                    self.state.borrow_mut().source = Some(Source::InstanceCache);
                    StoreAnswer::Done(Ok(Ready {
                        token: token.clone(),
                        at: self.clock.monotonic(),
                    }))
                }
                None => StoreAnswer::Wait(pause),
            },
            Acquired::Blocked { error, remaining } => {
                self.log(
                    Level::Debug,
                    "cool-down-observed",
                    &[
                        (Field::Error, Value::Text(error.case_name())),
                        (Field::RetryInS, Value::Number(remaining.as_secs())),
                        (Field::Shared, Value::Flag(true)),
                    ],
                );
                let now = self.clock.monotonic();
                let served = self
                    .state
                    .borrow_mut()
                    .blocked_by_fleet(error, remaining, now);
                StoreAnswer::Done(served.map(|token| Ready { token, at: now }))
            }
            Acquired::TimedOut(error) => {
                self.log(Level::Warn, "lease-wait-timed-out", &[]);
                StoreAnswer::Done(Err(error))
            }
            Acquired::Wait(pause) => StoreAnswer::Wait(pause),
            Acquired::Leader(lead) => StoreAnswer::Fetch(Some(lead)),
            Acquired::Direct => {
                deadline.restart(&self.clock);
                StoreAnswer::Fetch(None)
            }
        }
    }

    /// A renewal's fetch ended with `outcome` after `attempts` token requests: the held
    /// token, the cool-down, the store and the log learn of it.
    fn fetched(
        &self,
        outcome: Result<HeldToken, Box<Failure>>,
        lead: Option<Lead>,
        started: Duration,
        attempts: u32,
    ) -> Result<Ready, Error> {
        let now = self.clock.monotonic();
        let health = self.store_health();
        let mut state = self.state.borrow_mut();
        let fleet_strikes = lead.as_ref().map_or(0, |lead| lead.strikes);
        match outcome {
            Ok(token) => {
                let cooled = state.strikes > 0 || state.block.is_some() || fleet_strikes > 0;
                self.log(
                    Level::Info,
                    "token-fetched",
                    &[
                        (Field::Source, Value::Text("fresh-fetch")),
                        (Field::LifetimeS, Value::Number(token.lifetime)),
                        (
                            Field::TookMs,
                            Value::Number(millis(now.saturating_sub(started))),
                        ),
                        (Field::Attempts, Value::Number(u64::from(attempts))),
                    ],
                );
                if cooled {
                    self.log(Level::Info, "cool-down-ended", &[]);
                }
                if let (Some(shared), Some(lead)) = (&self.shared, lead) {
                    shared.finish(&self.clock, lead, Outcome::Fetched(&token));
                }
                let token = state.fetched(token);
                drop(state);
                self.store_health_logged(health);
                Ok(Ready { token, at: now })
            }
            Err(failure) => {
                if let Some(lead) = &lead {
                    // A token published since this instance's latest failure: the fleet
                    // recovered meanwhile, and this instance's strikes are over.
                    if state
                        .failed_over
                        .as_ref()
                        .is_some_and(|over| lead.token.newer_than(over))
                    {
                        state.recovered();
                    }
                }
                state.failed_over = lead.as_ref().map(|lead| lead.token);
                let (served, pause) =
                    state.failed(&failure, fleet_strikes, now, &self.settings.cool_down);
                let shared_pause = pause.filter(|_| retry::is_shared_pause(&failure));
                let shared = lead.is_some() && shared_pause.is_some();
                self.log_failure(&failure.error, &state, served.is_ok(), pause, shared);
                if let (Some(shared), Some(lead)) = (&self.shared, lead) {
                    let outcome = match shared_pause {
                        Some(pause) => Outcome::CoolDown {
                            error: &failure.error,
                            pause,
                            strikes: state.strikes,
                        },
                        None => Outcome::Failed,
                    };
                    shared.finish(&self.clock, lead, outcome);
                }
                drop(state);
                self.store_health_logged(health);
                served.map(|token| Ready { token, at: now })
            }
        }
    }

    /// The line for a failed renewal: a TLS fault (at `error`, whether the held token is
    /// served or not), the held token served meanwhile, a cool-down (a lockout at `error`), or
    /// a token request that failed with nothing to serve.
    fn log_failure(
        &self,
        error: &Error,
        state: &State,
        served: bool,
        pause: Option<Duration>,
        shared: bool,
    ) {
        let now = self.clock.monotonic();
        let mut fields = vec![(Field::Error, Value::Text(error.case_name()))];
        if let Some(status) = error.status() {
            fields.push((Field::Status, Value::Number(u64::from(status))));
        }
        if let Some(pause) = pause {
            let next = self.clock.wall().saturating_add(pause);
            fields.push((Field::RetryInS, Value::Number(pause.as_secs())));
            fields.push((Field::NextTryUnix, Value::Number(next.as_secs())));
        }
        let (level, event) = if let Error::Transport(e) = error
            && retry::is_tls_fault(error)
        {
            // No call can succeed until the host's TLS set-up changes: at `error`, its detail
            // naming the fix, once per pause.
            if served {
                let left = state.held.as_ref().map_or(0, |t| t.seconds_left(now));
                fields.push((Field::SecondsLeft, Value::Number(left)));
            }
            fields.push((Field::Shared, Value::Flag(shared)));
            fields.push((Field::Detail, Value::Text(&e.detail)));
            (Level::Error, "tls-failed")
        } else if served {
            let left = state.held.as_ref().map_or(0, |t| t.seconds_left(now));
            fields.push((Field::SecondsLeft, Value::Number(left)));
            (Level::Warn, "renewal-failed")
        } else if pause.is_some() {
            fields.push((Field::Strikes, Value::Number(u64::from(state.strikes))));
            fields.push((Field::Shared, Value::Flag(shared)));
            match error {
                Error::LockedOut(_) => (Level::Error, "locked-out"),
                _ => (Level::Warn, "cool-down-started"),
            }
        } else {
            (Level::Warn, "token-request-failed")
        };
        self.log(level, event, &fields);
    }

    /// The next token request, its timeouts cut to what is left of `deadline`.
    fn token_request(&self, deadline: &Deadline) -> TokenRequest<'_> {
        self.state.borrow_mut().token_requests += 1;
        let mut request = wire::token_request(&self.settings);
        (request.timeouts, request.within) = deadline.clip(&self.clock, self.settings.timeouts);
        request
    }

    /// A token request's outcome, sent at `(now, wall)`: the token, or the failure with the
    /// server's `Retry-After`. Whatever the host or the server said is redacted.
    fn read_answer(
        &self,
        response: Result<RawResponse, TransportError>,
        (now, wall): (Duration, Duration),
    ) -> Result<HeldToken, Box<Failure>> {
        let state = self.state.borrow();
        let held = state.held.as_ref().map_or("", |t| t.access_token.expose());
        let secrets = redact::secrets(&self.settings, held);
        let mut response = response.map_err(|e| {
            let settings = &self.settings;
            let error = error::token_transport_error(e, &settings.base, settings.mtls, &secrets);
            Box::new(Failure {
                error: Error::Transport(error),
                retry_after: None,
            })
        })?;
        let answer = error::read_token_answer(&response, &secrets);
        let retry_after = response
            .retry_after
            .as_deref()
            .and_then(|value| retry::parse_retry_after(value, wall));
        // The body held the token (or an echo of a secret): wipe it, as `Secret` does.
        response.body.zeroize();
        match answer {
            Ok(token) => Ok(HeldToken::new(
                token,
                now,
                wall,
                self.settings.refresh_margin,
            )),
            Err(error) => Err(Box::new(Failure { error, retry_after })),
        }
    }
}

#[cfg(test)]
mod tests;
