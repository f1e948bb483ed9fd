//! Benchmark floor for the WASI 0.3 middleware: what standing between a service and
//! `wasi:http/client` costs with no token logic at all. Every request is rebuilt around its
//! own body with the constant header `authorization: Bearer floor` and sent on.

/// The header value every forwarded request carries.
pub const AUTHORIZATION: &str = "Bearer floor";

#[cfg(target_arch = "wasm32")]
mod glue {
    wit_bindgen::generate!({
        world: "mangopay:floor-middleware/floor-middleware",
        path: ["../../vendor/wit/wasi-http-0.3.0", "wit"],
        generate_all,
    });

    use exports::wasi::http::client::Guest;
    use wasi::http::client as upstream;
    use wasi::http::types::{ErrorCode, Request, Response};

    struct Floor;

    fn internal(what: &str) -> ErrorCode {
        ErrorCode::InternalError(Some(format!("floor-middleware: {what}")))
    }

    impl Guest for Floor {
        async fn send(request: Request) -> Result<Response, ErrorCode> {
            let headers = request.get_headers().clone();
            headers
                .set("authorization", &[super::AUTHORIZATION.as_bytes().to_vec()])
                .map_err(|e| internal(&format!("{e:?}")))?;
            let method = request.get_method();
            let scheme = request.get_scheme();
            let authority = request.get_authority();
            let path = request.get_path_with_query();
            let options = request.get_options();
            // `result_rx` tells the caller how sending its body went: the rebuilt request's
            // own transmit result, forwarded by a task that outlives this call's answer.
            let (result_tx, result_rx) = wit_future::new::<Result<(), ErrorCode>>(|| Ok(()));
            let (body, trailers) = Request::consume_body(request, result_rx);
            let (out, transmitted) = Request::new(headers, Some(body), trailers, options);
            out.set_method(&method).map_err(|()| internal("method"))?;
            out.set_scheme(scheme.as_ref())
                .map_err(|()| internal("scheme"))?;
            out.set_authority(authority.as_deref())
                .map_err(|()| internal("authority"))?;
            out.set_path_with_query(path.as_deref())
                .map_err(|()| internal("path"))?;
            wit_bindgen::spawn_local(async move {
                let _ = result_tx.write(transmitted.await).await;
            });
            upstream::send(out).await
        }
    }

    export!(Floor);
}
