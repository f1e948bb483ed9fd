//! Loads the component as an embedder does: one `Engine` and pre-instantiated component per
//! process, a fresh `Store` (with its own WASI context and clocks) per instance.

use crate::artifact;
use crate::clock::VirtualClock;
use crate::keyvalue::{KvCtx, KvState, KvView};
use crate::store::HostStore;
use std::sync::{Arc, OnceLock};
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        // Both components load through this world: the standalone one simply does not use
        // the token-store import.
        world: "with-token-store",
        additional_derives: [PartialEq],
    });
}

pub use bindings::exports::mangopay::auth::auth::{
    ApiError, ApiRequest, ApiResponse, AuthStatus, Config, CoolDown, Environment, Error,
    HttpRequest, HttpResponse, OauthError, ResponseVerdict, RetryPolicy, StoreHealth, Timeouts,
    Token, TokenResponseProblem, TokenSource, TransportError, TransportKind, UnexpectedResponse,
};

/// The per-store host state: WASI, wasi:http and their resource table.
pub struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    /// Replaces wasmtime's outbound HTTP client (fault injection); `None` uses the network.
    hooks: Option<Box<dyn WasiHttpHooks>>,
    /// The token store behind the `token-store` import.
    store: Option<Arc<dyn HostStore>>,
    /// wasi:keyvalue (both versions) and wasi:config, for the keyvalue adapters.
    kv: KvCtx,
}

impl State {
    /// State with `wasi`, wasi:http over the network and no token store: what a component
    /// that imports only WASI 0.2 needs (the composed example, for one).
    pub fn new(wasi: WasiCtx) -> State {
        State {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: None,
            store: None,
            kv: KvCtx::default(),
        }
    }

    /// The same state with `store` behind the `token-store` import.
    pub fn with_token_store(self, store: Option<Arc<dyn HostStore>>) -> State {
        State { store, ..self }
    }

    /// The same state with `kv` behind wasi:keyvalue and wasi:config.
    pub fn with_keyvalue(self, kv: KvCtx) -> State {
        State { kv, ..self }
    }

    /// The same state with its outgoing requests through `hooks`.
    pub fn with_hooks(self, hooks: Option<Box<dyn WasiHttpHooks>>) -> State {
        State { hooks, ..self }
    }
}

crate::store::token_store_host!(State);

impl crate::store::WithHostStore for State {
    fn host_store(&self) -> Option<&Arc<dyn HostStore>> {
        self.store.as_ref()
    }
}

impl KvState for State {
    fn kv(&mut self) -> KvView<'_> {
        KvView {
            ctx: &self.kv,
            table: &mut self.table,
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: match &mut self.hooks {
                Some(hooks) => hooks.as_mut(),
                None => Default::default(),
            },
        }
    }
}

/// How an engine allocates instances: the settings the benchmark compares, and the one this
/// harness (and docs/deploying.md) recommends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineSettings {
    /// The pooling instance allocator (memory, table and stack slots reserved once and reused
    /// between instances) instead of wasmtime's default on-demand allocator (an `mmap` and
    /// `munmap` of each instance's memory).
    pub pooling: bool,
    /// Linear memory initialised copy-on-write from a memory image (wasmtime's default).
    pub memory_init_cow: bool,
    /// Pooling: bytes at the start of each linear memory, and of each table, reset with
    /// `memset` and kept resident when a slot is freed, instead of `madvise`d away (so its
    /// pages do not fault again in the next instance).
    pub keep_resident: usize,
    /// Pooling: find the pages to reset with Linux's `PAGEMAP_SCAN` (6.7+) when available.
    pub pagemap_scan: bool,
    /// Pooling: the slots of each kind (core and component instances, memories, tables,
    /// stacks); `None`: wasmtime's default (1,000).
    pub slots: Option<u32>,
}

impl EngineSettings {
    /// `Engine::default()`: on-demand allocation, copy-on-write memory images.
    pub const DEFAULT: EngineSettings = EngineSettings {
        pooling: false,
        memory_init_cow: true,
        keep_resident: 0,
        pagemap_scan: false,
        slots: None,
    };

