//! Composition with the Bytecode Alliance's wac libraries: a `.wac` document resolved by
//! `wac-parser` (what `wac compose` does) and `wac_graph::plug` (what `wac plug` does).

use indexmap::IndexMap;
use std::path::Path;
use wac_graph::types::{BorrowedPackageKey, Package};
use wac_graph::{CompositionGraph, EncodeOptions};

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Composes as the `.wac` file `wac` says, each package name of `deps` resolved to its file:
/// `wac compose <wac> --dep <name>=<file> …`.
pub fn with_wac_file(wac: &Path, deps: &[(&str, &Path)]) -> Result<Vec<u8>, String> {
    let source = std::fs::read_to_string(wac).map_err(|e| format!("{}: {e}", wac.display()))?;
    let document = wac_parser::Document::parse(&source)
        .map_err(|e| format!("parsing {}: {e:?}", wac.display()))?;
    let mut packages = IndexMap::new();
    for (name, path) in deps {
        packages.insert(
            BorrowedPackageKey {
                name,
                version: None,
            },
            read(path)?,
        );
    }
    document
        .resolve(packages)
        .map_err(|e| format!("resolving {}: {e:?}", wac.display()))?
        .encode(EncodeOptions::default())
        .map_err(|e| format!("encoding {}: {e:?}", wac.display()))
}

/// Plugs the exports of `plug` into the matching imports of `socket`:
/// `wac plug <socket> --plug <plug>`. Each is (package name, file).
pub fn plug(plug: (&str, &Path), socket: (&str, &Path)) -> Result<Vec<u8>, String> {
    let (plug_name, plug_path) = plug;
    let (socket_name, socket_path) = socket;
    plug_bytes(
        (plug_name, read(plug_path)?),
        (socket_name, read(socket_path)?),
    )
    .map_err(|e| {
        format!(
            "plugging {} into {}: {e}",
            plug_path.display(),
            socket_path.display()
        )
    })
}

/// [`plug`] of components in memory: each is (package name, component bytes).
pub fn plug_bytes(plug: (&str, Vec<u8>), socket: (&str, Vec<u8>)) -> Result<Vec<u8>, String> {
    let mut graph = CompositionGraph::new();
    let mut register = |(name, bytes): (&str, Vec<u8>)| {
        let package = Package::from_bytes(name, None, bytes, graph.types_mut())
            .map_err(|e| format!("{name}: {e:#}"))?;
        graph
            .register_package(package)
            .map_err(|e| format!("registering {name}: {e}"))
    };
    let plug = register(plug)?;
    let socket = register(socket)?;
    wac_graph::plug(&mut graph, vec![plug], socket).map_err(|e| format!("plug: {e:?}"))?;
    graph
        .encode(EncodeOptions::default())
        .map_err(|e| format!("encoding the plugged graph: {e:?}"))
}

/// Package names of the WASI 0.3 composition's parts.
pub const P3_SERVICE_PACKAGE: &str = "mangopay:service";
pub const P3_MIDDLEWARE_PACKAGE: &str = "mangopay:middleware";
pub const P3_ADAPTER_PACKAGE: &str = "mangopay:keyvalue-adapter";

/// The WASI 0.3 composition: `middleware` (exports `wasi:http/client@0.3.0`) plugged into the
/// `wasi:http/client@0.3.0` import of `service` (exports `wasi:http/handler@0.3.0`), after
/// `adapter` (exports `mangopay:auth/token-store@0.3.0`, such as the keyvalue adapters) was
/// plugged into the middleware's `token-store` import, when given: `wac plug <middleware>
/// --plug <adapter>`, then `wac plug <service> --plug <that>`.
///
/// The result exports the service's `wasi:http/handler@0.3.0` and imports what is left open:
/// WASI (0.2, what Rust's std imports), `wasi:http@0.3.0` types and client (the middleware's,
/// shared with the service's types), and the adapter's `wasi:keyvalue` (or, with no adapter,
/// the middleware's `token-store`).
pub fn middleware(
    service: &Path,
    middleware: &Path,
    adapter: Option<&Path>,
) -> Result<Vec<u8>, String> {
    let mut front = read(middleware)?;
    if let Some(adapter) = adapter {
        front = plug_bytes(
            (P3_ADAPTER_PACKAGE, read(adapter)?),
            (P3_MIDDLEWARE_PACKAGE, front),
        )
        .map_err(|e| {
            format!(
                "plugging {} into {}: {e}",
                adapter.display(),
                middleware.display()
            )
        })?;
    }
    plug_bytes(
        (P3_MIDDLEWARE_PACKAGE, front),
        (P3_SERVICE_PACKAGE, read(service)?),
    )
    .map_err(|e| {
        format!(
            "plugging {} into {}: {e}",
            middleware.display(),
            service.display()
        )
    })
}
