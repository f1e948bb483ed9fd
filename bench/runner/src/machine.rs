//! The machine line of the report.

use std::fmt::Write as _;

/// CPUs, CPU model, OS and kernel, toolchain.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map_or_else(
            || std::env::consts::OS.to_owned(),
            |v| v.trim_matches('"').to_owned(),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| String::new(), |k| format!(", kernel {}", k.trim()));
    let mut out = format!(
        "{cpus} CPUs ({model}), {os} ({}{kernel})",
        std::env::consts::ARCH
    );
    let rustc = rustc_version();
    if !rustc.is_empty() {
        let _ = write!(out, ", {rustc}");
    }
    let _ = write!(out, ", wasmtime {}", wasmtime_version());
    out
}

/// `rustc --version`, or nothing.
fn rustc_version() -> String {
    std::process::Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The version of wasmtime in the workspace's `Cargo.lock`.
fn wasmtime_version() -> String {
    let lock =
        std::fs::read_to_string(host_test::workspace().join("Cargo.lock")).unwrap_or_default();
    lock.split("[[package]]")
        .find(|p| p.contains("\nname = \"wasmtime\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map_or("48", |v| v.trim_matches('"'))
        .to_owned()
}
