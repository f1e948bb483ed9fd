//! An example business component. It imports `mangopay:auth/auth` and exports one function,
//! `list-users`: authorize `GET /v2.01/{ClientId}/users` with the auth component's default
//! client, send it over wasi:http (waki), hand the answer to `check-response`, and resend once
//! if the token was rejected.
//!
//! Built for `wasm32-wasip2`, it is a component with an unsatisfied `mangopay:auth/auth`
//! import; composing it with the mangopay-auth component (`compose.wac`) gives a component that
//! imports only WASI. The export glue exists only on wasm32, so the workspace's native
//! `cargo test` builds and tests the plain logic below.

wit_bindgen::generate!({
    world: "list-users",
    path: "wit",
    // The imported `mangopay:auth` package is a dependency (wit/deps): generate it here too.
    generate_all,
});

use mangopay::auth::auth::{self, HttpRequest, HttpResponse, ResponseVerdict};

/// The base URL the auth component's default client uses, from the same variables it reads:
/// `MANGOPAY_BASE_URL`, else `MANGOPAY_ENVIRONMENT` (`production` or the default `sandbox`).
pub fn base_url(var: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    if let Some(url) = var("MANGOPAY_BASE_URL") {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    match var("MANGOPAY_ENVIRONMENT").as_deref() {
        None | Some("sandbox") => Ok("https://api.sandbox.mangopay.com".into()),
        Some("production") => Ok("https://api.mangopay.com".into()),
        Some(other) => Err(format!(
            "MANGOPAY_ENVIRONMENT is {other:?}, not sandbox or production"
        )),
    }
}

/// `{base}/v2.01/{client_id}/users?per_page={per_page}`.
pub fn users_url(base: &str, client_id: &str, per_page: u32) -> String {
    format!("{base}/v2.01/{client_id}/users?per_page={per_page}")
}

/// What the example does after an answer: return it, or authorize and send once more.
#[derive(Debug, PartialEq)]
pub enum Next {
    Done(Result<String, String>),
    Resend,
}

/// Decides on an answer with the verdict of `check-response`. `first` is true for the first
/// attempt: only that one is resent after a rejected token.
pub fn next(status: u16, body: &[u8], verdict: &ResponseVerdict, first: bool) -> Next {
    let text = || String::from_utf8_lossy(body).into_owned();
    match verdict {
        ResponseVerdict::Accepted if (200..300).contains(&status) => Next::Done(Ok(text())),
        ResponseVerdict::Accepted => Next::Done(Err(format!("HTTP {status}: {}", text()))),
        ResponseVerdict::TokenRejected(_) if first => Next::Resend,
        ResponseVerdict::TokenRejected(api) => Next::Done(Err(format!(
            "the token was rejected twice: {:?}",
            api.as_ref().map(|e| &e.message)
        ))),
        ResponseVerdict::ScaRequired(url) => Next::Done(Err(format!(
            "Strong Customer Authentication required: {}",
            url.as_deref().unwrap_or("no redirect URL given")
        ))),
    }
}

/// The component's side: calls into the imported interface and wasi:http. Natively (the
/// workspace's `cargo test`) it is type-checked but never called, as nothing exports it.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod component {
    use super::*;

    fn list_users(per_page: u32) -> Result<String, String> {
        let var = |name: &str| std::env::var(name).ok();
        let client_id = var("MANGOPAY_CLIENT_ID").ok_or("MANGOPAY_CLIENT_ID is not set")?;
        let request = HttpRequest {
            method: "GET".into(),
            url: users_url(&base_url(var)?, &client_id, per_page),
            headers: vec![("Accept".into(), "application/json".into())],
        };
        let mut first = true;
        loop {
            // The auth component fetches a token on first use and serves it from its cache after.
            let authorized = auth::authorize_request(&request)
                .map_err(|e| format!("authorize-request: {e:?}"))?;
            let response = send(&authorized)?;
            let verdict = auth::check_response(&authorized, &response);
            match next(response.status, &response.body, &verdict, first) {
                Next::Done(result) => return result,
                Next::Resend => first = false,
            }
        }
    }

    /// Sends an authorized request over wasi:http.
    fn send(request: &HttpRequest) -> Result<HttpResponse, String> {
        let method = match request.method.as_str() {
            "GET" => waki::Method::Get,
            other => return Err(format!("this example sends only GET, not {other}")),
        };
        let mut builder = waki::Client::new().request(method, &request.url);
        for (name, value) in &request.headers {
            let name = waki::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("header {name:?}: {e}"))?;
            builder = builder.header(name, value.as_str());
        }
        let response = builder
            .send()
            .map_err(|e| format!("sending {}: {e}", request.url))?;
        let status = response.status_code();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        let body = response
            .body()
            .map_err(|e| format!("reading the answer: {e}"))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    struct ListUsers;

    impl Guest for ListUsers {
        fn list_users(per_page: u32) -> Result<String, String> {
            list_users(per_page)
        }
    }

    // The exported names contain `:`, which a native cdylib cannot link: glue only on wasm32.
    #[cfg(target_arch = "wasm32")]
    export!(ListUsers with_types_in crate);
}

#[cfg(test)]
mod tests {
    use super::*;
    use mangopay::auth::auth::ApiError;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn base_url_follows_the_auth_components_variables() {
        assert_eq!(
            base_url(env(&[])).as_deref(),
            Ok("https://api.sandbox.mangopay.com")
        );
        assert_eq!(
            base_url(env(&[("MANGOPAY_ENVIRONMENT", "production")])).as_deref(),
            Ok("https://api.mangopay.com")
        );
        assert_eq!(
            base_url(env(&[
                ("MANGOPAY_ENVIRONMENT", "production"),
                ("MANGOPAY_BASE_URL", "http://127.0.0.1:8080/")
            ]))
            .as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        assert!(base_url(env(&[("MANGOPAY_ENVIRONMENT", "prod")])).is_err());
    }

    #[test]
    fn users_url_has_the_client_id_and_page_size() {
        assert_eq!(
            users_url("http://127.0.0.1:1", "acme", 5),
            "http://127.0.0.1:1/v2.01/acme/users?per_page=5"
        );
    }

    #[test]
    fn a_rejected_token_is_resent_once() {
        let rejected = ResponseVerdict::TokenRejected(Some(ApiError {
            status: 401,
            message: "The authorization credentials are not valid".into(),
            error_type: "invalid_credentials".into(),
            id: None,
            date: None,
            retry_in_seconds: None,
        }));
        assert_eq!(next(401, b"{}", &rejected, true), Next::Resend);
        assert!(matches!(
            next(401, b"{}", &rejected, false),
            Next::Done(Err(e)) if e.contains("rejected twice")
        ));
        assert_eq!(
            next(200, b"[]", &ResponseVerdict::Accepted, true),
            Next::Done(Ok("[]".into()))
        );
        assert_eq!(
            next(404, b"nope", &ResponseVerdict::Accepted, true),
            Next::Done(Err("HTTP 404: nope".into()))
        );
        assert!(matches!(
            next(401, b"", &ResponseVerdict::ScaRequired(Some("https://sca".into())), true),
            Next::Done(Err(e)) if e.contains("https://sca")
        ));
    }
}
