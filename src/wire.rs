//! The token endpoint's wire format: the request we send and the bodies we may get back.

use crate::ports::TokenRequest;
use crate::secret::Secret;
use crate::settings::Settings;
use base64::Engine as _;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

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
    let mut basic = String::with_capacity(6 + pair.expose().len().div_ceil(3) * 4);
    basic.push_str("Basic ");
    base64::engine::general_purpose::STANDARD.encode_string(pair.expose(), &mut basic);
    Secret::new(basic)
}

/// The token request of a client.
pub fn token_request(settings: &Settings) -> TokenRequest<'_> {
    TokenRequest {
        origin: &settings.base,
        path: TOKEN_PATH,
        headers: token_request_headers(settings.basic_authorization.expose()),
        body: TOKEN_BODY,
        timeouts: settings.timeouts,
        within: settings.retry.budget,
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

/// One JSON value of a known field, kept only as far as the checks need it: a wrong type
/// gives a precise problem, not a generic "invalid JSON". serde_json reads (and validates)
/// the value exactly as it would for `serde_json::Value`, without building one.
enum Field {
    Text(String),
    /// A number as serde_json read it: a non-negative integer, a negative one, or neither.
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    /// `null` inside an array or object, `true`, `false`, an array or an object.
    Other,
}

impl Field {
    fn text(field: Option<Field>) -> Option<String> {
        match field {
            Some(Field::Text(s)) => Some(s),
            _ => None,
        }
    }

    fn number(&self) -> Option<f64> {
        match *self {
            Field::Unsigned(n) => Some(n as f64),
            Field::Signed(n) => Some(n as f64),
            Field::Float(f) => Some(f),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(Field::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Field, E> {
        Ok(Field::Text(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
        Ok(Field::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field, E> {
        Ok(u64::try_from(v).map_or(Field::Signed(v), Field::Unsigned))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Field, E> {
        Ok(Field::Float(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field, E> {
        Ok(Field::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
        Ok(Field::Other)
    }

    // Nested values are read with this visitor too (not skipped): serde_json then checks
    // them (number range, escapes, nesting depth) exactly as it does for a `Value`.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        while seq.next_element::<Field>()?.is_some() {}
        Ok(Field::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
        while map.next_entry::<Field, Field>()?.is_some() {}
        Ok(Field::Other)
    }
}

#[derive(serde::Deserialize)]
struct RawToken {
    access_token: Option<Field>,
    token_type: Option<Field>,
    expires_in: Option<Field>,
}

/// Parses and checks a 2xx body of the token endpoint.
pub fn parse_token_response(body: &[u8]) -> Result<TokenResponse, TokenProblem> {
    let raw: RawToken = serde_json::from_slice(body).map_err(|_| TokenProblem::NotJson)?;
    let access_token = match Field::text(raw.access_token) {
        Some(token) => Secret::new(token),
        None => return Err(TokenProblem::MissingAccessToken),
    };
    // The token goes into a header value: refuse anything a header cannot carry as is.
    let token = access_token.expose();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenProblem::InvalidAccessToken);
    }
    let token_type = match Field::text(raw.token_type) {
        Some(kind) if kind.eq_ignore_ascii_case("bearer") => kind,
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
fn whole_seconds(value: &Field) -> Option<u64> {
    if let Field::Unsigned(n) = *value {
        return Some(n);
    }
    let f = value.number()?;
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

#[derive(serde::Deserialize)]
struct RawError {
    #[serde(rename = "Message")]
    message: Option<Field>,
    #[serde(rename = "Type")]
    error_type: Option<Field>,
    #[serde(rename = "Id")]
    id: Option<Field>,
    #[serde(rename = "Date")]
    date: Option<Field>,
    error: Option<Field>,
    error_description: Option<Field>,
}

/// Recognises either error shape; `None` for anything else.
pub fn parse_error_body(body: &[u8]) -> Option<ErrorBody> {
    let raw: RawError = serde_json::from_slice(body).ok()?;
    if let Some(error) = Field::text(raw.error) {
        return Some(ErrorBody::OAuth {
            error,
            description: Field::text(raw.error_description),
        });
    }
    let error_type = Field::text(raw.error_type)?;
    Some(ErrorBody::Api {
        message: Field::text(raw.message).unwrap_or_default(),
        error_type,
        id: Field::text(raw.id),
        date: raw.date.as_ref().and_then(Field::number),
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
