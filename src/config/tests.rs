use super::*;

fn config(client_id: &str, api_key: &str, base_url: Option<&str>) -> ClientConfig {
    let mut config = ClientConfig::new(
        client_id.into(),
        Secret::new(api_key.into()),
        Environment::Sandbox,
    );
    config.base_url = base_url.map(Into::into);
    config
}

#[test]
fn defaults() {
    let s = Settings::new(config("id", "key", None)).expect("valid");
    assert_eq!(s.base.to_url(), "https://api.sandbox.mangopay.com");
    assert_eq!(s.refresh_margin, Duration::from_secs(60));
    assert_eq!(s.timeouts.connect, Duration::from_secs(5));
    assert_eq!(s.retry.max_attempts, 3);
    assert_eq!(s.retry.budget, Duration::from_secs(10));
    assert_eq!(s.cool_down.initial, Duration::from_secs(60));
    assert_eq!(s.cool_down.max, Duration::from_secs(900));
    let mut production = config("id", "key", None);
    production.environment = Environment::Production;
    let s = Settings::new(production).expect("valid");
    assert_eq!(s.base.to_url(), "https://api.mangopay.com");
}

#[test]
fn base_url_override_keeps_port() {
    let s = Settings::new(config("id", "key", Some("http://127.0.0.1:8080/"))).expect("valid");
    assert_eq!(s.base.to_url(), "http://127.0.0.1:8080");
}

#[test]
fn refusals_never_echo_values() {
    let cases = [
        config("", "key", None),
        config("a:b", "key", None),
        config("a\nb", "key", None),
        config("id", "", None),
        config("id", "key", Some("http://api.mangopay.com")),
        config("id", "key", Some("https://secret-key@api.mangopay.com")),
    ];
    for case in cases {
        let error = Settings::new(case).expect_err("refused");
        let text = format!("{error:?}");
        assert!(
            !text.contains("secret-key") && !text.contains("a:b"),
            "{text}"
        );
        assert!(
            matches!(error, Error::InvalidConfig(_) | Error::InsecureUrl(_)),
            "{text}"
        );
    }
    let mut zero = config("id", "key", None);
    zero.timeouts = Some(TimeoutsConfig {
        connect_ms: Some(0),
        ..TimeoutsConfig::default()
    });
    assert!(matches!(Settings::new(zero), Err(Error::InvalidConfig(_))));
    for attempts in [0, 11] {
        let mut c = config("id", "key", None);
        c.retry = Some(RetryConfig {
            max_attempts: Some(attempts),
            ..RetryConfig::default()
        });
        assert!(matches!(Settings::new(c), Err(Error::InvalidConfig(_))));
    }
    let mut c = config("id", "key", None);
    c.cool_down = Some(CoolDownConfig {
        initial_seconds: Some(120),
        max_seconds: Some(60),
    });
    assert!(matches!(Settings::new(c), Err(Error::InvalidConfig(_))));
}

/// No token request could end within a zero budget: refused, as a zero timeout is.
#[test]
fn a_zero_retry_budget_is_refused() {
    let mut c = config("id", "key", None);
    c.retry = Some(RetryConfig {
        budget_ms: Some(0),
        ..RetryConfig::default()
    });
    assert!(matches!(
        Settings::new(c),
        Err(Error::InvalidConfig(m)) if m == "retry.budget-ms must be positive"
    ));
    let mut c = config("id", "key", None);
    c.retry = Some(RetryConfig {
        budget_ms: Some(1),
        ..RetryConfig::default()
    });
    assert_eq!(
        Settings::new(c).expect("valid").retry.budget,
        Duration::from_millis(1)
    );
}

#[test]
fn settings_debug_hides_the_credential() {
    let s = Settings::new(config("id", "key-123", None)).expect("valid");
    let text = format!("{s:?}");
    assert!(
        !text.contains("key-123") && !text.contains("aWQ6a2V5LTEyMw"),
        "{text}"
    );
}

#[test]
fn env_vars() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let c = from_env(vars(&[
        ("MANGOPAY_CLIENT_ID", "id"),
        ("MANGOPAY_API_KEY", "key"),
        ("MANGOPAY_ENVIRONMENT", "Production"),
    ]))
    .expect("valid");
    assert_eq!(c.environment, Environment::Production);
    assert_eq!(c.base_url, None);
    assert!(matches!(
        from_env(vars(&[("MANGOPAY_CLIENT_ID", "id")])),
        Err(Error::InvalidConfig(m)) if m.starts_with("MANGOPAY_API_KEY is not set")
    ));
    assert!(matches!(
        from_env(vars(&[
            ("MANGOPAY_CLIENT_ID", "id"),
            ("MANGOPAY_API_KEY", "key"),
            ("MANGOPAY_ENVIRONMENT", "prod"),
        ])),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn mtls_environments_select_the_mtls_hosts() {
    for (value, environment, url) in [
        ("sandbox-mtls", Environment::SandboxMtls, SANDBOX_MTLS_URL),
        (
            "Production-MTLS",
            Environment::ProductionMtls,
            PRODUCTION_MTLS_URL,
        ),
        ("production", Environment::Production, PRODUCTION_URL),
        ("", Environment::Sandbox, SANDBOX_URL),
    ] {
        let c = from_env(|name| match name {
            "MANGOPAY_CLIENT_ID" => Some("id".into()),
            "MANGOPAY_API_KEY" => Some("key".into()),
            "MANGOPAY_ENVIRONMENT" => Some(value.into()),
            _ => None,
        })
        .expect(value);
        assert_eq!(c.environment, environment, "{value}");
        let s = Settings::new(c).expect("valid");
        assert_eq!(s.base_url, url);
        assert_eq!(s.base.is_mtls(), url.contains("-mtls"), "{value}");
    }
    assert_eq!(SANDBOX_MTLS_URL, "https://api-mtls.sandbox.mangopay.com");
    assert_eq!(PRODUCTION_MTLS_URL, "https://api-mtls.mangopay.com");
    // A WIT caller reaches the same host through base-url.
    let s =
        Settings::new(config("id", "key", Some("https://api-mtls.mangopay.com/"))).expect("valid");
    assert!(s.base.is_mtls());
    let refused = from_env(|name| match name {
        "MANGOPAY_ENVIRONMENT" => Some("mtls".into()),
        _ => Some("x".into()),
    });
    let values = "sandbox, production, sandbox-mtls or production-mtls";
    assert!(matches!(
        refused,
        Err(Error::InvalidConfig(m)) if m == format!("MANGOPAY_ENVIRONMENT must be {values}")
    ));
}

/// An `*-mtls` environment says the base URL requires mutual TLS, whatever base URL replaces
/// its host (a proxy, a mock); an `api-mtls.` host says so itself.
#[test]
fn an_mtls_environment_marks_its_replaced_base_url_mtls_too() {
    let settings = |environment, base_url: Option<&str>| {
        let mut c = ClientConfig::new("c".into(), Secret::new("k".into()), environment);
        c.base_url = base_url.map(str::to_owned);
        Settings::new(c).expect("valid")
    };
    assert!(settings(Environment::SandboxMtls, Some("https://localhost:8443")).mtls);
    assert!(settings(Environment::ProductionMtls, None).mtls);
    assert!(!settings(Environment::Sandbox, Some("https://localhost:8443")).mtls);
    assert!(settings(Environment::Sandbox, Some("https://api-mtls.mangopay.com")).mtls);
    assert!(!settings(Environment::Production, None).mtls);
}
