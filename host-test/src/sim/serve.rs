//! Serves a `wasi:http/proxy` component the way `wasmtime serve` (and Spin, wasmCloud) do: a
//! fresh store and instance for every incoming HTTP request on 127.0.0.1, with WASI clocks
//! from a virtual clock, wasi:keyvalue over a backend every instance shares, and optionally
//! the `token-store` import for a component composed without an adapter.

use crate::artifact;
use crate::clock::VirtualClock;
use crate::host::State;
use crate::keyvalue::{self, KvBackend, KvCtx};
use crate::store::HostStore;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// A compiled and linked proxy component, ready for an instance per request.
pub struct Service {
    pre: ProxyPre<State>,
}

impl Service {
    /// Compiles `wasm` and links it against WASI, wasi:http, both wasi:keyvalue versions,
    /// wasi:config and `token-store`: linking fails if the component imports anything else.
    /// Into the harness's [`crate::host::engine`].
    pub fn load(wasm: &Path) -> wasmtime::Result<Service> {
        Service::load_in(&crate::host::engine(), wasm)
    }

    /// [`Service::load`] into `engine`.
    pub fn load_in(engine: &Engine, wasm: &Path) -> wasmtime::Result<Service> {
        let component = Component::from_file(engine, wasm)?;
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        keyvalue::add_to_linker(&mut linker)?;
        crate::host::bindings::mangopay::auth::token_store::add_to_linker::<State, HasSelf<State>>(
            &mut linker,
            |state| state,
        )?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Service { pre })
    }

    /// `wasm` loaded once per process (compiling takes seconds in a debug build).
    pub fn shared(wasm: &Path) -> Arc<Service> {
        type Loaded = Vec<(std::path::PathBuf, Arc<Service>)>;
        static LOADED: OnceLock<std::sync::Mutex<Loaded>> = OnceLock::new();
        let loaded = LOADED.get_or_init(Default::default);
        let mut loaded = loaded.lock().expect("loaded services");
        if let Some((_, service)) = loaded.iter().find(|(path, _)| path == wasm) {
            return service.clone();
        }
        let service =
            Arc::new(Service::load(wasm).unwrap_or_else(|e| panic!("{}: {e:?}", wasm.display())));
        loaded.push((wasm.to_owned(), service.clone()));
        service
    }
}

/// What every request's instance gets.
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// Environment variables (the default client reads `MANGOPAY_*`).
    pub env: Vec<(String, String)>,
    /// Virtual WASI clocks; `None` gives the real ones.
    pub clock: Option<VirtualClock>,
    /// wasi:keyvalue's storage, shared by every instance.
    pub keyvalue: Option<Arc<dyn KvBackend>>,
    /// What wasi:config/store answers.
    pub config: Vec<(String, String)>,
    /// The `token-store` import, for a component composed without an adapter.
    pub token_store: Option<Arc<dyn HostStore>>,
    /// Each instance's outgoing-request hooks (e.g. `tls::TlsHooks`); the network when none.
    pub hooks: Option<crate::sim::p3::HooksFactory>,
}

struct Inner {
    service: Arc<Service>,
    options: ServeOptions,
    instances: AtomicUsize,
    /// What every instance wrote to stderr, as a platform's log collects it.
    stderr: MemoryOutputPipe,
}

impl Inner {
    fn state(&self) -> State {
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(&self.options.env).stderr(self.stderr.clone());
        if let Some(clock) = &self.options.clock {
            wasi.monotonic_clock(clock.monotonic_clock())
                .wall_clock(clock.wall_clock());
        }
        State::new(wasi.build())
            .with_keyvalue(KvCtx {
                backend: self.options.keyvalue.clone(),
                config: self.options.config.clone(),
            })
            .with_token_store(self.options.token_store.clone())
            .with_hooks(self.options.hooks.as_ref().map(|hooks| hooks()))
    }

    /// A fresh instance answers `request`; what goes wrong in the host becomes a 500.
    async fn handle(
        self: Arc<Self>,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, std::convert::Infallible> {
        Ok(match self.instance_answers(request).await {
            Ok(response) => response,
            Err(e) => {
                let body = Full::new(Bytes::from(format!("host: {e:?}\n")));
                let mut response =
                    hyper::Response::new(body.map_err(|never| match never {}).boxed_unsync());
                *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                response
            }
        })
    }

    async fn instance_answers(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> wasmtime::Result<hyper::Response<HyperOutgoingBody>> {
        let pre = self.service.pre.clone();
        let mut store = Store::new(pre.engine(), self.state());
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        self.instances.fetch_add(1, Ordering::SeqCst);
        // The instance runs on in its own task while the body streams out.
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(store, request, out)
                .await
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(wasmtime::format_err!("the component answered {code:?}")),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(wasmtime::format_err!("the component set no response")),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(wasmtime::format_err!("{e}")),
            },
        }
    }
}

/// The headers the users-service example answers with: where its token came from, and the
/// store's health.
pub const TOKEN_SOURCE: &str = "x-mangopay-token-source";
pub const STORE_HEALTH: &str = "x-mangopay-store";

/// How many answers named each token source (`TOKEN_SOURCE`).
pub fn sources(replies: &[Reply]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for reply in replies {
        let source = reply.header(TOKEN_SOURCE).unwrap_or("missing").to_owned();
        *counts.entry(source).or_default() += 1;
    }
    counts
}

