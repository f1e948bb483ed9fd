//! What the WASI 0.3 `wasi:http/client` middleware decides, without I/O: which requests get
//! the token, the checks they pass first (those of `authorize-request`), whether a refused
//! token is renewed and the request sent again, and how an error it raises reads. The
//! component (`components/middleware`) does the streaming and the waiting.

use crate::authorize;
use crate::config::RESEND_BODY_MAX_VAR;
use crate::error::Error;
use crate::send;
use crate::settings::Settings;

/// 1 MiB: far above any Mangopay request body, small beside an instance's memory.
pub const DEFAULT_RESEND_BODY_MAX: usize = 1 << 20;

/// The largest cap taken: 64 MiB. Each concurrent request may keep that much, and the body
/// reader counts one byte past the cap.
pub const RESEND_BODY_MAX_LIMIT: usize = 64 << 20;

/// `MANGOPAY_AUTH_RESEND_BODY_MAX` in bytes (`0`: keep no body, so never send one again), at
/// most `RESEND_BODY_MAX_LIMIT`.
pub fn resend_body_max(var: impl Fn(&str) -> Option<String>) -> Result<usize, Error> {
    let Some(value) = var(RESEND_BODY_MAX_VAR).filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_RESEND_BODY_MAX);
    };
    match value.trim().parse() {
        Ok(max) if max <= RESEND_BODY_MAX_LIMIT => Ok(max),
        Ok(_) => Err(Error::InvalidConfig(format!(
            "{RESEND_BODY_MAX_VAR} must be at most {RESEND_BODY_MAX_LIMIT} bytes (64 MiB)"
        ))),
        Err(_) => Err(Error::InvalidConfig(format!(
            "{RESEND_BODY_MAX_VAR} must be a number of bytes"
        ))),
    }
}

/// Whether a request to `scheme://authority` goes to the client's base URL, and so gets the
/// token: the scheme, host and port compared with the base URL's, a missing port taken as
/// the scheme's default. Anything else (another scheme, host or port, an authority with
/// user-info, a path or anything but a host and port) passes through untouched. The two are
/// never joined into a URL and parsed: a "scheme" may itself hold a URL.
pub fn is_mangopay(settings: &Settings, scheme: &str, authority: &str) -> bool {
    let base_scheme = if settings.base.is_secure() {
        "https"
    } else {
        "http"
    };
    scheme.eq_ignore_ascii_case(base_scheme) && settings.base.has_authority(authority)
}

/// The checks `authorize-request` makes, on a request to the base URL: the method an HTTP
/// token, header names and values clean, a `Host` header (if any) naming the base URL's
/// authority, and no framing or hop-by-hop header. The errors name a header, never its value.
pub fn check_request(
    settings: &Settings,
    method: &str,
    headers: &[(String, String)],
) -> Result<(), Error> {
    authorize::check_method(method)?;
    send::check_hop_by_hop(headers)?;
    authorize::check_headers(headers, &settings.base)
}

/// The `wasi:http` `error-code` an error the middleware raises becomes: one a caller can act
/// on where there is one, else `internal-error` with `detail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// The request was refused before any token request (`http-request-denied`).
    Denied,
    /// The token endpoint could not be reached in time, or refused the connection: the
    /// request was not sent; trying later may work (`connection-timeout`,
    /// `connection-refused`, `connection-terminated`).
    Timeout,
    Refused,
    Terminated,
    /// `internal-error(detail)`: credentials, a lockout, the token endpoint's answer, the
    /// configuration.
    Internal,
}

/// The `error-code` for `error`.
pub fn code(error: &Error) -> Code {
    use crate::ports::TransportKind as K;
    match error {
        Error::InvalidRequest(_) | Error::ForeignHost(_) | Error::InsecureUrl(_) => Code::Denied,
        Error::Transport(t) => match t.kind {
            K::Timeout => Code::Timeout,
            K::ConnectionRefused => Code::Refused,
            K::ConnectionLost => Code::Terminated,
            _ => Code::Internal,
        },
        _ => Code::Internal,
    }
}

/// One line for operators and callers: `mangopay-auth: <case>`, the answer's status, the
/// seconds before the token endpoint is tried again, and the error's own words (already
/// quoted and stripped of secrets when it was made).
pub fn detail(error: &Error) -> String {
    let mut line = format!("mangopay-auth: {}", error.case_name());
    if let Some(status) = error.status() {
        line.push_str(&format!(" status={status}"));
    }
    let (retry_in, words) = match error {
        Error::InvalidCredentials(e) => (e.retry_in, format!("{}: {}", e.error_type, e.message)),
        Error::LockedOut(e) | Error::OAuth(e) => (
            e.retry_in,
            match &e.description {
                Some(description) => format!("{}: {description}", e.error),
                None => e.error.clone(),
            },
        ),
        Error::UnexpectedResponse(e) => (e.retry_in, e.excerpt.clone()),
        Error::InvalidConfig(t)
        | Error::InsecureUrl(t)
        | Error::ForeignHost(t)
        | Error::InvalidRequest(t) => (None, t.clone()),
        Error::Transport(t) => (None, t.detail.clone()),
        Error::MalformedTokenResponse(p) => (None, format!("{p:?}")),
        Error::ResponseTooLarge(cap) => (None, format!("over {cap} bytes")),
    };
    if let Some(retry_in) = retry_in {
        line.push_str(&format!(" retry-in-s={}", retry_in.as_secs()));
    }
    line.push_str(": ");
    line.push_str(&words);
    line
}

#[cfg(test)]
mod tests;
