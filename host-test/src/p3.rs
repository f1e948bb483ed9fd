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
//! Requests come over HTTP on 127.0.0.1 (hyper, as `crate::serve`) or straight from the test
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
            headers: request
                .headers()
                .iter()
                .map(|(n, v)| {
                    let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (n.as_str().to_owned(), value)
                })
                .collect(),
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

// ---------------------------------------------------------------------------------------
// Dispatch::Pool

type Reply = oneshot::Sender<wasmtime::Result<http::Response<WasiBody>>>;

struct Job {
    request: http::Request<WasiBody>,
    reply: Reply,
}

/// A live instance the pool may give requests to.
struct Slot {
    id: usize,
    jobs: mpsc::UnboundedSender<Job>,
    /// Requests given that have no answer yet.
    open: usize,
    /// Requests given in all.
    total: usize,
}

struct Pool {
    inner: Arc<Inner>,
    slots: Mutex<Vec<Slot>>,
}

impl Pool {
    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Gives `job` to the oldest live instance with room, else to a new one.
    fn dispatch(self: &Arc<Self>, mut job: Job) {
        let (max_concurrent, max_requests) = (
            self.inner.options.max_concurrent.max(1),
            self.inner.options.max_requests.max(1),
        );
        let mut slots = self.slots();
        while let Some(at) = slots
            .iter()
            .position(|s| s.open < max_concurrent && s.total < max_requests)
        {
            let Some(slot) = slots.get_mut(at) else {
                break;
            };
            match slot.jobs.send(job) {
                Ok(()) => {
                    slot.open += 1;
                    slot.total += 1;
                    if slot.total >= max_requests {
                        // Its last request: the instance finishes what it has, then exits.
                        slots.remove(at);
                    }
                    return;
                }
                Err(mpsc::error::SendError(back)) => {
                    // The instance is gone (a trap): forget it, try the next.
                    job = back;
                    slots.remove(at);
                }
            }
        }
        let (jobs, queue) = mpsc::unbounded_channel();
        let (id, store) = self.inner.new_store();
        if let Err(mpsc::error::SendError(job)) = jobs.send(job) {
            let _ = job.reply.send(Err(wasmtime::format_err!("no instance")));
            return;
        }
        if max_requests > 1 {
            slots.push(Slot {
                id,
                jobs,
                open: 1,
                total: 1,
            });
        }
        drop(slots);
        tokio::spawn(self.clone().run(id, store, queue));
    }

    fn answered(&self, id: usize) {
        if let Some(slot) = self.slots().iter_mut().find(|s| s.id == id) {
            slot.open = slot.open.saturating_sub(1);
        }
        self.inner.request_answered(id);
    }

    fn forget(&self, id: usize) {
        self.slots().retain(|s| s.id != id);
    }

    /// One instance's life: takes its requests until the pool forgets it, then finishes
    /// every task it has (bodies still streaming, work after answering) and exits.
    async fn run(
        self: Arc<Self>,
        id: usize,
        mut store: Store<P3State>,
        mut queue: mpsc::UnboundedReceiver<Job>,
    ) {
        let service = match self.inner.service.pre.instantiate_async(&mut store).await {
            Ok(service) => Arc::new(service),
            Err(e) => {
                self.forget(id);
                let why = format!("instantiating: {e:?}");
                while let Ok(job) = queue.try_recv() {
                    self.inner.request_started(id);
                    self.answered(id);
                    let _ = job.reply.send(Err(wasmtime::format_err!("{why}")));
                }
                self.inner.retired(id, Err(wasmtime::format_err!("{why}")));
                return;
            }
        };
        let pool = self.clone();
        let result = store
            .run_concurrent(async move |accessor| {
                let mut calls = Vec::new();
                while let Some(job) = queue.recv().await {
                    pool.inner.request_started(id);
                    calls.push(accessor.spawn(Call {
                        pool: pool.clone(),
                        id,
                        service: service.clone(),
                        job,
                    })?);
                }
                // No more requests will come: wait for every call to be answered (a call that
                // has not entered the guest yet is no guest task), then for every guest task
                // to exit (bodies still streaming, work after answering).
                for call in calls {
                    call.await;
                }
                std::future::poll_fn(|cx| accessor.poll_no_interesting_tasks(cx)).await;
                wasmtime::Result::<()>::Ok(())
            })
            .await
            .and_then(|r| r);
        self.forget(id);
        self.inner.retired(id, result);
    }
}

