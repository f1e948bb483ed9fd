use super::*;
use crate::wash::yaml_value;

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
