//! mangopay-auth: Mangopay OAuth 2.0 client credentials as a WASI 0.2 component.
//!
//! Pure logic lives in modules that build and test natively; the wasi:http adapter and the
//! WIT glue exist only for wasm32.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod cache;
mod client;
mod clock;
mod config;
mod error;
mod origin;
mod secret;
mod wire;

#[cfg(target_arch = "wasm32")]
mod glue;
#[cfg(target_arch = "wasm32")]
mod transport;
