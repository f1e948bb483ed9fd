//! What the client needs from its host, and the values that cross that boundary: sending a
//! token request, reading time, and an optional store shared with other instances. The
//! component implements these over WASI; tests use `fakes`.

use crate::origin::Origin;
use crate::settings::Timeouts;
use std::time::Duration;

/// Sends requests and reads their answers.
pub trait Transport {
    /// The token request.
    fn post_token(&self, request: &TokenRequest<'_>) -> Result<RawResponse, TransportError>;
    /// An authorized API call, reading at most `call.body_cap` bytes of the answer's body.
    fn send(&self, call: &ApiCall<'_>) -> Result<ApiAnswer, TransportError>;
}

/// Time as the host reports it.
pub trait Clock {
    /// Monotonic time since an arbitrary origin: what expiry is measured on.
    fn monotonic(&self) -> Duration;
    /// Wall time since the Unix epoch: to report the expiry instant and read HTTP dates.
    fn wall(&self) -> Duration;
    /// Waits (between retries).
    fn sleep(&self, duration: Duration);

    /// Both clocks at once: what a driver hands the renewal's steps.
    fn now(&self) -> Now {
        Now {
            monotonic: self.monotonic(),
            wall: self.wall(),
        }
    }
}

/// An instant as both clocks read it (`Clock`): time comes into the renewal's steps as this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub monotonic: Duration,
    pub wall: Duration,
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
    /// Per phase, each already cut to `within`.
    pub timeouts: Timeouts,
    /// The whole exchange (connect, writing the body, the head, the body) ends within this:
    /// what is left of the call's budget (`retry::Deadline`).
    pub within: Duration,
}

/// Everything the transport needs to send one authorized API call (built by `send`).
pub struct ApiCall<'a> {
    pub origin: &'a Origin,
    pub method: &'a str,
    /// Path and query, checked and filled in.
    pub path: &'a str,
    /// Checked, with the Bearer `Authorization` and, for a body, `Content-Length`.
    pub headers: &'a [(String, String)],
    pub body: Option<&'a [u8]>,
    /// Per phase, each already cut to `within`.
    pub timeouts: Timeouts,
    /// The whole exchange ends within this: what is left of the call's budget.
    pub within: Duration,
    /// Read at most this many bytes of the answer's body (and say whether there was more).
    pub body_cap: usize,
}

/// An API answer as read from the wire.
#[derive(Debug, Default)]
pub struct ApiAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was longer than `body_cap`; reading stopped there.
    pub truncated: bool,
}

/// A complete answer of the token endpoint, as read from the wire. The body may hold a token:
/// `Debug` shows only its length.
#[derive(Default)]
pub struct RawResponse {
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
    /// The body was longer than the transport's cap and was cut there.
    pub truncated: bool,
}

impl std::fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("retry_after", &self.retry_after)
            .field("body_bytes", &self.body.len())
            .field("truncated", &self.truncated)
            .finish()
    }
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

/// A token request that got no answer. `detail` is the host's text; the client quotes it
/// (`redact::quote`) before it reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError {
    pub kind: TransportKind,
    pub detail: String,
}

/// A store operation that failed, in the host's words. The component quotes the text like
/// any text from outside (`redact::quote`) before it reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);
