//! The `component-with-store` world: the root crate's modules compiled again, the same source
//! files, with the WIT glue for this world (`cfg(shared_store)`, set by build.rs), so clients
//! share their token through the host's `mangopay:auth/token-store`.
//!
//! The modules are included by path rather than by depending on the root crate: a dependency
//! whose crate types include `cdylib` is also linked as one, and cargo would then overwrite
//! the root component's `.wasm` with a glue-less copy.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

#[path = "../../src/cache.rs"]
mod cache;
#[path = "../../src/client.rs"]
mod client;
#[path = "../../src/clock.rs"]
mod clock;
#[path = "../../src/config.rs"]
mod config;
#[path = "../../src/error.rs"]
mod error;
#[path = "../../src/origin.rs"]
mod origin;
#[path = "../../src/retry.rs"]
mod retry;
#[path = "../../src/secret.rs"]
mod secret;
#[path = "../../src/store.rs"]
mod store;
#[path = "../../src/wire.rs"]
mod wire;

#[cfg(target_arch = "wasm32")]
#[path = "../../src/glue.rs"]
mod glue;
#[cfg(target_arch = "wasm32")]
#[path = "../../src/transport.rs"]
mod transport;
