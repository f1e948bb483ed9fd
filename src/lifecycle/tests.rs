use super::*;
use crate::fakes::*;
use crate::ports::{Clock, RawResponse};
use crate::token::effective_margin;
use crate::wire::TokenResponse;

fn token(expires_in: u64, at: u64, margin: u64) -> HeldToken {
    HeldToken::new(
        TokenResponse {
            access_token: Secret::new("t".into()),
            token_type: "bearer".into(),
            expires_in,
        },
        Duration::from_secs(at),
        Duration::from_secs(1_700_000_000 + at),
        Duration::from_secs(margin),
    )
}

#[test]
fn margin_is_capped_at_half_the_lifetime() {
    let s = Duration::from_secs;
    assert_eq!(effective_margin(s(60), s(1200)), s(60));
    assert_eq!(
        effective_margin(s(60), s(37)),
        Duration::from_millis(18_500)
    );
    assert_eq!(effective_margin(s(0), s(37)), s(0));
}

#[test]
fn refresh_point_is_expiry_minus_margin() {
    let t = token(1200, 100, 60);
    assert!(t.is_usable(Duration::from_secs(100 + 1139)));
    assert!(!t.is_usable(Duration::from_secs(100 + 1140)));
    assert_eq!(t.seconds_left(Duration::from_secs(100)), 1200);
    assert_eq!(t.seconds_left(Duration::from_secs(100 + 1140)), 60);
    assert_eq!(t.seconds_left(Duration::from_secs(5000)), 0);
    assert_eq!(t.expires_at_unix_seconds(), 1_700_000_000 + 100 + 1200);
}

#[test]
fn short_lifetimes_are_reused_for_half_their_life() {
    let t = token(37, 0, 60);
    assert!(t.is_usable(Duration::from_millis(18_499)));
    assert!(!t.is_usable(Duration::from_millis(18_500)));
    let t = token(1, 0, 60);
    assert!(t.is_usable(Duration::from_millis(499)));
    assert!(!t.is_usable(Duration::from_millis(500)));
}

#[test]
fn one_token_request_per_lifetime() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(200, &token_body("first", 1200));
    for _ in 0..1000 {
        let token = client.get_token().expect("token");
        assert_eq!(token.access_token, "first");
        clock.advance(Duration::from_millis(1));
    }
    assert_eq!(transport.sent(), 1);
    // 1 s in; the refresh point is 1140 s.
    clock.advance(secs(1138));
    transport.answer(200, &token_body("second", 1200));
    assert_eq!(client.get_token().expect("token").access_token, "first");
    clock.advance(secs(1));
    let token = client.get_token().expect("token");
    assert_eq!(token.access_token, "second");
    assert_eq!(token.expires_in_seconds, 1200);
    assert_eq!(transport.sent(), 2);
    assert_eq!(client.status().token_requests, 2);
}

#[test]
fn credential_failures_cool_down_doubling() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(401, INVALID);
    // 1,000 calls across 10 minutes: requests at 0, 60, 180 and 420 s.
    let mut sent_at = Vec::new();
    for call in 0..1000u64 {
        let before = transport.sent();
        let error = client.get_token().expect_err("refused");
        if transport.sent() > before {
            sent_at.push(clock.monotonic().as_secs());
        }
        let Error::InvalidCredentials(e) = error else {
            panic!("call {call}: {error:?}");
        };
        let retry_in = e.retry_in.expect("says when to retry");
        assert!(
            retry_in > Duration::ZERO && retry_in <= secs(480),
            "{retry_in:?}"
        );
        clock.advance(Duration::from_millis(600));
    }
    assert_eq!(sent_at, vec![0, 60, 180, 420]);
}

#[test]
fn lockout_cools_down_and_success_resets_it() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(400, LOCKOUT);
    let error = client.get_token().expect_err("locked");
    assert!(matches!(&error, Error::LockedOut(e) if e.retry_in == Some(secs(60))));
    clock.advance(secs(59));
    assert!(matches!(client.get_token(), Err(Error::LockedOut(e)) if e.retry_in == Some(secs(1))));
    assert_eq!(transport.sent(), 1);
    clock.advance(secs(1));
    transport.answer(200, &token_body("back", 1200));
    assert_eq!(client.get_token().expect("token").access_token, "back");
    clock.advance(secs(1200));
    transport.answer(400, LOCKOUT);
    assert!(matches!(client.get_token(), Err(Error::LockedOut(e)) if e.retry_in == Some(secs(60))));
    assert_eq!(transport.sent(), 3);
}

