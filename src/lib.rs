//! mangopay-auth: the pure logic of Mangopay OAuth 2.0 client credentials, with no WASI in
//! it, built and tested natively. The components wrap it over wasi:http, the host clock and
//! an optional token store; their API is the WIT interface, not this crate's Rust API.
//!
//! Where to look, from the top down (a module imports only modules below it, never one
//! above: no import circle):
//! - `fakes` (tests, feature `fakes`): fake transport, clock and store.
//! - `keyvalue`: the token store over a platform's `wasi:keyvalue` bucket (the adapters).
//! - `middleware`: what the WASI 0.3 middleware decides (which requests get the token, errors).
//! - `send`: an authorized API call end to end (checks, retries, a refused token renewed).
//! - `flight`: one renewal at a time among the concurrent callers of one instance.
//! - `client`: the front, one method per operation of the WIT `client` resource, and the
//!   blocking driver of the renewal's steps (transport, clock and store are its).
//! - `lifecycle`: when the held token is renewed, and what a failed renewal does; the
//!   renewal's steps, sans-IO (time and answers in, actions out), for a blocking and an async
//!   driver. `lifecycle::state`: what a client remembers between calls.
//! - `shared`: sharing one token between instances through the token store (the lease, the
//!   shared cool-down). `shared::sharing`: `Sharing`, what a driver answers the renewal's
//!   looks with. `shared::stored`: the store keys and the entries' formats.
//! - `token`: the token's own types: the held token and its refresh point, the shared token,
//!   where a token came from, the status a client reports.
//! - `authorize`: which requests may carry the token, and what a 401 answer means.
//! - `retry`: retries, backoff, cool-down and `Retry-After`.
//! - `config`: the configuration as given, its defaults, and its validation into `Settings`.
//! - `error`: the errors, and how an answer of the token endpoint becomes one.
//! - `redact`: keeping secrets out of errors. `wire`: what goes on the wire to the token
//!   endpoint and what comes back.
//! - `ports`: what the host provides (transport, clock, token store) and the values they carry.
//! - `settings`: the validated configuration every module reads (built by `config`).
//! - `origin`: URL origins; `secret`: secret strings; `log`: operator log lines.
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
pub use client::{Client, Token};
pub use config::{
    ClientConfig, CoolDownConfig, Environment, RetryConfig, TimeoutsConfig, from_env,
};
pub use error::{ApiError, Error, OAuthError, UnexpectedResponse};
pub use ports::{
    ApiAnswer, ApiCall, Clock, RawResponse, StoreError, TokenRequest, TokenStore, Transport,
    TransportError, TransportKind,
};
pub use secret::Secret;
pub use send::{ApiRequest, ApiResponse};
pub use token::{Source, Status, StoreHealth};
pub use wire::TokenProblem;
