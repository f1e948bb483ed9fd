//! Placeholder while the middleware is written: forwards every request unchanged.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    path: "wit",
    world: "middleware",
    generate_all,
});

use exports::wasi::http::client::Guest;
use wasi::http::client as upstream;
use wasi::http::types::{ErrorCode, Request, Response};

struct Middleware;

impl Guest for Middleware {
    async fn send(request: Request) -> Result<Response, ErrorCode> {
        upstream::send(request).await
    }
}

export!(Middleware);