#[test]
fn transient_faults_are_retried_with_backoff_inside_the_budget() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.script(vec![
        refused(),
        answer(503, "busy"),
        answer(200, &token_body("third", 1200)),
    ]);
    assert_eq!(client.get_token().expect("token").access_token, "third");
    assert_eq!(transport.sent(), 3);
    // Full jitter: at most 200 ms then 400 ms.
    assert!(clock.slept() <= Duration::from_millis(600));

    transport.script(vec![answer(500, "down")]);
    clock.advance(secs(1200));
    let error = client.get_token().expect_err("down");
    assert!(
        matches!(&error, Error::UnexpectedResponse(r) if r.status == 500 && r.retry_in.is_none())
    );
    assert_eq!(transport.sent(), 6, "three attempts, no more");
    // Not retried at all: other 4xx.
    transport.answer(400, r#"{"error":"invalid_request"}"#);
    assert!(matches!(client.get_token(), Err(Error::OAuth(_))));
    assert_eq!(transport.sent(), 7);
}

#[test]
fn retry_after_is_honoured_and_remembered() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.script(vec![Ok(RawResponse {
        status: 429,
        retry_after: Some("120".into()),
        body: b"slow down".to_vec(),
        truncated: false,
    })]);
    let error = client.get_token().expect_err("rate limited");
    assert!(
        matches!(&error, Error::UnexpectedResponse(r) if r.status == 429 && r.retry_in == Some(secs(120)))
    );
    assert_eq!(
        transport.sent(),
        1,
        "a 120 s wait does not fit the 10 s budget"
    );
    clock.advance(secs(119));
    assert!(client.get_token().is_err());
    assert_eq!(transport.sent(), 1);
    // Within the budget, the wait is taken and the call succeeds.
    clock.advance(secs(1));
    transport.script(vec![
        Ok(RawResponse {
            status: 503,
            retry_after: Some("2".into()),
            ..RawResponse::default()
        }),
        answer(200, &token_body("after", 1200)),
    ]);
    assert_eq!(client.get_token().expect("token").access_token, "after");
    assert_eq!(clock.slept(), secs(2));
    // A huge Retry-After is capped at the cool-down maximum (15 min).
    clock.advance(secs(1200));
    transport.script(vec![Ok(RawResponse {
        status: 503,
        retry_after: Some("999999".into()),
        ..RawResponse::default()
    })]);
    assert!(
        matches!(client.get_token(), Err(Error::UnexpectedResponse(r)) if r.retry_in == Some(secs(900)))
    );
}

#[test]
fn a_live_token_is_served_through_failed_renewals() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(200, &token_body("old", 1200));
    client.get_token().expect("token");
    clock.advance(secs(1140));
    transport.script(vec![refused()]);
    assert_eq!(client.get_token().expect("held").access_token, "old");
    let sent = transport.sent();
    assert_eq!(sent, 4, "one fetch plus two retries");
    // No new attempt for 5 s: the held token is served.
    assert_eq!(client.get_token().expect("held").access_token, "old");
    assert_eq!(transport.sent(), sent);
    // Never once fewer than 5 s of life remain.
    clock.advance(secs(1200 - 1140 - 5));
    let error = client.get_token().expect_err("expired for sending");
    assert!(matches!(error, Error::Transport(_)));
}

#[test]
fn transport_error_texts_are_quoted_like_answers() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    // base64("my-client:my-api-key"), cut short by the proxy that echoes it.
    let echoes = [
        "proxy: refused Authorization: Basic bXktY2xpZW50Om15LWFwa…".to_owned(),
        "key=my-api-key".to_owned(),
        format!("proxy says {}", "x".repeat(300)),
    ];
    for echo in echoes {
        transport.script(vec![Err(crate::ports::TransportError {
            kind: crate::ports::TransportKind::Denied,
            detail: echo.clone(),
        })]);
        let Err(Error::Transport(error)) = client.get_token() else {
            panic!("a transport error for {echo}");
        };
        assert_eq!(error.kind, crate::ports::TransportKind::Denied);
        if echo.contains("proxy says") {
            assert_eq!(error.detail.chars().count(), crate::redact::EXCERPT_CHARS);
        } else {
            assert_eq!(error.detail, crate::redact::WITHHELD, "{echo}");
        }
    }
}

