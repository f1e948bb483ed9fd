//! The component's errors (mirroring the WIT `error` variant) and how token-endpoint answers
//! map onto them.

use crate::wire::{self, ErrorBody, TokenProblem};

/// Longest excerpt of an unexpected body, in characters.
const EXCERPT_CHARS: usize = 200;

#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub error_type: String,
    pub id: Option<String>,
    pub date: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: String,
    pub description: Option<String>,
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
    UnexpectedResponse { status: u16, excerpt: String },
}

/// A complete answer of the token endpoint, as read from the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// The body was longer than the transport's cap and was cut there.
    pub truncated: bool,
}

/// Maps an answer of the token endpoint that is not a usable token to an error.
/// `secrets` are strings that must not appear in any excerpt (API key, Basic credential).
pub fn classify_token_failure(response: &RawResponse, secrets: &[&str]) -> Error {
    let status = response.status;
    if response.truncated {
        return Error::UnexpectedResponse {
            status,
            excerpt: "<body longer than the component reads>".into(),
        };
    }
    match wire::parse_error_body(&response.body) {
        Some(ErrorBody::OAuth { error, description }) => {
            let oauth = OAuthError {
                status,
                error,
                description,
            };
            if is_lockout(&oauth) {
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
                message,
                error_type,
                id,
                date,
            })
        }
        _ => Error::UnexpectedResponse {
            status,
            excerpt: excerpt(&response.body, secrets),
        },
    }
}

/// Mangopay's lockout: `unauthorized_client` saying the account is "temporarily locked".
/// A bare `unauthorized_client` counts too: retrying it is what prolongs a lockout.
fn is_lockout(error: &OAuthError) -> bool {
    error.error == "unauthorized_client"
        && error
            .description
            .as_deref()
            .is_none_or(|d| d.to_ascii_lowercase().contains("lock"))
}

/// The start of a body for an error message: control characters replaced, secrets withheld.
pub fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    let text = String::from_utf8_lossy(body);
    // A body that names a token or holds a secret is not quoted at all: cutting it could still
    // leave a recognisable part of the secret.
    if text.contains("access_token")
        || secrets
            .iter()
            .any(|s| !s.is_empty() && text.contains(s))
    {
        return "<withheld: the body may contain a secret>".into();
    }
    text.chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status,
            body: body.as_bytes().to_vec(),
            truncated: false,
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
            })
        );
    }

    #[test]
    fn unexpected_bodies_are_quoted_short_and_clean() {
        let long = format!("<html>\r\n{}</html>", "x".repeat(500));
        let Error::UnexpectedResponse { status, excerpt } =
            classify_token_failure(&answer(502, &long), &[])
        else {
            panic!("expected unexpected-response");
        };
        assert_eq!(status, 502);
        assert_eq!(excerpt.chars().count(), 200);
        assert!(excerpt.starts_with("<html>  xxx"));
    }

    #[test]
    fn excerpts_never_quote_secrets() {
        let withheld = "<withheld: the body may contain a secret>";
        assert_eq!(excerpt(b"echo: my-api-key", &["my-api-key"]), withheld);
        assert_eq!(excerpt(br#"{"access_token":"abc"}"#, &[]), withheld);
        assert_eq!(excerpt(b"fine", &["", "k"]), "fine");
    }
}
