//! Every fault a production token endpoint can show, through the real component: injected
//! through wasi:http hooks (no sockets) or served by the mock over a real socket where the
//! socket matters (timeouts, resets). Each asserts the exact typed error and the number of
//! token requests, and that the same client works again once the endpoint behaves.

use base64::Engine as _;
use host_test::fixture::{API_KEY, CLIENT_ID, World, basic};
use host_test::host::{
    ApiError, Config, Error, HttpResponse, OauthError, ResponseVerdict, RetryPolicy, Timeouts,
    TokenResponseProblem as P, TransportKind, UnexpectedResponse,
};
use host_test::http_client;
use host_test::inject::{Injection, Injector};
use host_test::mock::{Canned, Delivery};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceAny;
use wasmtime_wasi_http::Error as HostError;

const GOOD: &str =
    r#"{"access_token":"tok-recovered-0001","token_type":"bearer","expires_in":1200}"#;

fn retry(max_attempts: u32, initial_backoff_ms: u32) -> Option<RetryPolicy> {
    Some(RetryPolicy {
        max_attempts: Some(max_attempts),
        initial_backoff_ms: Some(initial_backoff_ms),
        budget_ms: None,
    })
}

/// A client whose retries wait at most a few milliseconds of real time.
fn fast_client(w: &mut World) -> ResourceAny {
    let config = Config {
        retry: retry(3, 1),
        ..w.config()
    };
    w.client_with(&config)
}

