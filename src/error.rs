//! The component's errors (mirroring the WIT `error` variant) and how token-endpoint answers
//! map onto them.

use crate::wire::{self, ErrorBody, TokenProblem};
use std::time::Duration;

/// Longest excerpt of an unexpected body, in characters.
const EXCERPT_CHARS: usize = 200;

#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub error_type: String,
    pub id: Option<String>,
    pub date: Option<f64>,
    /// How long the component will not call the token endpoint again (cool-down).
    pub retry_in: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: String,
    pub description: Option<String>,
    pub retry_in: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnexpectedResponse {
    pub status: u16,
    pub excerpt: String,
    pub retry_in: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    Dns,
    ConnectionRefused,
    Timeout,
    Tls,
    ConnectionLost,
    Denied,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError {
    pub kind: TransportKind,
    pub detail: String,
}

/// Every failure the component reports; one case per WIT `error` case.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    InvalidCredentials(ApiError),
    LockedOut(OAuthError),
    OAuth(OAuthError),
    InvalidConfig(String),
    InsecureUrl(String),
    ForeignHost(String),
    InvalidRequest(String),
    Transport(TransportError),
    MalformedTokenResponse(TokenProblem),
    UnexpectedResponse(UnexpectedResponse),
}

impl Error {
    /// The same error, saying the token endpoint will not be called for `retry_in`.
    /// Errors that carry no such field are returned as they are.
    pub fn with_retry_in(mut self, retry_in: Duration) -> Error {
        match &mut self {
            Error::InvalidCredentials(e) => e.retry_in = Some(retry_in),
            Error::LockedOut(e) | Error::OAuth(e) => e.retry_in = Some(retry_in),
            Error::UnexpectedResponse(e) => e.retry_in = Some(retry_in),
            _ => {}
        }
        self
    }
}

/// A complete answer of the token endpoint, as read from the wire.
#[derive(Debug, Default)]
pub struct RawResponse {
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
    /// The body was longer than the transport's cap and was cut there.
    pub truncated: bool,
}

/// Maps an answer of the token endpoint that is not a usable token to an error.
/// `secrets` are strings that must not appear in any error (API key, Basic credential, the
/// token held): every text taken from the answer goes through `quote`.
pub fn classify_token_failure(response: &RawResponse, secrets: &[&str]) -> Error {
    let status = response.status;
    if response.truncated {
        return Error::MalformedTokenResponse(TokenProblem::BodyTooLarge);
    }
    let quote = |text: &str| quote(text, secrets);
    match wire::parse_error_body(&response.body) {
        Some(ErrorBody::OAuth { error, description }) => {
            let lockout = is_lockout(&error, description.as_deref());
            let oauth = OAuthError {
                status,
                error: quote(&error),
                description: description.as_deref().map(quote),
                retry_in: None,
            };
            if lockout {
                Error::LockedOut(oauth)
            } else {
                Error::OAuth(oauth)
            }
        }
        Some(ErrorBody::Api {
            message,
            error_type,
            id,
            date,
        }) if status == 401 || error_type == "invalid_credentials" => {
            Error::InvalidCredentials(ApiError {
                status,
                message: quote(&message),
                error_type: quote(&error_type),
                id: id.as_deref().map(quote),
                date,
                retry_in: None,
            })
        }
        _ => Error::UnexpectedResponse(UnexpectedResponse {
            status,
            excerpt: excerpt(&response.body, secrets),
            retry_in: None,
        }),
    }
}

/// Mangopay's lockout: `unauthorized_client` saying the account is "temporarily locked".
/// A bare `unauthorized_client` counts too: retrying it is what prolongs a lockout.
fn is_lockout(error: &str, description: Option<&str>) -> bool {
    error == "unauthorized_client"
        && description.is_none_or(|d| d.to_ascii_lowercase().contains("lock"))
}

/// Text from the wire made fit for an error: at most `EXCERPT_CHARS` characters, control
/// characters replaced, and withheld whole if it may hold a secret (a cut could still leave a
/// recognisable part of one).
pub fn quote(text: &str, secrets: &[&str]) -> String {
    if text.contains("access_token") || secrets.iter().any(|s| !s.is_empty() && text.contains(s)) {
        return WITHHELD.into();
    }
    text.chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `quote` for a whole body. The body is also checked with JSON string escapes undone
/// (`\u0050`, `\"`, `\\` …), valid JSON or not, so an escaped secret is found too.
pub fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.contains('\\') && quote(&unescape(&text), secrets) == WITHHELD {
        return WITHHELD.into();
    }
    quote(&text, secrets)
}

