//! Serves a WASI 0.3 `wasi:http/handler@0.3.0` component the way `wasmtime serve` 48 does:
//! an instance takes up to `max_concurrent` requests at once (16 by default) and `max_requests`
//! in its life (128), then a fresh one takes over. With the WASI clocks from a virtual clock,
//! environment variables, wasi:keyvalue over a backend every instance shares, the `token-store`
//! import, each instance's stderr kept apart (the operator log), and every outgoing request
//! going through the `WasiHttpHooks::send_request` hook: counted, recorded, and sent to the
//! network (127.0.0.1) or to hooks of the test's (`crate::inject`).
//!
//! Two ways to hand requests to instances ([`Dispatch`]):
//!
//! - [`Dispatch::Pool`] (the default): a request goes to the oldest live instance that has
//!   room (fewer than `max_concurrent` requests without an answer yet, fewer than
//!   `max_requests` taken), else to a new instance. Deterministic: 100 requests fired at
//!   once with `max_concurrent >= 100` all go to one instance.
//! - [`Dispatch::WasmtimeServe`]: wasmtime-wasi-http's own `handler::ProxyHandler`, what
//!   `wasmtime serve` runs. It starts a new instance whenever no instance is *available*,
//!   and an instance makes itself unavailable after taking each request until its event
//!   loop is idle (so that CPU-bound requests spread over instances): a burst fans out over
//!   as many instances as timing gives, a sequence of requests stays on one.
//!
//! Requests come over HTTP on 127.0.0.1 (hyper, as `crate::sim::serve`) or straight from the test
//! ([`P3Server::send`], [`P3Server::send_all`], [`P3Server::handle`]).

use crate::artifact;
use crate::clock::VirtualClock;
use crate::host::bindings::mangopay::auth::token_store;
use crate::keyvalue::{self, KvBackend, KvCtx, KvState, KvView};
use crate::mock::RecordedRequest;
use crate::store::HostStore;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, oneshot};
use wasmtime::component::{
    Accessor, AccessorTask, Component, GuestTaskId, HasSelf, Linker, ResourceTable,
};
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::{self, ProxyHandler, ShouldAccept, WorkerStatus};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p3::bindings::{Service, ServicePre};
use wasmtime_wasi_http::{
    Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody, WasiHttpCtx,
    WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

mod pool;
mod proxy;
mod server;
mod upstream;

use pool::{Job, Pool};
use proxy::ServeState;
pub use server::*;
pub use upstream::*;

// ---------------------------------------------------------------------------------------
// The components

/// The middleware composed in front of a service's `wasi:http/client@0.3.0` import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Middleware {
    /// `mangopay-auth-middleware`.
    Auth,
    /// The benchmark floor: `authorization: Bearer floor` on every request.
    Floor,
}

impl Middleware {
    pub fn wasm(self) -> &'static Path {
        match self {
            Middleware::Auth => artifact::middleware_wasm(),
            Middleware::Floor => artifact::floor_middleware_wasm(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Middleware::Auth => "auth",
            Middleware::Floor => "floor",
        }
    }
}

/// What provides the middleware's `mangopay:auth/token-store@0.3.0` import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Adapter {
    /// Nothing: the import stays open and the host implements it
    /// ([`P3Options::token_store`]).
    None,
    /// `mangopay-auth-keyvalue-draft2` (Spin): the token store over
    /// `wasi:keyvalue@0.2.0-draft2`, settings from Spin variables (`wasi:config`).
    KeyvalueDraft2,
    /// `mangopay-auth-keyvalue-draft` (wasmCloud): over `wasi:keyvalue@0.2.0-draft`.
    KeyvalueDraft,
}