    /// What the harness uses and docs/deploying.md recommends for hosts that make an instance per
    /// request or per task: the pooling allocator, copy-on-write images, the first 1 MiB of
    /// each memory and 64 KiB of each table kept resident (reset in place instead of
    /// `madvise`d away), the pages to reset found through `PAGEMAP_SCAN` where the kernel has
    /// it (Linux 6.7+; without it the 1 MiB is `memset`: measured, 4 MiB cost more than it
    /// saved then).
    pub const RECOMMENDED: EngineSettings = EngineSettings {
        pooling: true,
        memory_init_cow: true,
        keep_resident: 1 << 20,
        pagemap_scan: true,
        slots: None,
    };

    /// The wasmtime configuration of these settings.
    pub fn config(&self) -> wasmtime::Config {
        let mut config = wasmtime::Config::new();
        config.memory_init_cow(self.memory_init_cow);
        if self.pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::new();
            pool.linear_memory_keep_resident(self.keep_resident)
                .table_keep_resident(self.keep_resident.min(64 << 10))
                .pagemap_scan(if self.pagemap_scan {
                    wasmtime::Enabled::Auto
                } else {
                    wasmtime::Enabled::No
                });
            if let Some(slots) = self.slots {
                pool.total_core_instances(slots)
                    .total_component_instances(slots)
                    .total_memories(slots)
                    .total_tables(slots)
                    .total_stacks(slots);
            }
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        config
    }

    pub fn engine(&self) -> wasmtime::Result<Engine> {
        Engine::new(&self.config())
    }
}

/// The harness's engine ([`EngineSettings::RECOMMENDED`]), one per process: every host,
/// service and composed example loads into it, so they share one instance pool.
pub fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            EngineSettings::RECOMMENDED
                .engine()
                .expect("the recommended engine settings are valid here")
        })
        .clone()
}

/// A compiled, linked component, ready to be instantiated many times.
pub struct Host {
    engine: Engine,
    pre: bindings::WithTokenStorePre<State>,
}

impl Host {
    /// Compiles `wasm` in the harness's [`engine`] and links it against WASI 0.2 and wasi:http
    /// (outgoing only).
    pub fn load(wasm: &std::path::Path) -> wasmtime::Result<Host> {
        Host::load_in(&engine(), wasm)
    }

    /// [`Host::load`] into `engine`.
    pub fn load_in(engine: &Engine, wasm: &std::path::Path) -> wasmtime::Result<Host> {
        let engine = engine.clone();
        let component = Component::from_file(&engine, wasm)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
        bindings::mangopay::auth::token_store::add_to_linker::<
            State,
            wasmtime::component::HasSelf<State>,
        >(&mut linker, |state| state)?;
        let pre = bindings::WithTokenStorePre::new(linker.instantiate_pre(&component)?)?;
        Ok(Host { engine, pre })
    }

    /// The mangopay-auth component (world `standalone`), loaded once per process.
    pub fn shared() -> &'static Host {
        static HOST: OnceLock<Host> = OnceLock::new();
        HOST.get_or_init(|| {
            Host::load(artifact::component_wasm()).expect("the component loads and links")
        })
    }

    /// The component of world `with-token-store`, loaded once per process.
    pub fn with_store() -> &'static Host {
        static HOST: OnceLock<Host> = OnceLock::new();
        HOST.get_or_init(|| {
            Host::load(artifact::store_component_wasm()).expect("the component loads and links")
        })
    }

    /// A fresh instance with its own store, environment and clocks.
    pub fn instantiate(&self, options: InstanceOptions) -> wasmtime::Result<Instance> {
        let stdout = MemoryOutputPipe::new(1 << 20);
        let stderr = MemoryOutputPipe::new(1 << 20);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .envs(&options.env);
        if let Some(clock) = &options.clock {
            wasi.monotonic_clock(clock.monotonic_clock())
                .wall_clock(clock.wall_clock());
        }
        let state = State {
            hooks: options.hooks,
            store: options.store,
            ..State::new(wasi.build())
        };
        let mut store = Store::new(&self.engine, state);
        let api = self.pre.instantiate(&mut store)?;
        Ok(Instance {
            store,
            api,
            stdout,
            stderr,
        })
    }
}

/// How an instance is set up.
#[derive(Default)]
pub struct InstanceOptions {
    /// Environment variables the component sees (the default client reads `MANGOPAY_*`).
    pub env: Vec<(String, String)>,
    /// Virtual clocks; `None` gives the host's real clocks.
    pub clock: Option<VirtualClock>,
    /// Outbound HTTP hooks in place of the network (see `inject`).
    pub hooks: Option<Box<dyn WasiHttpHooks>>,
    /// The token store for the `with-token-store` world.
    pub store: Option<Arc<dyn HostStore>>,
}

