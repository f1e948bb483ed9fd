//! mangopay-auth: Mangopay OAuth 2.0 client credentials as a WASI 0.2 component.
//!
//! Pure logic lives in modules that build and test natively (and are public so that fuzz
//! targets and property tests can reach them); the wasi:http adapter and the WIT glue exist
//! only for wasm32. The product's API is the WIT interface, not this crate's Rust API.

// Input from the wire or the caller must never trap the component: no panicking shortcuts
// outside tests.
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

pub mod cache;
pub mod client;
pub mod clock;
pub mod config;
pub mod error;
pub mod origin;
pub mod retry;
pub mod secret;
pub mod store;
pub mod wire;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod glue;
#[cfg(target_arch = "wasm32")]
pub mod transport;
