//! The deployable set: every component a user drops into a host, written to `target/dist/`
//! with its registry metadata. Some are compositions: an adapter plugged into the
//! `with-token-store` component or the WASI 0.3 middleware, so that a platform's
//! `wasi:keyvalue` carries the token store.

use crate::compose;
use crate::metadata::{self, PackageMetadata};
use crate::optimize;
use std::path::{Path, PathBuf};

/// A component crate: `cargo build -p <package> --target wasm32-wasip2 --release` writes
/// `<lib>.wasm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crate {
    pub package: &'static str,
    pub lib: &'static str,
}

/// A component users deploy: a crate's component, or an adapter's exports plugged into one.
pub struct Deployable {
    /// The component exporting `mangopay:auth/auth`, or the middleware's `wasi:http/client`.
    pub component: Crate,
    /// Its WIT package: the registry name in its metadata.
    pub package: &'static str,
    /// An adapter whose exports satisfy the component's matching imports (`wac plug`).
    pub adapter: Option<Crate>,
    /// The file name in `target/dist/`.
    pub file: &'static str,
}

pub const STANDALONE: Crate = Crate {
    package: "mangopay-auth-standalone",
    lib: "mangopay_auth_standalone",
};
pub const WITH_TOKEN_STORE: Crate = Crate {
    package: "mangopay-auth-with-token-store",
    lib: "mangopay_auth_with_token_store",
};
/// Spin: `wasi:keyvalue@0.2.0-draft2`, settings from Spin variables (`wasi:config`).
pub const KEYVALUE_DRAFT2: Crate = Crate {
    package: "mangopay-auth-keyvalue-draft2",
    lib: "mangopay_auth_keyvalue_draft2",
};
/// wasmCloud: `wasi:keyvalue@0.2.0-draft`.
pub const KEYVALUE_DRAFT: Crate = Crate {
    package: "mangopay-auth-keyvalue-draft",
    lib: "mangopay_auth_keyvalue_draft",
};
/// The WASI 0.3 `wasi:http/client` middleware (it imports `token-store`).
pub const MIDDLEWARE: Crate = Crate {
    package: "mangopay-auth-middleware",
    lib: "mangopay_auth_middleware",
};

/// The WIT package of the WASI 0.2 worlds.
pub const AUTH_PACKAGE: &str = "mangopay:auth";
/// The WIT package of the middleware's world.
pub const MIDDLEWARE_PACKAGE: &str = "mangopay:auth-middleware";

pub const DEPLOYABLES: &[Deployable] = &[
    Deployable {
        component: STANDALONE,
        package: AUTH_PACKAGE,
        adapter: None,
        file: "mangopay-auth.wasm",
    },
    Deployable {
        component: WITH_TOKEN_STORE,
        package: AUTH_PACKAGE,
        adapter: None,
        file: "mangopay-auth-with-token-store.wasm",
    },
    Deployable {
        component: WITH_TOKEN_STORE,
        package: AUTH_PACKAGE,
        adapter: Some(KEYVALUE_DRAFT2),
        file: "mangopay-auth-keyvalue-draft2.wasm",
    },
    Deployable {
        component: WITH_TOKEN_STORE,
        package: AUTH_PACKAGE,
        adapter: Some(KEYVALUE_DRAFT),
        file: "mangopay-auth-keyvalue-draft.wasm",
    },
    Deployable {
        component: MIDDLEWARE,
        package: MIDDLEWARE_PACKAGE,
        adapter: None,
        file: "mangopay-auth-middleware.wasm",
    },
    Deployable {
        component: MIDDLEWARE,
        package: MIDDLEWARE_PACKAGE,
        adapter: Some(KEYVALUE_DRAFT2),
        file: "mangopay-auth-middleware-keyvalue-draft2.wasm",
    },
    Deployable {
        component: MIDDLEWARE,
        package: MIDDLEWARE_PACKAGE,
        adapter: Some(KEYVALUE_DRAFT),
        file: "mangopay-auth-middleware-keyvalue-draft.wasm",
    },
];

