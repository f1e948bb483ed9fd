//! The server: requests over HTTP on 127.0.0.1 or straight from a test, handed to the
//! dispatcher, and their answers.

use super::*;

// ---------------------------------------------------------------------------------------
// The server

#[derive(Clone)]
enum Dispatcher {
    Pool(Arc<Pool>),
    WasmtimeServe(ProxyHandler<ServeState>),
}

impl Dispatcher {
    /// `request` answered by an instance: the answer's head, its body streaming.
    async fn handle(
        &self,
        request: http::Request<WasiBody>,
    ) -> wasmtime::Result<http::Response<WasiBody>> {
        match self {
            Dispatcher::Pool(pool) => {
                let (reply, answer) = oneshot::channel();
                pool.dispatch(Job { request, reply });
                answer
                    .await
                    .map_err(|_| wasmtime::format_err!("the instance exited without answering"))?
            }
            Dispatcher::WasmtimeServe(handler) => handler.handle((), request).await,
        }
    }
}

/// An answer as the caller saw it, body read to the end.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::header(&self.headers, name)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `response` with its body read to the end.
pub async fn read_answer<B>(response: http::Response<B>) -> Result<Answer, String>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let status = response.status().as_u16();
    let headers = crate::net::header_pairs(response.headers());
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e:?}"))?
        .to_bytes()
        .to_vec();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// A body of `bytes`, in one piece.
pub fn body(bytes: impl Into<Bytes>) -> WasiBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A request for the direct API: `method path` (a path such as `/users?per_page=1`) with
/// `headers` and `bytes` as its body.
pub fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    bytes: impl Into<Bytes>,
) -> http::Request<WasiBody> {
    let mut builder = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(body(bytes))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// A running server: instances, the hyper front on 127.0.0.1, the counters. Dropping it
/// stops everything.
pub struct P3Server {
    addr: SocketAddr,
    inner: Arc<Inner>,
    dispatcher: Dispatcher,
    runtime: Option<tokio::runtime::Runtime>,
}

impl P3Server {
    /// Serves `service` on an ephemeral 127.0.0.1 port.
    pub fn start(service: Arc<P3Service>, options: P3Options) -> P3Server {
        let runtime = crate::net::runtime(2);
        let dispatch = options.dispatch;
        let inner = Arc::new(Inner {
            service,
            options,
            records: Mutex::default(),
            outgoing: Arc::default(),
        });
        let dispatcher = match dispatch {
            Dispatch::Pool => Dispatcher::Pool(Arc::new(Pool {
                inner: inner.clone(),
                slots: Mutex::default(),
            })),
            Dispatch::WasmtimeServe => {
                Dispatcher::WasmtimeServe(ProxyHandler::new(ServeState(inner.clone())))
            }
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("a local address");
        let front = dispatcher.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let dispatcher = front.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let dispatcher = dispatcher.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(serve(dispatcher, request).await)
                        }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        P3Server {
            addr,
            inner,
            dispatcher,
            runtime: Some(runtime),
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the server runs")
    }

    /// Runs `future` on the server's runtime (where [`P3Server::handle`] must be awaited).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime().block_on(future)
    }

    /// `request` answered by an instance, straight from the caller (no socket): the answer's
    /// head, its body streaming. Await it on the server's runtime ([`P3Server::block_on`]).
    pub fn handle(
        &self,
        request: http::Request<WasiBody>,
    ) -> impl Future<Output = wasmtime::Result<http::Response<WasiBody>>> + Send + 'static {
        let dispatcher = self.dispatcher.clone();
        async move { dispatcher.handle(request).await }
    }

    /// `request` answered, body read.
    pub fn send(&self, request: http::Request<WasiBody>) -> Result<Answer, String> {
        let answer = self.handle(request);
        self.block_on(async move {
            let response = answer.await.map_err(|e| format!("{e:?}"))?;
            read_answer(response).await
        })
    }

    /// Every request fired at once (each on a task of its own, all spawned before any answer
    /// is awaited), answers in the same order, bodies read.
    pub fn send_all(&self, requests: Vec<http::Request<WasiBody>>) -> Vec<Result<Answer, String>> {
        let calls: Vec<_> = requests.into_iter().map(|r| self.handle(r)).collect();
        self.block_on(async move {
            let tasks: Vec<_> = calls
                .into_iter()
                .map(|call| {
                    tokio::spawn(async move {
                        let response = call.await.map_err(|e| format!("{e:?}"))?;
                        read_answer(response).await
                    })
                })
                .collect();
            let mut answers = Vec::with_capacity(tasks.len());
            for task in tasks {
                answers.push(task.await.unwrap_or_else(|e| Err(format!("{e}"))));
            }
            answers
        })
    }

    /// `GET {server}{path}` over HTTP.
    pub fn get(&self, path: &str) -> Result<crate::sim::serve::Reply, String> {
        crate::sim::serve::get(&format!("{}{path}", self.url()))
    }

    /// Instances made so far.
    pub fn instances(&self) -> usize {
        self.inner.records().instances.len()
    }

    /// Requests each instance took, by instance number.
    pub fn requests_per_instance(&self) -> Vec<usize> {
        let records = self.inner.records();
        records.instances.iter().map(|r| r.requests).collect()
    }

    /// The most requests each instance held at once without an answer.
    pub fn peak_per_instance(&self) -> Vec<usize> {
        let records = self.inner.records();
        records.instances.iter().map(|r| r.peak).collect()
    }

    /// Instances that have exited (request quota used, failure).
    pub fn retired(&self) -> usize {
        let records = self.inner.records();
        records.instances.iter().filter(|r| r.retired).count()
    }

    /// Instances that failed, and why (instantiation, a trap).
    pub fn failures(&self) -> Vec<String> {
        self.inner.records().failures.clone()
    }

    /// Every outgoing request the instances made, in the order the hook saw them.
    pub fn outgoing(&self) -> Vec<Outgoing> {
        self.inner
            .outgoing
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default()
    }

    /// What instance `id` wrote to stderr so far.
    pub fn instance_log(&self, id: usize) -> String {
        let records = self.inner.records();
        records.instances.get(id).map_or_else(String::new, |r| {
            String::from_utf8_lossy(&r.stderr.contents()).into_owned()
        })
    }

    /// Every line the instances wrote to stderr so far, instance after instance: the
    /// operator's log.
    pub fn log(&self) -> String {
        (0..self.instances())
            .map(|id| self.instance_log(id))
            .collect()
    }
}

impl Drop for P3Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The hyper front: a request from the socket answered by an instance; a host failure is a
/// 500 whose body says what failed.
async fn serve(
    dispatcher: Dispatcher,
    request: hyper::Request<hyper::body::Incoming>,
) -> http::Response<WasiBody> {
    let request = request.map(|b| b.map_err(HttpError::from).boxed_unsync());
    match dispatcher.handle(request).await {
        Ok(response) => response,
        Err(e) => {
            let mut response = http::Response::new(body(format!("host: {e:?}\n")));
            *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}
