//! What the harness's servers and clients on 127.0.0.1 share: a runtime, a listener on an
//! ephemeral port, headers as recorded (names lower-cased, values lossy UTF-8), and the one
//! way the host itself sends a request (`fetch`, `get`).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use std::net::SocketAddr;

/// A multi-thread tokio runtime of `workers` threads, every driver enabled.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A runtime of `workers` threads and a listener it owns on an ephemeral 127.0.0.1 port.
pub fn listen(workers: usize) -> (tokio::runtime::Runtime, tokio::net::TcpListener, SocketAddr) {
    let runtime = runtime(workers);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("a local address");
    (runtime, listener, addr)
}

/// `headers` as (name, value) pairs, in order.
pub fn header_pairs(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_owned(), value)
        })
        .collect()
}

/// An answer read to the end.
pub struct Fetched {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// Sends a body-less `request` with the client wasmtime-wasi-http gives components (http and
/// https alike), on a connection of its own, and reads the answer to the end. The caller sets
/// `host` (wasi:http adds it for a component; the host's own calls must add it themselves).
pub async fn fetch(request: http::Request<()>) -> Result<Fetched, String> {
    let request = request.map(|()| Empty::<Bytes>::new().map_err(|never| match never {}));
    let (response, io) = wasmtime_wasi_http::default_send_request(request, None)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let driver = tokio::spawn(io);
    let status = response.status().as_u16();
    let headers = header_pairs(response.headers());
    let body = response.into_body().collect().await;
    driver.abort();
    Ok(Fetched {
        status,
        headers,
        body: body.map_err(|e| format!("{e:?}"))?.to_bytes(),
    })
}

/// `GET uri` with its `host`, as [`fetch`] sends it.
pub async fn get(uri: http::Uri) -> Result<Fetched, String> {
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let request = http::Request::get(uri)
        .header("host", authority)
        .body(())
        .map_err(|e| e.to_string())?;
    fetch(request).await
}
