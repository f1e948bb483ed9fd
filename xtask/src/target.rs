//! Cargo's target directory: where cargo writes what it builds, and so where xtask and the
//! harness read and write artifacts. It is `<workspace>/target` only by default:
//! `CARGO_TARGET_DIR`, `build.target-dir` in a `.cargo/config.toml`, ... move it, and
//! `cargo metadata` answers with the one cargo uses.
//!
//! host-test's build script includes this file (`#[path]`) so that the components it builds
//! land in the same place as everything else; both depend on serde_json for it.

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
