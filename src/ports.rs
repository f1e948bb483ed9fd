//! What the client needs from its host, and the values that cross that boundary: sending a
//! token request, reading time, and an optional store shared with other instances. The
//! component implements these over WASI; tests use `fakes`.

use crate::config::Timeouts;
use crate::origin::Origin;
use std::time::Duration;

/// Sends the token request and reads the answer.
pub trait Transport {
    fn post_token(&self, request: &TokenRequest<'_>) -> Result<RawResponse, TransportError>;
}

/// Time as the host reports it.
pub trait Clock {
    /// Monotonic time since an arbitrary origin: what expiry is measured on.
    fn monotonic(&self) -> Duration;
    /// Wall time since the Unix epoch: to report the expiry instant and read HTTP dates.
    fn wall(&self) -> Duration;
    /// Waits (between retries).
    fn sleep(&self, duration: Duration);
}

/// The host's token store (the WIT `token-store` interface).
pub trait TokenStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key` only if its value is `expected` (`None`: absent). `Ok(true)` if it was set.
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// Everything the transport needs to send one token request (built by `wire::token_request`).
pub struct TokenRequest<'a> {
    pub origin: &'a Origin,
    pub path: &'static str,
    pub headers: [(&'static str, &'a str); 5],
    pub body: &'static str,
    pub timeouts: Timeouts,
}

/// A complete answer of the token endpoint, as read from the wire.
#[derive(Debug, Default)]
pub struct RawResponse {
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
    /// The body was longer than the transport's cap and was cut there.
    pub truncated: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    Dns,
    ConnectionRefused,
    Timeout,
    Tls,
    ConnectionLost,
    Denied,
    Other,
}

/// A token request that got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError {
    pub kind: TransportKind,
    pub detail: String,
}

/// A store operation that failed; the text is the host's and holds no secret of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);
