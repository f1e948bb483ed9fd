//! Client configuration: what the caller gives, its validation, and the defaults.

use crate::error::Error;
use crate::origin::{Origin, UrlError};
use crate::secret::Secret;
use crate::wire;
use std::time::Duration;

pub const SANDBOX_URL: &str = "https://api.sandbox.mangopay.com";
pub const PRODUCTION_URL: &str = "https://api.mangopay.com";
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const MAX_MAX_ATTEMPTS: u32 = 10;
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(200);
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(10);
pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_COOL_DOWN: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Sandbox,
    Production,
}

/// Timeouts as given, in milliseconds; `None` takes the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimeoutsMs {
    pub connect: Option<u32>,
    pub first_byte: Option<u32>,
    pub between_bytes: Option<u32>,
}

/// Retries of transient faults as given; `None` takes the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct RetryGiven {
    pub max_attempts: Option<u32>,
    pub initial_backoff_ms: Option<u32>,
    pub budget_ms: Option<u32>,
}

/// The credential-failure cool-down as given; `None` takes the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct CoolDownGiven {
    pub initial_seconds: Option<u32>,
    pub max_seconds: Option<u32>,
}

/// The configuration as the caller gave it.
pub struct ClientConfig {
    pub client_id: String,
    pub api_key: Secret,
    pub environment: Environment,
    pub base_url: Option<String>,
    pub refresh_margin_seconds: Option<u32>,
    pub timeouts: TimeoutsMs,
    pub retry: RetryGiven,
    pub cool_down: CoolDownGiven,
}

impl ClientConfig {
    /// A configuration with every optional field at its default.
    pub fn new(client_id: String, api_key: Secret, environment: Environment) -> Self {
        ClientConfig {
            client_id,
            api_key,
            environment,
            base_url: None,
            refresh_margin_seconds: None,
            timeouts: TimeoutsMs::default(),
            retry: RetryGiven::default(),
            cool_down: CoolDownGiven::default(),
        }
    }
}

/// Retries of transient faults inside one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included (1 = no retry).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    /// No retry starts once this much time has gone by in the call.
    pub budget: Duration,
}

/// The pause after invalid credentials or a lockout: `initial`, doubling per repeat, up to `max`.
/// `max` also caps how long a `Retry-After` is honoured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoolDown {
    pub initial: Duration,
    pub max: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

/// A validated configuration, with everything a token request needs computed once.
#[derive(Debug)]
pub struct Settings {
    pub client_id: String,
    /// `Basic base64(ClientId:ApiKey)`: the only form in which the API key is kept.
    pub basic_authorization: Secret,
    /// Kept only to withhold it from error excerpts; requests use `basic_authorization`.
    pub api_key: Secret,
    pub base: Origin,
    /// `base.to_url()`, for the same-origin shortcut of every `authorize-request`.
    pub base_url: String,
    pub refresh_margin: Duration,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub cool_down: CoolDown,
}

impl Settings {
    /// What must never appear in an error: the API key and the Base64 credential (with or
    /// without its `Basic ` prefix, which is why the prefix is left off).
    pub fn secrets(&self) -> [&str; 2] {
        let basic = self.basic_authorization.expose();
        [
            self.api_key.expose(),
            basic.strip_prefix("Basic ").unwrap_or(basic),
        ]
    }

