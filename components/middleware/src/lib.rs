//! mangopay-auth-middleware: Mangopay authentication for a component with no auth code. It
//! imports `wasi:http/client@0.3.0` and exports it, so composed in front of any component
//! that calls Mangopay through plain `wasi:http/client` it stands between that component and
//! the network. Requests to the configured base URL get the Bearer token (in place of any
//! `Authorization` the caller set) after the checks `authorize-request` makes; their bodies
//! are streamed byte for byte, and kept up to `MANGOPAY_AUTH_RESEND_BODY_MAX` so that a
//! refused token costs one renewal and one resend. Requests elsewhere pass through untouched.
//!
//! The rules are the core's (`mangopay_auth`): the wire format, lifecycle, sharing, errors and
//! retries of the WASI 0.2 worlds, driven here with `await` (`auth`).
#![cfg(target_arch = "wasm32")]

mod auth;
mod body;
mod store;
mod upstream;

pub(crate) mod bindings {
    wit_bindgen::generate!({
        path: ["../../vendor/wit/wasi-http-0.3.0", "../../wit", "wit"],
        world: "mangopay:auth-middleware/middleware",
        generate_all,
    });
}

use auth::Auth;
use bindings::exports::wasi::http::client::Guest;
use bindings::wasi::http::client;
use bindings::wasi::http::types::{
    ErrorCode, Fields, Method, Request, RequestOptions, Response, Scheme,
};
use bindings::wit_future;
use body::Body;
use mangopay_auth::log::{Field, Level, Value};
use mangopay_auth::middleware::{self, Code};
use mangopay_auth::{Error, HttpRequest, Secret, Verdict};
use std::rc::Rc;

struct Middleware;

impl Guest for Middleware {
    async fn send(request: Request) -> Result<Response, ErrorCode> {
        let (Some(scheme), Some(authority)) = (request.get_scheme(), request.get_authority())
        else {
            return client::send(request).await;
        };
        let scheme = scheme_text(&scheme);
        let auth = match auth::instance() {
            Ok(auth) => auth,
            // Unconfigured, the base URL is unknown: a request that looks like Mangopay's
            // fails (it would go without a token), any other passes through.
            Err(error) if looks_like_mangopay(&authority) => return Err(error_code(&error)),
            Err(_) => return client::send(request).await,
        };
        if !middleware::is_mangopay(&auth.tokens.settings, &scheme, &authority) {
            return client::send(request).await;
        }
        authorized(&auth, request, &scheme, &authority).await
    }
}

bindings::export!(Middleware with_types_in bindings);

/// What a request is rebuilt from, as often as it is sent.
struct Parts {
    method: Method,
    scheme: Option<Scheme>,
    authority: String,
    path: Option<String>,
    options: Option<RequestOptions>,
    /// The caller's headers; each request gets a copy with the Bearer token.
    headers: Fields,
}

/// A request to the base URL: checked, sent with the token, and sent once more with a new
/// one if the API refused the token and the body was kept.
async fn authorized(
    auth: &Rc<Auth>,
    request: Request,
    scheme: &str,
    authority: &str,
) -> Result<Response, ErrorCode> {
    let method = request.get_method();
    let method_text = method_text(&method);
    let headers: Vec<(String, String)> = request
        .get_headers()
        .copy_all()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    if let Err(error) = middleware::check_request(&auth.tokens.settings, &method_text, &headers) {
        let detail = middleware::detail(&error);
        auth.log(
            Level::Warn,
            "request-refused",
            &[(Field::Detail, Value::Text(&detail))],
        );
        return Err(error_code(&error));
    }
    let bearer = auth.bearer().await.map_err(|e| error_code(&e))?;
    let parts = Parts {
        method,
        scheme: request.get_scheme(),
        authority: authority.to_owned(),
        path: request.get_path_with_query(),
        options: request.get_options(),
        headers: request.get_headers().clone(),
    };
    let url = format!(
        "{scheme}://{authority}{}",
        parts.path.as_deref().unwrap_or("/")
    );
    let (done, done_rx) = wit_future::new::<Result<(), ErrorCode>>(|| Ok(()));
    let (stream, trailers) = Request::consume_body(request, done_rx);
    let body = Body::take(stream, trailers, auth.resend_body_max).await?;
    // The caller's body is read (kept) or being piped on: its sender may go on.
    drop(done);
    let (response, kept) = send(&parts, &bearer, body).await?;
    if response.get_status_code() != 401 {
        return Ok(response);
    }
    let answered = HttpRequest {
        method: method_text,
        url,
        headers: vec![("Authorization".into(), bearer.expose().to_owned())],
    };
    let headers: Vec<(String, String)> = response
        .get_headers()
        .copy_all()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let verdict = auth.check_response(&answered, 401, &headers);
    match (verdict, kept) {
        (Verdict::TokenRejected(_), Some(body)) => {
            drop(response);
            let bearer = auth.bearer().await.map_err(|e| error_code(&e))?;
            Ok(send(&parts, &bearer, body).await?.0)
        }
        _ => Ok(response),
    }
}

/// Sends the request `parts` describe with `bearer` and `body`; gives the body back if it was
/// kept, to send again.
async fn send(
    parts: &Parts,
    bearer: &Secret,
    body: Body,
) -> Result<(Response, Option<Body>), ErrorCode> {
    let headers = parts.headers.clone();
    let denied = |_| ErrorCode::HttpRequestDenied;
    headers.delete("authorization").map_err(denied)?;
    headers
        .append("authorization", bearer.expose().as_bytes())
        .map_err(denied)?;
    let empty = body.is_empty();
    let ((contents, trailers), kept) = body.contents();
    let contents = (!empty).then_some(contents);
    let options = parts.options.as_ref().map(|o| o.clone());
    let (request, _transmitted) = Request::new(headers, contents, trailers, options);
    let invalid = |()| ErrorCode::HttpRequestUriInvalid;
    request
        .set_method(&parts.method)
        .map_err(|()| ErrorCode::HttpRequestMethodInvalid)?;
    request.set_scheme(parts.scheme.as_ref()).map_err(invalid)?;
    request
        .set_authority(Some(&parts.authority))
        .map_err(invalid)?;
    request
        .set_path_with_query(parts.path.as_deref())
        .map_err(invalid)?;
    Ok((client::send(request).await?, kept))
}

/// The `error-code` a caller gets for an error the middleware raises (`middleware::code`).
fn error_code(error: &Error) -> ErrorCode {
    match middleware::code(error) {
        Code::Denied => ErrorCode::HttpRequestDenied,
        Code::Timeout => ErrorCode::ConnectionTimeout,
        Code::Refused => ErrorCode::ConnectionRefused,
        Code::Terminated => ErrorCode::ConnectionTerminated,
        Code::Internal => ErrorCode::InternalError(Some(middleware::detail(error))),
    }
}

/// Whether an unconfigured middleware treats `authority` as Mangopay's: a `mangopay.com`
/// host, or the authority of `MANGOPAY_BASE_URL`.
fn looks_like_mangopay(authority: &str) -> bool {
    let host = authority
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    host == "mangopay.com"
        || host.ends_with(".mangopay.com")
        || std::env::var("MANGOPAY_BASE_URL").is_ok_and(|url| url.contains(authority))
}

fn scheme_text(scheme: &Scheme) -> String {
    match scheme {
        Scheme::Http => "http".into(),
        Scheme::Https => "https".into(),
        Scheme::Other(other) => other.clone(),
    }
}

fn method_text(method: &Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other.clone(),
    }
}
