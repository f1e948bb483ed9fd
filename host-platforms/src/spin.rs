//! `spin up` with an example's shipped manifest (and copies of its component), from a
//! Spin binary found by [`crate::spin`].

use super::*;

/// The users-service's shipped Spin manifest.
pub fn spin_manifest_path() -> PathBuf {
    USERS_SERVICE.manifest_path()
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
    manifest
        .push_str("\n\n# Added by the platform tests (host-platforms/src/spin.rs): copies of\n");
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
