//! A minimal wasmtime embedder of the mangopay-auth component, as docs/interface.md shows it:
//! load the component, create a client, authorize a request.
//!
//! ```sh
//! cargo run -p host-test --example embedder -- target/dist/mangopay-auth.wasm <base-url>
//! ```
//! with `MANGOPAY_CLIENT_ID` and `MANGOPAY_API_KEY` in the environment.

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

wasmtime::component::bindgen!({ path: "../wit", world: "standalone" });
use exports::mangopay::auth::auth::{Config, Environment, HttpRequest};

/// What the component's WASI imports need from the host.
struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
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
            hooks: Default::default(),
        }
    }
}

fn main() -> wasmtime::Result<()> {
    let mut args = std::env::args().skip(1);
    let wasm = args
        .next()
        .unwrap_or_else(|| "target/dist/mangopay-auth.wasm".into());
    let base_url = args.next();
    let client_id = std::env::var("MANGOPAY_CLIENT_ID")?;
    let api_key = std::env::var("MANGOPAY_API_KEY")?;

    let engine = Engine::default();
    let component = Component::from_file(&engine, &wasm)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    let pre = StandalonePre::new(linker.instantiate_pre(&component)?)?;

    let state = State {
        wasi: WasiCtx::builder().build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
    };
    let mut store = Store::new(&engine, state);
    let auth = pre.instantiate(&mut store)?;
    let api = auth.mangopay_auth_auth();
    let config = Config {
        client_id: client_id.clone(),
        api_key,
        environment: Environment::Sandbox,
        base_url: base_url.clone(),
        refresh_margin_seconds: None,
        timeouts: None,
        retry: None,
        cool_down: None,
        max_response_bytes: None,
    };
    let client = match api.client().call_create(&mut store, &config)? {
        Ok(client) => client,
        Err(e) => return Err(wasmtime::format_err!("create: {e:?}")),
    };
    let base = base_url.unwrap_or_else(|| "https://api.sandbox.mangopay.com".into());
    let request = HttpRequest {
        method: "GET".into(),
        url: format!("{base}/v2.01/{client_id}/users"),
        headers: vec![],
    };
    match api
        .client()
        .call_authorize_request(&mut store, client, &request)?
    {
        // Send `authorized` with your HTTP client; never log its Authorization header.
        Ok(authorized) => println!("authorized {} {}", authorized.method, authorized.url),
        Err(e) => println!("refused: {e:?}"),
    }
    Ok(())
}
