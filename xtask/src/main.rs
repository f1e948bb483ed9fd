//! `cargo xtask <command>` (an alias in `.cargo/config.toml`):
//!
//! - `dist [--source <URL>]`: builds every component crate with
//!   `cargo build -p <package> --target wasm32-wasip2 --release`, optimises each for size
//!   into `target/optimized/` (`optimize`: `jco opt` when Node.js is there, after `npm ci` in
//!   `jco/` where its packages are missing or older than its lockfile; skipped with a one-line
//!   message without Node.js), composes the keyvalue adapters into the `with-token-store`
//!   component, and writes every deployable to `target/dist/` with its registry metadata.
//!
//! `target/` is cargo's target directory (`xtask::target_root`: `cargo metadata`'s
//! `target_directory`, so `CARGO_TARGET_DIR` and `build.target-dir` are honoured).
//! - `package --source <URL> [--registry <host/prefix>]`: `dist`, then the publishable
//!   `target/package/mangopay-auth@<version>.wasm` and the `wkg oci push` command that
//!   publishes it with matching OCI annotations (`wkg publish` 0.16.1 refuses a cargo-built
//!   component: see docs/running-elsewhere.md).

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use xtask::dist;
use xtask::metadata::{self, PackageMetadata};
use xtask::{target_dir, target_root, workspace};

const USAGE: &str = "usage: cargo xtask dist [--source <URL>] | cargo xtask package --source <URL> [--registry <host/prefix>]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let command = args.next().ok_or(USAGE)?;
    let mut source = None;
    let mut registry = "<registry>/<prefix>".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--source" => source = args.next(),
            "--registry" => registry = args.next().unwrap_or(registry),
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    let revision = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let metadata = metadata::workspace_metadata(source.as_deref(), revision.as_deref())?;
    match command.as_str() {
        "dist" => {
            dist_all(&metadata)?;
            Ok(())
        }
        "package" => package(&metadata, &registry),
        _ => Err(USAGE.into()),
    }
}

fn dist_all(metadata: &PackageMetadata) -> Result<Vec<PathBuf>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Built into cargo's target directory (the one `CARGO_TARGET_DIR` or cargo's configuration
    // gives), and read back from there.
    let target = target_root()?;
    for krate in dist::crates() {
        let status = xtask::target::wasm_release_build(&cargo, workspace(), krate.package, target)
            .status()
            .map_err(|e| format!("cargo: {e}"))?;
        if !status.success() {
            return Err(format!("building {} failed", krate.package));
        }
    }
    let written = dist::assemble(
        &target_dir("dist")?,
        |krate| dist::built(target, krate),
        metadata,
    )?;
    for path in &written {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!(
            "{} ({size} bytes, {:.1} KiB)",
            path.display(),
            size as f64 / 1024.0
        );
    }
    Ok(written)
}

fn package(metadata: &PackageMetadata, registry: &str) -> Result<(), String> {
    metadata::require_source(metadata)?;
    let written = dist_all(metadata)?;
    let standalone = written.first().ok_or("dist wrote nothing")?;
    let path = metadata::write_package(standalone, metadata)?;
    println!("{}", path.display());
    // OCI convention of wkg: <registry>/<prefix><namespace>/<name>:<version>.
    let (namespace, name) = metadata
        .name
        .split_once(':')
        .unwrap_or(("", &metadata.name));
    let mut command = format!(
        "wkg oci push {}/{namespace}/{name}:{} {}",
        registry.trim_end_matches('/'),
        metadata.version,
        path.display()
    );
    for (key, value) in metadata::oci_annotations(metadata) {
        command.push_str(&format!(" \\\n  --annotation '{key}={value}'"));
    }
    eprintln!("publish with:\n{command}");
    Ok(())
}
