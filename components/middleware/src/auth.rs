//! The instance's client, and the async driver of the core's renewal steps: one renewal at a
//! time (`mangopay_auth::flight`), run as a task of its own so that no caller waits for it
//! while the held token lives, and those without a token wait for it together.

use crate::store::HostStore;
use crate::upstream::{self, First};
use mangopay_auth::flight::{Flight, Step, Waited};
use mangopay_auth::lifecycle::{self, Action, Lifecycle, Renewal};
use mangopay_auth::log::{Field, Level, Value};
use mangopay_auth::retry::Deadline;
use mangopay_auth::settings::Settings;
use mangopay_auth::shared::Shared;
use mangopay_auth::shared::sharing::Sharing;
use mangopay_auth::{Clock, Error, HttpRequest, Secret, Verdict};
use mangopay_auth_wasi::{HostClock, logger};
use std::cell::{OnceCell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// The middleware's client: its token and renewals, shared by every call of the instance.
pub(crate) struct Auth {
    /// The renewal's rules; its token requests are sent here, asynchronously.
    pub tokens: Lifecycle,
    /// The host's store, which the renewal's looks and publications go to.
    store: Shared,
    flight: RefCell<Flight>,
    /// Callers waiting for the renewal under way.
    waiters: RefCell<Vec<Waker>>,
    /// `MANGOPAY_AUTH_RESEND_BODY_MAX`.
    pub resend_body_max: usize,
}

thread_local! {
    // Components are single-threaded; the client lives as long as the instance.
    static AUTH: OnceCell<Rc<Auth>> = const { OnceCell::new() };
}

/// The instance's client, made from the `MANGOPAY_*` variables on first use. A failure is not
/// remembered, so it is reported on every call.
pub(crate) fn instance() -> Result<Rc<Auth>, Error> {
    AUTH.with(|cell| {
        if let Some(auth) = cell.get() {
            return Ok(auth.clone());
        }
        let var = |name: &str| std::env::var(name).ok();
        let settings = Settings::new(mangopay_auth::from_env(var)?)?;
        let resend_body_max = mangopay_auth::middleware::resend_body_max(var)?;
        let mut store = Shared::new(Box::new(HostStore), &settings);
        let mut tokens = Lifecycle::new(settings);
        tokens.set_logger(logger());
        Sharing::<HostClock>::set_logger(&mut store, tokens.logger().clone());
        let auth = Rc::new(Auth {
            tokens,
            store,
            flight: RefCell::new(Flight::default()),
            waiters: RefCell::new(Vec::new()),
            resend_body_max,
        });
        Ok(cell.get_or_init(|| auth).clone())
    })
}

impl Auth {
    /// The `Bearer` value to send: the held token before its refresh point at
    /// once; past it the live token while one renewal runs in the background; without a live
    /// token, after the renewal (this caller's, or the one under way).
    pub async fn bearer(self: &Rc<Self>) -> Result<Secret, Error> {
        loop {
            let now = HostClock.monotonic();
            if let Some(bearer) = self.tokens.usable(now) {
                return Ok(bearer);
            }
            let step = self.flight.borrow_mut().begin(&self.tokens, now);
            match step {
                Step::Ready(bearer) => return Ok(bearer),
                Step::Failed(error) => return Err(error),
                Step::Renew(number, renewal) => {
                    let auth = self.clone();
                    wit_bindgen::spawn_local(async move { auth.renew(number, renewal).await });
                }
                Step::Wait(number) => self.wait(number).await?,
            }
        }
    }

    /// Drives renewal `number` to its end, then wakes the callers waiting for it.
    async fn renew(self: Rc<Self>, number: u64, mut renewal: Box<Renewal>) {
        let budget = self.tokens.settings.retry.budget;
        let deadline = Deadline::start(HostClock.monotonic(), budget);
        let result = loop {
            let action = self.tokens.next(&mut renewal, HostClock.now(), &deadline);
            // A store failure restarts the deadline: the callers waiting wait as long.
            self.flight.borrow_mut().lasts_until(number, deadline.end());
            match action {
                Action::Sleep(pause) => {
                    upstream::sleep(pause).await;
                    deadline.slept(pause);
                }
                Action::Look { held_alive, pause } => {
                    let acquired = self.store.acquire(&HostClock, held_alive, &deadline, pause);
                    self.tokens.looked(&mut renewal, acquired);
                }
                Action::Send(request) => {
                    let response = upstream::post_token(&request).await;
                    self.tokens.answered(&mut renewal, response);
                }
                Action::Publish(lead, outcome) => self.store.finish(&HostClock, lead, outcome),
                Action::Done(result) => break result,
            }
        };
        self.flight.borrow_mut().end(number, &result);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waiter in waiters {
            waiter.wake();
        }
    }

    /// Waits until renewal `number` ended (or its deadline passed: a renewal whose task was
    /// cancelled wakes nobody), giving its error if it failed.
    async fn wait(&self, number: u64) -> Result<(), Error> {
        let ended = poll_fn(|cx| {
            let now = HostClock.monotonic();
            match self.flight.borrow().ended(number, now) {
                Waited::Running => {
                    self.waiters.borrow_mut().push(cx.waker().clone());
                    Poll::Pending
                }
                Waited::Again => Poll::Ready(Ok(())),
                Waited::Failed(error) => Poll::Ready(Err(error)),
            }
        });
        match upstream::first(ended, upstream::sleep(self.tokens.settings.retry.budget)).await {
            First::Left(result) => result,
            First::Right(()) => Ok(()),
        }
    }

    /// Logs `event` at `level` now.
    pub fn log(&self, level: Level, event: &str, fields: &[(Field, Value<'_>)]) {
        self.tokens.log(level, event, HostClock.wall(), fields);
    }

    /// Reads an API answer to `request` (`Lifecycle::check_response`); a refused token is
    /// never handed out by the store again.
    pub fn check_response(
        &self,
        request: &HttpRequest,
        status: u16,
        headers: &[(String, String)],
    ) -> Verdict {
        let wall = HostClock.wall();
        let verdict = self
            .tokens
            .check_response(request, status, headers, &[], wall);
        if let Some(sent) = lifecycle::refused_token(&verdict, request) {
            self.store.reject(&HostClock, sent);
        }
        verdict
    }
}
