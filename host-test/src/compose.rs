//! The example business component (`examples/list-users`) composed with the auth component by
//! the Bytecode Alliance's composition tooling (wac), and a wasmtime host for the result.
//!
//! Two ways to compose, both checked by `tests/all/compose.rs`: the shipped
//! `examples/list-users/compose.wac` resolved by `wac-parser` (what `wac compose` does), and
//! `wac_graph::plug` (what `wac plug` does).

use crate::artifact;
use crate::clock::VirtualClock;
use crate::host::State;
use crate::workspace;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wasmtime::component::{Component, Linker, TypedFunc};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtxBuilder;

/// Package names the `.wac` file refers to.
pub const AUTH_PACKAGE: &str = "mangopay:auth";
pub const EXAMPLE_PACKAGE: &str = "mangopay:list-users";
/// The example's exports.
pub const EXPORTS: [&str; 3] = ["list-users", "create-natural-user", "list-users-own-client"];

/// The `.wac` document shipped with the example.
pub fn wac_file() -> PathBuf {
    workspace().join("examples/list-users/compose.wac")
}

/// Where the tests write composed components: `target/compose/`.
pub fn out_dir() -> PathBuf {
    xtask::target_dir("compose").expect("create target/compose")
}

/// Composes `auth` and `example` as `compose.wac` says (`wac compose`).
pub fn compose_with_wac_file(wac: &Path, auth: &Path, example: &Path) -> Result<Vec<u8>, String> {
    xtask::compose::with_wac_file(wac, &[(AUTH_PACKAGE, auth), (EXAMPLE_PACKAGE, example)])
}

/// Plugs `auth`'s exports into `example`'s matching imports (`wac plug`).
pub fn compose_with_plug(auth: &Path, example: &Path) -> Result<Vec<u8>, String> {
    xtask::compose::plug((AUTH_PACKAGE, auth), (EXAMPLE_PACKAGE, example))
}

/// `compose.wac` applied to the release auth component and example, written to
/// `target/compose/list-users-composed.wasm`; once per process.
pub fn composed_wasm() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let bytes = compose_with_wac_file(
            &wac_file(),
            artifact::component_wasm(),
            artifact::example_wasm(),
        )
        .unwrap_or_else(|e| panic!("composing with compose.wac: {e}"));
        let path = out_dir().join("list-users-composed.wasm");
        std::fs::write(&path, bytes).expect("write the composed component");
        path
    })
}

/// A compiled component whose world imports only WASI 0.2 and wasi:http, and exports the
/// example's functions at the top level.
pub struct ListUsersHost {
    engine: Engine,
    pre: wasmtime::component::InstancePre<State>,
}

type PageFn = TypedFunc<(u32,), (Result<String, String>,)>;
type CreateFn = TypedFunc<(String, String), (Result<String, String>,)>;

impl ListUsersHost {
    /// Compiles `wasm` and links it against WASI and wasi:http only: linking fails if the
    /// composition left any other import (such as `mangopay:auth/auth`) open.
    pub fn load(wasm: &Path) -> wasmtime::Result<ListUsersHost> {
        let engine = crate::host::engine();
        let component = Component::from_file(&engine, wasm)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
        let pre = linker.instantiate_pre(&component)?;
        Ok(ListUsersHost { engine, pre })
    }

    /// A fresh instance seeing `env`, with `clock` as its WASI clocks (real clocks if none).
    pub fn instantiate(
        &self,
        env: &[(String, String)],
        clock: Option<&VirtualClock>,
    ) -> wasmtime::Result<ListUsers> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(env);
        if let Some(clock) = clock {
            wasi.monotonic_clock(clock.monotonic_clock())
                .wall_clock(clock.wall_clock());
        }
        let mut store = Store::new(&self.engine, State::new(wasi.build()));
        let instance = self.pre.instantiate(&mut store)?;
        let [list, create, own] = EXPORTS;
        Ok(ListUsers {
            list: instance.get_typed_func(&mut store, list)?,
            create: instance.get_typed_func(&mut store, create)?,
            own_client: instance.get_typed_func(&mut store, own)?,
            store,
        })
    }
}

/// One instance of a composed component.
pub struct ListUsers {
    store: Store<State>,
    list: PageFn,
    create: CreateFn,
    own_client: PageFn,
}

/// The outer error is a trap; the inner one the component's answer.
impl ListUsers {
    pub fn list_users(&mut self, per_page: u32) -> wasmtime::Result<Result<String, String>> {
        Ok(self.list.call(&mut self.store, (per_page,))?.0)
    }

    pub fn create_natural_user(
        &mut self,
        user: &str,
        idempotency_key: &str,
    ) -> wasmtime::Result<Result<String, String>> {
        let args = (user.to_owned(), idempotency_key.to_owned());
        Ok(self.create.call(&mut self.store, args)?.0)
    }

    pub fn list_users_own_client(
        &mut self,
        per_page: u32,
    ) -> wasmtime::Result<Result<String, String>> {
        Ok(self.own_client.call(&mut self.store, (per_page,))?.0)
    }
}
