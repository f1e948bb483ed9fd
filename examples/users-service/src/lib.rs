//! An example HTTP service for per-request hosts: it exports `wasi:http/incoming-handler` and
//! answers `GET /users` by calling Mangopay through the imported `mangopay:auth/auth`. Each
//! answer says in `x-mangopay-token-source` where its token came from, so that a platform
//! user can see one token serve every per-request instance. `GET /authorize` only authorizes
//! a fixed request (no call to Mangopay) and answers 204 with the same headers: the auth path
//! of a request, which the benchmark measures per request.
//!
//! Composed with a token-sharing mangopay-auth artifact (with-token-store behind a
//! wasi:keyvalue adapter), it imports only WASI and wasi:keyvalue. The export glue exists only
//! on wasm32; the routing and answer logic below is plain Rust, tested natively.

wit_bindgen::generate!({
    world: "users-service",
    path: "wit",
    // The imported `mangopay:auth` package is a dependency (wit/deps): generate it here too.
    generate_all,
});

use mangopay::auth::auth::{
    ApiRequest, ApiResponse, AuthStatus, Error, HttpRequest, ResponseVerdict, StoreHealth,
    TokenSource,
};

/// The header naming where the request's token came from.
pub const SOURCE_HEADER: &str = "x-mangopay-token-source";
/// The header naming the token store's health.
pub const STORE_HEADER: &str = "x-mangopay-store";
/// The header Spin sets to the part of the path under the component's route: `/users` for
/// `GET /shop/users` to a component at `route = "/shop/..."`.
pub const SPIN_PATH_INFO: &str = "spin-path-info";
/// Users per page when the query names none.
pub const DEFAULT_PER_PAGE: u32 = 10;
/// Mangopay's largest page.
pub const MAX_PER_PAGE: u32 = 100;

/// What an incoming request asks for.
#[derive(Debug, PartialEq)]
pub enum Route {
    /// `GET /users`, with the page size to ask Mangopay for.
    Users {
        per_page: u32,
    },
    /// `GET /authorize`: authorize a fixed request to Mangopay without sending it.
    Authorize,
    NotFound,
    MethodNotAllowed,
    /// A `per_page` that is not a number from 1 to `MAX_PER_PAGE`.
    BadRequest(&'static str),
}

/// Routes `method` and `path_with_query` (as wasi:http gives them).
pub fn route(method: &str, path_with_query: &str) -> Route {
    let (path, query) = path_with_query
        .split_once('?')
        .unwrap_or((path_with_query, ""));
    if path != "/users" && path != "/authorize" {
        return Route::NotFound;
    }
    if method != "GET" {
        return Route::MethodNotAllowed;
    }
    if path == "/authorize" {
        return Route::Authorize;
    }
    let per_page = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("per_page="));
    match per_page.map(str::parse::<u32>) {
        None => Route::Users {
            per_page: DEFAULT_PER_PAGE,
        },
        Some(Ok(n)) if (1..=MAX_PER_PAGE).contains(&n) => Route::Users { per_page: n },
        Some(_) => Route::BadRequest("per_page must be a number from 1 to 100"),
    }
}

/// The path and query to route. Spin hands a component the whole path and, as
/// `spin-path-info`, the part under its route: with that header the service answers under
/// whatever route it is mounted at (`GET /shop/users`); without it (wasmCloud, `wasmtime
/// serve`) the path is routed as it came.
pub fn routed_path(path_with_query: &str, path_info: Option<&str>) -> String {
    let Some(info) = path_info else {
        return path_with_query.to_owned();
    };
    match path_with_query.split_once('?') {
        Some((_, query)) => format!("{info}?{query}"),
        None => info.to_owned(),
    }
}

/// `GET /v2.01/{ClientId}/users?per_page=N`: the auth component fills in the client id.
pub fn users_request(per_page: u32) -> ApiRequest {
    ApiRequest {
        method: "GET".into(),
        path: format!("/v2.01/{{ClientId}}/users?per_page={per_page}"),
        headers: vec![("Accept".into(), "application/json".into())],
        body: None,
    }
}