/// `text` with JSON-style escapes replaced by what they stand for; anything malformed is
/// kept as it is.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let rest = chars.as_str();
        let unicode = rest
            .strip_prefix('u')
            .and_then(|r| r.get(..4))
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .and_then(char::from_u32);
        match (chars.next(), unicode) {
            (Some('u'), Some(decoded)) => {
                out.push(decoded);
                chars.nth(3);
            }
            (Some(e @ ('"' | '\\' | '/')), _) => out.push(e),
            (Some('n'), _) => out.push('\n'),
            (Some('t'), _) => out.push('\t'),
            (Some(other), _) => {
                out.push('\\');
                out.push(other);
            }
            (None, _) => out.push('\\'),
        }
    }
    out
}

pub const WITHHELD: &str = "<withheld: the text may contain a secret>";

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status,
            body: body.as_bytes().to_vec(),
            ..RawResponse::default()
        }
    }

    #[test]
    fn invalid_credentials_keeps_the_api_fields() {
        let body = r#"{"Message":"The authorization credentials are not valid","Type":"invalid_credentials","Id":"abc","Date":1700772361.0,"errors":null}"#;
        assert_eq!(
            classify_token_failure(&answer(401, body), &[]),
            Error::InvalidCredentials(ApiError {
                status: 401,
                message: "The authorization credentials are not valid".into(),
                error_type: "invalid_credentials".into(),
                id: Some("abc".into()),
                date: Some(1700772361.0),
                retry_in: None,
            })
        );
    }

    #[test]
    fn lockout_is_its_own_case() {
        let body = r#"{"error":"unauthorized_client","error_description":"This account has been temporarily locked for security reasons. Please try again later."}"#;
        assert!(matches!(
            classify_token_failure(&answer(400, body), &[]),
            Error::LockedOut(OAuthError { status: 400, .. })
        ));
        let other = r#"{"error":"invalid_client","error_description":"nope"}"#;
        assert_eq!(
            classify_token_failure(&answer(400, other), &[]),
            Error::OAuth(OAuthError {
                status: 400,
                error: "invalid_client".into(),
                description: Some("nope".into()),
                retry_in: None,
            })
        );
    }

    #[test]
    fn unexpected_bodies_are_quoted_short_and_clean() {
        let long = format!("<html>\r\n{}</html>", "x".repeat(500));
        let Error::UnexpectedResponse(UnexpectedResponse {
            status, excerpt, ..
        }) = classify_token_failure(&answer(502, &long), &[])
        else {
            panic!("expected unexpected-response");
        };
        assert_eq!(status, 502);
        assert_eq!(excerpt.chars().count(), 200);
        assert!(excerpt.starts_with("<html>  xxx"));
    }

    #[test]
    fn quotes_never_hold_secrets() {
        assert_eq!(quote("echo: my-api-key", &["my-api-key"]), WITHHELD);
        assert_eq!(quote(r#"{"access_token":"abc"}"#, &[]), WITHHELD);
        assert_eq!(quote("fine", &["", "k"]), "fine");
    }

    #[test]
    fn escaped_secrets_are_found_too() {
        let body = br#"{"detail":"key \u006dy-api-key"}"#;
        assert_eq!(excerpt(body, &["my-api-key"]), WITHHELD);
        assert_eq!(
            excerpt(br#"{"detail":"fine"}"#, &["my-api-key"]),
            r#"{"detail":"fine"}"#
        );
    }

    #[test]
    fn error_fields_from_the_wire_are_quoted() {
        let body = r#"{"error":"invalid_client","error_description":"bad key my-api-key"}"#;
        assert_eq!(
            classify_token_failure(&answer(400, body), &["my-api-key"]),
            Error::OAuth(OAuthError {
                status: 400,
                error: "invalid_client".into(),
                description: Some(WITHHELD.into()),
                retry_in: None,
            })
        );
        let body = format!(
            r#"{{"Message":"{}","Type":"invalid_credentials"}}"#,
            "m".repeat(300)
        );
        let Error::InvalidCredentials(e) = classify_token_failure(&answer(401, &body), &[]) else {
            panic!("expected invalid-credentials");
        };
        assert_eq!(e.message.len(), 200);
    }
}
