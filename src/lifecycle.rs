//! Token lifecycle: the held token, when it is renewed, and what happens when renewal fails.
//! Owns `Lifecycle` and the renewal's steps (`Begin`, `Renewal`, `Action`); the token's types
//! are in `token`, what a client remembers between calls in `lifecycle::state`, and the
//! shared store's side of a renewal in `shared`.
//!
//! A held token is handed out until its refresh point (expiry minus the margin). Past it, the
//! next call renews: unless a cool-down or `Retry-After` forbids it, it adopts a token another
//! instance shared, else fetches one. While a token has not expired (with `ALIVE_GUARD` to
//! spare) it is served through failed renewals. A 401 on the held token drops it.
//!
//! Instants are `Duration`s since the monotonic clock's origin, so that a wall-clock change
//! (NTP, a host with a wrong clock) cannot make a token look fresh or stale.
//!
//! Renewal is sans-IO, as rustls and quinn-proto keep their protocols: `Lifecycle` holds no
//! transport, no clock and no store. Time comes in as an argument (`now`), the store's and
//! the token endpoint's answers come in through `looked` and `answered`, and each step says
//! what its driver does next (`Action`). The blocking driver is `Client::renew`
//! (src/client.rs), over the blocking `Transport` of the WASI 0.2 components; the WASI 0.3
//! middleware's is `Auth::renew` (components/middleware/src/auth.rs), with `await`. Both
//! answer the store through `shared::sharing::Sharing`, so no rule is written twice.
//!
//! A driver calls, in this order:
//! 1. the cached path at `now`: `with_usable(now, f)` or `usable(now)`: a token before its
//!    refresh point is sent at once;
//! 2. `begin(now)` (through `flight::Flight::begin` where callers run concurrently, so that
//!    one of them renews): `Ready` sends its token, `Failed` is the caller's error, `Renew`
//!    goes on to 3;
//! 3. `next(&mut renewal, now, &deadline)` until it says `Done` (the blocking driver takes
//!    the first step, always a look, from `renewal.first()`: one clock read fewer for the
//!    fresh instance of every request):
//!    - `Sleep(d)`: wait `d` and count it against the deadline;
//!    - `Look { held_alive, pause }`: ask the store (`Sharing::acquire`) and hand its answer
//!      to `looked`;
//!    - `Send(request)`: send the token request and hand its outcome to `answered`;
//!    - `Publish(lead, outcome)`: tell the store how the fetch ended (`Sharing::finish`);
//!    - `Done`: the token to send (now held) or the error;
//! 4. after an API answer, `check_response(.., wall)`, and when it names a refused token
//!    (`refused_token`), `Sharing::reject`, before one renewal and resend.

use crate::authorize::{self, HttpRequest, Verdict};
use crate::error::{self, Error};
use crate::log::{Field, Level, Logger, Value};
use crate::ports::{Now, RawResponse, TokenRequest, TransportError};
use crate::redact;
use crate::retry::{self, Deadline, Failure};
use crate::secret::Secret;
use crate::settings::Settings;
use crate::shared::stored::millis;
use crate::shared::{Acquired, Lead, Outcome, WAIT_FIRST, next_pause};
use crate::token::{HeldToken, Source, Status, StoreHealth};
use crate::wire;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use zeroize::Zeroize;

mod state;

use state::{Blocked, State};

/// A client's token and the rules of its renewal: no transport, no clock, no store (their
/// driver's).
pub struct Lifecycle {
    pub settings: Settings,
    state: RefCell<State>,
    log: Logger,
}

impl Lifecycle {
    pub fn new(settings: Settings) -> Self {
        Lifecycle {
            settings,
            state: RefCell::new(State::default()),
            log: Logger::default(),
        }
    }

    /// Logs this client's events through `log`.
    pub fn set_logger(&mut self, log: Logger) {
        self.log = log.for_client(&self.settings.client_id);
    }

    /// The client's logger, for its store (`Sharing::set_logger`).
    pub fn logger(&self) -> &Logger {
        &self.log
    }

