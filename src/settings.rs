//! The validated configuration every module reads: `Settings` and its resolved parts
//! (`Timeouts`, `RetryPolicy`, `CoolDown`). Plain values with no logic; `config` builds them
//! (`Settings::new`, in `config.rs`) from what the caller gave and re-exports them.

use crate::origin::Origin;
use crate::secret::Secret;
use std::time::Duration;

/// Timeouts of a token request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

/// Retries of transient faults inside one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included (1 = no retry).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    /// No retry starts once this much time has gone by in the call.
    pub budget: Duration,
}

/// The pause after invalid credentials or a lockout: `initial`, doubling per repeat, up to `max`.
/// `max` also caps how long a `Retry-After` is honoured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoolDown {
    pub initial: Duration,
    pub max: Duration,
}

/// A validated configuration, with everything a token request needs computed once.
#[derive(Debug)]
pub struct Settings {
    pub client_id: String,
    /// `Basic base64(ClientId:ApiKey)`: the only form in which the API key is sent.
    pub basic_authorization: Secret,
    /// Kept only to withhold it from errors and to derive store keys; requests use
    /// `basic_authorization`.
    pub api_key: Secret,
    pub base: Origin,
    /// Whether the base URL requires mutual TLS: an `*-mtls` environment (whatever base URL
    /// replaces its host: a proxy, a mock) or an `api-mtls.` host. A connection lost at the
    /// token request is then a TLS fault (TLS 1.3 refuses a client certificate after the
    /// handshake).
    pub mtls: bool,
    /// `base.to_url()`, for the same-origin shortcut of every `authorize-request`.
    pub base_url: String,
    pub refresh_margin: Duration,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub cool_down: CoolDown,
    /// The largest API answer body `send` reads.
    pub max_response_bytes: u32,
}
