//! `send`: authorized API calls end to end through the component, over real sockets against
//! the mock Mangopay: bodies byte for byte, one renewal and one resend for a revoked token,
//! SCA answered at once, retries only where repeating is safe, the body cap, path refusals.

use host_test::fixture::{API_KEY, CLIENT_ID, World, basic};
use host_test::host::{
    ApiRequest, ApiResponse, Config, Error, ResponseVerdict, RetryPolicy, Timeouts, TransportKind,
};
use host_test::mock::{Canned, TOKEN_PATH};
use wasmtime::component::ResourceAny;

fn get(path: &str) -> ApiRequest {
    ApiRequest {
        method: "GET".into(),
        path: path.into(),
        headers: vec![("Accept".into(), "application/json".into())],
        body: None,
    }
}

/// A client that retries at once (1 ms backoff), so retries cost no real time.
fn quick_client(w: &mut World) -> ResourceAny {
    let config = Config {
        retry: Some(RetryPolicy {
            max_attempts: Some(3),
            initial_backoff_ms: Some(1),
            budget_ms: None,
        }),
        ..w.config()
    };
    w.client_with(&config)
}

fn send(w: &mut World, client: ResourceAny, request: &ApiRequest) -> Result<ApiResponse, Error> {
    w.instance.send(client, request).expect("no trap")
}

#[test]
fn send_gets_the_users_with_one_token_request() {
    let mut w = World::new();
    let client = w.client();
    for _ in 0..5 {
        let response =
            send(&mut w, client, &get("/v2.01/{ClientId}/users?per_page=1")).expect("sent");
        assert_eq!(response.status, 200);
        assert_eq!(response.verdict, ResponseVerdict::Accepted);
        assert_eq!(
            String::from_utf8(response.body).expect("utf-8"),
            r#"[{"Id":"user_1","FirstName":"Ada"}]"#
        );
    }
    assert_eq!((w.mock.token_requests(), w.mock.api_requests()), (1, 5));
    let api = w
        .mock
        .requests()
        .into_iter()
        .find(|r| r.path != TOKEN_PATH)
        .expect("an API call");
    assert_eq!(api.method, "GET");
    assert_eq!(api.path, format!("/v2.01/{CLIENT_ID}/users?per_page=1"));
    assert_eq!(api.header("accept"), Some("application/json"));
    assert!(
        api.header("authorization")
            .is_some_and(|h| h.starts_with("Bearer "))
    );
    assert_eq!(
        w.instance.base_url(client).expect("no trap"),
        w.mock.base_url()
    );
}