    /// Logs `event` at `level`, at `wall`.
    pub fn log(&self, level: Level, event: &str, wall: Duration, fields: &[(Field, Value<'_>)]) {
        if self.log.enabled(level) {
            self.log.event(level, event, wall, fields);
        }
    }

    /// Reads the answer to an API call `request` made with a token of this client (see
    /// `authorize::check_response`), at `wall`. A rejection counts only against the Bearer
    /// token the request carried (`rejected`); a request without one drops nothing. The
    /// driver then tells its store of the refused token (`refused_token`, `Sharing::reject`).
    pub fn check_response(
        &self,
        request: &HttpRequest,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
        wall: Duration,
    ) -> Verdict {
        let verdict = authorize::check_response(request, status, headers, body, &self.settings);
        match (&verdict, refused_token(&verdict, request)) {
            (_, Some(sent)) => self.rejected(sent, wall),
            (Verdict::ScaRequired(_), _) => self.log(Level::Info, "sca-required", wall, &[]),
            _ => {}
        }
        verdict
    }

    /// The API refused `sent`, the Bearer token a request carried: drops the held token if it
    /// is that one (a token renewed since, or another one, is kept).
    fn rejected(&self, sent: &str, wall: Duration) {
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
            wall,
            &[(Field::Status, Value::Number(401))],
        );
    }

    /// What the client holds and has done at `now`, with its store's health; sends nothing.
    pub fn status(&self, now: Duration, store: (StoreHealth, Option<String>)) -> Status {
        let state = self.state.borrow();
        let alive = state.held.as_ref().filter(|t| t.is_alive(now));
        let (store, store_error) = store;
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

    /// Runs `f` on the held token and `now` if the token is before its refresh point then (the
    /// blocking driver's cached path: no allocation); else gives `f` back.
    pub fn with_usable<R, F>(&self, now: Duration, f: F) -> Result<R, F>
    where
        F: FnOnce(&HeldToken, Duration) -> R,
    {
        let mut state = self.state.borrow_mut();
        let Some(token) = state.held.as_ref().filter(|t| t.is_usable(now)) else {
            return Err(f);
        };
        let result = f(token, now);
        state.source = Some(Source::InstanceCache);
        Ok(result)
    }
}

/// The Bearer token `request` carried, if `verdict` says the API refused it: what the driver
/// tells its store never to hand out again (`Sharing::reject`).
pub fn refused_token<'r>(verdict: &Verdict, request: &'r HttpRequest) -> Option<&'r str> {
    match verdict {
        Verdict::TokenRejected(_) => authorize::sent_token(request),
        _ => None,
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
    /// whose callers run concurrently lets one of them renew at a time (`flight`). Boxed:
    /// it is large, and rare.
    Renew(Box<Renewal>),
}

/// What a renewal's driver does next, then asks again (`Lifecycle::next`), until `Done`.
pub enum Action<'a> {
    /// Wait this long, count it against the deadline (`Deadline::slept`).
    Sleep(Duration),
    /// Look at the shared store (`Sharing::acquire` with these and the call's deadline) and
    /// hand its answer to `Lifecycle::looked`.
    Look { held_alive: bool, pause: Duration },
    /// Send this token request and hand its outcome to `Lifecycle::answered`.
    Send(TokenRequest<'a>),
    /// Tell the shared store how the fetch its lease was for ended (`Sharing::finish`).
    Publish(Lead, Outcome),
    /// The renewal ended: the token to send, or why no token may be sent.
    Done(Result<Ready, Error>),
}

/// A renewal under way: where it stands. It ends with `Action::Done`; then its driver drops it.
pub struct Renewal {
    phase: Phase,
    /// The held token, if it lived when the renewal began: served while another instance
    /// renews (`Acquired::ServeAlive(None)`).
    held: Option<Rc<HeldToken>>,
    /// The store's lease, when this instance fetches as its holder.
    lead: Option<Lead>,
    started: Duration,
    attempts: u32,
    /// When the latest token request was sent.
    sent_at: Now,
}

impl Renewal {
    /// Its first step: a look at the shared store (`Action::Look`), which reads no time, so
    /// the driver asks `next` only after it (each clock read is a host call in wasm).
    pub fn first(&self) -> Action<'static> {
        Action::Look {
            held_alive: self.held.is_some(),
            pause: WAIT_FIRST,
        }
    }
}