#[test]
fn retry_after_zero_on_a_failed_renewal_does_not_make_every_call_a_token_request() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(200, &token_body("held", 1200));
    client.get_token().expect("token");
    clock.advance(secs(1141));
    transport.script(vec![Ok(RawResponse {
        status: 503,
        retry_after: Some("0".into()),
        ..RawResponse::default()
    })]);
    let before = transport.sent();
    for _ in 0..100 {
        assert_eq!(client.get_token().expect("held").access_token, "held");
        clock.advance(Duration::from_millis(10));
    }
    // One renewal (its three attempts), then the held token until RENEWAL_RETRY has passed.
    assert_eq!(transport.sent() - before, 3);
}

fn tls_detail(error: &Error) -> &str {
    match error {
        Error::Transport(t) if t.kind == crate::ports::TransportKind::Tls => &t.detail,
        _ => panic!("a TLS fault: {error:?}"),
    }
}

/// One instance, no store: a TLS fault is tried once, then nothing is sent for the
/// cool-down's base (not doubled), the calls meanwhile answered at once.
#[test]
fn a_tls_fault_is_not_retried_and_pauses_the_instance() {
    use crate::ports::TransportKind;
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.script(vec![failed(TransportKind::Tls, "tls-certificate-error")]);
    for n in 0..60 {
        let error = client.get_token().expect_err("untrusted");
        let detail = tls_detail(&error);
        assert!(
            detail
                .starts_with("TLS to https://api.sandbox.mangopay.com failed: the host must trust")
                && detail.ends_with(&format!("; no token request for {} s", 60 - n)),
            "{detail}"
        );
        assert_eq!(client.status().cool_down, Some(secs(60 - n)));
        clock.advance(secs(1));
    }
    assert_eq!(transport.sent(), 1);
    assert_eq!(clock.slept(), Duration::ZERO, "no backoff either");
    // After the pause, one more attempt, and the same pause again.
    let error = client.get_token().expect_err("still untrusted");
    assert!(tls_detail(&error).ends_with("no token request for 60 s"));
    assert_eq!(transport.sent(), 2);
    transport.answer(200, &token_body("trusted", 1200));
    clock.advance(secs(60));
    assert_eq!(client.get_token().expect("fixed").access_token, "trusted");
    assert_eq!(client.status().cool_down, None);
}

/// A lost connection is a TLS fault on an mTLS host only: elsewhere it is retried as ever.
#[test]
fn a_lost_connection_is_a_tls_fault_on_an_mtls_host_only() {
    use crate::ports::TransportKind;
    for (environment, sent) in [
        (crate::config::Environment::SandboxMtls, 1),
        (crate::config::Environment::Sandbox, 3),
    ] {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let mut config = config();
        config.environment = environment;
        let client =
            crate::client::Client::new(config, transport.clone(), clock.clone()).expect("valid");
        transport.script(vec![failed(
            TransportKind::ConnectionLost,
            "connection-terminated",
        )]);
        let error = client.get_token().expect_err("lost");
        assert_eq!(transport.sent(), sent, "{environment:?}");
        match environment {
            crate::config::Environment::SandboxMtls => assert_eq!(
                tls_detail(&error),
                "TLS to https://api-mtls.sandbox.mangopay.com failed: the host must trust its certificate and present Mangopay's client certificate to an mTLS host (Spin: [[client_tls]]; wasmtime: send_request hook); the host said: connection-terminated; no token request for 60 s"
            ),
            _ => assert_eq!(
                error,
                Error::Transport(crate::ports::TransportError {
                    kind: TransportKind::ConnectionLost,
                    detail: "connection-terminated".into(),
                })
            ),
        }
    }
}

/// A TLS fault at renewal, while the held token lives: the token is served, and the renewal
/// tried again after `RENEWAL_RETRY`, not after the cool-down the token would not outlive.
#[test]
fn a_tls_fault_at_renewal_serves_the_live_token() {
    use crate::ports::TransportKind;
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(200, &token_body("held", 1200));
    client.get_token().expect("token");
    clock.advance(secs(1140));
    transport.script(vec![failed(TransportKind::Tls, "tls-protocol-error")]);
    assert_eq!(client.get_token().expect("held").access_token, "held");
    assert_eq!(transport.sent(), 2, "not retried");
    clock.advance(secs(4));
    client.get_token().expect("held");
    assert_eq!(transport.sent(), 2);
    clock.advance(secs(1));
    client.get_token().expect("held");
    assert_eq!(transport.sent(), 3);
}
