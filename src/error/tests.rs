use super::*;
use crate::fakes::*;
use crate::redact::WITHHELD;

fn answer(status: u16, body: &str) -> RawResponse {
    RawResponse {
        status,
        body: body.as_bytes().to_vec(),
        ..RawResponse::default()
    }
}

#[test]
fn invalid_credentials_keeps_the_api_fields() {
    let body = r#"{"Message":"The authorization credentials are not valid","Type":"invalid_credentials","Id":"abc","Date":1700772361.0,"errors":null}"#;
    assert_eq!(
        classify_token_failure(&answer(401, body), &[]),
        Error::InvalidCredentials(ApiError {
            status: 401,
            message: "The authorization credentials are not valid".into(),
            error_type: "invalid_credentials".into(),
            id: Some("abc".into()),
            date: Some(1700772361.0),
            retry_in: None,
        })
    );
}

#[test]
fn lockout_is_its_own_case() {
    let body = r#"{"error":"unauthorized_client","error_description":"This account has been temporarily locked for security reasons. Please try again later."}"#;
    assert!(matches!(
        classify_token_failure(&answer(400, body), &[]),
        Error::LockedOut(OAuthError { status: 400, .. })
    ));
    let other = r#"{"error":"invalid_client","error_description":"nope"}"#;
    assert_eq!(
        classify_token_failure(&answer(400, other), &[]),
        Error::OAuth(OAuthError {
            status: 400,
            error: "invalid_client".into(),
            description: Some("nope".into()),
            retry_in: None,
        })
    );
}

#[test]
fn unexpected_bodies_are_quoted_short_and_clean() {
    let long = format!("<html>\r\n{}</html>", "x".repeat(500));
    let Error::UnexpectedResponse(UnexpectedResponse {
        status, excerpt, ..
    }) = classify_token_failure(&answer(502, &long), &[])
    else {
        panic!("expected unexpected-response");
    };
    assert_eq!(status, 502);
    assert_eq!(excerpt.chars().count(), 200);
    assert!(excerpt.starts_with("<html>  xxx"));
}

#[test]
fn error_fields_from_the_wire_are_quoted() {
    let body = r#"{"error":"invalid_client","error_description":"bad key my-api-key"}"#;
    assert_eq!(
        classify_token_failure(&answer(400, body), &["my-api-key"]),
        Error::OAuth(OAuthError {
            status: 400,
            error: "invalid_client".into(),
            description: Some(WITHHELD.into()),
            retry_in: None,
        })
    );
    let body = format!(
        r#"{{"Message":"{}","Type":"invalid_credentials"}}"#,
        "m".repeat(300)
    );
    let Error::InvalidCredentials(e) = classify_token_failure(&answer(401, &body), &[]) else {
        panic!("expected invalid-credentials");
    };
    assert_eq!(e.message.len(), 200);
}

#[test]
fn failures_are_typed_and_the_client_recovers() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(
        200,
        r#"{"access_token":"t","token_type":"mac","expires_in":5}"#,
    );
    assert_eq!(
        client.get_token(),
        Err(Error::MalformedTokenResponse(
            wire::TokenProblem::UnsupportedTokenType
        ))
    );
    transport.answer(404, "my-api-key leaked?");
    assert_eq!(
        client.get_token(),
        Err(Error::UnexpectedResponse(UnexpectedResponse {
            status: 404,
            excerpt: WITHHELD.into(),
            retry_in: None,
        }))
    );
    transport.answer(200, LOCKOUT);
    assert!(
        matches!(
            client.get_token(),
            Err(Error::LockedOut(OAuthError { status: 200, .. }))
        ),
        "a 2xx with an OAuth error body is that error"
    );
    clock.advance(secs(60));
    transport.answer(200, &token_body("ok", 60));
    assert_eq!(client.get_token().expect("recovers").access_token, "ok");
    assert_eq!(transport.sent(), 4);
}