/// `sources` as expected: `[("fresh-fetch", 1), ("shared-store", 19)]`.
pub fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(s, n)| (s.to_string(), *n)).collect()
}

/// `n` requests made by `n` threads released at once; their answers.
pub fn at_once<T: Send>(n: usize, request: impl Fn() -> T + Sync) -> Vec<T> {
    at_once_indexed(n, |_| request())
}

/// The same, each request told its thread's number (0 to `n - 1`).
pub fn at_once_indexed<T: Send>(n: usize, request: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = std::sync::Barrier::new(n);
    let (barrier, request) = (&barrier, &request);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..n)
            .map(|i| {
                scope.spawn(move || {
                    barrier.wait();
                    request(i)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a request thread"))
            .collect()
    })
}

/// The running server. Dropping it stops it.
pub struct Server {
    addr: SocketAddr,
    inner: Arc<Inner>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    /// Serves `service` on an ephemeral 127.0.0.1 port, an instance per request.
    pub fn start(service: Arc<Service>, options: ServeOptions) -> Server {
        let (runtime, listener, addr) = crate::net::listen(2);
        let inner = Arc::new(Inner {
            service,
            options,
            instances: AtomicUsize::new(0),
            stderr: MemoryOutputPipe::new(16 << 20),
        });
        let shared = inner.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inner = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| inner.clone().handle(req));
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server {
            addr,
            inner,
            runtime: Some(runtime),
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every line the instances wrote to stderr so far: the operator's log.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.inner.stderr.contents()).into_owned()
    }

    /// Instances made so far: one per request served.
    pub fn instances(&self) -> usize {
        self.inner.instances.load(Ordering::SeqCst)
    }

    /// `GET {server}{path}`.
    pub fn get(&self, path: &str) -> Result<Reply, String> {
        get(&format!("{}{path}", self.url()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// An answer as a client saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::header(&self.headers, name)
    }
}

/// The one-worker runtime the harness's HTTP clients run on.
pub fn client_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| crate::net::runtime(1))
}

/// A body-less GET, on a connection of its own, read to the end.
pub fn get(url: &str) -> Result<Reply, String> {
    let runtime = client_runtime();
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let answer = runtime.block_on(crate::net::get(uri))?;
    Ok(Reply {
        status: answer.status,
        headers: answer.headers,
        body: String::from_utf8_lossy(&answer.body).into_owned(),
    })
}

/// Which mangopay-auth artifact the users-service example is composed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `mangopay-auth-keyvalue-draft2.wasm`: token store over wasi:keyvalue 0.2.0-draft2
    /// (Spin).
    KeyvalueDraft2,
    /// `mangopay-auth-keyvalue-draft.wasm`: token store over wasi:keyvalue 0.2.0-draft
    /// (wasmCloud).
    KeyvalueDraft,
    /// The `with-token-store` component as it is: the host implements `token-store`.
    TokenStore,
}

impl Flavor {
    /// The deployable file in `target/dist/` (the host-store one is not shipped composed).
    pub fn artifact(self) -> &'static str {
        match self {
            Flavor::KeyvalueDraft2 => "mangopay-auth-keyvalue-draft2.wasm",
            Flavor::KeyvalueDraft => "mangopay-auth-keyvalue-draft.wasm",
            Flavor::TokenStore => "mangopay-auth-with-token-store.wasm",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Flavor::KeyvalueDraft2 => "keyvalue-draft2",
            Flavor::KeyvalueDraft => "keyvalue-draft",
            Flavor::TokenStore => "token-store",
        }
    }

    /// The auth side of the composition: adapter plugged into with-token-store, or
    /// with-token-store alone.
    fn auth_bytes(self) -> Result<Vec<u8>, String> {
        let with_store = artifact::store_component_wasm();
        let adapter = match self {
            Flavor::KeyvalueDraft2 => artifact::keyvalue_draft2_wasm(),
            Flavor::KeyvalueDraft => artifact::keyvalue_draft_wasm(),
            Flavor::TokenStore => {
                return std::fs::read(with_store).map_err(|e| format!("{e}"));
            }
        };
        xtask::dist::compose_keyvalue(adapter, with_store)
    }
}

/// `service` (a proxy component importing `mangopay:auth/auth`) with the auth artifact of
/// `flavor` plugged in (`wac plug`): written to `target/compose/<name>-<flavor>.wasm`.
pub fn compose(service: &Path, flavor: Flavor) -> Result<std::path::PathBuf, String> {
    let out = xtask::target_dir("compose")?;
    let stem = service
        .file_stem()
        .map(|s| s.to_string_lossy().replace('_', "-"))
        .unwrap_or_default();
    let auth = out.join(format!("mangopay-auth-{}.wasm", flavor.name()));
    std::fs::write(&auth, flavor.auth_bytes()?).map_err(|e| format!("{e}"))?;
    let composed = xtask::compose::plug(("mangopay:auth", &auth), ("mangopay:service", service))?;
    let path = out.join(format!("{stem}-{}.wasm", flavor.name()));
    std::fs::write(&path, composed).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// The users-service example composed with `flavor`, once per process.
pub fn users_service(flavor: Flavor) -> &'static Path {
    static PATHS: [OnceLock<std::path::PathBuf>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = &PATHS[flavor as usize];
    slot.get_or_init(|| {
        compose(artifact::users_service_wasm(), flavor)
            .unwrap_or_else(|e| panic!("composing users-service with {flavor:?}: {e}"))
    })
}
