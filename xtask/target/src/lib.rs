//! Cargo's target directory: where cargo writes what it builds, and so where xtask and the
//! harness read and write artifacts. It is `<workspace>/target` only by default:
//! `CARGO_TARGET_DIR`, `build.target-dir` in a `.cargo/config.toml`, ... move it, and
//! `cargo metadata` answers with the one cargo uses.
//!
//! A crate of its own so that host-test's build script shares it with xtask (as
//! `xtask::target`): the components it builds land in the same place as everything else, and
//! are built the same way.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Cargo's target directory for the workspace at `workspace`: `target_directory` of
/// `cargo metadata`, run with `cargo` (the `CARGO` of the calling cargo, else `cargo`) in the
/// workspace, so that it honours the same environment and configuration as a build there.
pub fn cargo_target_dir(cargo: &OsStr, workspace: &Path) -> Result<PathBuf, String> {
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .output()
        .map_err(|e| format!("{}: {e}", Path::new(cargo).display()))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    metadata
        .get("target_directory")
        .and_then(|dir| dir.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata: no target_directory in its answer".to_owned())
}

/// `cargo build --release --target wasm32-wasip2 -p <package>` into `target_dir`: how xtask and
/// host-test's build script build every component. Paths of cargo's registry are remapped to
/// the crate's own (`base64-0.22.1/src/...`): panic locations then carry no path of the build
/// machine, and a component's size does not depend on where `CARGO_HOME` is.
pub fn wasm_release_build(
    cargo: &OsStr,
    workspace: &Path,
    package: &str,
    target_dir: &Path,
) -> Command {
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2", "-p"])
        .arg(package)
        .arg("--target-dir")
        .arg(target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", remap_registry_flags());
    command
}

/// `--remap-path-prefix=<registry source dir>/=` for each of cargo's registries.
fn remap_registry_flags() -> String {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let sources = home.map(|h| h.join("registry/src"));
    let registries = sources
        .and_then(|s| std::fs::read_dir(s).ok())
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()));
    registries
        .map(|dir| format!("--remap-path-prefix={}/=", dir.display()))
        .collect::<Vec<_>>()
        .join("\u{1f}")
}
