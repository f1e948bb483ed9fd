//! Section 2, instantiation: a fresh instance from the pre-instantiated component, against
//! floor-const, under each engine configuration compared; and `client.create`, the first call
//! into the fresh instance, under each. Per configuration one engine, one linker, both
//! components pre-instantiated; per instance a fresh store, the instantiation and the drop.

use crate::measure::{Phases, Variant, measure};
use crate::report::Report;
use crate::setup::{Setup, answer};
use crate::stats::{show, spread};
use host_test::artifact;
use host_test::host::{EngineSettings, Host, InstanceOptions, State};
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;

/// The configurations compared, the harness's (recommended) one first.
const SETTINGS: [(&str, EngineSettings); 6] = [
    (
        "pooling, copy-on-write, 1 MiB kept resident, `PAGEMAP_SCAN` (the harness's)",
        EngineSettings::RECOMMENDED,
    ),
    (
        "pooling, copy-on-write, 1 MiB kept resident, no `PAGEMAP_SCAN` (a kernel before 6.7)",
        EngineSettings {
            pagemap_scan: false,
            ..EngineSettings::RECOMMENDED
        },
    ),
    (
        "pooling, copy-on-write, 4 MiB kept resident, `PAGEMAP_SCAN`",
        EngineSettings {
            keep_resident: 4 << 20,
            ..EngineSettings::RECOMMENDED
        },
    ),
    (
        "pooling, copy-on-write, nothing kept resident",
        EngineSettings {
            pooling: true,
            keep_resident: 0,
            pagemap_scan: false,
            ..EngineSettings::DEFAULT
        },
    ),
    (
        "on-demand, copy-on-write (`Engine::default()`)",
        EngineSettings::DEFAULT,
    ),
    (
        "on-demand, no copy-on-write",
        EngineSettings {
            memory_init_cow: false,
            ..EngineSettings::DEFAULT
        },
    ),
];

/// One configuration's engine with the component and floor-const pre-instantiated.
struct Loaded {
    engine: Engine,
    auth: InstancePre<State>,
    floor: InstancePre<State>,
    /// The component through the harness's host, for `client.create`.
    host: Host,
}

impl Loaded {
    fn new(settings: &EngineSettings) -> Result<Loaded, String> {
        let engine = settings.engine().map_err(|e| e.to_string())?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| e.to_string())?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .map_err(|e| e.to_string())?;
        let pre = |path: &Path| -> Result<InstancePre<State>, String> {
            let component = Component::from_file(&engine, path).map_err(|e| e.to_string())?;
            linker
                .instantiate_pre(&component)
                .map_err(|e| e.to_string())
        };
        Ok(Loaded {
            auth: pre(artifact::component_wasm())?,
            floor: pre(artifact::floor_const_wasm())?,
            host: Host::load_in(&engine, artifact::component_wasm()).map_err(|e| e.to_string())?,
            engine,
        })
    }

    /// What a wasmtime embedder of this component needs per instance: WASI, wasi:http and
    /// their resource table.
    fn instantiate(&self, pre: &InstancePre<State>) -> Result<(), String> {
        let mut store = Store::new(&self.engine, State::new(WasiCtx::builder().build()));
        let instance = pre.instantiate(&mut store).map_err(|e| e.to_string())?;
        black_box(instance);
        drop(store);
        Ok(())
    }
}

pub fn section(setup: &Setup, report: &mut Report) -> Result<(), String> {
    let loaded = SETTINGS
        .iter()
        .map(|(_, settings)| Loaded::new(settings))
        .collect::<Result<Vec<_>, _>>()?;
    let per_batch = setup.options.scaled(100);
    let mut phases: Vec<Phases<2>> = SETTINGS.iter().map(|_| Phases::new()).collect();
    let config = &setup.config;
    let mut variants = Vec::new();
    for (loaded, phases) in loaded.iter().zip(phases.iter_mut()) {
        variants.push(Variant::new(move || loaded.instantiate(&loaded.auth)));
        variants.push(Variant::new(move || loaded.instantiate(&loaded.floor)));
        variants.push(Variant::new(move || {
            let started = Instant::now();
            let mut instance = loaded
                .host
                .instantiate(InstanceOptions::default())
                .map_err(|e| e.to_string())?;
            let instantiated = Instant::now();
            black_box(answer(instance.create_client(config))?);
            let created = Instant::now();
            drop(instance);
            phases.add([instantiated - started, created - instantiated], per_batch);
            Ok(())
        }));
    }
    // `client.create` again in a warm instance: the work itself, without a fresh instance's
    // first touches.
    let mut warm_instance = loaded[0]
        .host
        .instantiate(InstanceOptions::default())
        .map_err(|e| e.to_string())?;
    variants.push(Variant::new(move || {
        let client = answer(warm_instance.create_client(config))?;
        warm_instance.drop_client(client).map_err(|e| e.to_string())
    }));
    // 101 rounds of 100: 10,100 instances per variant.
    let stats = measure(101, per_batch, &mut variants)?;
    drop(variants);

    report.line("## 2. Instantiation: a fresh instance from the pre-instantiated component");
    report.line("");
    report.line(
        "Per instance: a new `Store` with a fresh WASI + wasi:http context, \
         `InstancePre::instantiate`, drop; under each engine configuration compared (one \
         engine each, all measured in the same interleaved rounds). The harness's \
         configuration (`host_test::host::engine()`) is the first. `client.create`: the first \
         call into a fresh instance made by the harness's `Host::instantiate`.",
    );
    report.line("");
    // `Engine::default()`'s row.
    let default_auth = &stats[3 * 4];
    let mut rows = Vec::new();
    for (n, ((name, _), phases)) in SETTINGS.iter().zip(&phases).enumerate() {
        let (auth, floor) = (&stats[3 * n], &stats[3 * n + 1]);
        let [_, create] = phases.stats();
        rows.push(vec![
            (*name).to_owned(),
            format!("{} ({})", show(auth.median), spread(auth)),
            show(floor.median),
            format!("**{:.2}x**", auth.ratio(floor)),
            format!("{:.2}x", auth.ratio(default_auth)),
            format!("{} ({})", show(create.median), spread(&create)),
        ]);
    }
    let warm = &stats[3 * SETTINGS.len()];
    rows.push(vec![
        "`client.create` + drop in a warm instance (the work alone)".into(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        format!("{} ({})", show(warm.median), spread(warm)),
    ]);
    report.table(
        &[
            "engine",
            "mangopay-auth per instance (batches)",
            "floor-const",
            "vs floor",
            "vs `Engine::default()`",
            "`client.create` (batches)",
        ],
        &rows,
    );
    Ok(())
}
