//! The deployable set: every component a user drops into a host, written to `target/dist/`
//! with its registry metadata.

use crate::metadata::{self, PackageMetadata};
use std::path::{Path, PathBuf};

/// A component users deploy, and the crate that builds it.
pub struct Deployable {
    /// The cargo package (`cargo build -p <package> --target wasm32-wasip2 --release`).
    pub package: &'static str,
    /// Its library name: cargo writes `<lib>.wasm`.
    pub lib: &'static str,
    /// The file name in `target/dist/`.
    pub file: &'static str,
}

pub const DEPLOYABLES: &[Deployable] = &[
    Deployable {
        package: "mangopay-auth-standalone",
        lib: "mangopay_auth_standalone",
        file: "mangopay-auth.wasm",
    },
    Deployable {
        package: "mangopay-auth-with-token-store",
        lib: "mangopay_auth_with_token_store",
        file: "mangopay-auth-with-token-store.wasm",
    },
];

/// Writes every deployable to `out` with `metadata`; `built` gives the `.wasm` cargo built for
/// one. Returns the files written.
pub fn write(
    out: &Path,
    built: impl Fn(&Deployable) -> PathBuf,
    metadata: &PackageMetadata,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    DEPLOYABLES
        .iter()
        .map(|deployable| {
            let wasm = built(deployable);
            let bytes = std::fs::read(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
            let path = out.join(deployable.file);
            let with_metadata = metadata::add_metadata(&bytes, metadata)?;
            std::fs::write(&path, with_metadata).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        })
        .collect()
}
