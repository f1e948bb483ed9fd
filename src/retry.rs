//! When to try the token endpoint again: retries of transient faults inside one call, the
//! cool-down after credential failures, and `Retry-After`.

use crate::error::{Error, TransportKind};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How long the component keeps serving a still-valid token after a failed renewal before it
/// tries the endpoint again.
pub const RENEWAL_RETRY: Duration = Duration::from_secs(5);

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
mod tests {
    use super::*;
    use crate::error::{TransportError, UnexpectedResponse};

    #[test]
    fn backoff_doubles_under_full_jitter() {
        let ms = Duration::from_millis;
        assert_eq!(
            backoff(ms(200), 1, 0.999_999),
            ms(199) + Duration::from_micros(999) + Duration::from_nanos(800)
        );
        assert_eq!(backoff(ms(200), 3, 1.0), ms(800));
        assert_eq!(backoff(ms(200), 3, 0.5), ms(400));
        assert_eq!(backoff(ms(200), 1, 0.0), ms(0));
        assert_eq!(backoff(ms(200), 40, 1.0), ms(200 * 65536));
    }

    #[test]
    fn cool_down_doubles_to_the_cap() {
        let s = Duration::from_secs;
        let steps: Vec<u64> = (1..=6)
            .map(|n| cool_down(s(60), s(900), n).as_secs())
            .collect();
        assert_eq!(steps, vec![60, 120, 240, 480, 900, 900]);
    }

    #[test]
    fn retry_after_in_both_forms() {
        let now = Duration::from_secs(1_795_824_000); // 2026-11-28T00:00:00Z
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 00:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Fri, 27 Nov 2026 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn only_transient_faults_are_retried() {
        let transport = |kind| {
            Error::Transport(TransportError {
                kind,
                detail: String::new(),
            })
        };
        let status = |status| {
            Error::UnexpectedResponse(UnexpectedResponse {
                status,
                excerpt: String::new(),
                retry_in: None,
            })
        };
        assert!(is_transient(&transport(TransportKind::Timeout)));
        assert!(is_transient(&transport(TransportKind::ConnectionRefused)));
        assert!(is_transient(&transport(TransportKind::ConnectionLost)));
        assert!(!is_transient(&transport(TransportKind::Dns)));
        assert!(!is_transient(&transport(TransportKind::Tls)));
        for s in [429, 500, 502, 503, 504] {
            assert!(is_transient(&status(s)), "{s}");
        }
        for s in [301, 400, 403, 404, 501] {
            assert!(!is_transient(&status(s)), "{s}");
        }
        assert!(!is_transient(&Error::InvalidConfig(String::new())));
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let samples: Vec<f64> = (0..100).map(|_| jitter()).collect();
        assert!(samples.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(samples.iter().any(|j| *j != samples[0]));
    }
}
