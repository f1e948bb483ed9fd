//! Section 5, size: the release `.wasm` of both worlds, of the WASI 0.3 middleware and of the
//! floors.

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
        size_row(
            "mangopay-auth-middleware (WASI 0.3, world `middleware`)",
            host_test::artifact::middleware_wasm(),
        )?,
        size_row("floor-auth (bench floor)", artifact::floor_auth_wasm())?,
        size_row("floor-const (bench floor)", artifact::floor_const_wasm())?,
        size_row(
            "floor-middleware (bench floor, WASI 0.3)",
            host_test::artifact::floor_middleware_wasm(),
        )?,
    ];
    report.table(&["artifact", "bytes", "KiB"], &rows);
    // The target is for the deployable: the same file after `cargo xtask dist`'s optimisation.
    match xtask::optimize::jco() {
        Ok(jco) => {
            let out = xtask::target_dir("bench")?;
            let mut rows = Vec::new();
            let mut deployable = 0;
            for (name, wasm) in [
                ("standalone", component),
                ("with-token-store", artifact::store_component_wasm()),
                ("middleware", host_test::artifact::middleware_wasm()),
            ] {
                let optimised = out.join(format!("{name}.wasm"));
                xtask::optimize::component(wasm, &optimised, Some(&jco))?;
                let row = size_row(
                    &format!(
                        "world `{name}`, optimised as `cargo xtask dist` does (without its registry metadata)"
                    ),
                    &optimised,
                )?;
                if name == "standalone" {
                    deployable = bytes(&optimised)?;
                }
                rows.push(row);
            }
            report.table(&["deployable", "bytes", "KiB"], &rows);
            let size_kib = deployable as f64 / 1024.0;
            report.line(format!(
                "Target ≤ {MAX_SIZE_KIB} KiB for the standalone deployable: {} ({size_kib:.1} KiB).",
                verdict(size_kib <= MAX_SIZE_KIB)
            ));
        }
        Err(why) => report.line(format!(
            "The ≤ {MAX_SIZE_KIB} KiB target is for the deployable (`cargo xtask dist`), which \
             needs Node.js to optimise: not measured ({why})."
        )),
    }
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
