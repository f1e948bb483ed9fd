//! Authorization of API calls: which requests may carry the token, how it is attached, and
//! what a 401 answer to an authorized call means.

use crate::error::{self, ApiError, Error};
use crate::origin::{Origin, UrlError};
use crate::redact;
use crate::settings::Settings;
use crate::wire;
use std::fmt;

/// An HTTP request to authorize. Once authorized it carries the token: `Debug` shows the
/// values of credential headers as `<redacted>`.
#[derive(PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| match is_credential_header(name) {
                true => (name.as_str(), "<redacted>"),
                false => (name.as_str(), value.as_str()),
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .finish()
    }
}

fn is_credential_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("proxy-authorization")
}

/// What a 401 from the Mangopay API means, as `check_response` reads it.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Not a 401: nothing for authentication to do.
    Accepted,
    /// The token was refused. If it was the held one it is dropped, so the next call fetches a
    /// new one; the API error of the answer, if it had one, is carried along.
    TokenRejected(Option<ApiError>),
    /// Strong Customer Authentication is pending: the token is fine and kept; the user must
    /// complete the action at the redirect URL (when the challenge names one).
    ScaRequired(Option<String>),
}

/// Refuses a request the token must not be attached to: a malformed method or header (which
/// could smuggle another request), a `Host` header naming another authority, or a URL off the
/// client's base origin.
pub fn check_request(request: &HttpRequest, settings: &Settings) -> Result<(), Error> {
    check_method(&request.method)?;
    // The URL must be on the base origin (checked next), so that is the authority a Host
    // header may name.
    check_headers(&request.headers, &settings.base)?;
    check_url(&request.url, settings)
}

/// Refuses a method that is not an HTTP token.
pub fn check_method(method: &str) -> Result<(), Error> {
    if method.is_empty() || !method.bytes().all(is_token_char) {
        return Err(Error::InvalidRequest("method is not an HTTP token".into()));
    }
    Ok(())
}

/// Refuses headers that could smuggle a request or send it elsewhere: a name that is not an
/// HTTP token, a value that is not an RFC 9110 field value (`is_field_value`), more than one
/// `Host` header, or a `Host` header (any case) that does not name `origin`'s authority (case
/// ignored, default port and IP spellings normalised, see `Origin::has_authority`). An equal
/// `Host` header is allowed. Errors name the header, never its value.
pub fn check_headers(headers: &[(String, String)], origin: &Origin) -> Result<(), Error> {
    let invalid = |why: String| Err(Error::InvalidRequest(why));
    let mut host_seen = false;
    for (index, (name, value)) in headers.iter().enumerate() {
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return invalid(format!("header {index}: the name is not an HTTP token"));
        }
        if !is_field_value(value) {
            return invalid(format!(
                "header {index} ({name}): the value holds a control character (only tab is allowed)"
            ));
        }
        if name.eq_ignore_ascii_case("host") {
            if host_seen {
                return invalid(format!("header {index} ({name}): a second Host header"));
            }
            host_seen = true;
            // Optional whitespace around a field value is not part of it (RFC 9110 5.5).
            if !origin.has_authority(value.trim_matches([' ', '\t'])) {
                return invalid(format!(
                    "header {index} ({name}): the Host header is not the URL's authority {}",
                    origin.authority()
                ));
            }
        }
    }
    Ok(())
}

/// Whether `value` is an RFC 9110 field value: no control byte but horizontal tab (no NUL,
/// CR, LF, `\x01`-`\x08`, `\x0b`, `\x0c`, `\x0e`-`\x1f`, DEL). Bytes from 0x80 (obs-text)
/// are allowed.
pub fn is_field_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || !(b.is_ascii_control()))
}

/// Refuses a URL the token must not go to: not absolute `http(s)`, any byte that is not
/// visible ASCII (the fragment's included), a fragment, user-info, plain `http://` off
/// loopback, or an origin other than the client's base URL.
pub fn check_url(url: &str, settings: &Settings) -> Result<(), Error> {
    if Origin::has_prefix_of(url, &settings.base_url) {
        return Ok(());
    }
    let base = &settings.base;
    let (origin, _) = Origin::parse(url).map_err(|e| match e {
        UrlError::Insecure => {
            Error::InsecureUrl("the request URL uses http:// to a host that is not loopback".into())
        }
        UrlError::Invalid(why) => Error::InvalidRequest(format!("url: {why}")),
    })?;
    if origin != *base {
        return Err(Error::ForeignHost(format!(
            "{} is not this client's base URL {}",
            origin.to_url(),
            base.to_url()
        )));
    }
    Ok(())
}

/// `request` with exactly one `Authorization` header: `bearer`.
pub fn with_bearer(mut request: HttpRequest, bearer: String) -> HttpRequest {
    request
        .headers
        .retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
    request.headers.push(("Authorization".to_owned(), bearer));
    request
}

/// Reads the answer to an API call that `request` made. A 401 with a Strong Customer
/// Authentication challenge leaves the token alone; any other 401 rejects the token sent.
pub fn check_response(
    request: &HttpRequest,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    settings: &Settings,
) -> Verdict {
    if status != 401 {
        return Verdict::Accepted;
    }
    if let Some(challenge) =
        header_values(headers, "www-authenticate").find(|v| wire::is_sca_challenge(v))
    {
        return Verdict::ScaRequired(wire::sca_redirect_url(challenge));
    }
    let secrets = redact::secrets(settings, sent_token(request).unwrap_or_default());
    Verdict::TokenRejected(error::api_error(status, body, &secrets))
}

/// The Bearer token `request` carried, if any (the scheme in any case).
pub fn sent_token(request: &HttpRequest) -> Option<&str> {
    header_values(&request.headers, "authorization").find_map(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token)
            .filter(|t| !t.is_empty())
    })
}

fn header_values<'a>(
    headers: &'a [(String, String)],
    wanted: &'a str,
) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |(name, _)| name.eq_ignore_ascii_case(wanted))
        .map(|(_, value)| value.as_str())
}

/// RFC 9110 `tchar`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests;
