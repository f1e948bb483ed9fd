//! The benchmark: `cargo run -p host-test --profile bench --bin bench`.
//!
//! Measures the mangopay-auth component in wasmtime against a mock Mangopay on 127.0.0.1, and
//! each figure against a floor measured in the same run (trivial components built in this
//! workspace, a native client), so the ratios hold on a noisy machine. Variants run in rounds
//! of short interleaved batches; a figure is the median over the rounds, a ratio the median of
//! the per-round ratios. Prints a table and writes it as Markdown to
//! `target/bench/performance.md`. Timings live here only: the tests assert counts, not times.
//!
//! `BENCH_ONLY=1,5` runs only those sections; `BENCH_SCALE=0.1` (any factor) shortens every
//! loop; `MANGOPAY_AUTH_STANDALONE_WASM=<file>` measures that `.wasm` instead of the component
//! host-test's build script built (see `host_test::artifact` for the other components).
//!
//! Here: `measure` runs the variants, `stats` sums them up, `report` writes the table,
//! `baselines` holds the floors, `setup` what the sections share; one module per section.

mod async_host;
mod baselines;
mod cached;
mod cold;
mod economy;
mod instantiation;
mod machine;
mod measure;
mod middleware;
mod per_request;
mod report;
mod setup;
mod size;
mod stall;
mod stats;

use report::Report;
use setup::Setup;
use std::process::ExitCode;

/// A section: measures, then adds its part to the report.
type Section = fn(&Setup, &mut Report) -> Result<(), String>;

/// The sections, numbered from 1 in this order.
const SECTIONS: [(&str, Section); 8] = [
    ("cached path", cached::section),
    ("instantiation", instantiation::section),
    ("cold token", cold::section),
    ("token economy", economy::section),
    ("size", size::section),
    ("per-request path", per_request::section),
    ("renewal stall", stall::section),
    ("WASI 0.3 middleware", middleware::section),
];

fn main() -> ExitCode {
    match run(Options::from_env()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench failed: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options) -> Result<(), String> {
    let mut report = Report::default();
    report.header();
    let setup = Setup::new(options)?;
    for (index, (name, section)) in SECTIONS.iter().enumerate() {
        let n = index + 1;
        if setup.options.runs(n) {
            eprintln!("{n}/{} {name}...", SECTIONS.len());
            section(&setup, &mut report)?;
        }
    }
    let out = host_test::workspace().join("target/bench/performance.md");
    report.write(&out)?;
    eprintln!("written to {}", out.display());
    Ok(())
}

/// What the environment asks for.
pub struct Options {
    /// `BENCH_ONLY`: the sections to run; `None` runs all of them.
    only: Option<Vec<usize>>,
    /// `BENCH_SCALE`: the factor of every loop's length.
    scale: f64,
}

impl Options {
    fn from_env() -> Options {
        let only = std::env::var("BENCH_ONLY").ok().map(|only| {
            only.split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect()
        });
        let scale = std::env::var("BENCH_SCALE")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|s: &f64| *s > 0.0)
            .unwrap_or(1.0);
        Options { only, scale }
    }

    /// Whether section `n` runs: all of them, or those `BENCH_ONLY` lists (e.g. `1,5`).
    fn runs(&self, n: usize) -> bool {
        self.only.as_ref().is_none_or(|only| only.contains(&n))
    }

    /// `BENCH_SCALE`, for loops measured in time rather than iterations.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// `n` iterations scaled by `BENCH_SCALE`, at least one.
    pub fn scaled(&self, n: usize) -> usize {
        ((n as f64 * self.scale).round() as usize).max(1)
    }
}