/// An answer to send back.
#[derive(Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn text(status: u16, text: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: format!("{text}\n").into_bytes(),
        }
    }
}

/// The answer to a route other than `Users`, which needs no Mangopay call.
pub fn local_reply(route: &Route) -> Option<Reply> {
    match route {
        Route::Users { .. } | Route::Authorize => None,
        Route::NotFound => Some(Reply::text(404, "not found: try GET /users")),
        Route::MethodNotAllowed => {
            let mut reply = Reply::text(405, "method not allowed: GET only");
            reply.headers.push(("allow".into(), "GET".into()));
            Some(reply)
        }
        Route::BadRequest(why) => Some(Reply::text(400, why)),
    }
}

/// The header value for where the token came from; `none` when no call got one.
pub fn source_name(source: Option<TokenSource>) -> &'static str {
    match source {
        Some(TokenSource::InstanceCache) => "instance-cache",
        Some(TokenSource::SharedStore) => "shared-store",
        Some(TokenSource::FreshFetch) => "fresh-fetch",
        None => "none",
    }
}

pub fn store_name(store: StoreHealth) -> &'static str {
    match store {
        StoreHealth::Ok => "ok",
        StoreHealth::Unavailable => "unavailable",
        StoreHealth::NotConfigured => "not-configured",
    }
}

/// The error's case name: enough to act on, and never anything a secret could hide in.
pub fn error_name(error: &Error) -> &'static str {
    match error {
        Error::InvalidCredentials(_) => "invalid-credentials",
        Error::LockedOut(_) => "locked-out",
        Error::Oauth(_) => "oauth",
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

/// The answer to `GET /users` from what `send` and then `token-status` returned: the API's
/// body on a 2xx, otherwise 502 with a short reason.
pub fn users_reply(sent: Result<ApiResponse, Error>, status: Result<AuthStatus, Error>) -> Reply {
    let mut reply = match sent {
        Ok(response) if (200..300).contains(&response.status) => Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: response.body,
        },
        Ok(response) => {
            let why = match response.verdict {
                ResponseVerdict::ScaRequired(_) => " (Strong Customer Authentication required)",
                ResponseVerdict::TokenRejected(_) => " (token rejected)",
                ResponseVerdict::Accepted => "",
            };
            let text = format!("Mangopay answered HTTP {}{why}", response.status);
            Reply::text(502, &text)
        }
        Err(error) => {
            let mut reply = Reply::text(
                502,
                &format!("Mangopay call failed: {}", error_name(&error)),
            );
            // A cool-down: the client sends nothing until then, so neither need the caller.
            if let Some(seconds) = retry_in_seconds(&error) {
                reply
                    .headers
                    .push(("retry-after".into(), seconds.to_string()));
            }
            reply
        }
    };
    add_status_headers(&mut reply, status);
    reply
}

/// How long the client will answer this same error without calling the token endpoint.
pub fn retry_in_seconds(error: &Error) -> Option<u64> {
    match error {
        Error::InvalidCredentials(e) => e.retry_in_seconds,
        Error::LockedOut(e) | Error::Oauth(e) => e.retry_in_seconds,
        Error::UnexpectedResponse(e) => e.retry_in_seconds,
        _ => None,
    }
}

/// The request `GET /authorize` authorizes: a users page on the client's `base_url`.
pub fn authorize_target(base_url: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        url: format!("{base_url}/v2.01/users?per_page=1"),
        headers: vec![("Accept".into(), "application/json".into())],
    }
}

/// The answer to `GET /authorize` from what `authorize-request` and then `token-status`
/// returned: 204 when the request was authorized, otherwise 502 with a short reason; the
/// token itself is never in it.
pub fn authorize_reply(
    authorized: Result<HttpRequest, Error>,
    status: Result<AuthStatus, Error>,
) -> Reply {
    let mut reply = match authorized {
        Ok(_) => Reply {
            status: 204,
            headers: vec![],
            body: vec![],
        },
        Err(error) => Reply::text(
            502,
            &format!("authorization failed: {}", error_name(&error)),
        ),
    };
    add_status_headers(&mut reply, status);
    reply
}

