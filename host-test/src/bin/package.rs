//! Builds the release component and writes the publishable artifact:
//! `target/package/mangopay-auth@<version>.wasm`, carrying the registry metadata of `wkg.toml`
//! and the WIT package's name and version, ready for `wkg publish`.
//!
//! ```sh
//! cargo run -p host-test --bin package -- --source https://github.com/<org>/mangopay-auth
//! wkg publish target/package/mangopay-auth@0.1.0.wasm --package mangopay:auth@0.1.0
//! ```

use host_test::{artifact, publish};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut source = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--source" => source = args.next(),
            other => {
                eprintln!("unknown argument {other:?}; usage: package [--source <URL>]");
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
            eprintln!(
                "{name}@{version} ({}, source {}): publish with\n  \
                 wkg publish {} --package {name}@{version}",
                metadata.license,
                metadata.source,
                path.display(),
                name = metadata.name,
                version = metadata.version,
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