#[test]
fn a_token_answer_is_the_token_its_error_or_malformed() {
    let token = read_token_answer(&answer(200, &token_body("t", 60)), &[]).expect("token");
    assert_eq!((token.access_token.expose(), token.expires_in), ("t", 60));
    assert_eq!(
        read_token_answer(&answer(200, "{}"), &[]).map(|t| t.expires_in),
        Err(Error::MalformedTokenResponse(
            TokenProblem::MissingAccessToken
        ))
    );
    assert!(matches!(
        read_token_answer(&answer(200, LOCKOUT), &[]),
        Err(Error::LockedOut(_))
    ));
    let cut = RawResponse {
        truncated: true,
        ..answer(200, &token_body("t", 60))
    };
    assert_eq!(
        read_token_answer(&cut, &[]).map(|t| t.expires_in),
        Err(Error::MalformedTokenResponse(TokenProblem::BodyTooLarge))
    );
}

fn base(url: &str) -> Origin {
    Origin::parse_base(url).expect("valid")
}

fn fault(kind: TransportKind, detail: &str) -> TransportError {
    TransportError {
        kind,
        detail: detail.into(),
    }
}

const MTLS_HINT: &str = "TLS to https://api-mtls.sandbox.mangopay.com failed: the host must trust its certificate and present Mangopay's client certificate to an mTLS host (Spin: [[client_tls]]; wasmtime: send_request hook)";
const TRUST_HINT: &str = "TLS to https://api.sandbox.mangopay.com failed: the host must trust its certificate and present Mangopay's client certificate to an mTLS host (Spin: [[client_tls]]; wasmtime: send_request hook)";

#[test]
fn a_tls_failure_of_the_token_request_names_the_fix() {
    let mtls = base("https://api-mtls.sandbox.mangopay.com");
    let plain = base(BASE);
    // A lost connection to an mTLS host: the client certificate refused after the handshake.
    let e = token_transport_error(
        fault(TransportKind::ConnectionLost, "connection-terminated"),
        &mtls,
        mtls.is_mtls(),
        &[],
    );
    assert_eq!(e.kind, TransportKind::Tls);
    assert_eq!(
        e.detail,
        format!("{MTLS_HINT}; the host said: connection-terminated")
    );
    assert_eq!(tls_host_words(&e.detail), "connection-terminated");
    let e = token_transport_error(
        fault(
            TransportKind::Tls,
            "tls-alert-received: certificate required",
        ),
        &mtls,
        mtls.is_mtls(),
        &[],
    );
    assert_eq!(
        e.detail,
        format!("{MTLS_HINT}; the host said: tls-alert-received: certificate required")
    );
    // Any base: an untrusted server certificate.
    let e = token_transport_error(
        fault(TransportKind::Tls, "tls-certificate-error"),
        &plain,
        plain.is_mtls(),
        &[],
    );
    assert_eq!(e.kind, TransportKind::Tls);
    assert_eq!(
        e.detail,
        format!("{TRUST_HINT}; the host said: tls-certificate-error")
    );
    assert_eq!(tls_fault(&plain, "").detail, TRUST_HINT);
    // Elsewhere a lost connection stays one (transient), quoted as ever.
    let e = token_transport_error(
        fault(TransportKind::ConnectionLost, "reset by my-api-key"),
        &plain,
        plain.is_mtls(),
        &["my-api-key"],
    );
    assert_eq!(e.kind, TransportKind::ConnectionLost);
    assert_eq!(e.detail, WITHHELD);
    // The host's words are quoted: an echo of a secret withholds them, never the hint.
    let e = token_transport_error(
        fault(TransportKind::Tls, "client cert for my-api-key\nrefused"),
        &mtls,
        mtls.is_mtls(),
        &["my-api-key"],
    );
    assert_eq!(e.detail, format!("{MTLS_HINT}; the host said: {WITHHELD}"));
}

#[test]
fn a_paused_tls_fault_says_when_the_next_token_request_goes() {
    let mtls = base("https://api-mtls.sandbox.mangopay.com");
    let error = Error::Transport(tls_fault(&mtls, "connection-terminated"));
    let Error::Transport(e) = error.clone().with_retry_in(Duration::from_millis(59_200)) else {
        panic!("a transport error");
    };
    assert_eq!(
        e.detail,
        format!("{MTLS_HINT}; the host said: connection-terminated; no token request for 60 s")
    );
    // Other transport errors are as they were.
    let lost = Error::Transport(fault(TransportKind::ConnectionLost, "x"));
    assert_eq!(lost.clone().with_retry_in(Duration::from_secs(5)), lost);
}
