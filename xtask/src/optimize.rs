//! Size post-processing of a built component for `cargo xtask dist` (never the test path: it
//! takes seconds per component): binaryen's `wasm-opt -Oz` on every core module through
//! `jco opt` (jco pinned in `jco/package-lock.json`, installed there with `npm ci` when missing
//! or older than the lockfile), then the `component-name` custom section dropped (debug names
//! wit-component adds, ~10 KB). Without Node.js (or without npm to install jco), only the
//! section is dropped.

use crate::{install, workspace};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// binaryen's size optimisation, with the WebAssembly features Rust's wasm32-wasip2 target
/// emits enabled (wasm-opt refuses instructions of a feature that is not). Passes run in
/// order: `-Oz`, then the control flow flattened and rebuilt by the Relooper (`--flatten
/// --rereloop`) and `-Oz` twice more, which takes ~1% (2.2 KB) more off the standalone
/// component than `-Oz` alone (`--converge` takes 0.1%) for a few more seconds.
pub const WASM_OPT_ARGS: &[&str] = &[
    "-Oz",
    "--flatten",
    "--rereloop",
    "-Oz",
    "-Oz",
    "--enable-bulk-memory",
    "--enable-bulk-memory-opt",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-multivalue",
    "--enable-reference-types",
];

/// The custom section dropped from every component: names for debugging only.
pub const DROPPED_SECTION: &str = "component-name";

/// `jco/`: the pinned jco and preview2-shim (`package.json`, `package-lock.json`) and the
/// harness's Node test.
pub fn jco_dir() -> PathBuf {
    workspace().join("jco")
}

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

/// `jco/node_modules` if `npm ci` has installed it from the current lockfile: npm's record of
/// the install (`node_modules/.package-lock.json`) at least as new as `package-lock.json`.
fn installed_modules() -> Option<PathBuf> {
    let dir = jco_dir();
    let modules = dir.join("node_modules");
    let installed = modified(&modules.join(".package-lock.json"))?;
    let locked = modified(&dir.join("package-lock.json"))?;
    (installed >= locked && modules.join(".bin/jco").exists()).then_some(modules)
}

/// `jco/node_modules`, installed from the lockfile with `npm ci` (once per run, under the
/// install lock) where it is missing or older than `jco/package-lock.json`. Used by
/// `cargo xtask dist` and by the harness's jco test alike.
pub fn jco_modules() -> Result<PathBuf, String> {
    let dir = jco_dir();
    install::once(
        "jco's npm packages (jco/node_modules)",
        installed_modules,
        || {
            eprintln!(
                "installing jco and preview2-shim: npm ci in {}",
                dir.display()
            );
            install::run(
                "npm ci",
                Command::new("npm")
                    .current_dir(&dir)
                    .args(["ci", "--no-audit", "--no-fund"]),
            )
        },
        &format!("cd {} && npm ci", dir.display()),
    )
}

/// Why `jco opt` cannot run here, if it cannot: Node.js is not on PATH, or jco is not
/// installed and npm, which would install it, is not.
pub fn jco_unavailable() -> Option<String> {
    if !install::runs("node") {
        return Some("node (Node.js) is not on PATH".into());
    }
    if installed_modules().is_none() && !install::runs("npm") {
        return Some("npm is not on PATH to install jco (`npm ci` in jco/)".into());
    }
    None
}

/// The jco CLI of `jco/`, `npm ci` run there first if need be ([`jco_modules`]). Callers check
/// [`jco_unavailable`] first; an `Err` here is an install that failed.
pub fn jco() -> Result<PathBuf, String> {
    Ok(jco_modules()?.join(".bin/jco"))
}

/// Writes the optimised `input` to `output`: `jco opt` if `jco` is given, then without the
/// `component-name` section.
pub fn component(input: &Path, output: &Path, jco: Option<&Path>) -> Result<(), String> {
    let bytes = match jco {
        Some(cli) => {
            let status = Command::new("node")
                .arg(cli)
                .args(["opt", "--quiet"])
                .arg(input)
                .arg("-o")
                .arg(output)
                .arg("--")
                .args(WASM_OPT_ARGS)
                .status()
                .map_err(|e| format!("node: {e}"))?;
            if !status.success() {
                return Err(format!("jco opt {} failed", input.display()));
            }
            std::fs::read(output).map_err(|e| format!("{}: {e}", output.display()))?
        }
        None => std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?,
    };
    let stripped = without_custom_section(&bytes, DROPPED_SECTION)?;
    std::fs::write(output, stripped).map_err(|e| format!("{}: {e}", output.display()))
}

/// `wasm` (a component or module) without its top-level custom sections named `name`; every
/// other byte is kept as it is.
pub fn without_custom_section(wasm: &[u8], name: &str) -> Result<Vec<u8>, String> {
    let truncated = || "truncated WebAssembly binary".to_owned();
    let header = wasm.get(..8).ok_or_else(truncated)?;
    if !header.starts_with(b"\0asm") {
        return Err("not a WebAssembly binary".into());
    }
    let mut out = header.to_vec();
    let mut rest = wasm.get(8..).ok_or_else(truncated)?;
    while let Some((&id, after_id)) = rest.split_first() {
        let (size, payload) = leb128(after_id).ok_or_else(truncated)?;
        let body = payload.get(..size).ok_or_else(truncated)?;
        let section_len = 1 + (after_id.len() - payload.len()) + size;
        let section = rest.get(..section_len).ok_or_else(truncated)?;
        let named = leb128(body)
            .and_then(|(len, name_and_data)| name_and_data.get(..len))
            .is_some_and(|n| n == name.as_bytes());
        if !(id == 0 && named) {
            out.extend_from_slice(section);
        }
        rest = rest.get(section_len..).ok_or_else(truncated)?;
    }
    Ok(out)
}

/// An unsigned LEB128 number (at most 32 bits, as section sizes are) and what follows it.
fn leb128(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut value = 0usize;
    for (i, &byte) in bytes.iter().enumerate().take(5) {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, bytes.get(i + 1..)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_only_the_named_custom_section() {
        let mut wasm = b"\0asm\x0d\0\x01\0".to_vec();
        let keep = [0u8, 6, 5, b'o', b't', b'h', b'e', b'r'];
        let mut drop = vec![0u8, 15, 14];
        drop.extend_from_slice(b"component-name");
        let code = [1u8, 2, 0xaa, 0xbb];
        for section in [&keep[..], &drop[..], &code[..]] {
            wasm.extend_from_slice(section);
        }
        let mut expected = b"\0asm\x0d\0\x01\0".to_vec();
        expected.extend_from_slice(&keep);
        expected.extend_from_slice(&code);
        assert_eq!(
            without_custom_section(&wasm, "component-name"),
            Ok(expected)
        );
        assert!(without_custom_section(&wasm[..wasm.len() - 1], "x").is_err());
        assert!(without_custom_section(b"\0asm", "x").is_err());
    }
}