impl Adapter {
    pub fn wasm(self) -> Option<&'static Path> {
        match self {
            Adapter::None => None,
            Adapter::KeyvalueDraft2 => Some(artifact::keyvalue_draft2_wasm()),
            Adapter::KeyvalueDraft => Some(artifact::keyvalue_draft_wasm()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Adapter::None => "token-store",
            Adapter::KeyvalueDraft2 => "keyvalue-draft2",
            Adapter::KeyvalueDraft => "keyvalue-draft",
        }
    }
}

/// `service` with `middleware` plugged into its `wasi:http/client@0.3.0` import, `adapter`
/// plugged into the middleware first ([`xtask::compose::middleware`]): written to
/// `target/compose/p3-<service>-<middleware>-<adapter>.wasm`.
pub fn compose(
    service: &Path,
    middleware: Middleware,
    adapter: Adapter,
) -> Result<PathBuf, String> {
    let out = xtask::target_dir("compose")?;
    let stem = service
        .file_stem()
        .map(|s| s.to_string_lossy().replace('_', "-"))
        .unwrap_or_default();
    let bytes = xtask::compose::middleware(service, middleware.wasm(), adapter.wasm())?;
    let path = out.join(format!(
        "p3-{stem}-{}-{}.wasm",
        middleware.name(),
        adapter.name()
    ));
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// [`compose`], once per process for each combination.
pub fn composed(service: &Path, middleware: Middleware, adapter: Adapter) -> PathBuf {
    type Key = (PathBuf, Middleware, Adapter);
    static PATHS: OnceLock<Mutex<HashMap<Key, PathBuf>>> = OnceLock::new();
    let paths = PATHS.get_or_init(Default::default);
    let key = (service.to_owned(), middleware, adapter);
    let mut paths = paths.lock().expect("composed paths");
    paths
        .entry(key)
        .or_insert_with(|| {
            compose(service, middleware, adapter).unwrap_or_else(|e| {
                panic!(
                    "composing {} with {middleware:?} and {adapter:?}: {e}",
                    service.display()
                )
            })
        })
        .clone()
}

/// The users-p3 example with `middleware` (and `adapter`), once per process.
pub fn users_p3(middleware: Middleware, adapter: Adapter) -> PathBuf {
    composed(artifact::users_p3_wasm(), middleware, adapter)
}

// ---------------------------------------------------------------------------------------
// The host state of one instance

/// A factory of outbound hooks, one call per instance (`crate::inject::Injector::hooks`).
pub type HooksFactory = Arc<dyn Fn() -> Box<dyn WasiHttpHooks> + Send + Sync>;

/// One outgoing request as the `send_request` hook saw it (before it went anywhere).
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The instance that sent it.
    pub instance: usize,
    pub method: String,
    /// The absolute URI.
    pub uri: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Outgoing {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::header(&self.headers, name)
    }
}

/// The hooks of every instance: record the request, then the test's hooks or the network.
struct Hooks {
    instance: usize,
    seen: Arc<Mutex<Vec<Outgoing>>>,
    inner: Option<Box<dyn WasiHttpHooks>>,
}

type SendFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for Hooks {
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        match &mut self.inner {
            Some(inner) => inner.forbidden_header_filter(),
            None => Arc::new(|name| wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.contains(name)),
        }
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: SendFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, SendFuture), HttpError>> + Send>
    {
        let outgoing = Outgoing {
            instance: self.instance,
            method: request.method().to_string(),
            uri: request.uri().to_string(),
            headers: crate::net::header_pairs(request.headers()),
        };
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(outgoing);
        }
        match &mut self.inner {
            Some(inner) => inner.send_request(request, options, fut),
            None => Box::new(async move {
                let (response, io) =
                    wasmtime_wasi_http::default_send_request(request, options).await?;
                Ok((
                    response.map(BodyExt::boxed_unsync),
                    Box::new(io) as SendFuture,
                ))
            }),
        }
    }
}

/// The per-instance host state: WASI (0.2 and 0.3 share it), wasi:http, wasi:keyvalue and
/// wasi:config, `token-store`.
pub struct P3State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: Hooks,
    store: Option<Arc<dyn HostStore>>,
    kv: KvCtx,
}

