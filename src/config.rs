//! Client configuration: what the caller gives (`ClientConfig`, the WIT `config` record), its
//! defaults, and its validation into `Settings`, each optional sub-record resolved once.

use crate::error::Error;
use crate::origin::{Origin, UrlError};
use crate::secret::Secret;
use crate::settings::{CoolDown, RetryPolicy, Settings, Timeouts};
use crate::wire;
use std::time::Duration;

pub const SANDBOX_URL: &str = "https://api.sandbox.mangopay.com";
pub const PRODUCTION_URL: &str = "https://api.mangopay.com";
/// The mutual-TLS hosts: every call, the token request included, needs the client
/// certificate Mangopay issued, which the host presents (a component cannot).
pub const SANDBOX_MTLS_URL: &str = "https://api-mtls.sandbox.mangopay.com";
pub const PRODUCTION_MTLS_URL: &str = "https://api-mtls.mangopay.com";
/// Room for Mangopay's largest list pages many times over.
pub const DEFAULT_MAX_RESPONSE_BYTES: u32 = 8 * 1024 * 1024;
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
    /// `SANDBOX_MTLS_URL` and `PRODUCTION_MTLS_URL`: only from `MANGOPAY_ENVIRONMENT` (on
    /// Spin, the variable `mangopay_environment`). The WIT `environment` enum keeps its two
    /// cases until a package version bump; a WIT caller sets `base-url` to the mTLS host.
    SandboxMtls,
    ProductionMtls,
}

/// The configuration as the caller gave it: the WIT `config` record, field for field. An
/// unset field takes its default.
pub struct ClientConfig {
    pub client_id: String,
    pub api_key: Secret,
    pub environment: Environment,
    pub base_url: Option<String>,
    pub refresh_margin_seconds: Option<u32>,
    pub timeouts: Option<TimeoutsConfig>,
    pub retry: Option<RetryConfig>,
    pub cool_down: Option<CoolDownConfig>,
    /// The largest API answer body `send` reads, in bytes.
    pub max_response_bytes: Option<u32>,
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
            timeouts: None,
            retry: None,
            cool_down: None,
            max_response_bytes: None,
        }
    }
}

/// The WIT `timeouts` record as given; resolved into `Timeouts`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeoutsConfig {
    pub connect_ms: Option<u32>,
    pub first_byte_ms: Option<u32>,
    pub between_bytes_ms: Option<u32>,
}

/// The WIT `retry-policy` record as given; resolved into `RetryPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryConfig {
    pub max_attempts: Option<u32>,
    pub initial_backoff_ms: Option<u32>,
    pub budget_ms: Option<u32>,
}

/// The WIT `cool-down` record as given; resolved into `CoolDown`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoolDownConfig {
    pub initial_seconds: Option<u32>,
    pub max_seconds: Option<u32>,
}

fn invalid<T>(why: &str) -> Result<T, Error> {
    Err(Error::InvalidConfig(why.to_owned()))
}

fn millis(given: Option<u32>, default: Duration) -> Duration {
    given.map_or(default, |ms| Duration::from_millis(ms.into()))
}

fn seconds(given: Option<u32>, default: Duration) -> Duration {
    given.map_or(default, |s| Duration::from_secs(s.into()))
}

impl TimeoutsConfig {
    fn resolve(self) -> Result<Timeouts, Error> {
        let timeout = |given: Option<u32>, default: Duration, name: &str| match given {
            Some(0) => Err(Error::InvalidConfig(format!(
                "timeouts.{name} must be positive"
            ))),
            given => Ok(millis(given, default)),
        };
        Ok(Timeouts {
            connect: timeout(self.connect_ms, DEFAULT_CONNECT_TIMEOUT, "connect-ms")?,
            first_byte: timeout(
                self.first_byte_ms,
                DEFAULT_FIRST_BYTE_TIMEOUT,
                "first-byte-ms",
            )?,
            between_bytes: timeout(
                self.between_bytes_ms,
                DEFAULT_BETWEEN_BYTES_TIMEOUT,
                "between-bytes-ms",
            )?,
        })
    }
}

impl RetryConfig {
    fn resolve(self) -> Result<RetryPolicy, Error> {
        let max_attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if !(1..=MAX_MAX_ATTEMPTS).contains(&max_attempts) {
            return invalid("retry.max-attempts must be from 1 to 10");
        }
        // Within a zero budget no token request could ever end.
        if self.budget_ms == Some(0) {
            return invalid("retry.budget-ms must be positive");
        }
        Ok(RetryPolicy {
            max_attempts,
            initial_backoff: millis(self.initial_backoff_ms, DEFAULT_INITIAL_BACKOFF),
            budget: millis(self.budget_ms, DEFAULT_RETRY_BUDGET),
        })
    }
}

impl CoolDownConfig {
    fn resolve(self) -> Result<CoolDown, Error> {
        let cool_down = CoolDown {
            initial: seconds(self.initial_seconds, DEFAULT_COOL_DOWN),
            max: seconds(self.max_seconds, DEFAULT_MAX_COOL_DOWN),
        };
        if cool_down.initial.is_zero() || cool_down.max < cool_down.initial {
            return invalid("cool-down: initial-seconds must be positive and at most max-seconds");
        }
        Ok(cool_down)
    }
}

impl Settings {
    pub fn new(config: ClientConfig) -> Result<Settings, Error> {
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
                Environment::SandboxMtls => SANDBOX_MTLS_URL,
                Environment::ProductionMtls => PRODUCTION_MTLS_URL,
            });
        let base = Origin::parse_base(base_url).map_err(|e| match e {
            UrlError::Insecure => Error::InsecureUrl(
                "base-url uses http:// to a host that is not loopback; use https://".into(),
            ),
            UrlError::Invalid(why) => Error::InvalidConfig(format!("base-url: {why}")),
        })?;
        Ok(Settings {
            basic_authorization: wire::basic_authorization(
                &config.client_id,
                config.api_key.expose(),
            ),
            client_id: config.client_id,
            api_key: config.api_key,
            base_url: base.to_url(),
            mtls: base.is_mtls()
                || matches!(
                    config.environment,
                    Environment::SandboxMtls | Environment::ProductionMtls
                ),
            base,
            refresh_margin: seconds(config.refresh_margin_seconds, DEFAULT_REFRESH_MARGIN),
            timeouts: config.timeouts.unwrap_or_default().resolve()?,
            retry: config.retry.unwrap_or_default().resolve()?,
            cool_down: config.cool_down.unwrap_or_default().resolve()?,
            max_response_bytes: match config.max_response_bytes {
                Some(0) => return invalid("max-response-bytes must be positive"),
                Some(bytes) => bytes,
                None => DEFAULT_MAX_RESPONSE_BYTES,
            },
        })
    }
}

/// The largest request body the WASI 0.3 middleware keeps to send again after a refused
/// token (`middleware::resend_body_max` reads it).
pub const RESEND_BODY_MAX_VAR: &str = "MANGOPAY_AUTH_RESEND_BODY_MAX";

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
        Some("sandbox-mtls") => Environment::SandboxMtls,
        Some("production-mtls") => Environment::ProductionMtls,
        Some(_) => {
            return Err(Error::InvalidConfig(
                "MANGOPAY_ENVIRONMENT must be sandbox, production, sandbox-mtls or production-mtls"
                    .into(),
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
mod tests;