#[test]
fn a_post_body_arrives_byte_for_byte_with_its_length() {
    let mut w = World::new();
    let client = w.client();
    let body =
        r#"{"FirstName":"Zoë","LastName":"Ångström","Email":"zoë@example.com","Tag":"日本"}"#;
    let request = ApiRequest {
        method: "POST".into(),
        path: "/v2.01/{ClientId}/users/natural".into(),
        headers: vec![
            (
                "Content-Type".into(),
                "application/json; charset=utf-8".into(),
            ),
            ("Authorization".into(), "Bearer forged".into()),
        ],
        body: Some(body.as_bytes().to_vec()),
    };
    let response = send(&mut w, client, &request).expect("sent");
    assert_eq!(response.status, 201);
    assert_eq!(response.body, body.as_bytes());
    let posted = w
        .mock
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path != TOKEN_PATH)
        .expect("the POST");
    assert_eq!(posted.body, body.as_bytes());
    assert_eq!(
        posted.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(
        posted.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(posted.header("transfer-encoding"), None);
    let authorizations: Vec<_> = posted
        .headers
        .iter()
        .filter(|(n, _)| n == "authorization")
        .collect();
    assert_eq!(authorizations.len(), 1);
    assert_ne!(authorizations[0].1, "Bearer forged");
}

#[test]
fn a_revoked_token_costs_one_renewal_and_one_resend() {
    let mut w = World::new();
    let client = w.client();
    let users = get("/v2.01/{ClientId}/users");
    send(&mut w, client, &users).expect("sent");
    w.mock.revoke_tokens();
    let response = send(&mut w, client, &users).expect("sent");
    assert_eq!(
        (response.status, response.verdict),
        (200, ResponseVerdict::Accepted)
    );
    assert_eq!(w.mock.token_requests(), 2);
    assert_eq!(w.mock.api_requests(), 3);
    assert_eq!(w.mock.rejected_api_calls(), 1);
}

#[test]
fn an_sca_answer_is_returned_at_once_recognisable_and_keeps_the_token() {
    let mut w = World::new();
    let client = w.client();
    let mut challenge = Canned::new(401, "application/json", "{}");
    challenge.headers.push((
        "www-authenticate",
        "PendingUserAction RedirectUrl=https://sca.mangopay.example/flow/42".into(),
    ));
    w.mock.push_api_canned(challenge);
    let response = send(&mut w, client, &get("/v2.01/{ClientId}/users")).expect("sent");
    assert_eq!(response.status, 401);
    assert_eq!(
        response.verdict,
        ResponseVerdict::ScaRequired(Some("https://sca.mangopay.example/flow/42".into()))
    );
    assert_eq!((w.mock.token_requests(), w.mock.api_requests()), (1, 1));
    assert!(w.instance.token_status(client).expect("no trap").held);
}

#[test]
fn a_503_is_retried_for_get_and_keyed_post_but_not_for_plain_post() {
    let mut w = World::new();
    let client = quick_client(&mut w);
    let unavailable = || Canned::new(503, "text/plain", "try later");
    let post = |key: Option<&str>| ApiRequest {
        method: "POST".into(),
        path: "/v2.01/{ClientId}/users/natural".into(),
        headers: key
            .map(|k| ("Idempotency-Key".to_owned(), k.to_owned()))
            .into_iter()
            .collect(),
        body: Some(b"{}".to_vec()),
    };

    w.mock.push_api_canned(unavailable());
    assert_eq!(
        send(&mut w, client, &get("/v2.01/{ClientId}/users"))
            .expect("sent")
            .status,
        200
    );
    assert_eq!(w.mock.api_requests(), 2);

    w.mock.push_api_canned(unavailable());
    let response = send(&mut w, client, &post(None)).expect("sent");
    assert_eq!(
        (response.status, response.body),
        (503, b"try later".to_vec())
    );
    assert_eq!(w.mock.api_requests(), 3);

    w.mock.push_api_canned(unavailable());
    assert_eq!(
        send(&mut w, client, &post(Some("create-zoe-1")))
            .expect("sent")
            .status,
        201
    );
    assert_eq!(w.mock.api_requests(), 5);
    assert_eq!(w.mock.token_requests(), 1);
}

/// A server that never reads the request body, and host timeouts far longer than the call's
/// budget: the component's own deadline on the body write ends the call as a timeout, well
/// before the host's timeouts would.
#[test]
fn a_server_that_does_not_read_the_body_cannot_hold_send_past_its_budget() {
    let mut w = World::new();
    let config = Config {
        retry: Some(RetryPolicy {
            max_attempts: Some(1),
            initial_backoff_ms: Some(1),
            budget_ms: Some(2_000),
        }),
        timeouts: Some(Timeouts {
            connect_ms: Some(120_000),
            first_byte_ms: Some(120_000),
            between_bytes_ms: Some(120_000),
        }),
        ..w.config()
    };
    let client = w.client_with(&config);
    w.token(client);
    w.mock.set_api_unread(true);
    let upload = ApiRequest {
        method: "PUT".into(),
        path: "/v2.01/{ClientId}/users/natural/user_1".into(),
        headers: vec![("Content-Type".into(), "application/octet-stream".into())],
        // Far more than loopback socket buffers hold.
        body: Some(vec![b'x'; 64 * 1024 * 1024]),
    };
    let started = std::time::Instant::now();
    let error = send(&mut w, client, &upload).expect_err("the server never reads");
    assert!(
        matches!(&error, Error::Transport(e) if e.kind == TransportKind::Timeout),
        "{error:?}"
    );
    // Not a measure of speed: the host's own timeouts are 120 s; only the 2 s budget ends it.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert_eq!(w.mock.token_requests(), 1);
}

#[test]
fn an_answer_over_the_cap_is_a_typed_error() {
    let mut w = World::new();
    let config = Config {
        max_response_bytes: Some(1024),
        ..w.config()
    };
    let client = w.client_with(&config);
    w.mock
        .push_api_canned(Canned::new(200, "application/json", vec![b'x'; 1024]));
    assert_eq!(
        send(&mut w, client, &get("/v2.01/x"))
            .expect("fits")
            .body
            .len(),
        1024
    );
    w.mock.push_api_canned(Canned::new(
        200,
        "application/json",
        vec![b'x'; 4 * 1024 * 1024],
    ));
    assert_eq!(
        send(&mut w, client, &get("/v2.01/x")),
        Err(Error::ResponseTooLarge(1024))
    );
}

#[test]
fn paths_and_headers_that_could_leave_the_origin_are_refused_before_any_request() {
    let mut w = World::new();
    let client = w.client();
    let mut requests: Vec<ApiRequest> = [
        "https://evil.example/v2.01/x",
        "//evil.example/v2.01/x",
        "v2.01/x",
        "/v2.01/x@evil.example",
        "/v2.01\\x",
        "/v2.01/x y",
        "/v2.01/x\r\nX-Injected: 1",
        "/v2.01/x#frag",
    ]
    .iter()
    .map(|p| get(p))
    .collect();
    let mut header = get("/v2.01/x");
    header
        .headers
        .push(("X-Note".into(), "a\r\nX-Injected: 1".into()));
    requests.push(header);
    // Framing and hop-by-hop headers are the transport's: a caller's would desync the message.
    for (name, value) in [
        ("Transfer-Encoding", "chunked"),
        ("connection", "close"),
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
    ] {
        let mut framing = get("/v2.01/x");
        framing.headers.push((name.into(), value.into()));
        requests.push(framing);
    }
    for request in &requests {
        let error = send(&mut w, client, request).expect_err("refused");
        assert!(
            matches!(error, Error::InvalidRequest(_)),
            "{request:?}: {error:?}"
        );
    }
    assert!(w.mock.requests().is_empty(), "nothing was sent");
}

#[test]
fn the_default_client_sends_and_no_secret_reaches_any_output() {
    let mut w = World::with_env(|mock| {
        vec![
            ("MANGOPAY_CLIENT_ID".into(), CLIENT_ID.into()),
            ("MANGOPAY_API_KEY".into(), API_KEY.into()),
            ("MANGOPAY_BASE_URL".into(), mock.base_url()),
        ]
    });
    let response = w
        .instance
        .default_send(&get("/v2.01/{ClientId}/users"))
        .expect("no trap")
        .expect("sent");
    assert_eq!(response.status, 200);
    w.mock.revoke_tokens();
    w.mock
        .push_api_canned(Canned::new(500, "text/plain", format!("echo {API_KEY}")));
    let response = w
        .instance
        .default_send(&get("/v2.01/{ClientId}/users"))
        .expect("no trap")
        .expect("sent");
    // An answer is the caller's data, returned as the API gave it; errors are redacted.
    assert_eq!(response.status, 500);
    let refused = w
        .instance
        .default_send(&get("//x"))
        .expect("no trap")
        .expect_err("refused");
    let tokens = w.mock.issued_tokens();
    let basic = basic(CLIENT_ID, API_KEY);
    let credential = basic.trim_start_matches("Basic ");
    let seen = format!("{refused:?}\n{}", w.instance.output());
    for secret in tokens
        .iter()
        .map(String::as_str)
        .chain([API_KEY, credential])
    {
        assert!(!seen.contains(secret), "a secret leaked: {seen}");
    }
}
