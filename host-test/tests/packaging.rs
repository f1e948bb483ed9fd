//! Packaging: what every built component imports and exports, decoded from the `.wasm` with
//! wit-component (the library behind `wasm-tools component wit`). Each artifact must export
//! exactly its intended interface or function, and import nothing but the WASI 0.2 interfaces
//! a token client needs (plus, where intended, a `mangopay:auth` interface): no stray
//! `wasi:http/incoming-handler` export pulled in by a dependency, no filesystem or sockets.
//!
//! The decoded world of each artifact is written to `target/compose/<name>.wit` for review.

use host_test::{artifact, compose, publish};
use std::path::{Path, PathBuf};
use std::process::Command;
use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{Resolve, WorldItem, WorldKey};

/// The WASI 0.2 interfaces a component here may import, without versions: clocks, random,
/// environment and std's stdio/exit/terminal (Rust's std links them), streams and polling, and
/// outgoing HTTP. Notably absent: wasi:filesystem, wasi:sockets, wasi:http/incoming-handler.
const ALLOWED_WASI: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stderr",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stderr",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:http/outgoing-handler",
    "wasi:http/types",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:random/random",
];

const AUTH: &str = "mangopay:auth/auth@0.1.0";
const TOKEN_STORE: &str = "mangopay:auth/token-store@0.1.0";

/// What a component's world imports and exports.
struct Surface {
    name: String,
    imports: Vec<String>,
    exports: Vec<String>,
    wit: String,
    resolve: Resolve,
    world: wit_parser::WorldId,
}

fn surface(name: &str, wasm: &Path) -> Surface {
    let bytes = std::fs::read(wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()));
    let decoded = wit_component::decode(&bytes)
        .unwrap_or_else(|e| panic!("decoding {}: {e:#}", wasm.display()));
    let DecodedWasm::Component(resolve, world) = decoded else {
        panic!("{} is a WIT package, not a component", wasm.display());
    };
    let names = |items: &indexmap::IndexMap<WorldKey, WorldItem>| -> Vec<String> {
        items
            .iter()
            .filter(|(_, item)| !matches!(item, WorldItem::Type { .. }))
            .map(|(key, _)| resolve.name_world_key(key))
            .collect()
    };
    let imports = names(&resolve.worlds[world].imports);
    let exports = names(&resolve.worlds[world].exports);
    let mut printer = WitPrinter::default();
    let package = resolve.worlds[world]
        .package
        .expect("a decoded world has a package");
    printer
        .print(&resolve, package, &[])
        .expect("print the decoded WIT");
    let wit = printer.output.to_string();
    std::fs::write(compose::out_dir().join(format!("{name}.wit")), &wit).expect("write the WIT");
    Surface {
        name: name.to_owned(),
        imports,
        exports,
        wit,
        resolve,
        world,
    }
}

impl Surface {
    fn assert_exports(&self, expected: &[&str]) {
        assert_eq!(
            self.exports, expected,
            "{}: exports differ from the intended ones; its world:\n{}",
            self.name, self.wit
        );
    }

    /// Every import is an allowed WASI 0.2 interface or one of `extra`, and each of
    /// `required` is imported.
    fn assert_imports(&self, extra: &[&str], required: &[&str]) {
        for import in &self.imports {
            let (unversioned, version) = import.split_once('@').unwrap_or((import, ""));
            let allowed = if unversioned.starts_with("wasi:") {
                ALLOWED_WASI.contains(&unversioned) && version.starts_with("0.2.")
            } else {
                extra.contains(&import.as_str())
            };
            assert!(
                allowed,
                "{}: unexpected import {import}; its world:\n{}",
                self.name, self.wit
            );
        }
        for name in required {
            assert!(
                self.imports
                    .iter()
                    .any(|i| i == name || i.starts_with(&format!("{name}@"))),
                "{}: does not import {name}; its world:\n{}",
                self.name,
                self.wit
            );
        }
    }

    /// The function names of an exported interface (`[method]client.get-token`, ...).
    fn exported_functions(&self, interface: &str) -> Vec<String> {
        let world = &self.resolve.worlds[self.world];
        let (_, item) = world
            .exports
            .iter()
            .find(|(key, _)| self.resolve.name_world_key(key) == interface)
            .unwrap_or_else(|| panic!("{}: no export {interface}", self.name));
        let WorldItem::Interface { id, .. } = item else {
            panic!("{}: {interface} is not an interface", self.name);
        };
        self.resolve.interfaces[*id]
            .functions
            .keys()
            .cloned()
            .collect()
    }
}

/// The full `auth` interface, as a host or a composing component uses it.
fn assert_full_auth_interface(surface: &Surface) {
    let functions = surface.exported_functions(AUTH);
    for function in [
        "get-token",
        "authorize-request",
        "check-response",
        "[static]client.create",
        "[method]client.get-token",
        "[method]client.authorize-request",
        "[method]client.check-response",
    ] {
        assert!(
            functions.iter().any(|f| f == function),
            "{}: {AUTH} lacks {function}; it has {functions:?}",
            surface.name
        );
    }
}

#[test]
fn the_auth_component_exports_only_the_auth_interface_and_imports_only_wasi() {
    let auth = surface("mangopay-auth", artifact::component_wasm());
    auth.assert_exports(&[AUTH]);
    auth.assert_imports(
        &[],
        &["wasi:http/outgoing-handler", "wasi:clocks/monotonic-clock"],
    );
    assert_full_auth_interface(&auth);
}

