//! Any URL and any client configuration: URL parsing and configuration validation must not
//! panic, a base URL's origin must survive a round trip through `to_url`, an accepted base URL
//! must have a strict authority (a host name of `[a-z0-9._-]` labels or a bracketed IPv6
//! address, then an optional `:port` of 1..=65535) that is the origin's, and a refused
//! configuration must not echo the API key.
//!
//! Input, so that seeds can be written by hand:
//!
//! ```text
//! URL             parsed with Origin::parse and ::parse_base, and the configuration's base URL
//! CLIENT-ID
//! API-KEY
//! KNOBS...        the rest, read with `arbitrary` (no bytes: every knob off / at its default)
//! ```
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use mangopay_auth::config::{
    ClientConfig, CoolDownConfig, Environment, RetryConfig, Settings, TimeoutsConfig,
};
use mangopay_auth::error::Error;
use mangopay_auth::origin::Origin;
use mangopay_auth::secret::Secret;
use mangopay_auth::wire;
use std::net::Ipv6Addr;

#[derive(Debug, Default, Arbitrary)]
struct Knobs {
    /// Leave the base URL unset (the environment's URL is used) instead of URL.
    no_base_url: bool,
    production: bool,
    refresh_margin_seconds: Option<u32>,
    connect: Option<u32>,
    first_byte: Option<u32>,
    between_bytes: Option<u32>,
    max_attempts: Option<u32>,
    initial_backoff_ms: Option<u32>,
    budget_ms: Option<u32>,
    cool_down_initial_seconds: Option<u32>,
    cool_down_max_seconds: Option<u32>,
}

struct Input<'a> {
    url: &'a str,
    client_id: String,
    knobs: Knobs,
}

impl Input<'_> {
    fn base_url(&self) -> Option<&str> {
        (!self.knobs.no_base_url).then_some(self.url)
    }

    fn settings(&self, api_key: &str) -> Result<Settings, Error> {
        let k = &self.knobs;
        let environment = if k.production {
            Environment::Production
        } else {
            Environment::Sandbox
        };
        let mut config = ClientConfig::new(
            self.client_id.clone(),
            Secret::new(api_key.to_owned()),
            environment,
        );
        config.base_url = self.base_url().map(str::to_owned);
        config.refresh_margin_seconds = k.refresh_margin_seconds;
        config.timeouts = Some(TimeoutsConfig {
            connect_ms: k.connect,
            first_byte_ms: k.first_byte,
            between_bytes_ms: k.between_bytes,
        });
        config.retry = Some(RetryConfig {
            max_attempts: k.max_attempts,
            initial_backoff_ms: k.initial_backoff_ms,
            budget_ms: k.budget_ms,
        });
        config.cool_down = Some(CoolDownConfig {
            initial_seconds: k.cool_down_initial_seconds,
            max_seconds: k.cool_down_max_seconds,
        });
        Settings::new(config)
    }
}

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// The authority as written in an absolute URL: from `://` to the first `/`, `?` or `#`.
fn written_authority(url: &str) -> &str {
    let start = url.find("://").expect("an accepted URL has a scheme") + 3;
    url[start..]
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
}

/// The host and port of an authority made only of a host name (dot-separated, non-empty labels
/// of `[a-z0-9_-]`, ASCII upper case allowed only if `any_case`) or a bracketed IPv6 address,
/// then an optional `:port` of 1..=65535 given in at most five digits; `None` for anything else.
fn strict_authority(authority: &str, any_case: bool) -> Option<(String, Option<u16>)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (ip, after) = rest.split_once(']')?;
            ip.parse::<Ipv6Addr>().ok()?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (&authority[..ip.len() + 2], port)
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let name_byte = |b: u8| {
        b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || b == b'-'
            || b == b'_'
            || (any_case && b.is_ascii_uppercase())
    };
    let ipv6_byte = |b: u8| {
        b.is_ascii_digit()
            || matches!(b, b'a'..=b'f' | b':' | b'.' | b'[' | b']')
            || (any_case && matches!(b, b'A'..=b'F'))
    };
    let strict_host = if host.starts_with('[') {
        host.bytes().all(ipv6_byte)
    } else {
        host.split('.')
            .all(|label| !label.is_empty() && label.bytes().all(name_byte))
    };
    if !strict_host {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|&p| p != 0)?)
        }
        Some(_) => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// Checks that an accepted base URL's authority, as written and as the origin gives it, is
