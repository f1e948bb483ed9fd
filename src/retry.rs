//! When to try the token endpoint again: retries of transient faults inside one call, the
//! cool-down after credential failures, and `Retry-After`.

use crate::config::{CoolDown, RetryPolicy};
use crate::error::Error;
use crate::ports::{Clock, TransportKind};
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

/// Runs `attempt` until it succeeds, fails with a fault that is not transient, or the attempts
/// or the time budget run out; between attempts it waits the server's `Retry-After`, else a
/// jittered backoff. Failures are boxed: the error path is cold and the success path should
/// stay small.
pub fn with_retries<T>(
    policy: &RetryPolicy,
    clock: &impl Clock,
    mut attempt: impl FnMut() -> Result<T, Box<Failure>>,
) -> Result<T, Box<Failure>> {
    let started = clock.monotonic();
    let mut attempts = 1;
    loop {
        let failure = match attempt() {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        if attempts >= policy.max_attempts || !is_transient(&failure.error) {
            return Err(failure);
        }
        let wait = failure
            .retry_after
            .unwrap_or_else(|| backoff(policy.initial_backoff, attempts, jitter()));
        let elapsed = clock.monotonic().saturating_sub(started);
        if elapsed.saturating_add(wait) > policy.budget {
            return Err(failure);
        }
        clock.sleep(wait);
        attempts += 1;
    }
}

/// How long to send no token request after a call's attempts all failed; `None`: the next
/// call may try at once. Credential failures cool down, doubling with `strikes` (consecutive
/// ones, this included), since repeating them prolongs a lockout; a `Retry-After` is honoured
/// up to the cool-down maximum; and while the held token is `alive` a failed renewal is
/// retried only after `RENEWAL_RETRY`, so the calls it serves meanwhile stay fast.
pub fn pause_after(
    failure: &Failure,
    strikes: u32,
    alive: bool,
    limits: &CoolDown,
) -> Option<Duration> {
    if is_credential_failure(&failure.error) {
        Some(cool_down(limits.initial, limits.max, strikes))
    } else if let Some(retry_after) = failure.retry_after {
        Some(retry_after.min(limits.max))
    } else if alive {
        Some(RENEWAL_RETRY)
    } else {
        None
    }
}

/// Whether another attempt inside the same call may succeed: transport hiccups, rate limits
/// and server errors. Never credentials, lockout or other 4xx: repeating those prolongs a
/// lockout or changes nothing.
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
    let at = httpdate::parse_http_date(value).ok()?;
    let at = at.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(at.saturating_sub(wall_now))
}

/// A number in `[0, 1)` from the host's randomness (std seeds `RandomState` from
/// wasi:random), enough to spread retries of many instances apart.
pub fn jitter() -> f64 {
    let bits = RandomState::new().build_hasher().finish() >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests;