    pub fn new(config: ClientConfig) -> Result<Settings, Error> {
        let invalid = |why: &str| Err(Error::InvalidConfig(why.to_owned()));
        // The values are not echoed: a mistyped field may hold a secret.
        if config.client_id.is_empty() {
            return invalid("client-id is empty");
        }
        if config.client_id.contains(':') {
            return invalid("client-id contains ':', which Basic authentication cannot carry");
        }
        if config.client_id.chars().any(char::is_control) {
            return invalid("client-id contains control characters");
        }
        if config.api_key.expose().is_empty() {
            return invalid("api-key is empty");
        }
        let base_url = config
            .base_url
            .as_deref()
            .unwrap_or(match config.environment {
                Environment::Sandbox => SANDBOX_URL,
                Environment::Production => PRODUCTION_URL,
            });
        let base = Origin::parse_base(base_url).map_err(|e| match e {
            UrlError::Insecure => Error::InsecureUrl(
                "base-url uses http:// to a host that is not loopback; use https://".into(),
            ),
            UrlError::Invalid(why) => Error::InvalidConfig(format!("base-url: {why}")),
        })?;
        let timeout = |ms: Option<u32>, default: Duration, name: &str| match ms {
            None => Ok(default),
            Some(0) => Err(Error::InvalidConfig(format!(
                "timeouts.{name} must be positive"
            ))),
            Some(ms) => Ok(Duration::from_millis(ms.into())),
        };
        let t = config.timeouts;
        let timeouts = Timeouts {
            connect: timeout(t.connect, DEFAULT_CONNECT_TIMEOUT, "connect-ms")?,
            first_byte: timeout(t.first_byte, DEFAULT_FIRST_BYTE_TIMEOUT, "first-byte-ms")?,
            between_bytes: timeout(
                t.between_bytes,
                DEFAULT_BETWEEN_BYTES_TIMEOUT,
                "between-bytes-ms",
            )?,
        };
        let r = config.retry;
        let max_attempts = r.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if !(1..=MAX_MAX_ATTEMPTS).contains(&max_attempts) {
            return invalid("retry.max-attempts must be from 1 to 10");
        }
        let ms = |v: Option<u32>, default| v.map_or(default, |v| Duration::from_millis(v.into()));
        let retry = RetryPolicy {
            max_attempts,
            initial_backoff: ms(r.initial_backoff_ms, DEFAULT_INITIAL_BACKOFF),
            budget: ms(r.budget_ms, DEFAULT_RETRY_BUDGET),
        };
        let c = config.cool_down;
        let secs = |v: Option<u32>, default| v.map_or(default, |v| Duration::from_secs(v.into()));
        let cool_down = CoolDown {
            initial: secs(c.initial_seconds, DEFAULT_COOL_DOWN),
            max: secs(c.max_seconds, DEFAULT_MAX_COOL_DOWN),
        };
        if cool_down.initial.is_zero() || cool_down.max < cool_down.initial {
            return invalid("cool-down: initial-seconds must be positive and at most max-seconds");
        }
        Ok(Settings {
            basic_authorization: wire::basic_authorization(
                &config.client_id,
                config.api_key.expose(),
            ),
            client_id: config.client_id,
            api_key: config.api_key,
            base_url: base.to_url(),
            base,
            refresh_margin: config
                .refresh_margin_seconds
                .map_or(DEFAULT_REFRESH_MARGIN, |s| Duration::from_secs(s.into())),
            timeouts,
            retry,
            cool_down,
        })
    }
}

/// The default client's configuration from `MANGOPAY_*` environment variables.
pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<ClientConfig, Error> {
    let required = |name: &str| {
        var(name).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "{name} is not set (the default client reads MANGOPAY_CLIENT_ID and MANGOPAY_API_KEY)"
            ))
        })
    };
    let environment = match var("MANGOPAY_ENVIRONMENT")
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("sandbox") => Environment::Sandbox,
        Some("production") => Environment::Production,
        Some(_) => {
            return Err(Error::InvalidConfig(
                "MANGOPAY_ENVIRONMENT must be sandbox or production".into(),
            ));
        }
    };
    let mut config = ClientConfig::new(
        required("MANGOPAY_CLIENT_ID")?,
        Secret::new(required("MANGOPAY_API_KEY")?),
        environment,
    );
    config.base_url = var("MANGOPAY_BASE_URL").filter(|u| !u.is_empty());
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn config(client_id: &str, api_key: &str, base_url: Option<&str>) -> ClientConfig {
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
        zero.timeouts.connect = Some(0);
        assert!(matches!(Settings::new(zero), Err(Error::InvalidConfig(_))));
        for attempts in [0, 11] {
            let mut c = config("id", "key", None);
            c.retry.max_attempts = Some(attempts);
            assert!(matches!(Settings::new(c), Err(Error::InvalidConfig(_))));
        }
        let mut c = config("id", "key", None);
        c.cool_down = CoolDownGiven {
            initial_seconds: Some(120),
            max_seconds: Some(60),
        };
        assert!(matches!(Settings::new(c), Err(Error::InvalidConfig(_))));
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
}
