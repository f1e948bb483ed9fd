//! `send`: an authorized API call end to end. The path is checked and filled in, the request
//! goes through the same checks as `authorize-request`, transient faults are retried where
//! repeating the request is safe, and a 401 that refuses the token costs one renewal and one
//! resend.

use crate::authorize::{self, HttpRequest, Verdict};
use crate::client::Client;
use crate::error::Error;
use crate::ports::{ApiAnswer, ApiCall, Clock, Transport};
use crate::redact;
use crate::retry::{self, Attempt, Deadline, Failure};

/// An API call, relative to the client's base URL.
#[derive(Debug, PartialEq, Eq)]
pub struct ApiRequest {
    pub method: String,
    /// Path and optional query; a `{ClientId}` segment is filled in.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// The API's answer, whatever its status.
#[derive(Debug, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What the answer meant for authentication.
    pub verdict: Verdict,
}

/// The path segment Mangopay's API reference writes for the client's id.
const CLIENT_ID_SEGMENT: &str = "{ClientId}";

/// `path` with its `{ClientId}` segments filled in, or why it may not be sent: anything that
/// could change the origin (`//host`, `@`, `\`) or smuggle bytes (control bytes, spaces) and
/// fragments, which never reach a server.
pub fn resolve_path(path: &str, client_id: &str) -> Result<String, Error> {
    let invalid = |why: &str| Err(Error::InvalidRequest(format!("path: {why}")));
    if !path.starts_with('/') {
        return invalid("must start with /");
    }
    if path.starts_with("//") {
        return invalid("must not start with //");
    }
    if let Some(b) = path
        .bytes()
        .find(|b| b.is_ascii_control() || matches!(b, b' ' | b'@' | b'\\' | b'#'))
    {
        return invalid(&format!("must not contain {:?}", char::from(b)));
    }
    let (path, query) = path
        .split_once('?')
        .map_or((path, None), |(p, q)| (p, Some(q)));
    let mut resolved = path
        .split('/')
        .map(|segment| {
            if segment == CLIENT_ID_SEGMENT {
                percent_encode(client_id)
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    if let Some(query) = query {
        resolved.push('?');
        resolved.push_str(query);
    }
    Ok(resolved)
}

/// A path segment for `text`: RFC 3986 unreserved characters as they are, the rest escaped.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Whether sending the request twice is safe: the idempotent methods, and a POST carrying an
/// `Idempotency-Key` (which Mangopay honours).
pub fn may_repeat(method: &str, headers: &[(String, String)]) -> bool {
    match method.to_ascii_uppercase().as_str() {
        "GET" | "HEAD" | "PUT" | "DELETE" => true,
        "POST" => headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("idempotency-key")),
        _ => false,
    }
}

/// Statuses that say "try again later": rate limiting and an unavailable gateway or server.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// Framing and hop-by-hop headers (RFC 9110 7.6.1, RFC 9112 6.1): how a message is cut on
/// one connection is the transport's business, and a caller's `Transfer-Encoding` beside the
/// `Content-Length` `send` sets is how requests are smuggled.
const HOP_BY_HOP: [&str; 6] = [
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "keep-alive",
    "proxy-connection",
];

/// Refuses a header `send` may not pass on (`HOP_BY_HOP`), naming it, never its value.
pub fn check_hop_by_hop(headers: &[(String, String)]) -> Result<(), Error> {
    match headers
        .iter()
        .find(|(name, _)| HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)))
    {
        Some((name, _)) => Err(Error::InvalidRequest(format!(
            "header {name}: framing and hop-by-hop headers are the transport's to set"
        ))),
        None => Ok(()),
    }
}

/// Headers the transport sets itself: the length of the body, and the authority (checked to
/// be the base URL's by `authorize::check_request`).
fn is_managed(name: &str) -> bool {
    name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("host")
}

