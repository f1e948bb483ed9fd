//! When to try again: retries of transient faults inside one call (token requests and API
//! calls alike), the cool-down after credential failures, and `Retry-After`.

use crate::error::Error;
use crate::ports::{Clock, TransportKind};
use crate::settings::{CoolDown, RetryPolicy, Timeouts};
use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How long the component keeps serving a still-valid token after a failed renewal before it
/// tries the endpoint again.
pub const RENEWAL_RETRY: Duration = Duration::from_secs(5);

/// A failed token request, with the server's `Retry-After` if it sent one.
#[derive(Debug)]
pub struct Failure {
    pub error: Error,
    pub retry_after: Option<Duration>,
}

/// The outcome of one attempt: final, or worth another try (after `retry_after`, when the
/// server said so) if the policy allows; `outcome` is what the call gives if it does not.
pub enum Attempt<T> {
    Done(T),
    Transient {
        outcome: T,
        retry_after: Option<Duration>,
    },
}

/// The least time an attempt must have left for a retry to start: below it the attempt could
/// not even connect.
pub const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// One call's time budget (`retry.budget-ms`), from the moment the call starts: waiting for
/// another instance's token request, the token request and its retries, the API call and its
/// retries and the resend after a refused token all spend it. Time is read on the monotonic
/// clock and also counted from the pauses taken, so a host clock that stands still (or runs
/// slow) cannot make a call wait past its budget. A store that failed gives the call its
/// budget again (`Deadline::restart`): a host may hold a store call for as long as it waits
/// for its store, and a store failure must never fail the call.
pub struct Deadline {
    at: Cell<Duration>,
    budget: Duration,
    slept: Cell<Duration>,
}

impl Deadline {
    /// A deadline `budget` from `now` (monotonic).
    pub fn start(now: Duration, budget: Duration) -> Deadline {
        Deadline {
            at: Cell::new(now.saturating_add(budget)),
            budget,
            slept: Cell::new(Duration::ZERO),
        }
    }

    /// The whole budget again from `now`: the time a failed store call took is not the token
    /// request's to pay.
    pub fn restart(&self, now: Duration) {
        self.at.set(now.saturating_add(self.budget));
        self.slept.set(Duration::ZERO);
    }

    /// When the budget ends by the monotonic clock (pauses counted aside).
    pub fn end(&self) -> Duration {
        self.at.get()
    }

    /// What is left of the budget at `now`.
    pub fn remaining(&self, now: Duration) -> Duration {
        let by_clock = self.at.get().saturating_sub(now);
        by_clock.min(self.budget.saturating_sub(self.slept.get()))
    }

    /// Waits `pause` on `clock`, counted against the budget (the blocking drivers' wait).
    pub fn sleep(&self, clock: &impl Clock, pause: Duration) {
        clock.sleep(pause);
        self.slept(pause);
    }

    /// Counts a pause a driver waited itself (an async sleep) against the budget.
    pub fn slept(&self, pause: Duration) {
        self.slept.set(self.slept.get().saturating_add(pause));
    }

    /// Whether a pause of `wait` from `now` leaves an attempt at least `MIN_ATTEMPT` before
    /// the deadline.
    pub fn allows(&self, now: Duration, wait: Duration) -> bool {
        wait.saturating_add(MIN_ATTEMPT) <= self.remaining(now)
    }

    /// `timeouts` cut to what is left at `now`, so that an attempt ends by the deadline.
    pub fn clip(&self, now: Duration, timeouts: Timeouts) -> (Timeouts, Duration) {
        let left = self.remaining(now);
        let clipped = Timeouts {
            connect: timeouts.connect.min(left),
            first_byte: timeouts.first_byte.min(left),
            between_bytes: timeouts.between_bytes.min(left),
        };
        (clipped, left)
    }
}

/// Runs `attempt` until it is done, the attempts run out, or no retry fits before `deadline`;
/// between attempts it waits a jittered backoff, or the server's `Retry-After` when that is
/// longer (a server's word can lengthen a pause, never shorten it).
pub fn retrying<T>(
    policy: &RetryPolicy,
    clock: &impl Clock,
    deadline: &Deadline,
    mut attempt: impl FnMut() -> Attempt<T>,
) -> T {
    let mut attempts = 1;
    loop {
        let (outcome, retry_after) = match attempt() {
            Attempt::Done(outcome) => return outcome,
            Attempt::Transient {
                outcome,
                retry_after,
            } => (outcome, retry_after),
        };
        match next_wait(policy, clock.monotonic(), deadline, attempts, retry_after) {
            Some(wait) => deadline.sleep(clock, wait),
            None => return outcome,
        }
        attempts += 1;
    }
}

