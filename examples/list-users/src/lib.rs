//! An example business component. It imports `mangopay:auth/auth` and calls Mangopay through
//! it: `list-users` and `create-natural-user` with `send` (the auth component builds the URL,
//! attaches the token, renews and resends as needed), and `list-users-own-client` with its own
//! HTTP client (waki) and `authorize-request` / `check-response`.
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

use mangopay::auth::auth::{
    self, ApiRequest, ApiResponse, HttpRequest, HttpResponse, ResponseVerdict,
};

/// `GET /v2.01/{ClientId}/users?per_page={per_page}`: the auth component fills in the id.
pub fn users_request(per_page: u32) -> ApiRequest {
    ApiRequest {
        method: "GET".into(),
        path: format!("/v2.01/{{ClientId}}/users?per_page={per_page}"),
        headers: vec![("Accept".into(), "application/json".into())],
        body: None,
    }
}

/// `POST /v2.01/{ClientId}/users/natural` with `user` as the JSON body.
pub fn create_user_request(user: &str, idempotency_key: &str) -> ApiRequest {
    ApiRequest {
        method: "POST".into(),
        path: "/v2.01/{ClientId}/users/natural".into(),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("Idempotency-Key".into(), idempotency_key.into()),
        ],
        body: Some(user.as_bytes().to_vec()),
    }
}

/// What the example makes of an answer: the body of a 2xx, else the reason in words.
pub fn outcome(status: u16, body: &[u8], verdict: &ResponseVerdict) -> Result<String, String> {
    let text = || String::from_utf8_lossy(body).into_owned();
    match verdict {
        ResponseVerdict::Accepted if (200..300).contains(&status) => Ok(text()),
        ResponseVerdict::Accepted => Err(format!("HTTP {status}: {}", text())),
        ResponseVerdict::TokenRejected(api) => Err(format!(
            "the token was rejected: {:?}",
            api.as_ref().map(|e| &e.message)
        )),
        ResponseVerdict::ScaRequired(url) => Err(format!(
            "Strong Customer Authentication required: {}",
            url.as_deref().unwrap_or("no redirect URL given")
        )),
    }
}

/// The component's side: calls into the imported interface and wasi:http. Natively (the
/// workspace's `cargo test`) it is type-checked but never called, as nothing exports it.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod component {
    use super::*;

    fn call(request: &ApiRequest) -> Result<String, String> {
        let response: ApiResponse = auth::send(request).map_err(|e| format!("send: {e:?}"))?;
        outcome(response.status, &response.body, &response.verdict)
    }

    /// With its own HTTP client: authorize, send, let the auth component read the answer,
    /// and resend once if it dropped a rejected token.
    fn list_users_own_client(per_page: u32) -> Result<String, String> {
        let base = auth::base_url().map_err(|e| format!("base-url: {e:?}"))?;
        let client_id = std::env::var("MANGOPAY_CLIENT_ID").map_err(|e| e.to_string())?;
        let request = HttpRequest {
            method: "GET".into(),
            url: format!("{base}/v2.01/{client_id}/users?per_page={per_page}"),
            headers: vec![("Accept".into(), "application/json".into())],
        };
        for _ in 0..2 {
            let authorized = auth::authorize_request(&request)
                .map_err(|e| format!("authorize-request: {e:?}"))?;
            let response = send_with_waki(&authorized)?;
            let verdict = auth::check_response(&authorized, &response);
            if !matches!(verdict, ResponseVerdict::TokenRejected(_)) {
                return outcome(response.status, &response.body, &verdict);
            }
        }
        Err("the token was rejected twice".into())
    }

    /// Sends an authorized GET over wasi:http with waki.
    fn send_with_waki(request: &HttpRequest) -> Result<HttpResponse, String> {
        let mut builder = waki::Client::new().request(waki::Method::Get, &request.url);
        for (name, value) in &request.headers {
            let name = waki::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("header {name:?}: {e}"))?;
            builder = builder.header(name, value.as_str());
        }
        let response = builder.send().map_err(|e| format!("sending: {e}"))?;
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
            call(&users_request(per_page))
        }

        fn create_natural_user(user: String, idempotency_key: String) -> Result<String, String> {
            call(&create_user_request(&user, &idempotency_key))
        }

        fn list_users_own_client(per_page: u32) -> Result<String, String> {
            list_users_own_client(per_page)
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

    #[test]
    fn requests_leave_the_client_id_to_the_auth_component() {
        assert_eq!(users_request(5).path, "/v2.01/{ClientId}/users?per_page=5");
        let create = create_user_request(r#"{"FirstName":"Zoë"}"#, "k-1");
        assert_eq!(create.method, "POST");
        assert_eq!(
            create.body.as_deref(),
            Some(r#"{"FirstName":"Zoë"}"#.as_bytes())
        );
        assert!(
            create
                .headers
                .contains(&("Idempotency-Key".into(), "k-1".into()))
        );
    }

    #[test]
    fn answers_become_bodies_or_reasons() {
        assert_eq!(
            outcome(200, b"[]", &ResponseVerdict::Accepted),
            Ok("[]".into())
        );
        assert_eq!(
            outcome(404, b"nope", &ResponseVerdict::Accepted),
            Err("HTTP 404: nope".into())
        );
        let rejected = ResponseVerdict::TokenRejected(Some(ApiError {
            status: 401,
            message: "The authorization credentials are not valid".into(),
            error_type: "invalid_credentials".into(),
            id: None,
            date: None,
            retry_in_seconds: None,
        }));
        assert!(outcome(401, b"{}", &rejected).is_err_and(|e| e.contains("rejected")));
        assert!(
            outcome(
                401,
                b"",
                &ResponseVerdict::ScaRequired(Some("https://sca".into()))
            )
            .is_err_and(|e| e.contains("https://sca"))
        );
    }
}
