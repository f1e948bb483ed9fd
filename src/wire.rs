//! The token endpoint's wire format: the request we send and the bodies we may get back.

use crate::config::Settings;
use crate::ports::TokenRequest;
use crate::secret::Secret;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

/// Path of the token endpoint, below the base URL.
pub const TOKEN_PATH: &str = "/v2.01/oauth/token";
/// The whole form body of a token request (already form-encoded: nothing in it needs escaping).
pub const TOKEN_BODY: &str = "grant_type=client_credentials";
/// Names this component on the wire, in the shape Mangopay's SDKs use.
pub const USER_AGENT: &str = concat!(
    "mangopay-auth/",
    env!("CARGO_PKG_VERSION"),
    " (wasm32-wasip2)"
);
/// A token lifetime above this is refused as not sane.
pub const MAX_EXPIRES_IN: u64 = 86_400;

/// `Basic base64(ClientId:ApiKey)` of the raw pair, as Mangopay's own SDKs send it.
pub fn basic_authorization(client_id: &str, api_key: &str) -> Secret {
    // The intermediate pair is a Secret too, so it is wiped when it goes out of scope.
    let pair = Secret::new(format!("{client_id}:{api_key}"));
    Secret::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair.expose())
    ))
}

/// The token request of a client.
pub fn token_request(settings: &Settings) -> TokenRequest<'_> {
    TokenRequest {
        origin: &settings.base,
        path: TOKEN_PATH,
        headers: token_request_headers(settings.basic_authorization.expose()),
        body: TOKEN_BODY,
        timeouts: settings.timeouts,
    }
}

/// The headers of a token request, in the order they are sent.
pub fn token_request_headers(basic_authorization: &str) -> [(&'static str, &str); 5] {
    // TOKEN_BODY's length, checked by a test; sent so that waki does not chunk the body.
    const CONTENT_LENGTH: &str = "29";
    [
        ("authorization", basic_authorization),
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", CONTENT_LENGTH),
        ("accept", "application/json"),
        ("user-agent", USER_AGENT),
    ]
}

/// A usable answer of the token endpoint.
#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub token_type: String,
    pub expires_in: u64,
}

/// What made a 2xx token answer unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    NotJson,
    MissingAccessToken,
    InvalidAccessToken,
    UnsupportedTokenType,
    InvalidExpiresIn,
    /// The body is longer than the transport reads (`RawResponse::truncated`).
    BodyTooLarge,
}

// Fields are read as raw JSON values so that a wrong type gives a precise problem,
// not a generic "invalid JSON".
#[derive(Deserialize)]
struct RawToken {
    access_token: Option<Value>,
    token_type: Option<Value>,
    expires_in: Option<Value>,
}

/// Parses and checks a 2xx body of the token endpoint.
pub fn parse_token_response(body: &[u8]) -> Result<TokenResponse, TokenProblem> {
    let raw: RawToken = serde_json::from_slice(body).map_err(|_| TokenProblem::NotJson)?;
    let access_token = match raw.access_token {
        Some(Value::String(token)) => Secret::new(token),
        _ => return Err(TokenProblem::MissingAccessToken),
    };
    // The token goes into a header value: refuse anything a header cannot carry as is.
    let token = access_token.expose();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenProblem::InvalidAccessToken);
    }
    let token_type = match raw.token_type {
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("bearer") => kind,
        _ => return Err(TokenProblem::UnsupportedTokenType),
    };
    let expires_in = raw
        .expires_in
        .as_ref()
        .and_then(whole_seconds)
        .filter(|s| (1..=MAX_EXPIRES_IN).contains(s))
        .ok_or(TokenProblem::InvalidExpiresIn)?;
    Ok(TokenResponse {
        access_token,
        token_type,
        expires_in,
    })
}

/// A JSON number that is a non-negative whole number of seconds (`1199` or `1199.0`).
fn whole_seconds(value: &Value) -> Option<u64> {
    let number = value.as_number()?;
    if let Some(n) = number.as_u64() {
        return Some(n);
    }
    let f = number.as_f64()?;
    (f.fract() == 0.0 && f >= 0.0 && f <= MAX_EXPIRES_IN as f64).then_some(f as u64)
}

/// An error body in one of Mangopay's two shapes.
#[derive(Debug, PartialEq)]
pub enum ErrorBody {
    /// `{Message, Type, Id, Date, errors}`
    Api {
        message: String,
        error_type: String,
        id: Option<String>,
        date: Option<f64>,
    },
    /// `{error, error_description}` (RFC 6749 §5.2)
    OAuth {
        error: String,
        description: Option<String>,
    },
}

#[derive(Deserialize)]
struct RawError {
    #[serde(rename = "Message")]
    message: Option<Value>,
    #[serde(rename = "Type")]
    error_type: Option<Value>,
    #[serde(rename = "Id")]
    id: Option<Value>,
    #[serde(rename = "Date")]
    date: Option<Value>,
    error: Option<Value>,
    error_description: Option<Value>,
}

fn string(value: Option<Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// Recognises either error shape; `None` for anything else.
pub fn parse_error_body(body: &[u8]) -> Option<ErrorBody> {
    let raw: RawError = serde_json::from_slice(body).ok()?;
    if let Some(error) = string(raw.error) {
        return Some(ErrorBody::OAuth {
            error,
            description: string(raw.error_description),
        });
    }
    let error_type = string(raw.error_type)?;
    Some(ErrorBody::Api {
        message: string(raw.message).unwrap_or_default(),
        error_type,
        id: string(raw.id),
        date: raw.date.as_ref().and_then(Value::as_f64),
    })
}

/// A `WWW-Authenticate` value of Mangopay's Strong Customer Authentication challenge
/// (`PendingUserAction RedirectUrl=<url>`).
pub fn is_sca_challenge(value: &str) -> bool {
    value
        .trim_start()
        .get(..17)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("PendingUserAction"))
}

/// The `RedirectUrl` parameter of an SCA challenge, quoted or not.
pub fn sca_redirect_url(challenge: &str) -> Option<String> {
    let lower = challenge.to_ascii_lowercase();
    let start = lower.find("redirecturl=")? + "redirecturl=".len();
    let rest = challenge.get(start..)?.trim_start();
    let url = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?,
        None => rest.split([',', ' ']).next()?,
    };
    (!url.is_empty()).then(|| url.to_owned())
}

#[cfg(test)]
mod tests;
