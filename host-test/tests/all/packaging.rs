//! Packaging: what every built component imports and exports, decoded from the `.wasm` with
//! wit-component (the library behind `wasm-tools component wit`). Each artifact must export
//! exactly its intended interface or function, and import nothing but the WASI 0.2 interfaces
//! a token client needs (plus, where intended, a `mangopay:auth` interface): no stray
//! `wasi:http/incoming-handler` export pulled in by a dependency, no filesystem or sockets.
//!
//! The decoded world of each artifact is written to `target/compose/<name>.wit` for review.

use host_test::{artifact, compose};
use std::path::Path;
use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{Resolve, WorldItem, WorldKey};
use xtask::{dist, metadata, optimize};

/// The most `target/dist/mangopay-auth.wasm` may weigh once size-optimised: 200 KiB.
const STANDALONE_BUDGET: u64 = 200 * 1024;

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

const AUTH: &str = "mangopay:auth/auth@0.3.0";
const TOKEN_STORE: &str = "mangopay:auth/token-store@0.3.0";
/// What Spin links for the draft2 artifact besides WASI 0.2: its key-value store (no
/// `atomics`: their answers cannot be trusted as the platforms ship them) and the application
/// variables the adapter reads the settings from.
const SPIN_IMPORTS: &[&str] = &[
    "wasi:keyvalue/store@0.2.0-draft2",
    "wasi:config/store@0.2.0-draft-2024-09-27",
];
/// What wasmCloud links for the draft artifact besides WASI 0.2.
const WASMCLOUD_IMPORTS: &[&str] = &["wasi:keyvalue/store@0.2.0-draft"];
/// The middleware's export (and the client it wraps).
const CLIENT: &str = "wasi:http/client@0.3.0";
/// The middleware's imports besides WASI 0.2: WASI 0.3's and its store's (one list each).
const MIDDLEWARE_IMPORTS: &[&str] = &[
    CLIENT,
    "wasi:http/types@0.3.0",
    "wasi:clocks/monotonic-clock@0.3.0",
    "wasi:clocks/types@0.3.0",
    TOKEN_STORE,
];
const MIDDLEWARE_SPIN_IMPORTS: &[&str] = &[
    CLIENT,
    "wasi:http/types@0.3.0",
    "wasi:clocks/monotonic-clock@0.3.0",
    "wasi:clocks/types@0.3.0",
    "wasi:keyvalue/store@0.2.0-draft2",
    "wasi:config/store@0.2.0-draft-2024-09-27",
];
const MIDDLEWARE_WASMCLOUD_IMPORTS: &[&str] = &[
    CLIENT,
    "wasi:http/types@0.3.0",
    "wasi:clocks/monotonic-clock@0.3.0",
    "wasi:clocks/types@0.3.0",
    "wasi:keyvalue/store@0.2.0-draft",
];

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
    let names = |items: &wit_parser::IndexMap<WorldKey, WorldItem>| -> Vec<String> {
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
            let allowed = extra.contains(&import.as_str())
                || (ALLOWED_WASI.contains(&unversioned) && version.starts_with("0.2."));
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

/// The intended surface of each file `cargo xtask dist` writes: (exports, extra imports
/// allowed besides WASI 0.2, imports required).
fn intended(
    file: &str,
) -> Option<(
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
)> {
    match file {
        "mangopay-auth.wasm" => Some((
            &[AUTH],
            &[],
            &["wasi:http/outgoing-handler", "wasi:clocks/monotonic-clock"],
        )),
        "mangopay-auth-with-token-store.wasm" => Some((
            &[AUTH],
            &[TOKEN_STORE],
            &[TOKEN_STORE, "wasi:http/outgoing-handler"],
        )),
        // The adapters are composed in: no token-store import is left, only the platform's.
        "mangopay-auth-keyvalue-draft2.wasm" => Some((&[AUTH], SPIN_IMPORTS, SPIN_IMPORTS)),
        "mangopay-auth-keyvalue-draft.wasm" => {
            Some((&[AUTH], WASMCLOUD_IMPORTS, WASMCLOUD_IMPORTS))
        }
        // The middleware: no wasi:http/outgoing-handler (it sends through the client it
        // wraps), and the store as the WASI 0.2 worlds have it.
        "mangopay-auth-middleware.wasm" => {
            Some((&[CLIENT], MIDDLEWARE_IMPORTS, &[CLIENT, TOKEN_STORE]))
        }
        "mangopay-auth-middleware-keyvalue-draft2.wasm" => {
            Some((&[CLIENT], MIDDLEWARE_SPIN_IMPORTS, MIDDLEWARE_SPIN_IMPORTS))
        }
        "mangopay-auth-middleware-keyvalue-draft.wasm" => Some((
            &[CLIENT],
            MIDDLEWARE_WASMCLOUD_IMPORTS,
            MIDDLEWARE_WASMCLOUD_IMPORTS,
        )),
        _ => None,
    }
}

/// Everything in `target/dist/`, as `cargo xtask dist` writes it from the components the
/// build script built: each file exports exactly its interface, imports only what it should,
/// and carries the registry metadata.
#[test]
fn every_deployable_in_target_dist_has_its_intended_surface_and_metadata() {
    let meta = metadata::workspace_metadata(None, None).expect("wkg.toml and wit/auth.wit");
    let out = xtask::target_dir("dist").expect("target/dist");
    let built = |c: &dist::Crate| match c.package {
        "mangopay-auth-standalone" => artifact::component_wasm().to_path_buf(),
        "mangopay-auth-with-token-store" => artifact::store_component_wasm().to_path_buf(),
        "mangopay-auth-keyvalue-draft2" => artifact::keyvalue_draft2_wasm().to_path_buf(),
        "mangopay-auth-keyvalue-draft" => artifact::keyvalue_draft_wasm().to_path_buf(),
        "mangopay-auth-middleware" => host_test::artifact::middleware_wasm().to_path_buf(),
        other => panic!("the harness does not build {other}: add it to build.rs"),
    };
    let written = dist::assemble(&out, built, &meta).expect("dist writes");
    assert_eq!(written.len(), dist::DEPLOYABLES.len());
    // Size-optimised (`jco opt`) wherever Node.js is: the standalone deployable fits its budget.
    if optimize::jco_unavailable().is_none() {
        let standalone = out.join("mangopay-auth.wasm");
        let size = std::fs::metadata(&standalone).expect("written").len();
        assert!(
            size <= STANDALONE_BUDGET,
            "{}: {size} bytes, over its {STANDALONE_BUDGET}-byte budget",
            standalone.display()
        );
    }
    let mut checked = 0;
    for entry in std::fs::read_dir(&out).expect("read target/dist") {
        let path = entry.expect("entry").path();
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default()
            .to_owned();
        let (exports, extra, required) =
            intended(&file).unwrap_or_else(|| panic!("target/dist/{file}: no intended surface"));
        let surface = surface(&file, &path);
        surface.assert_exports(exports);
        surface.assert_imports(extra, required);
        let package = match exports {
            [AUTH] => {
                assert_full_auth_interface(&surface);
                dist::AUTH_PACKAGE
            }
            _ => {
                assert_eq!(surface.exported_functions(CLIENT), ["send"], "{file}");
                dist::MIDDLEWARE_PACKAGE
            }
        };
        let bytes = std::fs::read(&path).expect("read");
        // Panic locations name crates, not the build machine's cargo home (its length would
        // change the size, its user name would ship).
        let home = b"/.cargo/registry/";
        assert!(
            !bytes.windows(home.len()).any(|w| w == home),
            "{file} carries a path of cargo's registry"
        );
        let read = metadata::read_metadata(&bytes).expect("metadata");
        assert_eq!(
            read.get("name").map(String::as_str),
            Some(package),
            "{file}"
        );
        assert_eq!(read.get("version"), Some(&meta.version), "{file}");
        checked += 1;
    }
    assert_eq!(
        checked,
        dist::DEPLOYABLES.len(),
        "target/dist holds exactly the deployables"
    );
}

#[test]
fn the_example_exports_list_users_and_imports_the_auth_interface() {
    let example = surface("list-users", artifact::example_wasm());
    example.assert_exports(&compose::EXPORTS);
    example.assert_imports(&[AUTH], &[AUTH, "wasi:http/outgoing-handler"]);
}

#[test]
fn the_composed_component_exports_list_users_and_imports_only_wasi() {
    let composed = surface("list-users-composed", compose::composed_wasm());
    composed.assert_exports(&compose::EXPORTS);
    // The auth interface is satisfied inside the composition: no mangopay import is left.
    composed.assert_imports(&[], &["wasi:http/outgoing-handler"]);
}

#[test]
fn the_component_still_exports_what_the_example_was_built_against() {
    // examples/list-users/wit/deps/mangopay-auth-0.3.0 holds `mangopay:auth@0.3.0` as
    // `wkg fetch` wrote it (examples/list-users/wkg.toml). Whatever the root wit/ becomes, the
    // component must still export every function the example was built against.
    let deps = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/list-users/wit/deps/mangopay-auth-0.3.0/package.wit");
    let text = std::fs::read_to_string(&deps).expect("the pinned WIT dependency");
    assert!(
        text.starts_with("package mangopay:auth@0.3.0;"),
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
            "the component no longer exports {name} of the pinned mangopay:auth@0.3.0"
        );
    }
}