/// One instance of the component and typed calls into its `auth` interface.
/// A `wasmtime::Error` is a trap or host failure; the inner `Result` is the component's answer.
pub struct Instance {
    store: Store<State>,
    api: bindings::WithTokenStore,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl Instance {
    pub fn create_client(
        &mut self,
        config: &Config,
    ) -> wasmtime::Result<Result<ResourceAny, Error>> {
        self.api
            .mangopay_auth_auth()
            .client()
            .call_create(&mut self.store, config)
    }

    /// Drops `client` (the guest's destructor runs).
    pub fn drop_client(&mut self, client: ResourceAny) -> wasmtime::Result<()> {
        client.resource_drop(&mut self.store)
    }

    pub fn get_token(&mut self, client: ResourceAny) -> wasmtime::Result<Result<Token, Error>> {
        self.api
            .mangopay_auth_auth()
            .client()
            .call_get_token(&mut self.store, client)
    }

    pub fn authorize_request(
        &mut self,
        client: ResourceAny,
        request: &HttpRequest,
    ) -> wasmtime::Result<Result<HttpRequest, Error>> {
        self.api
            .mangopay_auth_auth()
            .client()
            .call_authorize_request(&mut self.store, client, request)
    }

    pub fn check_response(
        &mut self,
        client: ResourceAny,
        request: &HttpRequest,
        response: &HttpResponse,
    ) -> wasmtime::Result<ResponseVerdict> {
        self.api.mangopay_auth_auth().client().call_check_response(
            &mut self.store,
            client,
            request,
            response,
        )
    }

    pub fn token_status(&mut self, client: ResourceAny) -> wasmtime::Result<AuthStatus> {
        self.api
            .mangopay_auth_auth()
            .client()
            .call_token_status(&mut self.store, client)
    }

    pub fn send(
        &mut self,
        client: ResourceAny,
        request: &ApiRequest,
    ) -> wasmtime::Result<Result<ApiResponse, Error>> {
        self.api
            .mangopay_auth_auth()
            .client()
            .call_send(&mut self.store, client, request)
    }

    pub fn base_url(&mut self, client: ResourceAny) -> wasmtime::Result<String> {
        self.api
            .mangopay_auth_auth()
            .client()
            .call_base_url(&mut self.store, client)
    }

    /// `send` of the default (environment-configured) client.
    pub fn default_send(
        &mut self,
        request: &ApiRequest,
    ) -> wasmtime::Result<Result<ApiResponse, Error>> {
        self.api
            .mangopay_auth_auth()
            .call_send(&mut self.store, request)
    }

    /// `token-status` of the default (environment-configured) client.
    pub fn default_token_status(&mut self) -> wasmtime::Result<Result<AuthStatus, Error>> {
        self.api
            .mangopay_auth_auth()
            .call_token_status(&mut self.store)
    }

    /// `get-token` of the default (environment-configured) client.
    pub fn default_get_token(&mut self) -> wasmtime::Result<Result<Token, Error>> {
        self.api
            .mangopay_auth_auth()
            .call_get_token(&mut self.store)
    }

    /// `authorize-request` of the default (environment-configured) client.
    pub fn default_authorize_request(
        &mut self,
        request: &HttpRequest,
    ) -> wasmtime::Result<Result<HttpRequest, Error>> {
        self.api
            .mangopay_auth_auth()
            .call_authorize_request(&mut self.store, request)
    }

    /// `check-response` of the default (environment-configured) client.
    pub fn default_check_response(
        &mut self,
        request: &HttpRequest,
        response: &HttpResponse,
    ) -> wasmtime::Result<ResponseVerdict> {
        self.api
            .mangopay_auth_auth()
            .call_check_response(&mut self.store, request, response)
    }

    /// Everything the component wrote to stdout and stderr.
    pub fn output(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.stdout.contents()).into_owned();
        text.push_str(&String::from_utf8_lossy(&self.stderr.contents()));
        text
    }
}

/// A config for `base_url` with the defaults for everything optional.
pub fn config(client_id: &str, api_key: &str, base_url: &str) -> Config {
    Config {
        client_id: client_id.into(),
        api_key: api_key.into(),
        environment: Environment::Sandbox,
        base_url: Some(base_url.into()),
        refresh_margin_seconds: None,
        timeouts: None,
        retry: None,
        cool_down: None,
        max_response_bytes: None,
    }
}