impl WasiView for P3State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for P3State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

crate::store::token_store_host!(P3State);

impl crate::store::WithHostStore for P3State {
    fn host_store(&self) -> Option<&Arc<dyn HostStore>> {
        self.store.as_ref()
    }
}

impl KvState for P3State {
    fn kv(&mut self) -> KvView<'_> {
        KvView {
            ctx: &self.kv,
            table: &mut self.table,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The compiled component

/// A compiled and linked `wasi:http/handler@0.3.0` component.
pub struct P3Service {
    pre: ServicePre<P3State>,
}

impl P3Service {
    /// Compiles `wasm` into the harness's engine ([`crate::host::engine`]) and links it
    /// against WASI 0.2 (what Rust's std imports) and 0.3, `wasi:http@0.3.0`, both
    /// wasi:keyvalue versions, wasi:config and `token-store`: linking fails if the component
    /// imports anything else.
    pub fn load(wasm: &Path) -> wasmtime::Result<P3Service> {
        P3Service::load_in(&crate::host::engine(), wasm)
    }

    /// [`P3Service::load`] into `engine` (component-model async must be on, as it is by
    /// default with wasmtime's `component-model-async` feature).
    pub fn load_in(engine: &Engine, wasm: &Path) -> wasmtime::Result<P3Service> {
        let component = Component::from_file(engine, wasm)?;
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi::p3::add_to_linker(&mut linker)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
        keyvalue::add_to_linker(&mut linker)?;
        token_store::add_to_linker::<P3State, HasSelf<P3State>>(&mut linker, |state| state)?;
        let pre = ServicePre::new(linker.instantiate_pre(&component)?)?;
        Ok(P3Service { pre })
    }

    /// `wasm` loaded once per process.
    pub fn shared(wasm: &Path) -> Arc<P3Service> {
        type Loaded = Vec<(PathBuf, Arc<P3Service>)>;
        static LOADED: OnceLock<Mutex<Loaded>> = OnceLock::new();
        let loaded = LOADED.get_or_init(Default::default);
        let mut loaded = loaded.lock().expect("loaded services");
        if let Some((_, service)) = loaded.iter().find(|(path, _)| path == wasm) {
            return service.clone();
        }
        let service =
            Arc::new(P3Service::load(wasm).unwrap_or_else(|e| panic!("{}: {e:?}", wasm.display())));
        loaded.push((wasm.to_owned(), service.clone()));
        service
    }
}

/// The names a component imports and exports (`wasi:http/client@0.3.0`, ...), as the
/// harness's engine reads them.
pub fn world_of(wasm: &Path) -> wasmtime::Result<(Vec<String>, Vec<String>)> {
    let engine = crate::host::engine();
    let component = Component::from_file(&engine, wasm)?;
    let ty = component.component_type();
    let imports = ty.imports(&engine).map(|(name, _)| name.to_owned());
    let exports = ty.exports(&engine).map(|(name, _)| name.to_owned());
    Ok((imports.collect(), exports.collect()))
}

// ---------------------------------------------------------------------------------------
// Options and counters

/// How requests are handed to instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dispatch {
    /// The oldest live instance with room, else a new one (deterministic).
    #[default]
    Pool,
    /// wasmtime-wasi-http's `handler::ProxyHandler`, as `wasmtime serve` 48 runs it.
    WasmtimeServe,
}

/// `wasmtime serve`'s `--max-instance-concurrent-reuse-count` default.
pub const DEFAULT_MAX_CONCURRENT: usize = 16;
/// `wasmtime serve`'s `--max-instance-reuse-count` default.
pub const DEFAULT_MAX_REQUESTS: usize = 128;

/// What every instance gets, and how instances are reused.
#[derive(Clone)]
pub struct P3Options {
    /// Environment variables (the service and the middleware read `MANGOPAY_*`).
    pub env: Vec<(String, String)>,
    /// Virtual WASI clocks; `None` gives the real ones.
    pub clock: Option<VirtualClock>,
    /// wasi:keyvalue's storage, shared by every instance.
    pub keyvalue: Option<Arc<dyn KvBackend>>,
    /// What wasi:config/store answers.
    pub config: Vec<(String, String)>,
    /// The `token-store` import, for a middleware composed without an adapter.
    pub token_store: Option<Arc<dyn HostStore>>,
    /// Outbound hooks of the test's, made once per instance; `None`: the network.
    pub hooks: Option<HooksFactory>,
    /// Requests an instance takes at once (that have no answer yet).
    pub max_concurrent: usize,
    /// Requests an instance takes in its life.
    pub max_requests: usize,
    pub dispatch: Dispatch,
}

impl Default for P3Options {
    fn default() -> P3Options {
        P3Options {
            env: Vec::new(),
            clock: None,
            keyvalue: None,
            config: Vec::new(),
            token_store: None,
            hooks: None,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            max_requests: DEFAULT_MAX_REQUESTS,
            dispatch: Dispatch::Pool,
        }
    }
}

/// One instance's record.
struct InstanceRecord {
    requests: usize,
    /// Requests taken that have no answer yet, and the most there ever were.
    open: usize,
    peak: usize,
    stderr: MemoryOutputPipe,
    retired: bool,
}

#[derive(Default)]
struct Records {
    instances: Vec<InstanceRecord>,
    /// Instances that failed (instantiation, trap) and why.
    failures: Vec<String>,
}

/// What the server has seen, shared by everything that serves.
struct Inner {
    service: Arc<P3Service>,
    options: P3Options,
    records: Mutex<Records>,
    outgoing: Arc<Mutex<Vec<Outgoing>>>,
}

impl Inner {
    fn records(&self) -> MutexGuard<'_, Records> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with_instance(&self, id: usize, f: impl FnOnce(&mut InstanceRecord)) {
        if let Some(record) = self.records().instances.get_mut(id) {
            f(record);
        }
    }