/// One request in an instance's event loop.
struct Call {
    pool: Arc<Pool>,
    id: usize,
    service: Arc<Service>,
    job: Job,
}

impl AccessorTask<P3State> for Call {
    async fn run(self, accessor: &Accessor<P3State>) -> wasmtime::Result<()> {
        let Call {
            pool,
            id,
            service,
            job: Job { request, reply },
        } = self;
        // The hooks only filter the forbidden headers out of the incoming request: the
        // default filter, as the instance's own hooks have it unless a test's replace them.
        let (request, io) = wasmtime_wasi_http::p3::Request::from_http(
            wasmtime_wasi_http::default_hooks(),
            request,
        );
        let answer = match service.handle(accessor, request).await {
            Ok(Ok(response)) => accessor.with(|mut store| response.into_http(&mut store, io)),
            Ok(Err(code)) => Err(wasmtime::format_err!("the component answered {code:?}")),
            Err(trap) => {
                pool.answered(id);
                let _ = reply.send(Err(wasmtime::format_err!("the instance failed: {trap:?}")));
                return Err(trap);
            }
        };
        pool.answered(id);
        let _ = reply.send(answer);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Dispatch::WasmtimeServe

#[derive(Clone)]
struct ServeState(Arc<Inner>);

/// Instances never expire on time: no test waits on a clock.
struct NeverExpires;

impl handler::WorkerExpiration for NeverExpires {
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>, _: WorkerStatus, _: Instant) -> Poll<()> {
        Poll::Pending
    }
}

struct ServeWorker {
    inner: Arc<Inner>,
    id: usize,
}

impl handler::WorkerState for ServeWorker {
    type StoreData = P3State;
    type RequestData = ();

    /// As `wasmtime serve`: never again after `max_requests`, not now at `max_concurrent`.
    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.inner.options.max_requests {
            ShouldAccept::Never
        } else if concurrent >= self.inner.options.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _: StoreContextMut<'_, P3State>,
        _: (),
        _: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        self.inner.request_started(self.id);
        // The handler drops this future when the request is answered.
        let answered = Answered {
            inner: self.inner.clone(),
            id: self.id,
        };
        Box::pin(async move {
            let _answered = answered;
            std::future::pending::<()>().await;
        })
    }

    fn drop(&self, _: Store<P3State>, result: wasmtime::Result<()>) {
        self.inner.retired(self.id, result);
    }
}

/// Counts its request as answered when dropped.
struct Answered {
    inner: Arc<Inner>,
    id: usize,
}

impl Drop for Answered {
    fn drop(&mut self) {
        self.inner.request_answered(self.id);
    }
}

impl handler::HandlerState for ServeState {
    type StoreData = P3State;
    type WorkerExpiration = NeverExpires;
    type WorkerState = ServeWorker;

    fn instantiate(
        &self,
    ) -> impl Future<
        Output = wasmtime::Result<handler::Instance<P3State, NeverExpires, ServeWorker>>,
    > + Send {
        let inner = self.0.clone();
        async move {
            let (id, instance) = inner.instantiate().await;
            let (store, service) = match instance {
                Ok(instance) => instance,
                Err(e) => {
                    inner.retired(id, Err(wasmtime::format_err!("instantiating: {e:?}")));
                    return Err(e);
                }
            };
            Ok(handler::Instance {
                store,
                proxy: handler::Proxy::P3(service),
                view: <P3State as WasiHttpView>::http,
                expiration: NeverExpires,
                state: ServeWorker { inner, id },
            })
        }
    }
}

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
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_owned(), value)
        })
        .collect();
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
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
    pub fn get(&self, path: &str) -> Result<crate::serve::Reply, String> {
        crate::serve::get(&format!("{}{path}", self.url()))
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("a local address");
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