fn add_status_headers(reply: &mut Reply, status: Result<AuthStatus, Error>) {
    let (source, store) = match &status {
        Ok(status) => (source_name(status.source), store_name(status.store)),
        Err(_) => ("none", "unknown"),
    };
    reply.headers.push((SOURCE_HEADER.into(), source.into()));
    reply.headers.push((STORE_HEADER.into(), store.into()));
}

/// The component's side: the incoming-handler export over wasi:http and the auth import.
#[cfg(target_arch = "wasm32")]
mod component {
    use super::*;
    use mangopay::auth::auth;
    use wasip2::http::types::{
        Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
    };

    /// wasi:io's limit for one `blocking-write-and-flush`.
    const WRITE_CHUNK: usize = 4096;

    fn method_name(method: &Method) -> &str {
        match method {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
            Method::Other(other) => other,
        }
    }

    fn answer(request: &IncomingRequest) -> Reply {
        let path = request.path_with_query().unwrap_or_else(|| "/".into());
        // Spin's own value comes after any a client sent.
        let path_info = request.headers().get(SPIN_PATH_INFO).pop();
        let path_info = path_info.map(|v| String::from_utf8_lossy(&v).into_owned());
        let path = routed_path(&path, path_info.as_deref());
        let route = route(method_name(&request.method()), &path);
        if let Some(reply) = local_reply(&route) {
            return reply;
        }
        let per_page = match route {
            Route::Users { per_page } => per_page,
            Route::Authorize => {
                let authorized = auth::base_url()
                    .and_then(|base| auth::authorize_request(&authorize_target(&base)));
                return authorize_reply(authorized, auth::token_status());
            }
            _ => DEFAULT_PER_PAGE,
        };
        let sent = auth::send(&users_request(per_page));
        users_reply(sent, auth::token_status())
    }

    /// Writes `reply` out; once the head is handed over, a failure can only cut the body short.
    fn respond(reply: Reply, out: ResponseOutparam) {
        let headers: Vec<(String, Vec<u8>)> = reply
            .headers
            .into_iter()
            .map(|(name, value)| (name, value.into_bytes()))
            .collect();
        let Ok(fields) = Fields::from_list(&headers) else {
            return;
        };
        let response = OutgoingResponse::new(fields);
        if response.set_status_code(reply.status).is_err() {
            return;
        }
        let Ok(body) = response.body() else {
            return;
        };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = body.write() {
            for chunk in reply.body.chunks(WRITE_CHUNK) {
                if stream.blocking_write_and_flush(chunk).is_err() {
                    break;
                }
            }
        }
        let _ = OutgoingBody::finish(body, None);
    }

    struct Service;

    impl wasip2::exports::http::incoming_handler::Guest for Service {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let reply = answer(&request);
            drop(request);
            respond(reply, out);
        }
    }

    wasip2::http::proxy::export!(Service);
}

#[cfg(test)]
mod tests {
    use super::*;
    use mangopay::auth::auth::{TransportError, TransportKind};