impl<T: Transport, C: Clock + 'static> Client<T, C> {
    /// Sends `request` with the token and returns the answer. A 401 refusing the token drops
    /// it, renews, and resends once; an SCA 401 is returned at once with the token kept. The
    /// whole call, waits, token requests, retries and the resend, keeps to one deadline
    /// (`retry.budget-ms` from now).
    pub fn send(&self, request: ApiRequest) -> Result<ApiResponse, Error> {
        let deadline = self.deadline();
        let settings = &self.tokens.settings;
        let path = resolve_path(&request.path, &settings.client_id)?;
        check_hop_by_hop(&request.headers)?;
        let mut http = HttpRequest {
            method: request.method,
            url: format!("{}{path}", settings.base_url),
            headers: request.headers,
        };
        authorize::check_request(&http, settings)?;
        http.headers.retain(|(name, _)| !is_managed(name));
        if let Some(body) = &request.body {
            http.headers
                .push(("Content-Length".to_owned(), body.len().to_string()));
        }
        let body = request.body.as_deref();
        let first = self.send_authorized(&http, &path, body, &deadline)?;
        match first.verdict {
            Verdict::TokenRejected(_) => self.send_authorized(&http, &path, body, &deadline),
            _ => Ok(first),
        }
    }

    /// One authorized call, with the retries the policy and the method allow.
    fn send_authorized(
        &self,
        request: &HttpRequest,
        path: &str,
        body: Option<&[u8]>,
        deadline: &Deadline,
    ) -> Result<ApiResponse, Error> {
        let settings = &self.tokens.settings;
        let clock = &self.clock;
        if !deadline.allows(clock.monotonic(), std::time::Duration::ZERO) {
            return Err(out_of_budget());
        }
        let (bearer, token) = self.with_token(Some(deadline), |token, _| {
            let bearer = token.bearer.expose().to_owned();
            (bearer, token.access_token.clone())
        })?;
        let secrets = redact::secrets(settings, token.expose());
        let authorized = authorize::with_bearer(
            HttpRequest {
                method: request.method.clone(),
                url: request.url.clone(),
                headers: request.headers.clone(),
            },
            bearer,
        );
        let cap = settings.max_response_bytes;
        let repeatable = may_repeat(&authorized.method, &authorized.headers);
        let answer = retry::retrying(&settings.retry, clock, deadline, || {
            let (timeouts, within) = deadline.clip(clock.monotonic(), settings.timeouts);
            let call = ApiCall {
                origin: &settings.base,
                method: &authorized.method,
                path,
                headers: &authorized.headers,
                body,
                timeouts,
                within,
                body_cap: usize::try_from(cap).unwrap_or(usize::MAX),
            };
            let outcome = self.transport.send(&call).map_err(|e| {
                Box::new(Failure {
                    error: Error::Transport(redact::transport_error(e, &secrets)),
                    retry_after: None,
                })
            });
            let transient = match &outcome {
                Ok(answer) => is_transient_status(answer.status),
                Err(failure) => retry::is_transient(&failure.error),
            };
            if !(repeatable && transient) {
                return Attempt::Done(outcome);
            }
            let retry_after = outcome.as_ref().ok().and_then(|answer| {
                header(&answer.headers, "retry-after")
                    .and_then(|value| retry::parse_retry_after(value, clock.wall()))
            });
            Attempt::Transient {
                outcome,
                retry_after,
            }
        });
        let answer: ApiAnswer = answer.map_err(|failure| failure.error)?;
        if answer.truncated {
            return Err(Error::ResponseTooLarge(cap));
        }
        let verdict =
            self.check_response(&authorized, answer.status, &answer.headers, &answer.body);
        Ok(ApiResponse {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
            verdict,
        })
    }
}

/// The call's budget ran out before the API call could be sent (the resend after a refused
/// token, after a slow renewal).
fn out_of_budget() -> Error {
    Error::Transport(crate::ports::TransportError {
        kind: crate::ports::TransportKind::Timeout,
        detail: "the call's retry budget (retry.budget-ms) ran out before the API call".into(),
    })
}

fn header<'a>(headers: &'a [(String, String)], wanted: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests;
