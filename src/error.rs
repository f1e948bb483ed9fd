//! The component's errors (mirroring the WIT `error` variant) and how an answer of the token
//! endpoint becomes the token or one of them.

use crate::origin::Origin;
use crate::ports::{RawResponse, TransportError, TransportKind};
use crate::redact::{excerpt, quote};
use crate::wire::{self, ErrorBody, TokenProblem, TokenResponse};
use std::fmt::Write as _;
use std::time::Duration;

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
    /// `send`: the answer's body was longer than this many bytes.
    ResponseTooLarge(u32),
}

impl Error {
    /// The WIT case name, for log lines.
    pub fn case_name(&self) -> &'static str {
        match self {
            Error::InvalidCredentials(_) => "invalid-credentials",
            Error::LockedOut(_) => "locked-out",
            Error::OAuth(_) => "oauth",
            Error::InvalidConfig(_) => "invalid-config",
            Error::InsecureUrl(_) => "insecure-url",
            Error::ForeignHost(_) => "foreign-host",
            Error::InvalidRequest(_) => "invalid-request",
            Error::Transport(_) => "transport",
            Error::MalformedTokenResponse(_) => "malformed-token-response",
            Error::UnexpectedResponse(_) => "unexpected-response",
            Error::ResponseTooLarge(_) => "response-too-large",
        }
    }

    /// The HTTP status of the answer the error stands for, if it is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::InvalidCredentials(e) => Some(e.status),
            Error::LockedOut(e) | Error::OAuth(e) => Some(e.status),
            Error::UnexpectedResponse(e) => Some(e.status),
            _ => None,
        }
    }

    /// The same error, saying the token endpoint will not be called for `retry_in`.
    /// Errors that carry no such field are returned as they are, but for a TLS fault: the
    /// WIT `transport-error` has no `retry-in-seconds`, so its text says it (whole seconds,
    /// rounded up).
    pub fn with_retry_in(mut self, retry_in: Duration) -> Error {
        match &mut self {
            Error::InvalidCredentials(e) => e.retry_in = Some(retry_in),
            Error::LockedOut(e) | Error::OAuth(e) => e.retry_in = Some(retry_in),
            Error::UnexpectedResponse(e) => e.retry_in = Some(retry_in),
            Error::Transport(e) if e.kind == TransportKind::Tls => {
                let seconds = retry_in.as_secs() + u64::from(retry_in.subsec_nanos() > 0);
                let _ = write!(e.detail, "{RETRY_IN}{seconds} s");
            }
            _ => {}
        }
        self
    }
}

/// Between a TLS fault's hint and the host's own words.
const HOST_SAID: &str = "; the host said: ";
/// Before the seconds a TLS fault's pause has left.
const RETRY_IN: &str = "; no token request for ";

/// How a transport failure of the token request to `base` reaches the caller: the host's
/// words quoted (they could echo the credential), and a TLS fault made kind `tls` with a
/// detail naming the fix (`tls_fault`). A TLS fault is the host's TLS set-up, not the
/// network, so it would fail the same way again: a TLS failure to any base URL, and on an
/// mTLS host (`Settings::mtls`) also a lost connection, as a TLS 1.3 server refuses a missing or untrusted
/// client certificate only after the handshake, which hosts report as a terminated
/// connection.
pub fn token_transport_error(
    error: TransportError,
    base: &Origin,
    mtls: bool,
    secrets: &[&str],
) -> TransportError {
    let tls = match error.kind {
        TransportKind::Tls => true,
        TransportKind::ConnectionLost => mtls,
        _ => false,
    };
    let words = quote(&error.detail, secrets);
    match tls {
        true => tls_fault(base, &words),
        false => TransportError {
            detail: words,
            ..error
        },
    }
}

/// A TLS fault of the token request to `base`: kind `tls`, the detail `tls_hint`, then the
/// host's `words` (already quoted) if it said any.
pub fn tls_fault(base: &Origin, words: &str) -> TransportError {
    let mut detail = tls_hint(base);
    if !words.is_empty() {
        detail.push_str(HOST_SAID);
        detail.push_str(words);
    }
    TransportError {
        kind: TransportKind::Tls,
        detail,
    }
}

