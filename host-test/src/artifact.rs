//! Builds the component once per process and returns the path of its `.wasm`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The release `.wasm` of the mangopay-auth component, built on first use with the same
/// cargo that runs the tests (`$MANGOPAY_AUTH_WASM` skips the build and names a file).
pub fn component_wasm() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os("MANGOPAY_AUTH_WASM") {
            return PathBuf::from(path);
        }
        build("mangopay-auth", "mangopay_auth")
    })
}

/// The release `.wasm` of world `component-with-store` (`$MANGOPAY_AUTH_STORE_WASM` skips
/// the build).
pub fn store_component_wasm() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os("MANGOPAY_AUTH_STORE_WASM") {
            return PathBuf::from(path);
        }
        build("mangopay-auth-store", "mangopay_auth_store")
    })
}

/// `cargo rustc -p <package> --target wasm32-wasip2 --release --crate-type cdylib`, returning
/// the artifact that cargo reports for `<lib_name>`. The crate type is forced because the root
/// crate is also an `rlib` (for fuzzing, property tests and the native benchmark row), and
/// building both types costs the `.wasm` about 50 KB that LTO removes from a lone cdylib.
pub fn build(package: &str, lib_name: &str) -> PathBuf {
    ensure_target();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host-test lives in the workspace");
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "rustc",
            "-p",
            package,
            "--target",
            "wasm32-wasip2",
            "--release",
        ])
        .args(["--crate-type", "cdylib"])
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building {package} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == lib_name)
        .flat_map(|msg| msg["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
        .unwrap_or_else(|| panic!("cargo reported no .wasm for {lib_name}"))
}

/// A fresh machine lacks the wasm32-wasip2 standard library: add it with rustup, so that the
/// README's commands need no set-up step of their own.
fn ensure_target() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = sysroot.is_some_and(|s| s.join("lib/rustlib/wasm32-wasip2").is_dir());
    if !installed {
        eprintln!("installing the wasm32-wasip2 target with rustup");
        let _ = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status();
    }
}