/// Where a renewal stands, with what its next step acts on.
enum Phase {
    /// To look at the shared store, with this pause before the next look while another
    /// instance holds the lease.
    Look(Duration),
    /// The store answered the look that had this pause.
    Looked(Acquired, Duration),
    /// To send a token request.
    Fetch,
    /// The latest token request's outcome.
    Answered(Result<HeldToken, Box<Failure>>),
    /// Over, and its outcome published (`Action::Publish`): what the driver is handed.
    Ended(Result<Ready, Error>),
}

/// What the shared store's answer means for a renewal (`Lifecycle::adopt_or_fetch`).
enum StoreAnswer {
    /// Fetch a token: as the holder of the store's lease, or without the store (`None`: none
    /// is configured, or it failed).
    Fetch(Option<Lead>),
    /// Another instance holds the lease: wait this long, then look again.
    Wait(Duration),
    /// The renewal ends here: the token to send, or why no token may be sent.
    Done(Result<Ready, Error>),
}

impl Lifecycle {
    /// Where a caller without a usable token stands: the held token while a block lets it
    /// be served, the blocking error, or a renewal. Unless a cool-down or `Retry-After`
    /// forbids it (this instance's, or one the fleet shares), a renewal adopts a token shared
    /// by another instance, else fetches one (as the holder of the store's lease, or while
    /// another instance holds it this one waits, or serves its live token meanwhile).
    pub fn begin(&self, now: Duration) -> Begin {
        let mut state = self.state.borrow_mut();
        match state.while_blocked(now) {
            Some(Blocked::Serve(token)) => return Begin::Ready(Ready { token, at: now }),
            Some(Blocked::Fail(error)) => return Begin::Failed(error),
            None => {}
        }
        Begin::Renew(Box::new(Renewal {
            phase: Phase::Look(WAIT_FIRST),
            held: state.alive(now).cloned(),
            lead: None,
            started: now,
            attempts: 0,
            sent_at: Now {
                monotonic: now,
                wall: Duration::ZERO,
            },
        }))
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

    /// The renewal's next step at `now`, within the call's `deadline`.
    pub fn next(&self, renewal: &mut Renewal, now: Now, deadline: &Deadline) -> Action<'_> {
        // `Fetch` stands in while the phase is taken apart; every arm sets the next one.
        match std::mem::replace(&mut renewal.phase, Phase::Fetch) {
            Phase::Look(pause) => {
                renewal.phase = Phase::Look(pause);
                Action::Look {
                    held_alive: renewal.held.is_some(),
                    pause,
                }
            }
            Phase::Looked(acquired, pause) => {
                let held = renewal.held.as_ref();
                match self.adopt_or_fetch(held, acquired, now, deadline, pause) {
                    StoreAnswer::Fetch(lead) => {
                        renewal.lead = lead;
                        renewal.started = now.monotonic;
                        self.send(renewal, now, deadline)
                    }
                    StoreAnswer::Wait(pause) => {
                        renewal.phase = Phase::Look(next_pause(pause));
                        Action::Sleep(pause)
                    }
                    StoreAnswer::Done(result) => Action::Done(result),
                }
            }
            Phase::Fetch => self.send(renewal, now, deadline),
            Phase::Answered(outcome) => {
                if let Err(failure) = &outcome
                    && retry::is_transient(&failure.error)
                    && let Some(wait) = retry::next_wait(
                        &self.settings.retry,
                        now.monotonic,
                        deadline,
                        renewal.attempts,
                        failure.retry_after,
                    )
                {
                    return Action::Sleep(wait);
                }
                let lead = renewal.lead.take();
                let (result, publish) =
                    self.fetched(outcome, lead, renewal.started, renewal.attempts, now);
                match publish {
                    Some((lead, outcome)) => {
                        renewal.phase = Phase::Ended(result);
                        Action::Publish(lead, outcome)
                    }
                    None => Action::Done(result),
                }
            }
            Phase::Ended(result) => Action::Done(result),
        }
    }