/// Every crate the deployables are made of, each once, in build order.
pub fn crates() -> Vec<Crate> {
    let mut crates: Vec<Crate> = Vec::new();
    for deployable in DEPLOYABLES {
        for krate in std::iter::once(deployable.component).chain(deployable.adapter) {
            if !crates.contains(&krate) {
                crates.push(krate);
            }
        }
    }
    crates
}

/// The `with-token-store` component with a keyvalue adapter plugged into its `token-store`
/// import (and, for Spin's adapter, its `wasi:cli/environment` import): what `dist` writes
/// for the keyvalue deployables, before metadata.
pub fn compose_keyvalue(adapter: &Path, auth_with_store: &Path) -> Result<Vec<u8>, String> {
    compose_adapter(adapter, (AUTH_PACKAGE, auth_with_store))
}

/// `adapter` plugged into `component` (its WIT package, its `.wasm`).
pub fn compose_adapter(adapter: &Path, component: (&str, &Path)) -> Result<Vec<u8>, String> {
    compose::plug(("mangopay:keyvalue-adapter", adapter), component)
}

/// Where `cargo build -p <package> --target wasm32-wasip2 --release` writes a crate's
/// component, in cargo's target directory `target` ([`crate::target_root`]).
pub fn built(target: &Path, krate: &Crate) -> PathBuf {
    target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", krate.lib))
}

/// What `cargo xtask dist` does after building: each crate's `.wasm` (`built`) optimised into
/// `target/optimized/` (`jco opt` where Node.js is there, `npm ci` run in `jco/` first if
/// need be; said on one line of stderr when not), then every deployable written to `out`
/// with `metadata`. Returns the files written.
pub fn assemble(
    out: &Path,
    built: impl Fn(&Crate) -> PathBuf,
    metadata: &PackageMetadata,
) -> Result<Vec<PathBuf>, String> {
    let optimized = crate::target_dir("optimized")?;
    let jco = match optimize::jco_unavailable() {
        Some(why) => {
            eprintln!("jco opt (wasm-opt) SKIPPED: {why}; the components are not size-optimised");
            None
        }
        None => Some(optimize::jco()?),
    };
    let output = |krate: &Crate| optimized.join(format!("{}.wasm", krate.lib));
    let passes = optimize::WASM_OPT_ARGS
        .iter()
        .filter(|arg| !arg.starts_with("--enable-"))
        .fold("jco opt: wasm-opt".to_owned(), |line, arg| line + " " + arg)
        + ", ";
    for krate in crates() {
        let input = built(&krate);
        optimize::component(&input, &output(&krate), jco.as_deref())?;
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        eprintln!(
            "{}: {} -> {} bytes ({}{} dropped)",
            krate.lib,
            size(&input),
            size(&output(&krate)),
            if jco.is_some() { &passes } else { "" },
            optimize::DROPPED_SECTION
        );
    }
    write(out, output, metadata)
}

/// Writes every deployable to `out` with `metadata`; `built` gives the `.wasm` of a crate.
/// Returns the files written.
pub fn write(
    out: &Path,
    built: impl Fn(&Crate) -> PathBuf,
    metadata: &PackageMetadata,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    DEPLOYABLES
        .iter()
        .map(|deployable| {
            let wasm = built(&deployable.component);
            let bytes = match &deployable.adapter {
                None => std::fs::read(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))?,
                Some(adapter) => compose_adapter(&built(adapter), (deployable.package, &wasm))?,
            };
            let path = out.join(deployable.file);
            let metadata = PackageMetadata {
                name: deployable.package.to_owned(),
                ..metadata.clone()
            };
            let with_metadata = metadata::add_metadata(&bytes, &metadata)?;
            std::fs::write(&path, with_metadata).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        })
        .collect()
}
