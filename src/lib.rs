//! mangopay-auth: the pure logic of Mangopay OAuth 2.0 client credentials, with no WASI in
//! it, built and tested natively. The components wrap it over wasi:http, the host clock and
//! an optional token store; their API is the WIT interface, not this crate's Rust API.
//!
//! Where to look:
//! - `client`: the front, one method per operation of the WIT `client` resource.
//! - `ports`: what the host provides (transport, clock, token store) and the values they carry.
//! - `lifecycle`: the held token, when it is renewed, and what a failed renewal does; the
//!   renewal's steps, sans-IO, for a blocking and an async driver.
//! - `flight`: one renewal at a time among the concurrent callers of one instance.
//! - `middleware`: what the WASI 0.3 middleware decides (which requests get the token, errors).
//! - `shared`: sharing one token between instances through the token store.
//! - `authorize`: which requests may carry the token, and what a 401 answer means.
//! - `wire`: what goes on the wire to the token endpoint and what comes back.
//! - `error`: the errors, and how an answer of the token endpoint becomes one.
//! - `redact`: keeping secrets out of errors.
//! - `keyvalue`: the token store over a platform's `wasi:keyvalue` bucket (the adapters).
//! - `config`: the configuration as given, its defaults and validation.
//! - `origin`: URL origins; `retry`: retries, backoff and cool-down; `secret`: secret strings.
//! - `fakes` (tests, feature `fakes`): fake transport, clock and store.
//!
//! Every module is public so that fuzz targets and property tests can reach it.

pub mod authorize;
pub mod client;
pub mod config;
pub mod error;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod flight;
pub mod keyvalue;
pub mod lifecycle;
pub mod log;
pub mod middleware;
pub mod origin;
pub mod ports;
pub mod redact;
pub mod retry;
pub mod secret;
pub mod send;
pub mod settings;
pub mod shared;
pub mod token;
pub mod wire;

pub use authorize::{HttpRequest, Verdict};
pub use client::{Client, Status, Token};
pub use config::{
    ClientConfig, CoolDownConfig, Environment, RetryConfig, TimeoutsConfig, from_env,
};
pub use error::{ApiError, Error, OAuthError, UnexpectedResponse};
pub use lifecycle::Source;
pub use ports::{
    ApiAnswer, ApiCall, Clock, RawResponse, StoreError, TokenRequest, TokenStore, Transport,
    TransportError, TransportKind,
};
pub use secret::Secret;
pub use send::{ApiRequest, ApiResponse};
pub use shared::StoreHealth;
pub use wire::TokenProblem;