    /// The renewal's next token request (`Action::Send`).
    fn send(&self, renewal: &mut Renewal, now: Now, deadline: &Deadline) -> Action<'_> {
        renewal.attempts += 1;
        renewal.sent_at = now;
        renewal.phase = Phase::Fetch;
        Action::Send(self.token_request(now, deadline))
    }

    /// The shared store's answer to the renewal's `Action::Look`.
    pub fn looked(&self, renewal: &mut Renewal, acquired: Acquired) {
        if let Phase::Look(pause) = renewal.phase {
            renewal.phase = Phase::Looked(acquired, pause);
        }
    }

    /// How the token request the renewal sent went.
    pub fn answered(&self, renewal: &mut Renewal, response: Result<RawResponse, TransportError>) {
        let outcome = self.read_answer(response, renewal.sent_at);
        renewal.phase = Phase::Answered(outcome);
    }

    /// What the store's answer `acquired` at `now` means for a renewal (`StoreAnswer`) that
    /// began with `held` alive.
    fn adopt_or_fetch(
        &self,
        held: Option<&Rc<HeldToken>>,
        acquired: Acquired,
        now: Now,
        deadline: &Deadline,
        pause: Duration,
    ) -> StoreAnswer {
        let at = now.monotonic;
        // A usable token in the store was fetched after any cool-down this instance knows
        // of: the fleet recovered, and the doubling starts again.
        if matches!(acquired, Acquired::Adopted(_)) {
            self.state.borrow_mut().recovered();
        }
        match acquired {
            Acquired::Adopted(token) | Acquired::ServeAlive(Some(token)) => {
                self.log(
                    Level::Debug,
                    "token-adopted",
                    now.wall,
                    &[
                        (Field::Source, Value::Text("shared-store")),
                        (Field::SecondsLeft, Value::Number(token.seconds_left(at))),
                    ],
                );
                let token = self.state.borrow_mut().hold(token, Source::SharedStore);
                StoreAnswer::Done(Ok(Ready { token, at }))
            }
            // The store serves this instance's token only when told it lives (`held_alive`).
            Acquired::ServeAlive(None) => match held {
                Some(token) => {
                    self.state.borrow_mut().source = Some(Source::InstanceCache);
                    StoreAnswer::Done(Ok(Ready {
                        token: token.clone(),
                        at,
                    }))
                }
                None => StoreAnswer::Wait(pause),
            },
            Acquired::Blocked { error, remaining } => {
                self.log(
                    Level::Debug,
                    "cool-down-observed",
                    now.wall,
                    &[
                        (Field::Error, Value::Text(error.case_name())),
                        (Field::RetryInS, Value::Number(remaining.as_secs())),
                        (Field::Shared, Value::Flag(true)),
                    ],
                );
                let served = self
                    .state
                    .borrow_mut()
                    .blocked_by_fleet(error, remaining, at);
                StoreAnswer::Done(served.map(|token| Ready { token, at }))
            }
            Acquired::TimedOut(error) => {
                self.log(Level::Warn, "lease-wait-timed-out", now.wall, &[]);
                StoreAnswer::Done(Err(error))
            }
            Acquired::Wait(pause) => StoreAnswer::Wait(pause),
            Acquired::Leader(lead) => StoreAnswer::Fetch(Some(lead)),
            Acquired::Direct => {
                deadline.restart(at);
                StoreAnswer::Fetch(None)
            }
            Acquired::Unshared => StoreAnswer::Fetch(None),
        }
    }

    /// A renewal's fetch ended with `outcome` after `attempts` token requests, at `now`: the
    /// held token, the cool-down and the log learn of it, and what the store must hear
    /// (`Action::Publish`) when this instance holds its lease.
    fn fetched(
        &self,
        outcome: Result<HeldToken, Box<Failure>>,
        lead: Option<Lead>,
        started: Duration,
        attempts: u32,
        now: Now,
    ) -> (Result<Ready, Error>, Option<(Lead, Outcome)>) {
        let at = now.monotonic;
        let mut state = self.state.borrow_mut();
        let fleet_strikes = lead.as_ref().map_or(0, |lead| lead.strikes);
        match outcome {
            Ok(token) => {
                let cooled = state.strikes > 0 || state.block.is_some() || fleet_strikes > 0;
                self.log(
                    Level::Info,
                    "token-fetched",
                    now.wall,
                    &[
                        (Field::Source, Value::Text("fresh-fetch")),
                        (Field::LifetimeS, Value::Number(token.lifetime)),
                        (
                            Field::TookMs,
                            Value::Number(millis(at.saturating_sub(started))),
                        ),
                        (Field::Attempts, Value::Number(u64::from(attempts))),
                    ],
                );
                if cooled {
                    self.log(Level::Info, "cool-down-ended", now.wall, &[]);
                }
                let token = state.fetched(token);
                let publish = lead.map(|lead| (lead, Outcome::Fetched(token.clone())));
                (Ok(Ready { token, at }), publish)
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
                    state.failed(&failure, fleet_strikes, at, &self.settings.cool_down);
                let shared_pause = pause.filter(|_| retry::is_shared_pause(&failure));
                let shared = lead.is_some() && shared_pause.is_some();
                self.log_failure(&failure.error, &state, served.is_ok(), pause, shared, now);
                let publish = lead.map(|lead| {
                    let outcome = match shared_pause {
                        Some(pause) => Outcome::CoolDown {
                            error: failure.error,
                            pause,
                            strikes: state.strikes,
                        },
                        None => Outcome::Failed,
                    };
                    (lead, outcome)
                });
                (served.map(|token| Ready { token, at }), publish)
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
        now: Now,
    ) {
        let Now {
            monotonic: at,
            wall,
        } = now;
        let mut fields = vec![(Field::Error, Value::Text(error.case_name()))];
        if let Some(status) = error.status() {
            fields.push((Field::Status, Value::Number(u64::from(status))));
        }
        if let Some(pause) = pause {
            let next = wall.saturating_add(pause);
            fields.push((Field::RetryInS, Value::Number(pause.as_secs())));
            fields.push((Field::NextTryUnix, Value::Number(next.as_secs())));
        }
        let (level, event) = if let Error::Transport(e) = error
            && retry::is_tls_fault(error)
        {
            // No call can succeed until the host's TLS set-up changes: at `error`, its detail
            // naming the fix, once per pause.
            if served {
                let left = state.held.as_ref().map_or(0, |t| t.seconds_left(at));
                fields.push((Field::SecondsLeft, Value::Number(left)));
            }
            fields.push((Field::Shared, Value::Flag(shared)));
            fields.push((Field::Detail, Value::Text(&e.detail)));
            (Level::Error, "tls-failed")
        } else if served {
            let left = state.held.as_ref().map_or(0, |t| t.seconds_left(at));
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
        self.log(level, event, wall, &fields);
    }

    /// The next token request, its timeouts cut to what is left of `deadline` at `now`.
    fn token_request(&self, now: Now, deadline: &Deadline) -> TokenRequest<'_> {
        self.state.borrow_mut().token_requests += 1;
        let mut request = wire::token_request(&self.settings);
        let timeouts = self.settings.timeouts;
        (request.timeouts, request.within) = deadline.clip(now.monotonic, timeouts);
        request
    }

    /// A token request's outcome, sent at `sent`: the token, or the failure with the
    /// server's `Retry-After`. Whatever the host or the server said is redacted.
    fn read_answer(
        &self,
        response: Result<RawResponse, TransportError>,
        sent: Now,
    ) -> Result<HeldToken, Box<Failure>> {
        let Now {
            monotonic: now,
            wall,
        } = sent;
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
