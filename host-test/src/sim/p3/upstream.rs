//! A recording upstream: the origin a service's outgoing requests reach in the tests.

use super::*;

// ---------------------------------------------------------------------------------------
// A recording upstream

#[derive(Default)]
struct Gate {
    /// Requests to hold until this many have arrived (0: none held).
    target: AtomicUsize,
    arrived: AtomicUsize,
    open: AtomicBool,
    timed_out: AtomicBool,
    notify: Notify,
}

/// How long a held request waits at most, so that a broken test fails instead of hanging.
const GATE_LIMIT: Duration = Duration::from_secs(120);

/// A plain HTTP server on 127.0.0.1 that records every request and answers 200 with the
/// request's body echoed (and its `content-type`, else `application/octet-stream`). It can
/// hold its answers until a number of requests are in: proof that they were all in flight at
/// once.
pub struct Upstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    gate: Arc<Gate>,
    _runtime: tokio::runtime::Runtime,
}

impl Upstream {
    pub fn start() -> Upstream {
        let (runtime, listener, addr) = crate::net::listen(1);
        let requests: Arc<Mutex<Vec<RecordedRequest>>> = Arc::default();
        let gate: Arc<Gate> = Arc::default();
        let (seen, held) = (requests.clone(), gate.clone());
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, gate) = (seen.clone(), held.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        echo(seen.clone(), gate.clone(), request)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            requests,
            gate,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, no answer goes out until `n` requests have arrived (counted from now);
    /// then every held one goes, and all later ones at once.
    pub fn hold_until(&self, n: usize) {
        self.gate.arrived.store(0, Ordering::SeqCst);
        self.gate.open.store(false, Ordering::SeqCst);
        self.gate.target.store(n, Ordering::SeqCst);
    }

    /// Whether a held request gave up waiting (after two minutes) instead of being
    /// released by the count.
    pub fn gave_up_holding(&self) -> bool {
        self.gate.timed_out.load(Ordering::SeqCst)
    }

    /// Every request so far, body read to the end.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

async fn echo(
    seen: Arc<Mutex<Vec<RecordedRequest>>>,
    gate: Arc<Gate>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, incoming) = request.into_parts();
    let body = incoming
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let recorded = RecordedRequest::new(&parts, body.to_vec());
    if let Ok(mut seen) = seen.lock() {
        seen.push(recorded);
    }
    let mut released = std::pin::pin!(gate.notify.notified());
    released.as_mut().enable();
    let target = gate.target.load(Ordering::SeqCst);
    if target > 0 && !gate.open.load(Ordering::SeqCst) {
        if gate.arrived.fetch_add(1, Ordering::SeqCst) + 1 >= target {
            gate.open.store(true, Ordering::SeqCst);
            gate.notify.notify_waiters();
        } else if tokio::time::timeout(GATE_LIMIT, released).await.is_err() {
            gate.timed_out.store(true, Ordering::SeqCst);
        }
    }
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(http::HeaderValue::from_static("application/octet-stream"));
    let mut response = http::Response::new(Full::new(body));
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, content_type);
    Ok(response)
}
