//! The token's own types, below everything that handles them: the token a client holds
//! (`HeldToken`) and when it is refreshed (`effective_margin`, `ALIVE_GUARD`), the token as
//! shared between instances (`SharedToken`; its stored form is in `shared::stored`), where the
//! latest token came from (`Source`), and what a client reports (`Status`, `StoreHealth`).

use crate::secret::Secret;
use crate::wire::{self, TokenResponse};
use std::time::Duration;

/// What must remain of a token's life for it to be sent after a failed renewal.
pub const ALIVE_GUARD: Duration = Duration::from_secs(5);

/// The refresh margin actually applied: the configured one, but never more than half the
/// lifetime, so a short-lived token (say 37 s) is still reused instead of fetched per call.
pub fn effective_margin(configured: Duration, lifetime: Duration) -> Duration {
    configured.min(lifetime / 2)
}

/// Where the token of the latest call came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    InstanceCache,
    SharedStore,
    FreshFetch,
}

/// A token held by a client.
#[derive(Debug)]
pub struct HeldToken {
    pub access_token: Secret,
    /// `Bearer <token>`, built once rather than on every authorization.
    pub bearer: Secret,
    pub token_type: String,
    /// `expires_in` as the token endpoint announced it.
    pub(crate) lifetime: u64,
    expires_at: Duration,
    refresh_at: Duration,
    expires_at_wall: Duration,
}

impl HeldToken {
    /// A fetched token. `requested_at` is when the request was sent, not when the answer
    /// came: `expires_in` counts from the server's issue time, which is at most that late.
    pub fn new(
        response: TokenResponse,
        requested_at: Duration,
        requested_at_wall: Duration,
        margin: Duration,
    ) -> Self {
        let lifetime = Duration::from_secs(response.expires_in);
        HeldToken::with_life(
            response.access_token,
            response.token_type,
            response.expires_in,
            (requested_at, requested_at_wall),
            lifetime,
            margin,
        )
    }

    /// A token another instance fetched, with what is left of its life at wall time `wall_now`.
    pub fn adopt(shared: SharedToken, now: Duration, wall_now: Duration, margin: Duration) -> Self {
        let remaining = shared.remaining(wall_now);
        HeldToken::with_life(
            shared.access_token,
            shared.token_type,
            shared.expires_in,
            (now, wall_now),
            remaining,
            margin,
        )
    }

    /// The one place the refresh point is computed: `remaining` of `lifetime` seconds left at
    /// `(now, wall_now)`.
    fn with_life(
        access_token: Secret,
        token_type: String,
        lifetime: u64,
        (now, wall_now): (Duration, Duration),
        remaining: Duration,
        margin: Duration,
    ) -> Self {
        // Saturating: the clocks are the host's, and no host value may trap the component.
        let expires_at = now.saturating_add(remaining);
        let margin = effective_margin(margin, Duration::from_secs(lifetime));
        HeldToken {
            bearer: Secret::new(format!("Bearer {}", access_token.expose())),
            access_token,
            token_type,
            lifetime,
            expires_at,
            refresh_at: expires_at.saturating_sub(margin),
            expires_at_wall: wall_now.saturating_add(remaining),
        }
    }

    /// The token as stored for other instances.
    pub fn to_shared(&self) -> SharedToken {
        SharedToken {
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

/// A token as stored: readable by any instance with the same credentials.
#[derive(Debug)]
pub struct SharedToken {
    pub access_token: Secret,
    pub token_type: String,
    pub expires_in: u64,
    /// Expiry on the wall clock, in milliseconds since the Unix epoch: instances share no
    /// monotonic clock.
    pub expires_at_ms: u64,
}

impl SharedToken {
    /// Time left at wall time `now`: to the entry's wall-clock expiry, but never more than its
    /// own `expires_in`, nor the longest lifetime a token endpoint may announce. The expiry is
    /// another instance's clock (or a corrupt writer's) and is not trusted further.
    pub fn remaining(&self, now: Duration) -> Duration {
        let lifetime = Duration::from_secs(self.expires_in.min(wire::MAX_EXPIRES_IN));
        Duration::from_millis(self.expires_at_ms)
            .saturating_sub(now)
            .min(lifetime)
    }
}

/// Whether the shared store worked the last time it was used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreHealth {
    NotConfigured,
    Ok,
    Unavailable,
}

/// `token-status`: what a client holds and has done. No secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub held: bool,
    pub source: Option<Source>,
    pub expires_in_seconds: Option<u64>,
    pub token_requests: u64,
    pub cool_down: Option<Duration>,
    pub store: StoreHealth,
    pub store_error: Option<String>,
}