/// Every bad answer a token endpoint can give, each with the one error it must give and how
/// many token requests the call may make (transient faults are retried up to 3 attempts).
#[test]
fn every_bad_answer_gives_one_typed_error_and_the_client_recovers() {
    let echo = format!("key={API_KEY} basic={}", basic(CLIENT_ID, API_KEY));
    let token_with = |fields: &str| format!(r#"{{"access_token":"tok-bad-answer-01",{fields}}}"#);
    let malformed = |p| Error::MalformedTokenResponse(p);
    let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    let cases: Vec<(&str, Vec<Injection>, Error, usize)> = vec![
        (
            "malformed JSON",
            vec![Injection::json(200, r#"{"access_token":"#)],
            malformed(P::NotJson),
            1,
        ),
        (
            "HTML page with 200",
            vec![Injection::Respond {
                status: 200,
                headers: vec![("content-type", "text/html".into())],
                body: html.into(),
            }],
            malformed(P::NotJson),
            1,
        ),
        (
            "HTML page with 502, retried",
            (0..3)
                .map(|_| Injection::Respond {
                    status: 502,
                    headers: vec![],
                    body: html.into(),
                })
                .collect(),
            Error::UnexpectedResponse(UnexpectedResponse {
                status: 502,
                excerpt: html.into(),
                retry_in_seconds: None,
            }),
            3,
        ),
        (
            "empty body",
            vec![Injection::json(200, "")],
            malformed(P::NotJson),
            1,
        ),
        (
            "missing access_token",
            vec![Injection::json(
                200,
                r#"{"token_type":"bearer","expires_in":1200}"#,
            )],
            malformed(P::MissingAccessToken),
            1,
        ),
        (
            "empty access_token",
            vec![Injection::json(
                200,
                r#"{"access_token":"","token_type":"bearer","expires_in":1200}"#,
            )],
            malformed(P::InvalidAccessToken),
            1,
        ),
        (
            "token_type mac",
            vec![Injection::json(
                200,
                &token_with(r#""token_type":"mac","expires_in":1200"#),
            )],
            malformed(P::UnsupportedTokenType),
            1,
        ),
        (
            "expires_in 0",
            vec![Injection::json(
                200,
                &token_with(r#""token_type":"bearer","expires_in":0"#),
            )],
            malformed(P::InvalidExpiresIn),
            1,
        ),
        (
            "expires_in negative",
            vec![Injection::json(
                200,
                &token_with(r#""token_type":"bearer","expires_in":-60"#),
            )],
            malformed(P::InvalidExpiresIn),
            1,
        ),
        (
            "expires_in string",
            vec![Injection::json(
                200,
                &token_with(r#""token_type":"bearer","expires_in":"1200""#),
            )],
            malformed(P::InvalidExpiresIn),
            1,
        ),
        (
            "expires_in 10^12",
            vec![Injection::json(
                200,
                &token_with(r#""token_type":"bearer","expires_in":1000000000000"#),
            )],
            malformed(P::InvalidExpiresIn),
            1,
        ),
        (
            "body over the 64 KiB cap",
            vec![Injection::json(
                200,
                &format!(
                    r#"{{"access_token":"{}","token_type":"bearer","expires_in":1200}}"#,
                    "a".repeat(100_000)
                ),
            )],
            malformed(P::BodyTooLarge),
            1,
        ),
        (
            "non-UTF-8 bytes",
            vec![Injection::Respond {
                status: 200,
                headers: vec![],
                body:
                    b"{\"access_token\":\"\xff\xfe\",\"token_type\":\"bearer\",\"expires_in\":1200}"
                        .to_vec(),
            }],
            malformed(P::NotJson),
            1,
        ),
        (
            "200 with an OAuth error body",
            vec![Injection::json(
                200,
                &format!(r#"{{"error":"invalid_client","error_description":"{echo}"}}"#),
            )],
            Error::Oauth(OauthError {
                status: 200,
                error: "invalid_client".into(),
                description: Some("<withheld: the text may contain a secret>".into()),
                retry_in_seconds: None,
            }),
            1,
        ),
        (
            "redirect",
            vec![Injection::Respond {
                status: 302,
                headers: vec![("location", "https://evil.example/v2.01/oauth/token".into())],
                body: Vec::new(),
            }],
            Error::UnexpectedResponse(UnexpectedResponse {
                status: 302,
                excerpt: String::new(),
                retry_in_seconds: None,
            }),
            1,
        ),
        (
            "other 4xx, not retried",
            vec![Injection::json(
                400,
                r#"{"error":"invalid_request","error_description":"grant_type"}"#,
            )],
            Error::Oauth(OauthError {
                status: 400,
                error: "invalid_request".into(),
                description: Some("grant_type".into()),
                retry_in_seconds: None,
            }),
            1,
        ),
        (
            "500 echoing secrets, retried",
            (0..3).map(|_| Injection::json(500, &echo)).collect(),
            Error::UnexpectedResponse(UnexpectedResponse {
                status: 500,
                excerpt: "<withheld: the text may contain a secret>".into(),
                retry_in_seconds: None,
            }),
            3,
        ),
        (
            "connection refused, retried",
            (0..3)
                .map(|_| Injection::Fail(|| HostError::ConnectionRefused))
                .collect(),
            Error::Transport(host_test::host::TransportError {
                kind: TransportKind::ConnectionRefused,
                detail: "connection-refused".into(),
            }),
            3,
        ),
        (
            "connect timeout, retried",
            (0..3)
                .map(|_| Injection::Fail(|| HostError::ConnectionTimeout))
                .collect(),
            Error::Transport(host_test::host::TransportError {
                kind: TransportKind::Timeout,
                detail: "connection-timeout".into(),
            }),
            3,
        ),
        (
            "DNS failure, not retried",
            vec![Injection::Fail(|| HostError::DnsError {
                rcode: Some("NXDOMAIN".into()),
                info_code: None,
            })],
            Error::Transport(host_test::host::TransportError {
                kind: TransportKind::Dns,
                detail: "dns-error: NXDOMAIN".into(),
            }),
            1,
        ),
        (
            // Its detail names the fix (set below, with the mock's origin).
            "TLS certificate refused, not retried, paused",
            vec![Injection::Fail(|| HostError::TlsCertificateError)],
            Error::Transport(host_test::host::TransportError {
                kind: TransportKind::Tls,
                detail: String::new(),
            }),
            1,
        ),
    ];

    let injector = Injector::default();
    let mut w = World::with_injector(&injector);
    let client = fast_client(&mut w);
    let mut errors = Vec::new();
    for (name, script, expected, requests) in cases {
        let before = injector.requests();
        for injection in script {
            injector.push(injection);
        }
        let error = w.token_error(client);
        let tls = matches!(&expected, Error::Transport(t) if t.kind == TransportKind::Tls);
        let expected = match expected {
            Error::Transport(t) if tls => Error::Transport(host_test::host::TransportError {
                detail: format!(
                    "TLS to {} failed: the host must trust its certificate and present \
                     Mangopay's client certificate to an mTLS host (Spin: [[client_tls]]; \
                     wasmtime: send_request hook); the host said: tls-certificate-error; no \
                     token request for 60 s",
                    w.mock.base_url()
                ),
                ..t
            }),
            other => other,
        };
        assert_eq!(error, expected, "{name}");
        assert_eq!(
            injector.requests() - before,
            requests,
            "{name}: token requests"
        );
        // The same client works as soon as the endpoint answers properly (a TLS fault: once
        // its pause is over, since no retry repairs the host's TLS set-up).
        if tls {
            w.clock.advance(Duration::from_secs(60));
        }
        injector.push(Injection::json(200, GOOD));
        assert_eq!(w.token(client), "tok-recovered-0001", "{name}: recovers");
        w.clock.advance(Duration::from_secs(1200));
        errors.push(error);
    }
    let text = format!("{errors:?}\n{}", w.instance.output());
    for secret in [
        API_KEY.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(API_KEY),
        basic(CLIENT_ID, API_KEY),
        "tok-recovered-0001".to_owned(),
        "tok-bad-answer-01".to_owned(),
    ] {
        assert!(!text.contains(&secret), "{secret} leaked: {text}");
    }
}

#[test]
fn timeouts_reach_the_host_as_request_options() {
    let injector = Injector::default();
    let mut w = World::with_injector(&injector);
    let client = w.client();
    injector.push(Injection::json(200, GOOD));
    w.token(client);
    let custom = w.client_with(&Config {
        timeouts: Some(Timeouts {
            connect_ms: Some(1500),
            first_byte_ms: Some(2500),
            between_bytes_ms: Some(3500),
        }),
        ..w.config()
    });
    injector.push(Injection::json(200, GOOD));
    w.token(custom);
    let options = injector.options();
    let seconds = |o: &Option<wasmtime_wasi_http::RequestOptions>| {
        let o = o.expect("options are set");
        (
            o.connect_timeout,
            o.first_byte_timeout,
            o.between_bytes_timeout,
        )
    };
    let ms = |ms| Some(Duration::from_millis(ms));
    assert_eq!(
        seconds(&options[0]),
        (ms(5000), ms(10_000), ms(10_000)),
        "defaults"
    );
    assert_eq!(seconds(&options[1]), (ms(1500), ms(2500), ms(3500)));
}

/// A client on the real mock with short timeouts and one attempt per call.
fn socket_client(w: &mut World) -> ResourceAny {
    let config = Config {
        timeouts: Some(Timeouts {
            connect_ms: Some(1000),
            first_byte_ms: Some(300),
            between_bytes_ms: Some(300),
        }),
        retry: retry(1, 1),
        ..w.config()
    };
    w.client_with(&config)
}

#[test]
fn socket_faults_time_out_or_break_cleanly() {
    let mut w = World::new();
    let client = socket_client(&mut w);
    let good = || Canned::new(200, "application/json", GOOD);
    let faults = [
        (
            "no first byte",
            Delivery::Late(Duration::from_secs(5)),
            TransportKind::Timeout,
        ),
        (
            "slow drip",
            Delivery::Drip(Duration::from_millis(100)),
            TransportKind::Timeout,
        ),
        (
            "reset mid-body",
            Delivery::Broken,
            TransportKind::ConnectionLost,
        ),
    ];
    for (name, delivery, kind) in faults {
        let mut canned = good();
        canned.delivery = delivery;
        w.mock.push_canned(canned);
        let before = w.mock.token_requests();
        let started = Instant::now();
        let error = w.token_error(client);
        assert!(
            matches!(&error, Error::Transport(t) if t.kind == kind),
            "{name}: {error:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{name}: bounded by the timeouts"
        );
        assert_eq!(w.mock.token_requests() - before, 1, "{name}");
        assert_eq!(w.token(client).len(), 32, "{name}: recovers");
        w.clock.advance(Duration::from_secs(1200));
    }
}

#[test]
fn transient_faults_are_retried_then_succeed() {
    let injector = Injector::default();
    let mut w = World::with_injector(&injector);
    let client = fast_client(&mut w);
    injector.push(Injection::Fail(|| HostError::ConnectionRefused));
    injector.push(Injection::json(503, "maintenance"));
    injector.push(Injection::json(200, GOOD));
    assert_eq!(w.token(client), "tok-recovered-0001");
    assert_eq!(injector.requests(), 3);
}

#[test]
fn retry_after_is_honoured_and_remembered() {
    let injector = Injector::default();
    let mut w = World::with_injector(&injector);
    let client = fast_client(&mut w);
    injector.push(Injection::Respond {
        status: 429,
        headers: vec![("retry-after", "120".into())],
        body: b"rate limited".to_vec(),
    });
    let expected = |retry_in| {
        Error::UnexpectedResponse(UnexpectedResponse {
            status: 429,
            excerpt: "rate limited".into(),
            retry_in_seconds: Some(retry_in),
        })
    };
    assert_eq!(w.token_error(client), expected(120));
    for second in 1..120 {
        w.clock.advance(Duration::from_secs(1));
        assert_eq!(w.token_error(client), expected(120 - second));
    }
    assert_eq!(
        injector.requests(),
        1,
        "nothing reaches the endpoint before the moment"
    );
    w.clock.advance(Duration::from_secs(1));
    injector.push(Injection::json(200, GOOD));
    assert_eq!(w.token(client), "tok-recovered-0001");
    assert_eq!(injector.requests(), 2);
}

#[test]
fn lockout_guard_spends_one_request_per_cool_down_window() {
    let mut w = World::new();
    let wrong = w.client_for(CLIENT_ID, "sk-test-wrong");
    let mut requests_at = Vec::new();
    for call in 0..1000u64 {
        let before = w.mock.token_requests();
        let error = w.token_error(wrong);
        if w.mock.token_requests() > before {
            requests_at.push(w.clock.now().as_secs());
        }
        let Error::InvalidCredentials(ApiError {
            retry_in_seconds: Some(retry_in),
            ..
        }) = error
        else {
            panic!("call {call}: {error:?}");
        };
        assert!((1..=480).contains(&retry_in), "call {call}: {retry_in}");
        w.clock.advance(Duration::from_millis(600));
    }
    // Cool-downs of 60, 120, 240 and 480 s across 10 virtual minutes.
    assert_eq!(requests_at, vec![0, 60, 180, 420]);

    // New credentials start clean, in the same instance.
    let right = w.client();
    assert_eq!(w.token(right).len(), 32);

    // The lockout body is guarded the same way.
    w.mock.set_locked(true);
    let locked = w.client();
    for _ in 0..100 {
        let error = w.token_error(locked);
        assert!(
            matches!(error, Error::LockedOut(ref e) if e.retry_in_seconds.is_some()),
            "{error:?}"
        );
        w.clock.advance(Duration::from_millis(500));
    }
    assert_eq!(w.mock.token_requests(), 4 + 1 + 1);
    assert!(!w.instance.output().contains(API_KEY));
}

#[test]
fn a_401_from_the_api_drops_the_token_or_asks_for_sca() {
    let mut w = World::new();
    let client = w.client();
    let request = w.users(CLIENT_ID);
    let authorized = w.authorize(client, &request).expect("authorized");

    // SCA: the token stays.
    let sca = HttpResponse {
        status: 401,
        headers: vec![(
            "WWW-Authenticate".into(),
            "PendingUserAction RedirectUrl=https://sca.sandbox.mangopay.com/?token=abc".into(),
        )],
        body: Vec::new(),
    };
    assert_eq!(
        w.instance
            .check_response(client, &authorized, &sca)
            .expect("no trap"),
        ResponseVerdict::ScaRequired(Some("https://sca.sandbox.mangopay.com/?token=abc".into()))
    );
    let again = w.authorize(client, &request).expect("authorized");
    assert_eq!(again.headers, authorized.headers);
    assert_eq!(w.mock.token_requests(), 1);

    // Not a 401: nothing happens.
    let ok = HttpResponse {
        status: 200,
        headers: vec![],
        body: b"[]".to_vec(),
    };
    assert_eq!(
        w.instance
            .check_response(client, &authorized, &ok)
            .expect("no trap"),
        ResponseVerdict::Accepted
    );

    // An invalid-token 401 (the mock refuses a token after it expires on the server side).
    w.clock.advance(Duration::from_secs(1200));
    let answer = http_client::send(&authorized).expect("sent");
    assert_eq!(answer.status, 401);
    let rejected = HttpResponse {
        status: 401,
        headers: vec![],
        body: answer.body.into_bytes(),
    };
    let verdict = w
        .instance
        .check_response(client, &authorized, &rejected)
        .expect("no trap");
    let ResponseVerdict::TokenRejected(Some(api)) = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(api.error_type, "invalid_credentials");
    assert_eq!(api.message, "The authorization credentials are not valid");
    // The next authorization fetches a new token, and it works.
    let renewed = w.authorize(client, &request).expect("authorized");
    assert_eq!(w.mock.token_requests(), 2);
    assert_ne!(renewed.headers, authorized.headers);
    assert_eq!(http_client::send(&renewed).expect("sent").status, 200);
}
