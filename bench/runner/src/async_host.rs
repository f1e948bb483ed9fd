//! The component embedded the async way: exports called with `.await` on a current-thread
//! tokio runtime, so wasi:http's I/O and the component's waits share one thread.

use host_test::host::{self, State};
use std::hint::black_box;
use std::path::Path;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "standalone",
        exports: { default: async },
    });
}

pub use bindings::exports::mangopay::auth::auth::Config;
use bindings::exports::mangopay::auth::auth::Environment;

/// `config` in the types of these bindings.
pub fn config(config: &host::Config) -> Config {
    Config {
        client_id: config.client_id.clone(),
        api_key: config.api_key.clone(),
        environment: Environment::Sandbox,
        base_url: config.base_url.clone(),
        refresh_margin_seconds: None,
        timeouts: None,
        retry: None,
        cool_down: None,
        max_response_bytes: None,
    }
}

pub struct AsyncHost {
    runtime: tokio::runtime::Runtime,
    engine: Engine,
    pre: bindings::StandalonePre<State>,
}

impl AsyncHost {
    pub fn load(wasm: &Path) -> Result<AsyncHost, String> {
        let engine = host::engine();
        let component = Component::from_file(&engine, wasm).map_err(|e| e.to_string())?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| e.to_string())?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| e.to_string())?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(bindings::StandalonePre::new)
            .map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(AsyncHost {
            runtime,
            engine,
            pre,
        })
    }

    /// A fresh instance's first token: instantiate, `client.create`, `get-token`.
    pub fn first_token(&self, config: &Config) -> Result<(), String> {
        self.runtime.block_on(async {
            let state = State::new(WasiCtx::builder().build());
            let mut store = Store::new(&self.engine, state);
            let api = self
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| e.to_string())?;
            let client = api.mangopay_auth_auth().client();
            let handle = client
                .call_create(&mut store, config)
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("{e:?}"))?;
            let token = client
                .call_get_token(&mut store, handle)
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("{e:?}"))?;
            black_box(token);
            Ok(())
        })
    }
}
