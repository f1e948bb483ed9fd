//! Section 2, instantiation: a fresh instance from the pre-instantiated component, against
//! floor-const. One engine, one linker, both components pre-instantiated; per instance a
//! fresh store, the instantiation and the drop.

use crate::measure::{Variant, measure};
use crate::report::Report;
use crate::setup::Setup;
use crate::stats::{Stats, show, spread};
use host_test::artifact;
use host_test::host::State;
use std::hint::black_box;
use std::path::Path;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;

pub fn section(setup: &Setup, report: &mut Report) -> Result<(), String> {
    let [auth, floor]: [Stats; 2] = instantiation(setup.options.scaled(100))?
        .try_into()
        .map_err(|_| "two variants, two results")?;
    let inst_ratio = auth.ratio(&floor);
    report.line("## 2. Instantiation: a fresh instance from the pre-instantiated component");
    report.line("");
    report.line(
        "Per instance: a new `Store` with a fresh WASI + wasi:http context, \
         `InstancePre::instantiate`, drop.",
    );
    report.line("");
    report.table(
        &["component", "per instance", "batches", "vs floor"],
        &[
            vec![
                "mangopay-auth".into(),
                show(auth.median),
                spread(&auth),
                format!("**{inst_ratio:.2}x**"),
            ],
            vec![
                "floor-const (one export returning a constant)".into(),
                show(floor.median),
                spread(&floor),
                "1.00x".into(),
            ],
        ],
    );
    Ok(())
}

/// The component and floor-const, `per_batch` instances a batch.
fn instantiation(per_batch: usize) -> Result<Vec<Stats>, String> {
    let engine = Engine::default();
    let mut linker: Linker<State> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| e.to_string())?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker).map_err(|e| e.to_string())?;
    let pre = |path: &Path| -> Result<InstancePre<State>, String> {
        let component = Component::from_file(&engine, path).map_err(|e| e.to_string())?;
        linker
            .instantiate_pre(&component)
            .map_err(|e| e.to_string())
    };
    let auth = pre(artifact::component_wasm())?;
    let floor = pre(artifact::floor_const_wasm())?;
    // What a wasmtime embedder of this component needs per instance: WASI, wasi:http and
    // their resource table.
    let instantiate = |pre: &InstancePre<State>| -> Result<(), String> {
        let mut store = Store::new(&engine, State::new(WasiCtx::builder().build()));
        let instance = pre.instantiate(&mut store).map_err(|e| e.to_string())?;
        black_box(instance);
        drop(store);
        Ok(())
    };
    // 101 rounds of 100: 10,100 instances per variant.
    measure(
        101,
        per_batch,
        &mut [
            Variant::new(|| instantiate(&auth)),
            Variant::new(|| instantiate(&floor)),
        ],
    )
}
