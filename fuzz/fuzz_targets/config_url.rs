//! Any URL and any client configuration: URL parsing and configuration validation must not
//! panic, a base URL's origin must survive a round trip through `to_url`, and a refused
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
    ClientConfig, CoolDownGiven, Environment, RetryGiven, Settings, TimeoutsMs,
};
use mangopay_auth::error::Error;
use mangopay_auth::origin::Origin;
use mangopay_auth::secret::Secret;
use mangopay_auth::wire;

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
        config.timeouts = TimeoutsMs {
            connect: k.connect,
            first_byte: k.first_byte,
            between_bytes: k.between_bytes,
        };
        config.retry = RetryGiven {
            max_attempts: k.max_attempts,
            initial_backoff_ms: k.initial_backoff_ms,
            budget_ms: k.budget_ms,
        };
        config.cool_down = CoolDownGiven {
            initial_seconds: k.cool_down_initial_seconds,
            max_seconds: k.cool_down_max_seconds,
        };
        Settings::new(config)
    }
}

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Known bug, reported and not yet fixed: `http::Uri` accepts an authority such as `a[::1]`,
/// whose host is then `a[`, and `to_url` gives a URL that no longer parses. The round trip
/// fails at once on it; `--features tolerate-known-bugs` skips such inputs so that the other
/// invariants can be fuzzed until it is fixed.
fn known_bracket_bug(origin: &Origin) -> bool {
    let authority = origin.authority();
    cfg!(feature = "tolerate-known-bugs")
        && authority.contains(['[', ']'])
        && !authority.starts_with('[')
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
        if known_bracket_bug(&origin) {
            return;
        }
        let rebuilt = origin.to_url();
        assert_eq!(
            Origin::parse(&rebuilt),
            Ok((origin, "/".to_owned())),
            "{:?} -> {rebuilt:?}",
            input.url
        );
    }
    if let Ok(origin) = Origin::parse_base(input.url) {
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
