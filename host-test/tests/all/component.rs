//! The component through wasmtime, against the mock Mangopay on 127.0.0.1, on virtual time.

use base64::Engine as _;
use host_test::clock::WALL_ORIGIN;
use host_test::fixture::{API_KEY, CLIENT_ID, World, authorization_headers, basic};
use host_test::host::{
    ApiError, Config, Error, HttpRequest, OauthError, RetryPolicy, TokenResponseProblem,
    TransportKind, UnexpectedResponse, config,
};
use host_test::http_client;
use host_test::mock::{Canned, TOKEN_PATH};
use std::time::Duration;
use wasmtime::component::ResourceAny;

// 1. The token request on the wire.
#[test]
fn token_request_is_exactly_as_documented() {
    let mut w = World::new();
    let client = w.client();
    w.token(client);
    let requests = w.mock.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v2.01/oauth/token");
    let mut headers = request.headers.clone();
    headers.sort();
    let host = w.mock.base_url().trim_start_matches("http://").to_owned();
    let mut expected = vec![
        ("accept".to_owned(), "application/json".to_owned()),
        ("authorization".to_owned(), basic(CLIENT_ID, API_KEY)),
        ("content-length".to_owned(), "29".to_owned()),
        (
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("host".to_owned(), host),
        (
            "user-agent".to_owned(),
            // The workspace shares one version.
            concat!(
                "mangopay-auth/",
                env!("CARGO_PKG_VERSION"),
                " (wasm32-wasip2)"
            )
            .to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(
        headers, expected,
        "exactly these headers, no transfer-encoding"
    );
    assert_eq!(request.body, b"grant_type=client_credentials");
}

// 2. One token per lifetime, however many calls.
#[test]
fn a_thousand_authorizations_cost_one_token_request() {
    let mut w = World::new();
    let client = w.client();
    let request = w.users(CLIENT_ID);
    let mut bearers = std::collections::HashSet::new();
    for _ in 0..1000 {
        let authorized = w.authorize(client, &request).expect("authorized");
        bearers.insert(authorization_headers(&authorized)[0].to_owned());
        w.clock.advance(Duration::from_millis(500));
    }
    assert_eq!(w.mock.token_requests(), 1);
    assert_eq!(bearers.len(), 1);
}

// 3. Renewal at expiry minus margin, for the lifetime the endpoint announced.
#[test]
fn renews_once_at_expiry_minus_margin_for_any_lifetime() {
    // (expires_in, refresh point in ms: expires_in - min(60 s, expires_in / 2))
    for (expires_in, refresh_ms) in [(1200, 1_140_000), (37, 18_500), (7200, 7_140_000)] {
        let mut w = World::new();
        w.mock.set_expires_in(expires_in);
        let client = w.client();
        let first = w
            .instance
            .get_token(client)
            .expect("no trap")
            .expect("token");
        assert_eq!(first.expires_in_seconds, expires_in);
        assert_eq!(
            first.expires_at_unix_seconds,
            WALL_ORIGIN.as_secs() + expires_in
        );
        w.clock.advance(Duration::from_millis(refresh_ms - 1));
        assert_eq!(
            w.token(client),
            first.access_token,
            "expires_in {expires_in}"
        );
        assert_eq!(w.mock.token_requests(), 1);
        w.clock.advance(Duration::from_millis(1));
        let second = w.token(client);
        assert_ne!(second, first.access_token);
        assert_eq!(w.mock.token_requests(), 2, "expires_in {expires_in}");
        for _ in 0..100 {
            assert_eq!(w.token(client), second);
        }
        assert_eq!(w.mock.token_requests(), 2);
    }
}

// 4. End to end, and an expired token is never sent.
#[test]
fn authorized_requests_reach_the_protected_endpoint_and_never_carry_an_expired_token() {
    let mut w = World::new();
    w.mock.set_expires_in(37);
    let client = w.client();
    let request = w.users(CLIENT_ID);
    let first = w.authorize(client, &request).expect("authorized");
    let answer = http_client::send(&first).expect("sent");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("user_1"));

    // 100 virtual seconds, one call a second: 37 s tokens renewed every 19 s (margin 18.5 s).
    for _ in 0..100 {
        w.clock.advance(Duration::from_secs(1));
        let authorized = w.authorize(client, &request).expect("authorized");
        assert_eq!(http_client::send(&authorized).expect("sent").status, 200);
    }
    assert_eq!(w.mock.rejected_api_calls(), 0);
    assert_eq!(
        w.mock.token_requests(),
        6,
        "tokens at t = 0, 19, 38, 57, 76, 95 s"
    );

    // The mock does refuse an expired token, so the counts above mean something.
    assert_eq!(http_client::send(&first).expect("sent").status, 401);
    assert_eq!(w.mock.rejected_api_calls(), 1);
}

// 5. Wrong credentials and lockout, as typed errors.
#[test]
fn wrong_credentials_and_lockout_are_typed() {
    let mut w = World::new();
    let wrong = w.client_for(CLIENT_ID, "not-the-key");
    let error = w
        .instance
        .get_token(wrong)
        .expect("no trap")
        .expect_err("refused");
    let Error::InvalidCredentials(ApiError {
        status,
        message,
        error_type,
        id,
        date,
        retry_in_seconds,
    }) = error
    else {
        panic!("expected invalid-credentials, got {error:?}");
    };
    assert_eq!(status, 401);
    assert_eq!(message, "The authorization credentials are not valid");
    assert_eq!(error_type, "invalid_credentials");
    assert_eq!(id.map(|i| i.len()), Some(32));
    assert_eq!(date, Some(WALL_ORIGIN.as_secs() as f64));
    assert_eq!(retry_in_seconds, Some(60), "the cool-down starts");

    w.mock.set_locked(true);
    let client = w.client();
    let error = w
        .instance
        .get_token(client)
        .expect("no trap")
        .expect_err("locked");
    assert_eq!(
        error,
        Error::LockedOut(OauthError {
            status: 400,
            error: "unauthorized_client".into(),
            description: Some(
                "This account has been temporarily locked for security reasons. Please try again later."
                    .into()
            ),
            retry_in_seconds: Some(60),
        })
    );
    w.mock.set_locked(false);
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(
        w.token(client).len(),
        32,
        "the same client works once unlocked"
    );

    // The operator's log (stderr, default level warn): a warning naming the invalid
    // credentials and when the next try will be, and the lockout as an error.
    let next_try = WALL_ORIGIN.as_secs() + 60;
    let log = w.instance.output();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert_eq!(
        lines[0],
        format!(
            "ts={}.000 level=warn component=mangopay-auth event=cool-down-started \
             client_id={CLIENT_ID} error=invalid-credentials status=401 retry_in_s=60 \
             next_try_unix={next_try} strikes=1 shared=false",
            WALL_ORIGIN.as_secs()
        )
    );
    assert!(
        lines[1].contains(" level=error component=mangopay-auth event=locked-out ")
            && lines[1].contains(" error=locked-out status=400 retry_in_s=60 "),
        "{log}"
    );
}

// 6. Configurations the component refuses, before any request.
#[test]
fn invalid_configurations_are_refused() {
    let mut w = World::new();
    let base = w.mock.base_url();
    let cases = [
        (
            config(CLIENT_ID, API_KEY, "http://api.mangopay.com"),
            "insecure",
        ),
        (
            config(CLIENT_ID, API_KEY, "http://192.168.1.10:8080"),
            "insecure",
        ),
        (config("", API_KEY, &base), "config"),
        (config(CLIENT_ID, "", &base), "config"),
        (config("acme:payments", API_KEY, &base), "config"),
        (
            config(CLIENT_ID, API_KEY, "https://user:pass@api.mangopay.com"),
            "config",
        ),
        (
            config(CLIENT_ID, API_KEY, "https://api.mangopay.com/v2.01"),
            "config",
        ),
        (config(CLIENT_ID, API_KEY, "not a url"), "config"),
    ];
    for (config, kind) in cases {
        let error = w
            .instance
            .create_client(&config)
            .expect("no trap")
            .err()
            .unwrap_or_else(|| panic!("{config:?} accepted"));
        match (kind, &error) {
            ("insecure", Error::InsecureUrl(_)) | ("config", Error::InvalidConfig(_)) => {}
            _ => panic!("{config:?}: {error:?}"),
        }
    }
    let mut zero_timeout = config(CLIENT_ID, API_KEY, &base);
    zero_timeout.timeouts = Some(host_test::host::Timeouts {
        connect_ms: Some(0),
        first_byte_ms: None,
        between_bytes_ms: None,
    });
    assert!(matches!(
        w.instance.create_client(&zero_timeout).expect("no trap"),
        Err(Error::InvalidConfig(_))
    ));
    assert_eq!(w.mock.requests().len(), 0);
}

// 7. One Authorization header, and never to a foreign origin.
#[test]
fn authorize_replaces_authorization_and_refuses_foreign_hosts() {
    let mut w = World::new();
    let client = w.client();
    let mut request = w.users(CLIENT_ID);
    request
        .headers
        .insert(0, ("Authorization".into(), "Basic c3RhbGU=".into()));
    request
        .headers
        .push(("authorization".into(), "Bearer stale".into()));
    let authorized = w.authorize(client, &request).expect("authorized");
    let token = w.mock.issued_tokens().pop().expect("one token");
    assert_eq!(
        authorization_headers(&authorized),
        vec![format!("Bearer {token}")]
    );
    assert_eq!(authorized.method, "GET");
    assert_eq!(authorized.url, request.url);
    assert!(
        authorized
            .headers
            .contains(&("Accept".into(), "application/json".into()))
    );

    let base = w.mock.base_url();
    let other_port = format!(
        "http://127.0.0.1:{}/v2.01/x/users",
        if base.ends_with(":1") { 2 } else { 1 }
    );
    for url in [
        "https://evil.example/v2.01/acme-payments/users".to_owned(),
        "https://api.mangopay.com/v2.01/acme-payments/users".to_owned(),
        other_port,
        base.replace("127.0.0.1", "localhost"),
    ] {
        let foreign = HttpRequest {
            url: url.clone(),
            ..request.clone()
        };
        let error = w.authorize(client, &foreign).expect_err("refused");
        assert!(matches!(error, Error::ForeignHost(_)), "{url}: {error:?}");
    }
    let insecure = HttpRequest {
        url: "http://api.mangopay.com/v2.01/x/users".into(),
        ..request.clone()
    };
    assert!(matches!(
        w.authorize(client, &insecure),
        Err(Error::InsecureUrl(_))
    ));
    let injected = HttpRequest {
        headers: vec![("X-Note".into(), "a\r\nAuthorization: Bearer x".into())],
        ..request.clone()
    };
    assert!(matches!(
        w.authorize(client, &injected),
        Err(Error::InvalidRequest(_))
    ));
    assert_eq!(w.mock.token_requests(), 1);
}

// 8. Clients are isolated.
#[test]
fn two_clients_in_one_instance_keep_their_own_tokens() {
    let mut w = World::new();
    w.mock.add_account("other-platform", "sk-test-other");
    let a = w.client();
    let b = w.client_for("other-platform", "sk-test-other");
    let (token_a, token_b) = (w.token(a), w.token(b));
    assert_ne!(token_a, token_b);
    for _ in 0..50 {
        assert_eq!(w.token(a), token_a);
        assert_eq!(w.token(b), token_b);
    }
    assert_eq!(w.mock.token_requests(), 2);
    let basics: Vec<_> = w
        .mock
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(
        basics,
        vec![
            basic(CLIENT_ID, API_KEY),
            basic("other-platform", "sk-test-other")
        ]
    );
    let for_b = w
        .authorize(b, &w.users("other-platform"))
        .expect("authorized");
    assert_eq!(http_client::send(&for_b).expect("sent").status, 200);
    // B's token is not A's: the mock refuses it on A's resources.
    let mut crossed = w.users(CLIENT_ID);
    crossed.headers = for_b.headers.clone();
    assert_eq!(http_client::send(&crossed).expect("sent").status, 401);
}

// 9. The zero-glue default client from environment variables.
#[test]
fn default_client_comes_from_the_environment() {
    let mut w = World::with_env(|mock| {
        vec![
            ("MANGOPAY_CLIENT_ID".into(), CLIENT_ID.into()),
            ("MANGOPAY_API_KEY".into(), API_KEY.into()),
            ("MANGOPAY_ENVIRONMENT".into(), "sandbox".into()),
            ("MANGOPAY_BASE_URL".into(), mock.base_url()),
        ]
    });
    let token = w
        .instance
        .default_get_token()
        .expect("no trap")
        .expect("token");
    let request = w.users(CLIENT_ID);
    for _ in 0..5 {
        let authorized = w
            .instance
            .default_authorize_request(&request)
            .expect("no trap")
            .expect("authorized");
        assert_eq!(
            authorization_headers(&authorized),
            vec![format!("Bearer {}", token.access_token)]
        );
        assert_eq!(http_client::send(&authorized).expect("sent").status, 200);
    }
    assert_eq!(w.mock.token_requests(), 1);

    let mut bare = World::new();
    let error = bare
        .instance
        .default_get_token()
        .expect("no trap")
        .expect_err("no env");
    assert!(
        matches!(&error, Error::InvalidConfig(m) if m.contains("MANGOPAY_CLIENT_ID")),
        "{error:?}"
    );
}

// 10. No secret in any error or output, across every error the component can give.
#[test]
fn secrets_never_appear_in_errors_or_output() {
    let mut w = World::new();
    let base = w.mock.base_url();
    // One attempt per call, so each canned answer below is what the call reports.
    let client = w.client_with(&Config {
        retry: Some(RetryPolicy {
            max_attempts: Some(1),
            initial_backoff_ms: None,
            budget_ms: None,
        }),
        ..w.config()
    });
    let token = w.token(client);
    let mut errors: Vec<Error> = Vec::new();
    let expect_error = |w: &mut World, client: ResourceAny| {
        w.clock.advance(Duration::from_secs(3600));
        w.instance
            .get_token(client)
            .expect("no trap")
            .expect_err("an error")
    };

    let wrong = w.client_for(CLIENT_ID, "sk-test-wrong-key-0123456789");
    errors.push(expect_error(&mut w, wrong));
    w.mock.set_locked(true);
    errors.push(expect_error(&mut w, client));
    w.mock.set_locked(false);
    let echo = format!(
        "upstream said: key={API_KEY} auth={} token={token}",
        basic(CLIENT_ID, API_KEY)
    );
    for (status, body) in [
        (500, echo.clone()),
        (
            200,
            format!(r#"{{"access_token":"{token}","token_type":"mac","expires_in":5}}"#),
        ),
        (
            200,
            format!(r#"{{"access_token":"{token}","token_type":"bearer","expires_in":0}}"#),
        ),
        (
            400,
            format!(r#"{{"error":"invalid_client","error_description":"{echo}"}}"#),
        ),
        (502, format!("<html>{}</html>", "x".repeat(300))),
    ] {
        w.mock
            .push_canned(Canned::new(status, "application/json", body));
        errors.push(expect_error(&mut w, client));
    }
    let refused = config(CLIENT_ID, API_KEY, "http://127.0.0.1:1");
    let unreachable = w
        .instance
        .create_client(&refused)
        .expect("no trap")
        .expect("valid");
    errors.push(expect_error(&mut w, unreachable));
    for bad in [
        config(&format!("{API_KEY}:x"), API_KEY, &base),
        config(CLIENT_ID, API_KEY, &format!("http://{API_KEY}.example")),
        config(
            CLIENT_ID,
            API_KEY,
            &format!("https://{API_KEY}@api.mangopay.com"),
        ),
    ] {
        errors.push(
            w.instance
                .create_client(&bad)
                .expect("no trap")
                .expect_err("refused"),
        );
    }
    let foreign = HttpRequest {
        method: "GET".into(),
        url: "https://evil.example/".into(),
        headers: vec![("Authorization".into(), format!("Bearer {token}"))],
    };
    errors.push(w.authorize(client, &foreign).expect_err("refused"));

    // Each kind of error was provoked, so the scan below covers them all.
    let kinds: Vec<String> = errors
        .iter()
        .map(|e| {
            let debug = format!("{e:?}");
            let name = debug.trim_start_matches("Error::").split('(').next();
            name.unwrap_or_default().to_owned()
        })
        .collect();
    for kind in [
        "InvalidCredentials",
        "LockedOut",
        "Oauth",
        "InvalidConfig",
        "InsecureUrl",
        "ForeignHost",
        "Transport",
        "MalformedTokenResponse",
        "UnexpectedResponse",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
    assert!(
        errors.contains(&Error::UnexpectedResponse(UnexpectedResponse {
            status: 500,
            excerpt: "<withheld: the text may contain a secret>".into(),
            retry_in_seconds: None,
        }))
    );
    assert!(errors.contains(&Error::MalformedTokenResponse(
        TokenResponseProblem::UnsupportedTokenType
    )));
    assert!(errors.iter().any(|e| matches!(e,
        Error::Transport(t) if t.kind == TransportKind::ConnectionRefused)));

    let encoded_key = base64::engine::general_purpose::STANDARD.encode(API_KEY);
    let encoded_pair = basic(CLIENT_ID, API_KEY);
    let mut secrets = vec![API_KEY.to_owned(), encoded_key, encoded_pair];
    secrets.extend(w.mock.issued_tokens());
    let text = format!("{errors:?}\n{}", w.instance.output());
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret leaked into: {text}"
        );
    }
    assert!(w.mock.requests().iter().all(|r| r.path == TOKEN_PATH));
}