/// After the `attempts`-th attempt failed transiently: the pause before the next one, or
/// `None` when the policy allows no more attempts or no retry fits before `deadline` (at
/// `now`). The pause is a jittered backoff, or the server's `Retry-After` when that is longer.
pub fn next_wait(
    policy: &RetryPolicy,
    now: Duration,
    deadline: &Deadline,
    attempts: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    if attempts >= policy.max_attempts {
        return None;
    }
    let backoff = backoff(policy.initial_backoff, attempts, jitter());
    let wait = retry_after.map_or(backoff, |r| r.max(backoff));
    deadline.allows(now, wait).then_some(wait)
}

/// How long to send no token request after a call's attempts all failed; `None`: the next
/// call may try at once. Credential failures cool down, doubling with `strikes` (consecutive
/// ones, this included), since repeating them prolongs a lockout; while the held token is
/// `alive` a failed renewal is retried only after `RENEWAL_RETRY`, so the calls it serves
/// meanwhile stay fast. A TLS fault without a live token pauses for the cool-down's base,
/// never doubled: it is the host's configuration, no strike, and a per-request fleet would
/// otherwise make a handshake per call. A `Retry-After` (up to the cool-down maximum) can
/// lengthen any pause, never shorten it: `Retry-After: 0` does not make every call a token
/// request.
pub fn pause_after(
    failure: &Failure,
    strikes: u32,
    alive: bool,
    limits: &CoolDown,
) -> Option<Duration> {
    let own = if is_credential_failure(&failure.error) {
        Some(cool_down(limits.initial, limits.max, strikes))
    } else if alive {
        Some(RENEWAL_RETRY)
    } else if is_tls_fault(&failure.error) {
        Some(limits.initial)
    } else {
        None
    };
    let server = failure
        .retry_after
        .map(|r| r.min(limits.max))
        .filter(|r| !r.is_zero());
    match (own, server) {
        (Some(own), Some(server)) => Some(own.max(server)),
        (own, server) => own.or(server),
    }
}

/// Whether the pause after `failure` holds for every instance with the same credentials, and
/// so is published in the shared store: credential failures, TLS faults and a server's
/// `Retry-After`. The pause for a renewal that failed otherwise while the token lives is
/// this instance's own.
pub fn is_shared_pause(failure: &Failure) -> bool {
    is_credential_failure(&failure.error)
        || is_tls_fault(&failure.error)
        || failure.retry_after.is_some_and(|r| !r.is_zero())
}

/// Whether another attempt inside the same call may succeed: transport hiccups, rate limits
/// and server errors. Never credentials, lockout or other 4xx: repeating those prolongs a
/// lockout or changes nothing; nor TLS (a lost connection to an mTLS host's token endpoint
/// is one: `error::token_transport_error`), which fails the same way until the host changes.
pub fn is_transient(error: &Error) -> bool {
    match error {
        Error::Transport(t) => matches!(
            t.kind,
            TransportKind::ConnectionRefused
                | TransportKind::Timeout
                | TransportKind::ConnectionLost
        ),
        Error::UnexpectedResponse(r) => matches!(r.status, 429 | 500 | 502 | 503 | 504),
        _ => false,
    }
}

/// Whether the error counts as a strike for the cool-down.
pub fn is_credential_failure(error: &Error) -> bool {
    matches!(error, Error::InvalidCredentials(_) | Error::LockedOut(_))
}

/// Whether a token request failed on the host's TLS set-up (`error::token_transport_error`
/// made it kind `tls`): never transient, paused like a cool-down, never a strike.
pub fn is_tls_fault(error: &Error) -> bool {
    matches!(error, Error::Transport(t) if t.kind == TransportKind::Tls)
}

/// Exponential backoff with full jitter: a delay in `[0, initial * 2^(attempt-1)]`,
/// `random` in `[0, 1)` picking the point. `attempt` counts from 1.
pub fn backoff(initial: Duration, attempt: u32, random: f64) -> Duration {
    let ceiling = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    ceiling.mul_f64(random.clamp(0.0, 1.0))
}

