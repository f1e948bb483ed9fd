//! Fault injection without sockets: wasi:http hooks that answer the component's outgoing
//! requests from a script, so any answer or transport error can be produced on demand.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// One scripted outcome of an outgoing request.
pub enum Injection {
    /// An answer with this status, headers and body.
    Respond {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// A transport error, as wasmtime's client would report it.
    Fail(fn() -> Error),
}

impl Injection {
    pub fn json(status: u16, body: &str) -> Injection {
        Injection::Respond {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// What the hooks saw: requests and the options they came with.
#[derive(Default)]
struct Log {
    script: VecDeque<Injection>,
    requests: usize,
    options: Vec<Option<RequestOptions>>,
}

/// Scripted hooks; clone it before handing one copy to the instance to read counts later.
#[derive(Clone, Default)]
pub struct Injector {
    log: Arc<Mutex<Log>>,
}

impl Injector {
    /// Queues outcomes; once the queue is empty every request fails with a closed connection.
    pub fn push(&self, injection: Injection) {
        self.log.lock().expect("log").script.push_back(injection);
    }

    pub fn requests(&self) -> usize {
        self.log.lock().expect("log").requests
    }

    /// The wasi:http request options of every request, in order.
    pub fn options(&self) -> Vec<Option<RequestOptions>> {
        self.log.lock().expect("log").options.clone()
    }

    pub fn hooks(&self) -> Box<dyn WasiHttpHooks> {
        Box::new(self.clone())
    }
}

/// What `WasiHttpHooks::send_request` hands back beside the response: the request body's
/// delivery.
pub type Sent = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl WasiHttpHooks for Injector {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Sent,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, Sent), Error>> + Send> {
        let next = {
            let mut log = self.log.lock().expect("log");
            log.requests += 1;
            log.options.push(options);
            log.script.pop_front()
        };
        Box::new(async move {
            // Read the request body as a server would, so the component's write completes.
            let _ = request.into_body().collect().await;
            match next {
                Some(Injection::Respond {
                    status,
                    headers,
                    body,
                }) => {
                    let mut response = http::Response::builder().status(status);
                    for (name, value) in headers {
                        response = response.header(name, value);
                    }
                    let body = Full::new(Bytes::from(body))
                        .map_err(|never| match never {})
                        .boxed_unsync();
                    let response = response.body(body).expect("a valid scripted response");
                    Ok((response, Box::new(async { Ok(()) }) as Sent))
                }
                Some(Injection::Fail(error)) => Err(error()),
                None => Err(Error::ConnectionTerminated),
            }
        })
    }
}