/// strict, and that both name the same host and port.
fn check_base_authority(url: &str, origin: &Origin) {
    let default_port = if origin.is_secure() { 443 } else { 80 };
    let given = origin.authority();
    let Some((host, port)) = strict_authority(&given, false) else {
        panic!("{url:?} accepted with the origin authority {given:?}");
    };
    if let Some(port) = port {
        assert!(
            port != default_port && given.ends_with(&format!(":{port}")),
            "{url:?}: origin authority {given:?} does not give its port canonically"
        );
    }
    let written = written_authority(url);
    let Some((written_host, written_port)) = strict_authority(written, true) else {
        panic!("{url:?} accepted with the authority {written:?}");
    };
    assert_eq!(
        (written_host, written_port.unwrap_or(default_port)),
        (host, port.unwrap_or(default_port)),
        "{url:?}: written authority {written:?}, origin authority {given:?}"
    );
}

fn debug_text(result: &Result<Settings, Error>) -> String {
    match result {
        Ok(settings) => format!("{settings:?}"),
        Err(error) => format!("{error:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let (url, data) = split_line(data);
    let (client_id, data) = split_line(data);
    let (api_key, knobs) = split_line(data);
    let url = String::from_utf8_lossy(url);
    let api_key = String::from_utf8_lossy(api_key).into_owned();
    let input = Input {
        url: &url,
        client_id: String::from_utf8_lossy(client_id).into_owned(),
        knobs: Knobs::arbitrary(&mut Unstructured::new(knobs)).unwrap_or_default(),
    };

    // Any URL: an accepted one keeps its origin when rebuilt from it.
    if let Ok((origin, _path)) = Origin::parse(input.url) {
        let rebuilt = origin.to_url();
        assert_eq!(
            Origin::parse(&rebuilt),
            Ok((origin, "/".to_owned())),
            "{:?} -> {rebuilt:?}",
            input.url
        );
    }
    if let Ok(origin) = Origin::parse_base(input.url) {
        check_base_authority(input.url, &origin);
        let rebuilt = origin.to_url();
        assert_eq!(
            Origin::parse_base(&rebuilt),
            Ok(origin.clone()),
            "{:?} -> {rebuilt:?}",
            input.url
        );
        assert_eq!(
            Origin::parse(input.url).map(|(o, _)| o),
            Ok(origin),
            "parse and parse_base disagree on {:?}",
            input.url
        );
    }

    // Any configuration.
    let result = input.settings(&api_key);
    if let Ok(settings) = &result {
        if let Some(url) = input.base_url() {
            assert_eq!(Origin::parse_base(url).as_ref(), Ok(&settings.base));
        }
        assert_eq!(
            settings.basic_authorization,
            wire::basic_authorization(&input.client_id, &api_key)
        );
        assert_eq!(settings.api_key.expose(), api_key);
    }
    // The key never shows in the Debug text (of the error, or of the settings, whose Secret
    // fields are redacted), unless it is part of another input, which may be quoted...
    let checkable = api_key.len() >= 8
        && api_key.bytes().all(|b| b.is_ascii_alphanumeric())
        && !input.client_id.contains(&api_key)
        && !input.base_url().is_some_and(|u| u.contains(&api_key));
    let text = debug_text(&result);
    if checkable && text.contains(&api_key) {
        // ...or of the fixed text (a message, a field name): then the same configuration with
        // another key of the same length shows it too.
        let reference = debug_text(&input.settings(&"#".repeat(api_key.len())));
        assert!(
            reference.contains(&api_key),
            "api key {api_key:?} leaked into {text}"
        );
    }
});