/// What the host must fix for TLS to `base` to work, and where. Only ours: no secret, no
/// text from outside.
pub fn tls_hint(base: &Origin) -> String {
    // One text for both cases: each costs the shipped component its bytes.
    format!(
        "TLS to {} failed: the host must trust its certificate and present Mangopay's \
         client certificate to an mTLS host (Spin: [[client_tls]]; wasmtime: send_request hook)",
        base.to_url()
    )
}

/// The host's words in the detail of a `tls_fault` (`""` if it said none); the first
/// separator is ours, as the hint never holds it.
pub fn tls_host_words(detail: &str) -> &str {
    detail.split_once(HOST_SAID).map_or("", |(_, words)| words)
}

/// The token in an answer of the token endpoint, or the error the answer stands for.
/// `secrets` must not appear in any error (see `redact::secrets`).
pub fn read_token_answer(response: &RawResponse, secrets: &[&str]) -> Result<TokenResponse, Error> {
    if response.truncated || !(200..300).contains(&response.status) {
        return Err(classify_token_failure(response, secrets));
    }
    let problem = match wire::parse_token_response(&response.body) {
        Ok(token) => return Ok(token),
        Err(problem) => problem,
    };
    // A 2xx carrying an error body is that error, not a malformed token.
    Err(match wire::parse_error_body(&response.body) {
        None => Error::MalformedTokenResponse(problem),
        parsed => from_error_body(response, parsed, secrets),
    })
}

/// Maps an answer of the token endpoint that is not a usable token to an error. Every text
/// taken from the answer is quoted, so none of `secrets` can show.
pub fn classify_token_failure(response: &RawResponse, secrets: &[&str]) -> Error {
    if response.truncated {
        return Error::MalformedTokenResponse(TokenProblem::BodyTooLarge);
    }
    from_error_body(response, wire::parse_error_body(&response.body), secrets)
}

/// `response` as an error, given its body as `wire::parse_error_body` read it.
fn from_error_body(response: &RawResponse, parsed: Option<ErrorBody>, secrets: &[&str]) -> Error {
    let status = response.status;
    match parsed {
        Some(ErrorBody::OAuth { error, description }) => {
            let lockout = is_lockout(&error, description.as_deref());
            let oauth = OAuthError {
                status,
                error: quote(&error, secrets),
                description: description.as_deref().map(|d| quote(d, secrets)),
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
            let api = quoted_api_error(status, &message, &error_type, id.as_deref(), date, secrets);
            Error::InvalidCredentials(api)
        }
        _ => unexpected(response, secrets),
    }
}

fn unexpected(response: &RawResponse, secrets: &[&str]) -> Error {
    Error::UnexpectedResponse(UnexpectedResponse {
        status: response.status,
        excerpt: excerpt(&response.body, secrets),
        retry_in: None,
    })
}

/// The API error in a body of Mangopay's API error shape (`None` for any other body), every
/// text quoted so that none of `secrets` can show.
pub fn api_error(status: u16, body: &[u8], secrets: &[&str]) -> Option<ApiError> {
    match wire::parse_error_body(body)? {
        ErrorBody::Api {
            message,
            error_type,
            id,
            date,
        } => Some(quoted_api_error(
            status,
            &message,
            &error_type,
            id.as_deref(),
            date,
            secrets,
        )),
        ErrorBody::OAuth { .. } => None,
    }
}

fn quoted_api_error(
    status: u16,
    message: &str,
    error_type: &str,
    id: Option<&str>,
    date: Option<f64>,
    secrets: &[&str],
) -> ApiError {
    ApiError {
        status,
        message: quote(message, secrets),
        error_type: quote(error_type, secrets),
        id: id.map(|id| quote(id, secrets)),
        date,
        retry_in: None,
    }
}

/// Mangopay's lockout: `unauthorized_client` saying the account is "temporarily locked".
/// A bare `unauthorized_client` counts too: retrying it is what prolongs a lockout.
fn is_lockout(error: &str, description: Option<&str>) -> bool {
    error == "unauthorized_client"
        && description.is_none_or(|d| d.to_ascii_lowercase().contains("lock"))
}

#[cfg(test)]
mod tests;
