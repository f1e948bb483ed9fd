//! An example WASI 0.3 HTTP service with no auth code: it exports `wasi:http/handler@0.3.0`
//! and calls Mangopay through plain `wasi:http/client@0.3.0`, so that a middleware composed
//! in front of that import authorizes its calls. The routes are listed on the world
//! (`wit/world.wit`): `GET /users`, `/mangopay/<rest>` and `/foreign/<rest>`.
//!
//! The export glue exists only on wasm32; routing and URL building below are plain Rust,
//! tested natively.

/// Where the Mangopay routes go when `MANGOPAY_BASE_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.sandbox.mangopay.com";

/// Request headers that are not forwarded: framing and hop-by-hop ones, and those wasmtime's
/// wasi:http refuses on an outgoing request (`DEFAULT_FORBIDDEN_HEADERS`). Spin hands the
/// caller's `Host` to the guest: forwarded, it would make every request fail with
/// `HeaderError::Forbidden`.
pub const NOT_FORWARDED: [&str; 13] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "host",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "http2-settings",
];

/// What an incoming request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /users[?query]`: the query as given, with its `?` (or empty).
    Users {
        query: &'a str,
    },
    /// `<METHOD> /mangopay/<rest>`: `rest` with its query.
    Mangopay {
        rest: &'a str,
    },
    /// `<METHOD> /foreign/<rest>`: `rest` with its query.
    Foreign {
        rest: &'a str,
    },
    MethodNotAllowed,
    NotFound,
}

/// Routes `method` and `path_with_query` (as wasi:http gives them).
pub fn route<'a>(method: &str, path_with_query: &'a str) -> Route<'a> {
    if let Some(rest) = path_with_query.strip_prefix("/mangopay/") {
        return Route::Mangopay { rest };
    }
    if let Some(rest) = path_with_query.strip_prefix("/foreign/") {
        return Route::Foreign { rest };
    }
    let (path, query) = match path_with_query.find('?') {
        Some(at) => path_with_query.split_at(at),
        None => (path_with_query, ""),
    };
    match (method, path) {
        ("GET", "/users") => Route::Users { query },
        (_, "/users") => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

/// Where an outgoing request goes.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// `http`, `https`, ...
    pub scheme: String,
    pub authority: String,
    /// The base URL's path (without a trailing `/`) followed by the route's.
    pub path_with_query: String,
}

/// `path` (starting with `/`) under `base_url` (`scheme://authority[/prefix]`).
pub fn target(base_url: &str, path: &str) -> Result<Target, String> {
    let (scheme, rest) = base_url
        .split_once("://")
        .ok_or_else(|| format!("{base_url} is not an absolute URL"))?;
    let (authority, prefix) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(format!("{base_url} has no host"));
    }
    Ok(Target {
        scheme: scheme.to_ascii_lowercase(),
        authority: authority.to_owned(),
        path_with_query: format!("{}{path}", prefix.trim_end_matches('/')),
    })
}

/// The Mangopay path of `rest` (`users?per_page=1`) for `client_id`.
pub fn mangopay_path(client_id: &str, rest: &str) -> String {
    format!("/v2.01/{client_id}/{rest}")
}

/// Whether a caller's request header goes on the outgoing request.
pub fn forwarded(name: &str) -> bool {
    !NOT_FORWARDED
        .iter()
        .any(|framing| framing.eq_ignore_ascii_case(name))
}

#[cfg(target_arch = "wasm32")]
mod glue {
    wit_bindgen::generate!({
        world: "mangopay:users-p3/users-p3",
        path: ["../../vendor/wit/wasi-http-0.3.0", "wit"],
        generate_all,
    });

    use super::{Route, Target};
    use exports::wasi::http::handler::Guest;
    use wasi::http::client;
    use wasi::http::types::{ErrorCode, Fields, Method, Request, Response, Scheme, Trailers};

    struct UsersP3;

    type Answer = Result<Response, ErrorCode>;

    fn internal(what: &str) -> ErrorCode {
        ErrorCode::InternalError(Some(format!("users-p3: {what}")))
    }

