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
    let mut graph = CompositionGraph::new();
    let mut register = |(name, path): (&str, &Path)| {
        let package = Package::from_file(name, None, path, graph.types_mut())
            .map_err(|e| format!("{}: {e:#}", path.display()))?;
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
