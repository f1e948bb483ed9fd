//! Token lifecycle: when a held token may still be used and when it must be renewed.
//!
//! Instants are `Duration`s since the monotonic clock's origin, so that a wall-clock change
//! (NTP, a host with a wrong clock) cannot make a token look fresh or stale.

use crate::secret::Secret;
use crate::wire::TokenResponse;
use std::time::Duration;

fn bearer(token: &Secret) -> Secret {
    Secret::new(format!("Bearer {}", token.expose()))
}

/// What must remain of a token's life for it to be sent after a failed renewal.
pub const ALIVE_GUARD: Duration = Duration::from_secs(5);

/// The refresh margin actually applied: the configured one, but never more than half the
/// lifetime, so a short-lived token (say 37 s) is still reused instead of fetched per call.
pub fn effective_margin(configured: Duration, lifetime: Duration) -> Duration {
    configured.min(lifetime / 2)
}

/// A token held by a client.
#[derive(Debug)]
pub struct CachedToken {
    pub access_token: Secret,
    /// `Bearer <token>`, built once rather than on every authorization.
    pub bearer: Secret,
    pub token_type: String,
    /// `expires_in` as the token endpoint announced it.
    lifetime: u64,
    expires_at: Duration,
    refresh_at: Duration,
    expires_at_wall: Duration,
}

impl CachedToken {
    /// `requested_at` is when the request was sent, not when the answer came: `expires_in`
    /// counts from the server's issue time, which is at most that late.
    pub fn new(
        response: TokenResponse,
        requested_at: Duration,
        requested_at_wall: Duration,
        margin: Duration,
    ) -> Self {
        let lifetime = Duration::from_secs(response.expires_in);
        CachedToken {
            bearer: bearer(&response.access_token),
            access_token: response.access_token,
            token_type: response.token_type,
            lifetime: response.expires_in,
            // Saturating: the clocks are the host's, and no host value may trap the component.
            expires_at: requested_at.saturating_add(lifetime),
            refresh_at: requested_at
                .saturating_add(lifetime)
                .saturating_sub(effective_margin(margin, lifetime)),
            expires_at_wall: requested_at_wall.saturating_add(lifetime),
        }
    }

    /// A token another instance fetched, with `remaining` of its life left at `now`.
    pub fn adopt(
        shared: crate::store::SharedToken,
        now: Duration,
        wall_now: Duration,
        margin: Duration,
    ) -> Self {
        let remaining = shared.remaining(wall_now);
        let margin = effective_margin(margin, Duration::from_secs(shared.expires_in));
        CachedToken {
            bearer: bearer(&shared.access_token),
            access_token: shared.access_token,
            token_type: shared.token_type,
            lifetime: shared.expires_in,
            expires_at: now.saturating_add(remaining),
            refresh_at: now.saturating_add(remaining).saturating_sub(margin),
            expires_at_wall: wall_now.saturating_add(remaining),
        }
    }

    /// The token as stored for other instances.
    pub fn to_shared(&self) -> crate::store::SharedToken {
        crate::store::SharedToken {
            access_token: self.access_token.clone(),
            token_type: self.token_type.clone(),
            expires_in: self.lifetime,
            expires_at_ms: u64::try_from(self.expires_at_wall.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Whether the token may still be handed out at `now` (before its refresh point).
    pub fn is_usable(&self, now: Duration) -> bool {
        now < self.refresh_at
    }

    /// Whether the token may still be sent at `now` although it is past its refresh point:
    /// only while `ALIVE_GUARD` remains, so it cannot expire on its way to Mangopay.
    pub fn is_alive(&self, now: Duration) -> bool {
        now.saturating_add(ALIVE_GUARD) < self.expires_at
    }

    /// Whole seconds until the token expires.
    pub fn seconds_left(&self, now: Duration) -> u64 {
        self.expires_at.saturating_sub(now).as_secs()
    }

    /// Expiry in seconds since the Unix epoch.
    pub fn expires_at_unix_seconds(&self) -> u64 {
        self.expires_at_wall.as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_in: u64, at: u64, margin: u64) -> CachedToken {
        CachedToken::new(
            TokenResponse {
                access_token: Secret::new("t".into()),
                token_type: "bearer".into(),
                expires_in,
            },
            Duration::from_secs(at),
            Duration::from_secs(1_700_000_000 + at),
            Duration::from_secs(margin),
        )
    }

    #[test]
    fn margin_is_capped_at_half_the_lifetime() {
        let s = Duration::from_secs;
        assert_eq!(effective_margin(s(60), s(1200)), s(60));
        assert_eq!(
            effective_margin(s(60), s(37)),
            Duration::from_millis(18_500)
        );
        assert_eq!(effective_margin(s(0), s(37)), s(0));
    }

    #[test]
    fn refresh_point_is_expiry_minus_margin() {
        let t = token(1200, 100, 60);
        assert!(t.is_usable(Duration::from_secs(100 + 1139)));
        assert!(!t.is_usable(Duration::from_secs(100 + 1140)));
        assert_eq!(t.seconds_left(Duration::from_secs(100)), 1200);
        assert_eq!(t.seconds_left(Duration::from_secs(100 + 1140)), 60);
        assert_eq!(t.seconds_left(Duration::from_secs(5000)), 0);
        assert_eq!(t.expires_at_unix_seconds(), 1_700_000_000 + 100 + 1200);
    }

    #[test]
    fn short_lifetimes_are_reused_for_half_their_life() {
        let t = token(37, 0, 60);
        assert!(t.is_usable(Duration::from_millis(18_499)));
        assert!(!t.is_usable(Duration::from_millis(18_500)));
        let t = token(1, 0, 60);
        assert!(t.is_usable(Duration::from_millis(499)));
        assert!(!t.is_usable(Duration::from_millis(500)));
    }
}
