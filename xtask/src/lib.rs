//! Packaging of the mangopay-auth components: composition, registry metadata and the
//! deployable set in `target/dist/`. The `xtask` binary (`cargo xtask dist`) builds the
//! components and calls `dist::write`; the harness's packaging test calls the same function on
//! the components its build script built and checks every file it writes.
//!
//! `target/` here means cargo's target directory ([`target_root`]), wherever
//! `CARGO_TARGET_DIR` or cargo's configuration puts it.

pub mod compose;
pub mod dist;
pub mod install;
pub mod metadata;
pub mod optimize;
pub use xtask_target as target;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
}

/// Cargo's target directory, where every artifact is read and written: `cargo metadata`'s
/// `target_directory` ([`target::cargo_target_dir`]), asked once per process with the
/// `cargo` that runs it (`CARGO`), so that `CARGO_TARGET_DIR` and `build.target-dir` are
/// honoured.
pub fn target_root() -> Result<&'static Path, String> {
    static ROOT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        target::cargo_target_dir(&cargo, workspace())
    })
    .as_deref()
    .map_err(|e| format!("finding cargo's target directory: {e}"))
}

/// `<target>/<dir>` ([`target_root`]), created.
pub fn target_dir(dir: &str) -> Result<PathBuf, String> {
    let path = target_root()?.join(dir);
    std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Set in the child process of `cargo_target_dir_is_honoured`: the target directory the
    /// child must resolve.
    const EXPECTED: &str = "XTASK_TEST_EXPECTED_TARGET_DIR";

    /// Every place xtask reads or writes an artifact is under cargo's target directory. Run
    /// again by `cargo_target_dir_is_honoured` in a child process with `CARGO_TARGET_DIR` set.
    #[test]
    fn every_artifact_path_is_under_cargos_target_dir() {
        let root = target_root().expect("cargo metadata answers");
        if let Some(expected) = std::env::var_os(EXPECTED) {
            assert_eq!(root, Path::new(&expected));
        }
        let meta = metadata::workspace_metadata(None, None).expect("metadata");
        let paths = [
            target_dir("dist").expect("dist"),
            target_dir("optimized").expect("optimized"),
            dist::built(root, &dist::STANDALONE),
            metadata::package_path(&meta).expect("package"),
        ];
        for path in &paths {
            assert!(
                path.starts_with(root),
                "{} is outside {}",
                path.display(),
                root.display()
            );
        }
        println!("checked under {}", root.display());
    }

    /// With `CARGO_TARGET_DIR` elsewhere, nothing is read or written in `<workspace>/target`.
    #[test]
    fn cargo_target_dir_is_honoured() {
        let elsewhere = std::env::temp_dir().join(format!("xtask-target-{}", std::process::id()));
        let output = Command::new(std::env::current_exe().expect("this test binary"))
            .args([
                "--exact",
                "tests::every_artifact_path_is_under_cargos_target_dir",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CARGO_TARGET_DIR", &elsewhere)
            .env(EXPECTED, &elsewhere)
            .output()
            .expect("the child test runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let _ = std::fs::remove_dir_all(&elsewhere);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "with CARGO_TARGET_DIR={}:\n{stdout}{stderr}",
            elsewhere.display()
        );
        assert!(
            stdout.contains(&format!("checked under {}", elsewhere.display())),
            "{stdout}"
        );
    }

    /// No path is made from `<workspace>/target` by hand: `target_root` is the only answer.
    #[test]
    fn no_source_file_joins_the_workspace_target_by_hand() {
        let src = workspace().join("xtask/src");
        for entry in std::fs::read_dir(&src).expect("xtask/src") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read");
            // Split so that this file does not match itself.
            for pattern in [concat!("join(\"tar", "get"), concat!("\"tar", "get/")] {
                let hits = text
                    .lines()
                    .filter(|l| l.contains(pattern) && !l.trim_start().starts_with("//"))
                    .count();
                assert_eq!(hits, 0, "{}: {pattern} outside target_root", path.display());
            }
        }
    }
}