    fn status(source: Option<TokenSource>, store: StoreHealth) -> Result<AuthStatus, Error> {
        Ok(AuthStatus {
            held: true,
            source,
            expires_in_seconds: Some(1200),
            token_requests: 0,
            cool_down_seconds: None,
            store,
            store_error: None,
        })
    }

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/users"), Route::Users { per_page: 10 });
        assert_eq!(
            route("GET", "/users?per_page=3&x=1"),
            Route::Users { per_page: 3 }
        );
        assert!(matches!(
            route("GET", "/users?per_page=0"),
            Route::BadRequest(_)
        ));
        assert!(matches!(
            route("GET", "/users?per_page=x"),
            Route::BadRequest(_)
        ));
        assert_eq!(route("POST", "/users"), Route::MethodNotAllowed);
        assert_eq!(route("GET", "/"), Route::NotFound);
        assert_eq!(route("GET", "/users/1"), Route::NotFound);
        assert_eq!(route("GET", "/authorize"), Route::Authorize);
        assert_eq!(route("POST", "/authorize"), Route::MethodNotAllowed);
        assert_eq!(local_reply(&Route::Authorize), None);
        assert_eq!(
            local_reply(&Route::MethodNotAllowed).map(|r| r.status),
            Some(405)
        );
        assert_eq!(local_reply(&Route::Users { per_page: 1 }), None);
    }

    #[test]
    fn under_spin_the_path_under_the_components_route_is_routed() {
        assert_eq!(routed_path("/users?per_page=3", None), "/users?per_page=3");
        let mounted = routed_path("/shop/users?per_page=3", Some("/users"));
        assert_eq!(mounted, "/users?per_page=3");
        assert_eq!(route("GET", &mounted), Route::Users { per_page: 3 });
        assert_eq!(
            routed_path("/shop/authorize", Some("/authorize")),
            "/authorize"
        );
        assert_eq!(
            route("GET", &routed_path("/shop/users", Some("/other"))),
            Route::NotFound
        );
    }

    #[test]
    fn the_request_leaves_the_client_id_to_the_auth_component() {
        let request = users_request(5);
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/v2.01/{ClientId}/users?per_page=5");
    }

    #[test]
    fn a_2xx_answer_is_passed_on_with_the_token_source() {
        let sent = Ok(ApiResponse {
            status: 200,
            headers: vec![],
            body: b"[]".to_vec(),
            verdict: ResponseVerdict::Accepted,
        });
        let reply = users_reply(
            sent,
            status(Some(TokenSource::SharedStore), StoreHealth::Ok),
        );
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, b"[]");
        assert_eq!(header(&reply, SOURCE_HEADER), Some("shared-store"));
        assert_eq!(header(&reply, STORE_HEADER), Some("ok"));
    }

    #[test]
    fn an_authorized_request_is_204_with_the_token_source_and_no_token() {
        let target = authorize_target("http://127.0.0.1:8080");
        assert_eq!(target.url, "http://127.0.0.1:8080/v2.01/users?per_page=1");
        let mut authorized = target.clone();
        authorized
            .headers
            .push(("Authorization".into(), "Bearer secret-token".into()));
        let reply = authorize_reply(
            Ok(authorized),
            status(Some(TokenSource::SharedStore), StoreHealth::Ok),
        );
        assert_eq!(reply.status, 204);
        assert!(reply.body.is_empty());
        assert_eq!(header(&reply, SOURCE_HEADER), Some("shared-store"));
        assert!(!format!("{reply:?}").contains("secret-token"));

        let reply = authorize_reply(
            Err(Error::ForeignHost("x".into())),
            status(None, StoreHealth::Ok),
        );
        assert_eq!(reply.status, 502);
        assert_eq!(reply.body, b"authorization failed: foreign-host\n");
    }

    #[test]
    fn failures_are_502_with_a_short_reason() {
        let sent = Ok(ApiResponse {
            status: 401,
            headers: vec![],
            body: b"secret-ish body".to_vec(),
            verdict: ResponseVerdict::TokenRejected(None),
        });
        let reply = users_reply(sent, status(None, StoreHealth::Unavailable));
        assert_eq!(reply.status, 502);
        let text = String::from_utf8_lossy(&reply.body);
        assert!(
            text.contains("401") && text.contains("token rejected"),
            "{text}"
        );
        assert!(!text.contains("secret-ish"));
        assert_eq!(header(&reply, SOURCE_HEADER), Some("none"));
        assert_eq!(header(&reply, STORE_HEADER), Some("unavailable"));

        let error = Error::Transport(TransportError {
            kind: TransportKind::ConnectionRefused,
            detail: "connection refused by sk-planted".into(),
        });
        let reply = users_reply(Err(error), Err(Error::InvalidConfig("x".into())));
        assert_eq!(reply.status, 502);
        assert_eq!(reply.body, b"Mangopay call failed: transport\n");
        assert_eq!(header(&reply, STORE_HEADER), Some("unknown"));
    }
}
