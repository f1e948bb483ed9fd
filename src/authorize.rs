//! Authorization of API calls: which requests may carry the token, how it is attached, and
//! what a 401 answer to an authorized call means.

use crate::config::Settings;
use crate::error::{self, ApiError, Error};
use crate::origin::{Origin, UrlError};
use crate::redact;
use crate::wire;

/// An HTTP request to authorize.
#[derive(Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
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
/// could smuggle another request), or a URL off the client's base origin.
pub fn check_request(request: &HttpRequest, settings: &Settings) -> Result<(), Error> {
    let invalid = |why: String| Err(Error::InvalidRequest(why));
    if request.method.is_empty() || !request.method.bytes().all(is_token_char) {
        return invalid("method is not an HTTP token".into());
    }
    for (index, (name, value)) in request.headers.iter().enumerate() {
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return invalid(format!("header {index}: the name is not an HTTP token"));
        }
        if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
            return invalid(format!(
                "header {index} ({name}): the value contains CR, LF or NUL"
            ));
        }
    }
    if Origin::has_prefix_of(&request.url, &settings.base_url) {
        return Ok(());
    }
    let base = &settings.base;
    let (origin, _) = Origin::parse(&request.url).map_err(|e| match e {
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

/// The Bearer token `request` carried, if any.
pub fn sent_token(request: &HttpRequest) -> Option<&str> {
    header_values(&request.headers, "authorization").find_map(|v| v.strip_prefix("Bearer "))
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
