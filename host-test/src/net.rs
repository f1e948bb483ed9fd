//! What the harness's servers and clients on 127.0.0.1 share: a runtime, a listener on an
//! ephemeral port, and headers as recorded (names lower-cased, values lossy UTF-8).

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
