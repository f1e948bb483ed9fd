//! Any non-2xx answer of the token endpoint: parsing and classifying it must not panic, and the
//! error built from it must carry neither of the secrets the client passes (the API key and the
//! Base64 credential of `client-id:api-key`, without its `Basic ` prefix), nor a quoted text
//! longer than 200 characters or holding control characters.
//!
//! Input, so that seeds can be written by hand:
//!
//! ```text
//! STATUS          decimal; anything that is not a u16 counts as 0
//! CREDENTIALS     `CLIENT-ID:API-KEY`, split at the first `:` (a client id cannot hold one);
//!                 with no `:`, the whole line is the API key of the client `ExampleClientId`
//! BODY...         the rest, in which every
//!                   `$$` is replaced by the API key,
//!                   `%%` by the Base64 credential,
//!                   `&&` by the API key JSON-escaped, `\uXXXX` for every character (UTF-16)
//! ```
#![no_main]

use libfuzzer_sys::fuzz_target;
use mangopay_auth::config::{ClientConfig, Environment, Settings};
use mangopay_auth::error::{self, ApiError, Error, OAuthError, UnexpectedResponse};
use mangopay_auth::ports::RawResponse;
use mangopay_auth::redact::{self, WITHHELD};
use mangopay_auth::secret::Secret;
use mangopay_auth::wire;
use std::fmt::Write as _;

const EXCERPT_CHARS: usize = 200;
const DEFAULT_CLIENT_ID: &str = "ExampleClientId";
const KEY_MARKER: &[u8] = b"$$";
const CREDENTIAL_MARKER: &[u8] = b"%%";
const ESCAPED_KEY_MARKER: &[u8] = b"&&";

/// Texts of the error's Debug output that do not come from the body: variant, struct and
/// field names, `Some`/`None`, and the component's fixed excerpts. A secret that is part of one
/// of them legitimately shows up in the Debug text.
const FIXED: &[&str] = &[
    WITHHELD,
    "<body longer than the component reads>",
    "InvalidCredentials",
    "LockedOut",
    "OAuth",
    "MalformedTokenResponse(BodyTooLarge)",
    "ApiError { status: , message: , error_type: , id: , date: , retry_in: }",
    "OAuthError { status: , error: , description: , retry_in: }",
    "UnexpectedResponse { status: , excerpt: , retry_in: }",
    "Some",
    "None",
];

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// The body with every marker replaced by what it plants.
fn plant(body: &[u8], plants: [(&[u8], &[u8]); 3]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    'outer: while let Some((&first, tail)) = rest.split_first() {
        for (marker, planted) in plants {
            if let Some(after) = rest.strip_prefix(marker) {
                out.extend_from_slice(planted);
                rest = after;
                continue 'outer;
            }
        }
        out.push(first);
        rest = tail;
    }
    out
}

/// `text` as the inside of a JSON string in which every character is a `\uXXXX` escape.
fn json_escape_all(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 6);
    for unit in text.encode_utf16() {
        write!(out, "\\u{unit:04X}").expect("writing to a String");
    }
    out
}

/// A secret the check applies to: long enough not to show up by chance, and made only of
/// characters that the Debug text shows as they are (no escaping can make one up), with
/// `extra` allowed besides ASCII letters and digits.
fn plain_secret(secret: &str, extra: &[u8]) -> bool {
    secret.len() >= 8
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let (status, data) = split_line(data);
    let (credentials, body) = split_line(data);
    let status = std::str::from_utf8(status)
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .unwrap_or(0);
    let credentials = String::from_utf8_lossy(credentials);
    let (client_id, api_key) = credentials
        .split_once(':')
        .unwrap_or((DEFAULT_CLIENT_ID, &credentials));

    // The secrets as the client builds them (redact::secrets), with no token held.
    let basic = wire::basic_authorization(client_id, api_key);
    let credential = basic
        .expose()
        .strip_prefix("Basic ")
        .expect("a Basic authorization value");
    let secrets = [api_key, credential, ""];
    if let Ok(settings) = Settings::new(ClientConfig::new(
        client_id.to_owned(),
        Secret::new(api_key.to_owned()),
        Environment::Sandbox,
    )) {
        assert_eq!(redact::secrets(&settings, ""), secrets);
    }

    let escaped_key = json_escape_all(api_key);
    let body = plant(
        body,
        [
            (KEY_MARKER, api_key.as_bytes()),
            (CREDENTIAL_MARKER, credential.as_bytes()),
            (ESCAPED_KEY_MARKER, escaped_key.as_bytes()),
        ],
    );

    let _ = wire::parse_error_body(&body);
    let response = RawResponse {
        status,
        body,
        truncated: false,
        ..RawResponse::default()
    };
    let error = error::classify_token_failure(&response, &secrets);

    // Every text taken from the answer is quoted: short and free of control characters.
    let (quoted, date): (Vec<&str>, Option<f64>) = match &error {
        Error::InvalidCredentials(ApiError {
            message,
            error_type,
            id,
            date,
            ..
        }) => {
            let mut q = vec![message.as_str(), error_type.as_str()];
            q.extend(id.as_deref());
            (q, *date)
        }
        Error::LockedOut(OAuthError {
            error, description, ..
        })
        | Error::OAuth(OAuthError {
            error, description, ..
        }) => {
            let mut q = vec![error.as_str()];
            q.extend(description.as_deref());
            (q, None)
        }
        Error::UnexpectedResponse(UnexpectedResponse { excerpt, .. }) => {
            (vec![excerpt.as_str()], None)
        }
        other => panic!("classify_token_failure returned {other:?}"),
    };
    for text in &quoted {
        assert!(
            text.chars().count() <= EXCERPT_CHARS,
            "quoted text of {} characters",
            text.chars().count()
        );
        assert!(
            !text.chars().any(char::is_control),
            "quoted text with a control character: {text:?}"
        );
    }

    // Neither secret shows, unless it is part of the error's own fixed text or of a number of
    // the answer (status, date), which are not texts taken from the body.
    let text = format!("{error:?}");
    let checkable = |secret: &str| {
        !FIXED.iter().any(|f| f.contains(secret))
            && !status.to_string().contains(secret)
            && !date.is_some_and(|d| format!("{d:?}").contains(secret))
    };
    if plain_secret(api_key, b"") && checkable(api_key) {
        assert!(
            !text.contains(api_key),
            "api key {api_key:?} leaked into {text}"
        );
    }
    if plain_secret(credential, b"+/=") && checkable(credential) {
        assert!(
            !text.contains(credential),
            "Base64 credential {credential:?} (of {client_id:?}:{api_key:?}) leaked into {text}"
        );
    }
});
