//! Builds every component the harness loads, once per `cargo test`/`cargo run`, and hands
//! the tests their paths as `env!` constants (`<PACKAGE>_WASM`, e.g.
//! `MANGOPAY_AUTH_STANDALONE_WASM`). Like wasmtime's test-programs: a nested
//! `cargo build --target wasm32-wasip2 --release` into a target directory of its own
//! (`components/` in cargo's target directory, `target/components`), since the outer cargo
//! holds the lock of the usual one.
//!
//! Each component is built in a cargo run of its own, as a user's
//! `cargo build -p <package> --target wasm32-wasip2 --release` would, so cargo unifies no
//! features across them and the sizes measured are the sizes users get.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Cargo's target directory and the build command, as xtask has them.
use xtask_target as target;

/// (package, library name) of every component the harness uses.
const COMPONENTS: &[(&str, &str)] = &[
    ("mangopay-auth-standalone", "mangopay_auth_standalone"),
    (
        "mangopay-auth-with-token-store",
        "mangopay_auth_with_token_store",
    ),
    (
        "mangopay-auth-keyvalue-draft2",
        "mangopay_auth_keyvalue_draft2",
    ),
    (
        "mangopay-auth-keyvalue-draft",
        "mangopay_auth_keyvalue_draft",
    ),
    ("mangopay-auth-middleware", "mangopay_auth_middleware"),
    ("list-users", "list_users"),
    ("floor-auth", "floor_auth"),
    ("floor-const", "floor_const"),
    ("users-service", "users_service"),
    ("floor-service", "floor_service"),
    ("users-p3", "users_p3"),
    ("floor-middleware", "floor_middleware"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest.parent().expect("host-test lives in the workspace");
    for watched in [
        "src",
        "Cargo.toml",
        "Cargo.lock",
        "wit",
        "vendor/wit",
        "components",
        "examples/list-users/src",
        "examples/list-users/wit",
        "examples/list-users/Cargo.toml",
        "bench/floor-auth",
        "bench/floor-const",
        "bench/floor-service",
        "bench/floor-middleware",
        "examples/users-service/src",
        "examples/users-service/wit",
        "examples/users-service/Cargo.toml",
        "examples/users-p3/src",
        "examples/users-p3/wit",
        "examples/users-p3/Cargo.toml",
    ] {
        println!(
            "cargo::rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    // Where the outer cargo builds (`CARGO_TARGET_DIR`, `build.target-dir`, or
    // `<workspace>/target`): the nested build goes to `components/` there.
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = target::cargo_target_dir(&cargo, workspace)
        .unwrap_or_else(|e| panic!("finding cargo's target directory: {e}"))
        .join("components");
    ensure_wasm_target();
    for (package, lib) in COMPONENTS {
        build(workspace, &target_dir, package);
        let wasm = target_dir.join(format!("wasm32-wasip2/release/{lib}.wasm"));
        let key = package.to_uppercase().replace('-', "_");
        println!("cargo::rustc-env={key}_WASM={}", wasm.display());
    }
}

fn build(workspace: &Path, target_dir: &Path, package: &str) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = target::wasm_release_build(&cargo, workspace, package, target_dir);
    command
        // What the outer cargo sets for build scripts must not leak into the nested build
        // (`CARGO_ENCODED_RUSTFLAGS` is `wasm_release_build`'s own).
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_PROFILE_RELEASE_DEBUG");
    let output = command.output().expect("cargo runs");
    if !output.status.success() {
        panic!(
            "building {package} for wasm32-wasip2 failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A fresh machine lacks the wasm32-wasip2 standard library: add it with rustup, so that the
/// README's two commands need no set-up step of their own.
fn ensure_wasm_target() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if sysroot.is_some_and(|s| s.join("lib/rustlib/wasm32-wasip2").is_dir()) {
        return;
    }
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "the wasm32-wasip2 target is missing and `rustup target add wasm32-wasip2` failed"
    );
}
