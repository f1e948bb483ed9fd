//! Packaging of the mangopay-auth components: composition, registry metadata and the
//! deployable set in `target/dist/`. The `xtask` binary (`cargo xtask dist`) builds the
//! components and calls `dist::write`; the harness's packaging test calls the same function on
//! the components its build script built and checks every file it writes.

pub mod compose;
pub mod dist;
pub mod metadata;
pub mod optimize;

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
}

/// `target/<dir>` of the workspace, created.
pub fn target_dir(dir: &str) -> Result<PathBuf, String> {
    let path = workspace().join("target").join(dir);
    std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}
