use super::*;
use crate::fakes::*;
use crate::ports::{TransportError, TransportKind};

fn get(path: &str) -> ApiRequest {
    ApiRequest {
        method: "GET".into(),
        path: path.into(),
        headers: vec![],
        body: None,
    }
}

fn api(status: u16, headers: &[(&str, &str)], body: &str) -> ApiScript {
    Ok((
        status,
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body.as_bytes().to_vec(),
    ))
}

fn ready() -> (FakeTransport, FakeClock) {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    transport.script(vec![
        answer(200, &token_body("first", 1200)),
        answer(200, &token_body("second", 1200)),
    ]);
    (transport, clock)
}

#[test]
fn paths_fill_in_the_client_id_and_refuse_what_could_escape_the_origin() {
    assert_eq!(
        resolve_path("/v2.01/{ClientId}/users?per_page=10", "my-client"),
        Ok("/v2.01/my-client/users?per_page=10".into())
    );
    assert_eq!(
        resolve_path("/v2.01/{ClientId}/x/{ClientId}", "a b/c"),
        Ok("/v2.01/a%20b%2Fc/x/a%20b%2Fc".into())
    );
    // Only a whole segment is the placeholder; in a query it is the caller's text.
    assert_eq!(
        resolve_path("/v2.01/x{ClientId}?q={ClientId}", "id"),
        Ok("/v2.01/x{ClientId}?q={ClientId}".into())
    );
    for bad in [
        "v2.01/users",
        "",
        "//evil.example/v2.01",
        "https://evil.example/v2.01",
        "/v2.01/users@evil.example",
        "/v2.01\\users",
        "/v2.01/users#frag",
        "/v2.01/a b",
        "/v2.01/a\r\nX-Injected: 1",
        "/v2.01/a\0",
        "/v2.01/a\x7f",
    ] {
        assert!(
            matches!(resolve_path(bad, "id"), Err(Error::InvalidRequest(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn only_safe_requests_are_repeated() {
    let key = [("Idempotency-Key".to_owned(), "k".to_owned())];
    for method in ["GET", "HEAD", "PUT", "DELETE", "get"] {
        assert!(may_repeat(method, &[]), "{method}");
    }
    assert!(!may_repeat("POST", &[]));
    assert!(may_repeat("POST", &key));
    assert!(!may_repeat("PATCH", &key));
}

#[test]
fn a_call_goes_out_authorized_with_its_body_and_comes_back_whole() {
    let (transport, clock) = ready();
    let client = client(&transport, &clock);
    transport.api_script(vec![api(
        201,
        &[("Content-Type", "application/json")],
        "{\"Id\":\"1\"}",
    )]);
    let body = "{\"FirstName\":\"Zoë\"}".as_bytes().to_vec();
    let response = client
        .send(ApiRequest {
            method: "POST".into(),
            path: "/v2.01/{ClientId}/users/natural".into(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("authorization".into(), "Bearer stale".into()),
                ("Content-Length".into(), "999".into()),
            ],
            body: Some(body.clone()),
        })
        .expect("sent");
    assert_eq!(response.status, 201);
    assert_eq!(response.body, b"{\"Id\":\"1\"}");
    assert_eq!(response.verdict, Verdict::Accepted);
    let calls = transport.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/v2.01/my-client/users/natural");
    assert_eq!(calls[0].body.as_deref(), Some(body.as_slice()));
    assert_eq!(
        calls[0].headers,
        vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("Content-Length".to_owned(), body.len().to_string()),
            ("Authorization".to_owned(), "Bearer first".to_owned()),
        ]
    );
}

#[test]
fn a_rejected_token_is_renewed_and_the_call_resent_once() {
    let (transport, clock) = ready();
    let client = client(&transport, &clock);
    transport.api_script(vec![api(401, &[], INVALID), api(200, &[], "[]")]);
    let response = client.send(get("/v2.01/{ClientId}/users")).expect("sent");
    assert_eq!(
        (response.status, response.verdict),
        (200, Verdict::Accepted)
    );
    assert_eq!(transport.sent(), 2);
    let bearers: Vec<String> = transport
        .calls()
        .iter()
        .map(|c| c.headers.last().expect("authorization").1.clone())
        .collect();
    assert_eq!(bearers, ["Bearer first", "Bearer second"]);

    // A second refusal is the caller's answer: no third attempt.
    transport.api_script(vec![api(401, &[], INVALID)]);
    let response = client.send(get("/v2.01/{ClientId}/users")).expect("sent");
    assert_eq!(response.status, 401);
    assert!(matches!(response.verdict, Verdict::TokenRejected(Some(_))));
    assert_eq!(transport.calls().len(), 4);
}

#[test]
fn an_sca_challenge_is_returned_at_once_and_keeps_the_token() {
    let (transport, clock) = ready();
    let client = client(&transport, &clock);
    let challenge = (
        "WWW-Authenticate",
        "PendingUserAction RedirectUrl=https://sca.example/x",
    );
    transport.api_script(vec![api(401, &[challenge], "{}")]);
    let response = client.send(get("/v2.01/{ClientId}/users")).expect("sent");
    assert_eq!(
        response.verdict,
        Verdict::ScaRequired(Some("https://sca.example/x".into()))
    );
    assert_eq!((transport.sent(), transport.calls().len()), (1, 1));
    assert!(client.status().held);
}

#[test]
fn transient_answers_are_retried_only_when_repeating_is_safe() {
    let (transport, clock) = ready();
    let client = client(&transport, &clock);
    transport.api_script(vec![api(503, &[], ""), api(200, &[], "ok")]);
    let response = client.send(get("/v2.01/x")).expect("sent");
    assert_eq!(response.status, 200);
    assert_eq!(transport.calls().len(), 2);

    transport.api_script(vec![api(503, &[], ""), api(200, &[], "ok")]);
    let mut post = get("/v2.01/x");
    post.method = "POST".into();
    assert_eq!(client.send(post).expect("sent").status, 503);
    assert_eq!(transport.calls().len(), 3);

    transport.api_script(vec![
        api(429, &[("Retry-After", "2")], ""),
        api(200, &[], "ok"),
    ]);
    let mut keyed = get("/v2.01/x");
    keyed.method = "POST".into();
    keyed.headers = vec![("Idempotency-Key".into(), "k-1".into())];
    let slept = clock.slept();
    assert_eq!(client.send(keyed).expect("sent").status, 200);
    assert_eq!(transport.calls().len(), 5);
    assert_eq!(clock.slept() - slept, secs(2), "Retry-After honoured");

    // Attempts run out: the last answer is the caller's.
    transport.api_script(vec![api(502, &[], "bad gateway")]);
    assert_eq!(client.send(get("/v2.01/x")).expect("sent").status, 502);
    assert_eq!(transport.calls().len(), 8);

    transport.api_script(vec![Err(TransportError {
        kind: TransportKind::ConnectionLost,
        detail: "reset".into(),
    })]);
    assert!(matches!(
        client.send(get("/v2.01/x")),
        Err(Error::Transport(_))
    ));
    assert_eq!(transport.calls().len(), 11);
}

#[test]
fn an_answer_over_the_cap_is_an_error() {
    let (transport, clock) = ready();
    let mut config = config();
    config.max_response_bytes = Some(10);
    let client = Client::new(config, transport.clone(), clock.clone()).expect("valid");
    transport.api_script(vec![api(200, &[], "0123456789")]);
    assert_eq!(client.send(get("/v2.01/x")).expect("fits").body.len(), 10);
    transport.api_script(vec![api(200, &[], "0123456789A")]);
    assert_eq!(
        client.send(get("/v2.01/x")),
        Err(Error::ResponseTooLarge(10))
    );
}

#[test]
fn refused_calls_cost_no_token_request() {
    let (transport, clock) = ready();
    let client = client(&transport, &clock);
    let mut bad_header = get("/v2.01/x");
    bad_header.headers = vec![("X".into(), "a\r\nb".into())];
    let mut bad_method = get("/v2.01/x");
    bad_method.method = "GET /".into();
    for request in [get("//evil.example/x"), bad_header, bad_method] {
        assert!(matches!(
            client.send(request),
            Err(Error::InvalidRequest(_))
        ));
    }
    assert_eq!((transport.sent(), transport.calls().len()), (0, 0));
}

#[test]
fn transport_texts_that_echo_the_token_are_withheld() {
    let (transport, clock) = ready();
    let client = client(&transport, &clock);
    transport.api_script(vec![Err(TransportError {
        kind: TransportKind::Other,
        detail: "proxy said: Authorization: Bearer first".into(),
    })]);
    let Err(Error::Transport(error)) = client.send(get("/v2.01/x")) else {
        panic!("a transport error");
    };
    assert_eq!(error.detail, crate::redact::WITHHELD);
}

#[test]
fn framing_and_hop_by_hop_headers_are_refused_before_any_token_request() {
    for name in [
        "Transfer-Encoding",
        "connection",
        "TE",
        "Upgrade",
        "Keep-Alive",
        "Proxy-Connection",
    ] {
        let (transport, clock) = ready();
        let client = client(&transport, &clock);
        let mut request = get("/v2.01/{ClientId}/users");
        request
            .headers
            .push((name.into(), "secret-looking-value".into()));
        let error = client.send(request).expect_err("refused");
        let Error::InvalidRequest(why) = &error else {
            panic!("{name}: {error:?}");
        };
        assert!(
            why.contains(name) && !why.contains("secret-looking-value"),
            "{why}"
        );
        assert_eq!(transport.sent(), 0, "{name}");
        assert!(transport.calls().is_empty());
    }
}

/// Waits, the token request, the API call and the resend all count against one budget.
#[test]
fn one_deadline_covers_the_token_request_the_call_and_the_resend() {
    let (transport, clock) = ready();
    let sender = client(&transport, &clock);
    transport.set_latency(&clock, secs(2));
    // The first token is refused: renewed and resent, each exchange 2 s of the 10 s budget.
    transport.api_script(vec![
        api(401, &[], r#"{"Message":"expired","Type":"invalid_token"}"#),
        api(200, &[], "{}"),
    ]);
    let answer = sender
        .send(get("/v2.01/{ClientId}/users"))
        .expect("answered");
    assert_eq!(answer.status, 200);
    // Token request, API call, token request, resend: each gets what is left.
    assert_eq!(transport.withins(), [secs(10), secs(8), secs(6), secs(4)]);

    // With 3 s exchanges the resend has 1 s left, and ends there: nothing runs past it.
    let (transport, clock) = ready();
    let sender = client(&transport, &clock);
    transport.set_latency(&clock, secs(3));
    transport.api_script(vec![
        api(401, &[], r#"{"Message":"expired","Type":"invalid_token"}"#),
        api(200, &[], "{}"),
    ]);
    let error = sender
        .send(get("/v2.01/{ClientId}/users"))
        .expect_err("late");
    assert!(matches!(&error, Error::Transport(e) if e.kind == TransportKind::Timeout));
    assert_eq!(clock.monotonic(), secs(10));
    assert_eq!(transport.withins(), [secs(10), secs(7), secs(4), secs(1)]);
}
