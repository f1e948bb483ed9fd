//! Section 5, size: the release `.wasm` of both worlds and of the floors.

use crate::report::{MAX_SIZE_KIB, Report, verdict};
use crate::setup::Setup;
use host_test::artifact;
use std::path::Path;

pub fn section(_: &Setup, report: &mut Report) -> Result<(), String> {
    report.line("## 5. Size of the release `.wasm`");
    report.line("");
    let component = artifact::component_wasm();
    let rows = [
        size_row("mangopay-auth (world `standalone`)", component)?,
        size_row(
            "mangopay-auth (world `with-token-store`)",
            artifact::store_component_wasm(),
        )?,
        size_row("floor-auth (bench floor)", artifact::floor_auth_wasm())?,
        size_row("floor-const (bench floor)", artifact::floor_const_wasm())?,
    ];
    report.table(&["artifact", "bytes", "KiB"], &rows);
    let size_kib = bytes(component)? as f64 / 1024.0;
    report.line(format!(
        "Target ≤ {MAX_SIZE_KIB} KiB for the component: {} ({size_kib:.1} KiB).",
        verdict(size_kib <= MAX_SIZE_KIB)
    ));
    report.line("");
    Ok(())
}

fn bytes(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn size_row(name: &str, path: &Path) -> Result<Vec<String>, String> {
    let bytes = bytes(path)?;
    Ok(vec![
        name.to_owned(),
        bytes.to_string(),
        format!("{:.1}", bytes as f64 / 1024.0),
    ])
}
