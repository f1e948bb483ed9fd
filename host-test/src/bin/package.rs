//! Builds the release component and writes the publishable artifact:
//! `target/package/mangopay-auth@<version>.wasm`, carrying the registry metadata of `wkg.toml`
//! and the WIT package's name and version. Prints the `wkg oci push` command that publishes it
//! with the matching OCI annotations (`wkg publish` 0.16.1 refuses a cargo-built component:
//! see docs/running-elsewhere.md).
//!
//! ```sh
//! cargo run -p host-test --bin package -- --source https://github.com/<org>/mangopay-auth \
//!     [--registry ghcr.io/<org>]
//! ```

use host_test::{artifact, publish};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut source = None;
    let mut registry = "<registry>/<prefix>".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--source" => source = args.next(),
            "--registry" => registry = args.next().unwrap_or(registry),
            other => {
                eprintln!(
                    "unknown argument {other:?}; usage: package [--source <URL>] [--registry <host/prefix>]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let revision = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let metadata = match publish::workspace_metadata(source.as_deref(), revision.as_deref()) {
        Ok(metadata) => metadata,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match publish::write_package(artifact::component_wasm(), &metadata) {
        Ok(path) => {
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
            for (key, value) in publish::oci_annotations(&metadata) {
                command.push_str(&format!(" \\\n  --annotation '{key}={value}'"));
            }
            eprintln!("publish with:\n{command}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
