//! `wash dev` with an example's shipped `.wash/config.yaml`, from the wash of
//! [`crate::wash`].

use super::*;

/// The users-service's shipped wash project configuration.
pub fn wash_config_path() -> PathBuf {
    USERS_SERVICE.wash_config_path()
}

/// The value of `key:` in `yaml` (the first line that sets it), unquoted.
pub(crate) fn yaml_value(yaml: &str, key: &str) -> Option<String> {
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