/// The cool-down after the `strikes`-th consecutive credential failure: `initial`, doubling
/// on each repeat, never above `max`.
pub fn cool_down(initial: Duration, max: Duration, strikes: u32) -> Duration {
    initial
        .saturating_mul(1u32 << strikes.saturating_sub(1).min(16))
        .min(max)
}

/// A `Retry-After` value (delta-seconds or an HTTP date) as a delay from `wall_now`.
pub fn parse_retry_after(value: &str, wall_now: Duration) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    Some(parse_http_date(value)?.saturating_sub(wall_now))
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP-date (RFC 9110 §5.6.7) as time since the Unix epoch, in the three forms a
/// recipient must accept: IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, and the obsolete
/// RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` (years 70–99 as 19xx, 00–69 as 20xx) and asctime
/// `Sun Nov  6 08:49:37 1994`. The date must exist, the weekday must be its own, the year
/// must be 1970–9999 and the time at most 23:59:59, as the `httpdate` crate checks.
pub fn parse_http_date(value: &str) -> Option<Duration> {
    let (weekday, day, month, year, time) = match value.split_once(", ") {
        // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
        Some((weekday, rest)) if weekday.len() == 3 => {
            let (day, rest) = rest.strip_suffix(" GMT")?.split_once(' ')?;
            let (month, rest) = rest.split_once(' ')?;
            let (year, time) = rest.split_once(' ')?;
            (weekday, number(day, 2)?, month, number(year, 4)?, time)
        }
        // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
        Some((weekday, rest)) => {
            let (date, time) = rest.strip_suffix(" GMT")?.split_once(' ')?;
            let (day, rest) = date.split_once('-')?;
            let (month, year) = rest.split_once('-')?;
            let year = number(year, 2)?;
            let year = year + if year < 70 { 2000 } else { 1900 };
            (weekday, number(day, 2)?, month, year, time)
        }
        // asctime: `Sun Nov  6 08:49:37 1994`, a one-digit day after a space
        None => {
            let (weekday, rest) = value.split_at_checked(3)?;
            let (month, rest) = rest.strip_prefix(' ')?.split_at_checked(3)?;
            let (day, rest) = rest.strip_prefix(' ')?.split_at_checked(2)?;
            let day = match day.strip_prefix(' ') {
                Some(digit) => number(digit, 1)?,
                None => number(day, 2)?,
            };
            let (time, year) = rest.strip_prefix(' ')?.split_at_checked(8)?;
            (
                weekday,
                day,
                month,
                number(year.strip_prefix(' ')?, 4)?,
                time,
            )
        }
    };
    // `Mon` in IMF-fixdate and asctime, `Monday` in RFC 850.
    let weekday = WEEKDAYS.iter().position(|name| match weekday.len() {
        3 => name.starts_with(weekday),
        _ => *name == weekday,
    })?;
    let month = MONTHS.iter().position(|name| *name == month)? as u64 + 1;
    let (hour, rest) = time.split_once(':')?;
    let (minute, second) = rest.split_once(':')?;
    let (hour, minute, second) = (number(hour, 2)?, number(minute, 2)?, number(second, 2)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1970..=9999).contains(&year)
        || !(1..=month_days).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    // Days since 1970-01-01 (a Thursday), the year counted from March so that a leap day
    // ends it.
    let (y, m) = match month {
        1 | 2 => (year - 1, month + 9),
        _ => (year, month - 3),
    };
    let days = y * 365 + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5 + day - 1 - 719_468;
    if (days + 3) % 7 != weekday as u64 {
        return None;
    }
    Some(Duration::from_secs(
        days * 86_400 + hour * 3_600 + minute * 60 + second,
    ))
}

/// The number written in exactly `width` ASCII digits.
fn number(digits: &str, width: usize) -> Option<u64> {
    (digits.len() == width).then_some(())?;
    digits.bytes().try_fold(0, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// A number in `[0, 1)` from the host's randomness (std seeds `RandomState` from
/// wasi:random), enough to spread retries of many instances apart.
pub fn jitter() -> f64 {
    let bits = RandomState::new().build_hasher().finish() >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests;
