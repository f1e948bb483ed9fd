//! The report: Markdown, printed as it is built and written to a file at the end; the
//! targets it checks.

use crate::machine::machine;
use std::path::Path;

/// The component's release `.wasm`, at most.
pub const MAX_SIZE_KIB: f64 = 200.0;
/// A cached `authorize-request`, at most this many times the floor component's.
pub const MAX_CACHED_RATIO: f64 = 1.2;
/// The per-request path (a fresh instance, `client.create`, the token from the shared store,
/// `authorize-request`), in-process against a fresh floor-auth instance and one call, and
/// served over HTTP (`GET /authorize` of the composed users-service) against floor-service:
/// at most this many times the floor's.
pub const MAX_PER_REQUEST_RATIO: f64 = 1.5;
/// A fresh instance's first token, at most this many times the native client's.
pub const MAX_COLD_RATIO: f64 = 2.0;

/// The report, built as Markdown and printed as it is.
#[derive(Default)]
pub struct Report {
    text: String,
}

impl Report {
    pub fn line(&mut self, line: impl AsRef<str>) {
        println!("{}", line.as_ref());
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        self.line(format!("| {} |", header.join(" | ")));
        self.line(format!(
            "|{}",
            header.iter().map(|_| "---|").collect::<String>()
        ));
        for row in rows {
            self.line(format!("| {} |", row.join(" | ")));
        }
        self.line("");
    }

    /// The title, the machine, and how to read the figures.
    pub fn header(&mut self) {
        self.line("# mangopay-auth benchmark");
        self.line("");
        self.line(format!("Machine: {}", machine()));
        self.line("");
        self.line(
            "Every figure is the median over rounds of interleaved batches (range: fastest – \
             slowest batch); every ratio is the median of the per-round ratios of two figures \
             measured back to back in this run.",
        );
        self.line("");
    }

    /// Writes the report to `out`, creating its directory.
    pub fn write(&self, out: &Path) -> Result<(), String> {
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(out, &self.text).map_err(|e| format!("{}: {e}", out.display()))
    }
}

pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}