#[test]
fn the_example_exports_list_users_and_imports_the_auth_interface() {
    let example = surface("list-users", compose::example_wasm());
    example.assert_exports(&["list-users"]);
    example.assert_imports(&[AUTH], &[AUTH, "wasi:http/outgoing-handler"]);
}

#[test]
fn the_composed_component_exports_list_users_and_imports_only_wasi() {
    let composed = surface("list-users-composed", compose::composed_wasm());
    composed.assert_exports(&["list-users"]);
    // The auth interface is satisfied inside the composition: no mangopay import is left.
    composed.assert_imports(&[], &["wasi:http/outgoing-handler"]);
}

/// The second world (`component-with-store`, crate `store-component/`), when it is part of
/// the workspace: it exports the same interface and imports the host's token store.
#[test]
fn the_store_component_exports_the_auth_interface_and_imports_the_token_store() {
    const PACKAGE: &str = "mangopay-auth-store";
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if !workspace.join("store-component/Cargo.toml").exists() {
        eprintln!("no store-component/ crate: nothing to check");
        return;
    }
    if !workspace_members(&workspace).iter().any(|m| m == PACKAGE) {
        eprintln!(
            "store-component/ exists but {PACKAGE} is not a workspace member yet: not checked"
        );
        return;
    }
    let wasm: PathBuf = artifact::build(PACKAGE, "mangopay_auth_store");
    let store = surface("mangopay-auth-store", &wasm);
    store.assert_exports(&[AUTH]);
    store.assert_imports(&[TOKEN_STORE], &[TOKEN_STORE, "wasi:http/outgoing-handler"]);
    assert_full_auth_interface(&store);
}

/// Package names of the workspace members, from `cargo metadata`.
fn workspace_members(workspace: &Path) -> Vec<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata failed");
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_component_still_exports_what_the_example_was_built_against() {
    // examples/list-users/wit/deps/mangopay-auth-0.1.0 holds `mangopay:auth@0.1.0` as
    // `wkg fetch` wrote it (examples/list-users/wkg.toml). Whatever the root wit/ becomes, the
    // component must still export every function the example was built against.
    let deps = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/list-users/wit/deps/mangopay-auth-0.1.0/package.wit");
    let text = std::fs::read_to_string(&deps).expect("the pinned WIT dependency");
    assert!(
        text.starts_with("package mangopay:auth@0.1.0;"),
        "{}",
        deps.display()
    );
    let mut pinned = Resolve::default();
    let package = pinned
        .push_str(&deps, &text)
        .expect("the pinned dependency parses");
    let interface = pinned.packages[package].interfaces["auth"];
    let auth = surface("mangopay-auth", artifact::component_wasm());
    let exported = auth.exported_functions(AUTH);
    for name in pinned.interfaces[interface].functions.keys() {
        assert!(
            exported.contains(name),
            "the component no longer exports {name} of the pinned mangopay:auth@0.1.0"
        );
    }
}

#[test]
fn the_publishable_component_carries_the_wkg_metadata() {
    let metadata = publish::workspace_metadata(
        Some("https://example.invalid/mangopay-auth"),
        Some("0123abcd"),
    )
    .expect("wkg.toml and wit/auth.wit give the metadata");
    assert_eq!(metadata.name, "mangopay:auth");
    assert_eq!(metadata.version, "0.1.0");
    assert_eq!(metadata.license, "MIT OR Apache-2.0");
    assert!(metadata.description.contains("Mangopay"));

    let wasm = std::fs::read(artifact::component_wasm()).expect("read the component");
    let packaged = publish::add_metadata(&wasm, &metadata).expect("metadata added");
    let read = publish::read_metadata(&packaged).expect("metadata read back");
    let field = |name: &str| read.get(name).map(String::as_str);
    assert_eq!(field("name"), Some("mangopay:auth"));
    assert_eq!(field("version"), Some("0.1.0"));
    assert_eq!(field("licenses"), Some("MIT OR Apache-2.0"));
    assert_eq!(
        field("source"),
        Some("https://example.invalid/mangopay-auth")
    );
    assert_eq!(field("revision"), Some("0123abcd"));
    assert_eq!(field("description"), Some(metadata.description.as_str()));

    // Still the same component: same exports and imports.
    let path = compose::out_dir().join("mangopay-auth-packaged.wasm");
    std::fs::write(&path, &packaged).expect("write");
    let surface = surface("mangopay-auth-packaged", &path);
    surface.assert_exports(&[AUTH]);
    surface.assert_imports(&[], &["wasi:http/outgoing-handler"]);

    // No source URL anywhere: refused rather than published without one.
    if let Err(e) = publish::workspace_metadata(None, None) {
        assert!(e.contains("source"), "{e}");
    }
}

#[test]
fn the_package_name_and_version_come_from_the_wit_declaration() {
    assert_eq!(
        publish::wit_package("/// docs\npackage mangopay:auth@0.1.0;\n\ninterface auth {}"),
        Ok(("mangopay:auth".into(), "0.1.0".into()))
    );
    assert!(publish::wit_package("package mangopay:auth;").is_err());
}
