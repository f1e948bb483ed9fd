//! Runs the mangopay-auth component the way a real host does (wasmtime, wasmtime-wasi,
//! wasmtime-wasi-http) against a mock Mangopay on 127.0.0.1, with host-supplied virtual clocks.
//!
//! The harness: the built components (`artifact`, from `build.rs`), one host context (`host`:
//! `State`, `Host`, `Instance`; `fixture` for a test world), the mocks (`mock`, `tls`),
//! composition (`compose`), the host's own HTTP calls (`http_client`), fault hooks (`inject`),
//! the host's token stores and wasi:keyvalue (`store`, `keyvalue`), and the simulated
//! platform hosts (`sim`). The real platforms live in the crate `host-platforms`, the
//! benchmark in `bench/runner`.

pub mod artifact;
pub mod clock;
pub mod compose;
pub mod fixture;
pub mod host;
pub mod http_client;
pub mod inject;
pub mod keyvalue;
pub mod mock;
pub mod net;
pub mod process;
pub mod sim;
pub mod store;
pub mod tls;

use std::path::Path;

/// The value of the first header named `name` (names as recorded: lower-cased).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The workspace root.
pub fn workspace() -> &'static Path {
    xtask::workspace()
}
