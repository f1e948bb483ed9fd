//! Benchmark floor for per-request serving: exports `wasi:http/incoming-handler` (the
//! `wasi:http/proxy` world) and answers every request 200 with a constant body, built with the
//! same toolchain and release profile as the users-service example it is measured against.

/// The body of every answer.
pub const BODY: &[u8] = b"[]";

#[cfg(target_arch = "wasm32")]
mod glue {
    use wasip2::http::types::{
        Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
    };

    struct Floor;

    impl wasip2::exports::http::incoming_handler::Guest for Floor {
        fn handle(_request: IncomingRequest, out: ResponseOutparam) {
            let response = OutgoingResponse::new(Fields::new());
            let Ok(body) = response.body() else {
                return;
            };
            ResponseOutparam::set(out, Ok(response));
            if let Ok(stream) = body.write() {
                let _ = stream.blocking_write_and_flush(super::BODY);
            }
            let _ = OutgoingBody::finish(body, None);
        }
    }

    wasip2::http::proxy::export!(Floor);
}