    fn method_name(method: &Method) -> String {
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

    fn scheme(name: &str) -> Scheme {
        match name {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => Scheme::Other(other.into()),
        }
    }

    fn setting(name: &str) -> Result<String, String> {
        std::env::var(name).map_err(|_| format!("{name} is not set"))
    }

    fn base_url() -> String {
        std::env::var("MANGOPAY_BASE_URL").unwrap_or_else(|_| super::DEFAULT_BASE_URL.into())
    }

    /// A future that resolves to "no trailers".
    fn no_trailers() -> wit_bindgen::FutureReader<Result<Option<Trailers>, ErrorCode>> {
        let (writer, reader) = wit_future::new::<Result<Option<Trailers>, ErrorCode>>(|| Ok(None));
        drop(writer);
        reader
    }

    /// Sets where `request` goes.
    fn aim(request: &Request, method: &Method, target: &Target) -> Result<(), ErrorCode> {
        request
            .set_method(method)
            .map_err(|()| internal("method"))?;
        request
            .set_scheme(Some(&scheme(&target.scheme)))
            .map_err(|()| internal("scheme"))?;
        request
            .set_authority(Some(&target.authority))
            .map_err(|()| internal("authority"))?;
        request
            .set_path_with_query(Some(&target.path_with_query))
            .map_err(|()| internal("path"))
    }

    /// A body-less `GET` of `target` with `accept: application/json`.
    fn get(target: &Target) -> Result<Request, ErrorCode> {
        let accept = vec![("accept".to_owned(), b"application/json".to_vec())];
        let headers = Fields::from_list(&accept).map_err(|e| internal(&format!("{e:?}")))?;
        let (request, _transmitted) = Request::new(headers, None, no_trailers(), None);
        aim(&request, &Method::Get, target)?;
        Ok(request)
    }

    /// `incoming` re-aimed at `target`: its method, its headers but the framing ones, its
    /// body and trailers streamed through. How sending the body went is reported back to the
    /// caller's `res` future by a task that outlives `handle`'s answer.
    fn forward(incoming: Request, target: &Target) -> Result<Request, ErrorCode> {
        let method = incoming.get_method();
        let entries: Vec<(String, Vec<u8>)> = incoming
            .get_headers()
            .copy_all()
            .into_iter()
            .filter(|(name, _)| super::forwarded(name))
            .collect();
        let headers = Fields::from_list(&entries).map_err(|e| internal(&format!("{e:?}")))?;
        let (result_tx, result_rx) = wit_future::new::<Result<(), ErrorCode>>(|| Ok(()));
        let (body, trailers) = Request::consume_body(incoming, result_rx);
        let (outgoing, transmitted) = Request::new(headers, Some(body), trailers, None);
        aim(&outgoing, &method, target)?;
        wit_bindgen::spawn_local(async move {
            let _ = result_tx.write(transmitted.await).await;
        });
        Ok(outgoing)
    }

    /// `upstream`'s status, content type and body (streamed) as this service's answer.
    fn relay(upstream: Response) -> Answer {
        let status = upstream.get_status_code();
        let content_type: Vec<(String, Vec<u8>)> = upstream
            .get_headers()
            .get("content-type")
            .into_iter()
            .map(|value| ("content-type".to_owned(), value))
            .collect();
        let headers = Fields::from_list(&content_type).map_err(|e| internal(&format!("{e:?}")))?;
        let (result_tx, result_rx) = wit_future::new::<Result<(), ErrorCode>>(|| Ok(()));
        let (body, trailers) = Response::consume_body(upstream, result_rx);
        let (answer, transmitted) = Response::new(headers, Some(body), trailers);
        answer
            .set_status_code(status)
            .map_err(|()| internal("status"))?;
        wit_bindgen::spawn_local(async move {
            let _ = result_tx.write(transmitted.await).await;
        });
        Ok(answer)
    }

    /// A `text/plain` answer of this service's own.
    fn text(status: u16, message: String) -> Answer {
        let content_type = vec![(
            "content-type".to_owned(),
            b"text/plain; charset=utf-8".to_vec(),
        )];
        let headers = Fields::from_list(&content_type).map_err(|e| internal(&format!("{e:?}")))?;
        let (mut writer, reader) = wit_stream::new::<u8>();
        let (answer, transmitted) = Response::new(headers, Some(reader), no_trailers());
        answer
            .set_status_code(status)
            .map_err(|()| internal("status"))?;
        wit_bindgen::spawn_local(async move {
            let _ = writer.write_all(message.into_bytes()).await;
            drop(writer);
            let _ = transmitted.await;
        });
        Ok(answer)
    }

    /// The outgoing request for `incoming`, or the answer that replaces it.
    fn outgoing(incoming: Request) -> Result<Request, (u16, String)> {
        let method = method_name(&incoming.get_method());
        let path = incoming.get_path_with_query().unwrap_or_default();
        let error = |e: ErrorCode| (500, format!("{e:?}"));
        match super::route(&method, &path) {
            Route::Users { query } => {
                let client_id = setting("MANGOPAY_CLIENT_ID").map_err(|e| (500, e))?;
                let rest = format!("users{query}");
                let path = super::mangopay_path(&client_id, &rest);
                let target = super::target(&base_url(), &path).map_err(|e| (500, e))?;
                get(&target).map_err(error)
            }
            Route::Mangopay { rest } => {
                let client_id = setting("MANGOPAY_CLIENT_ID").map_err(|e| (500, e))?;
                let path = super::mangopay_path(&client_id, rest);
                let target = super::target(&base_url(), &path).map_err(|e| (500, e))?;
                forward(incoming, &target).map_err(error)
            }
            Route::Foreign { rest } => {
                let base = setting("FOREIGN_URL").map_err(|e| (500, e))?;
                let target = super::target(&base, &format!("/{rest}")).map_err(|e| (500, e))?;
                forward(incoming, &target).map_err(error)
            }
            Route::MethodNotAllowed => Err((405, format!("{method} {path}: use GET"))),
            Route::NotFound => Err((404, format!("{path}: no such route"))),
        }
    }

    impl Guest for UsersP3 {
        async fn handle(request: Request) -> Answer {
            let what = format!(
                "{} {}",
                method_name(&request.get_method()),
                request.get_path_with_query().unwrap_or_default()
            );
            let request = match outgoing(request) {
                Ok(request) => request,
                Err((status, message)) => return text(status, message),
            };
            match client::send(request).await {
                Ok(response) => relay(response),
                Err(code) => {
                    eprintln!("users-p3: {what}: upstream: {code:?}");
                    text(502, format!("upstream: {code:?}"))
                }
            }
        }
    }

    export!(UsersP3);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/users"), Route::Users { query: "" });
        assert_eq!(
            route("GET", "/users?per_page=3"),
            Route::Users {
                query: "?per_page=3"
            }
        );
        assert_eq!(route("POST", "/users"), Route::MethodNotAllowed);
        assert_eq!(
            route("POST", "/mangopay/users/natural?x=1"),
            Route::Mangopay {
                rest: "users/natural?x=1"
            }
        );
        assert_eq!(
            route("GET", "/foreign/anything"),
            Route::Foreign { rest: "anything" }
        );
        assert_eq!(route("GET", "/"), Route::NotFound);
        assert_eq!(route("GET", "/usersx"), Route::NotFound);
    }

    #[test]
    fn targets() {
        assert_eq!(
            target("http://127.0.0.1:8080", "/v2.01/id/users"),
            Ok(Target {
                scheme: "http".into(),
                authority: "127.0.0.1:8080".into(),
                path_with_query: "/v2.01/id/users".into(),
            })
        );
        assert_eq!(
            target("HTTPS://api.example/prefix/", "/x?y=1"),
            Ok(Target {
                scheme: "https".into(),
                authority: "api.example".into(),
                path_with_query: "/prefix/x?y=1".into(),
            })
        );
        assert!(target("api.example", "/x").is_err());
        assert!(target("http:///x", "/x").is_err());
        assert_eq!(
            mangopay_path("id", "users?per_page=2"),
            "/v2.01/id/users?per_page=2"
        );
    }

    #[test]
    fn framing_headers_stay() {
        assert!(forwarded("authorization"));
        assert!(forwarded("content-type"));
        assert!(!forwarded("Content-Length"));
        assert!(!forwarded("transfer-encoding"));
        // Spin passes the caller's Host; wasmtime forbids it on an outgoing request.
        assert!(!forwarded("Host"));
        assert!(!forwarded("proxy-connection"));
    }
}