    fn request_started(&self, id: usize) {
        self.with_instance(id, |r| {
            r.requests += 1;
            r.open += 1;
            r.peak = r.peak.max(r.open);
        });
    }

    fn request_answered(&self, id: usize) {
        self.with_instance(id, |r| r.open = r.open.saturating_sub(1));
    }

    fn retired(&self, id: usize, result: wasmtime::Result<()>) {
        if let Err(e) = result {
            self.records()
                .failures
                .push(format!("instance {id}: {e:?}"));
        }
        self.with_instance(id, |r| r.retired = true);
    }

    /// A new instance's number and its store.
    fn new_store(&self) -> (usize, Store<P3State>) {
        let stderr = MemoryOutputPipe::new(4 << 20);
        let id = {
            let mut records = self.records();
            records.instances.push(InstanceRecord {
                requests: 0,
                open: 0,
                peak: 0,
                stderr: stderr.clone(),
                retired: false,
            });
            records.instances.len() - 1
        };
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(&self.options.env).stderr(stderr);
        if let Some(clock) = &self.options.clock {
            wasi.monotonic_clock(clock.monotonic_clock())
                .wall_clock(clock.wall_clock());
        }
        let state = P3State {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: Hooks {
                instance: id,
                seen: self.outgoing.clone(),
                inner: self.options.hooks.as_ref().map(|make| make()),
            },
            store: self.options.token_store.clone(),
            kv: KvCtx {
                backend: self.options.keyvalue.clone(),
                config: self.options.config.clone(),
            },
        };
        (id, Store::new(self.service.pre.engine(), state))
    }

    async fn instantiate(&self) -> (usize, wasmtime::Result<(Store<P3State>, Service)>) {
        let (id, mut store) = self.new_store();
        let service = self.service.pre.instantiate_async(&mut store).await;
        (id, service.map(|service| (store, service)))
    }
}