#[test]
fn the_publishable_component_carries_the_wkg_metadata() {
    let meta = metadata::workspace_metadata(
        Some("https://example.invalid/mangopay-auth"),
        Some("0123abcd"),
    )
    .expect("wkg.toml and wit/auth.wit give the metadata");
    assert_eq!(meta.name, "mangopay:auth");
    assert_eq!(meta.version, "0.3.0");
    assert_eq!(meta.license, "MIT OR Apache-2.0");
    assert!(meta.description.contains("Mangopay"));

    let wasm = std::fs::read(artifact::component_wasm()).expect("read the component");
    let packaged = metadata::add_metadata(&wasm, &meta).expect("metadata added");
    let read = metadata::read_metadata(&packaged).expect("metadata read back");
    let field = |name: &str| read.get(name).map(String::as_str);
    assert_eq!(field("name"), Some("mangopay:auth"));
    assert_eq!(field("version"), Some("0.3.0"));
    assert_eq!(field("licenses"), Some("MIT OR Apache-2.0"));
    assert_eq!(
        field("source"),
        Some("https://example.invalid/mangopay-auth")
    );
    assert_eq!(field("revision"), Some("0123abcd"));
    assert_eq!(field("description"), Some(meta.description.as_str()));

    // Still the same component: same exports and imports.
    let path = compose::out_dir().join("mangopay-auth-packaged.wasm");
    std::fs::write(&path, &packaged).expect("write");
    let surface = surface("mangopay-auth-packaged", &path);
    surface.assert_exports(&[AUTH]);
    surface.assert_imports(&[], &["wasi:http/outgoing-handler"]);

    // No source URL anywhere: refused rather than published without one.
    let unsourced = metadata::workspace_metadata(None, None).expect("metadata");
    if unsourced.source.is_none() {
        let e = metadata::write_package(&path, &unsourced).expect_err("refused");
        assert!(e.contains("source"), "{e}");
    }
}

#[test]
fn the_package_name_and_version_come_from_the_wit_declaration() {
    assert_eq!(
        metadata::wit_package("/// docs\npackage mangopay:auth@0.1.0;\n\ninterface auth {}"),
        Ok(("mangopay:auth".into(), "0.1.0".into()))
    );
    assert!(metadata::wit_package("package mangopay:auth;").is_err());
}

#[test]
fn the_keyvalue_adapters_export_the_token_store_over_their_platforms_keyvalue() {
    let spin = surface(
        "mangopay-auth-keyvalue-draft2",
        artifact::keyvalue_draft2_wasm(),
    );
    // The environment export is what the auth component's settings are read through.
    spin.assert_exports(&["wasi:cli/environment@0.2.12", TOKEN_STORE]);
    spin.assert_imports(SPIN_IMPORTS, SPIN_IMPORTS);
    let wasmcloud = surface(
        "mangopay-auth-keyvalue-draft",
        artifact::keyvalue_draft_wasm(),
    );
    wasmcloud.assert_exports(&[TOKEN_STORE]);
    wasmcloud.assert_imports(WASMCLOUD_IMPORTS, WASMCLOUD_IMPORTS);
}
