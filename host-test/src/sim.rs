//! The hosts that simulate a platform's instance model, for the tests, the demo and the
//! benchmark: `serve`, a fresh WASI 0.2 instance per HTTP request (as Spin, wasmCloud and
//! `wasmtime serve` do), and `p3`, WASI 0.3 instances reused as `wasmtime serve` reuses them.
//! The real platforms run in the tests too (crate `host-platforms`); these run where a test
//! needs what a platform does not give: virtual time, fault hooks, exact dispatch.

pub mod p3;
pub mod serve;
