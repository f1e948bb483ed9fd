//! Any non-2xx answer of the token endpoint: parsing and classifying it must not panic, and the
//! error built from it must not carry the secret, nor a quoted text longer than 200 characters
//! or holding control characters.
//!
//! Input, so that seeds can be written by hand:
//!
//! ```text
//! STATUS          decimal; anything that is not a u16 counts as 0
//! SECRET          the one secret passed to classify_token_failure
//! BODY...         the rest; every `$$` in it is replaced by SECRET
//! ```
#![no_main]

use libfuzzer_sys::fuzz_target;
use mangopay_auth::error::{
    self, ApiError, Error, OAuthError, RawResponse, UnexpectedResponse, WITHHELD,
};
use mangopay_auth::wire;

const EXCERPT_CHARS: usize = 200;
const MARKER: &[u8] = b"$$";

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

fn replace_marker(body: &[u8], secret: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        if rest.starts_with(MARKER) {
            out.extend_from_slice(secret);
            rest = &rest[MARKER.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (status, data) = split_line(data);
    let (secret, body) = split_line(data);
    let status = std::str::from_utf8(status)
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .unwrap_or(0);
    let secret = String::from_utf8_lossy(secret).into_owned();
    let body = replace_marker(body, secret.as_bytes());

    let _ = wire::parse_error_body(&body);
    let response = RawResponse {
        status,
        body,
        truncated: false,
        ..RawResponse::default()
    };
    let error = error::classify_token_failure(&response, &[&secret]);

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

    // The secret never shows, unless it is part of the error's own fixed text or of a number
    // of the answer (status, date), which are not texts taken from the body.
    let checkable = secret.len() >= 8
        && secret.bytes().all(|b| b.is_ascii_alphanumeric())
        && !FIXED.iter().any(|f| f.contains(&secret))
        && !status.to_string().contains(&secret)
        && !date.is_some_and(|d| format!("{d:?}").contains(&secret));
    if checkable {
        let text = format!("{error:?}");
        assert!(
            !text.contains(&secret),
            "secret {secret:?} leaked into {text}"
        );
    }
});
