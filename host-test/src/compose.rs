//! The example business component (`examples/list-users`) composed with the auth component by
//! the Bytecode Alliance's composition tooling (wac), and a wasmtime host for the result.
//!
//! Two ways to compose, both checked by `tests/compose.rs`: the shipped
//! `examples/list-users/compose.wac` resolved by `wac-parser` (what `wac compose` does), and
//! `wac_graph::plug` (what `wac plug` does).

use crate::artifact;
use crate::clock::VirtualClock;
use crate::host::State;
use indexmap::IndexMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wac_graph::types::{BorrowedPackageKey, Package};
use wac_graph::{CompositionGraph, EncodeOptions};
use wasmtime::component::{Component, Linker, TypedFunc};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtxBuilder;

/// Package names the `.wac` file refers to.
pub const AUTH_PACKAGE: &str = "mangopay:auth";
pub const EXAMPLE_PACKAGE: &str = "mangopay:list-users";
/// The example's one export.
pub const EXPORT: &str = "list-users";

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host-test lives in the workspace")
}

/// The `.wac` document shipped with the example.
pub fn wac_file() -> PathBuf {
    workspace().join("examples/list-users/compose.wac")
}

/// Where the tests write composed components: `target/compose/`.
pub fn out_dir() -> PathBuf {
    let dir = workspace().join("target/compose");
    std::fs::create_dir_all(&dir).expect("create target/compose");
    dir
}

/// The release `.wasm` of the list-users example, built once per process.
pub fn example_wasm() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| artifact::build("list-users", "list_users"))
}

/// Composes `auth` and `example` as `compose.wac` says, with wac-parser: the library behind
/// `wac compose --dep mangopay:auth=<auth> --dep mangopay:list-users=<example>`.
pub fn compose_with_wac_file(wac: &Path, auth: &Path, example: &Path) -> Result<Vec<u8>, String> {
    let source = std::fs::read_to_string(wac).map_err(|e| format!("{}: {e}", wac.display()))?;
    let document = wac_parser::Document::parse(&source)
        .map_err(|e| format!("parsing {}: {e:?}", wac.display()))?;
    let read = |path: &Path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let mut packages = IndexMap::new();
    packages.insert(
        BorrowedPackageKey {
            name: AUTH_PACKAGE,
            version: None,
        },
        read(auth)?,
    );
    packages.insert(
        BorrowedPackageKey {
            name: EXAMPLE_PACKAGE,
            version: None,
        },
        read(example)?,
    );
    let resolution = document
        .resolve(packages)
        .map_err(|e| format!("resolving {}: {e:?}", wac.display()))?;
    resolution
        .encode(EncodeOptions::default())
        .map_err(|e| format!("encoding {}: {e:?}", wac.display()))
}

/// Plugs `auth`'s exports into `example`'s matching imports with `wac_graph::plug`: the
/// library behind `wac plug <example> --plug <auth>`.
pub fn compose_with_plug(auth: &Path, example: &Path) -> Result<Vec<u8>, String> {
    let mut graph = CompositionGraph::new();
    let mut register = |name: &str, path: &Path| {
        let package = Package::from_file(name, None, path, graph.types_mut())
            .map_err(|e| format!("{}: {e:#}", path.display()))?;
        graph
            .register_package(package)
            .map_err(|e| format!("registering {name}: {e}"))
    };
    let auth = register(AUTH_PACKAGE, auth)?;
    let example = register(EXAMPLE_PACKAGE, example)?;
    wac_graph::plug(&mut graph, vec![auth], example).map_err(|e| format!("plug: {e:?}"))?;
    graph
        .encode(EncodeOptions::default())
        .map_err(|e| format!("encoding the plugged graph: {e:?}"))
}

/// `compose.wac` applied to the release auth component and example, written to
/// `target/compose/list-users-composed.wasm`; once per process.
pub fn composed_wasm() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let bytes = compose_with_wac_file(&wac_file(), artifact::component_wasm(), example_wasm())
            .unwrap_or_else(|e| panic!("composing with compose.wac: {e}"));
        let path = out_dir().join("list-users-composed.wasm");
        std::fs::write(&path, bytes).expect("write the composed component");
        path
    })
}

/// A compiled component whose world imports only WASI 0.2 and wasi:http, and exports
/// `list-users: func(per-page: u32) -> result<string, string>` at the top level.
pub struct ListUsersHost {
    engine: Engine,
    pre: wasmtime::component::InstancePre<State>,
}

type ListUsersFn = TypedFunc<(u32,), (Result<String, String>,)>;

impl ListUsersHost {
    /// Compiles `wasm` and links it against WASI and wasi:http only: linking fails if the
    /// composition left any other import (such as `mangopay:auth/auth`) open.
    pub fn load(wasm: &Path) -> wasmtime::Result<ListUsersHost> {
        let engine = Engine::default();
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
        let func =
            instance.get_typed_func::<(u32,), (Result<String, String>,)>(&mut store, EXPORT)?;
        Ok(ListUsers { store, func })
    }
}

/// One instance of a composed component.
pub struct ListUsers {
    store: Store<State>,
    func: ListUsersFn,
}

impl ListUsers {
    /// Calls the exported `list-users`. The outer error is a trap; the inner one the
    /// component's answer.
    pub fn list_users(&mut self, per_page: u32) -> wasmtime::Result<Result<String, String>> {
        let (result,) = self.func.call(&mut self.store, (per_page,))?;
        Ok(result)
    }
}
