//! Every harness test in one binary (one link of wasmtime), a module per concern. Each loads
//! the components built by `build.rs` in wasmtime and drives them against servers on
//! 127.0.0.1.

mod component;
mod compose;
mod distributed;
mod docs;
mod economy;
mod faults;
mod jco;
mod middleware;
mod packaging;
mod per_request;
mod platforms;
mod security;
mod send;
mod shared_store;
mod store_faults;
mod tls;
mod wasmtime_serve;
