use super::*;
use crate::fakes::*;

#[test]
fn authorize_replaces_authorization_and_keeps_the_rest() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(200, &token_body("tok", 1200));
    let authorized = client
        .authorize_request(request(
            &format!("{BASE}/v2.01/my-client/users?page=2"),
            &[
                ("authorization", "Basic old"),
                ("Accept", "application/json"),
                ("AUTHORIZATION", "x"),
            ],
        ))
        .expect("authorized");
    assert_eq!(
        authorized.headers,
        vec![
            ("Accept".to_string(), "application/json".to_string()),
            ("Authorization".to_string(), "Bearer tok".to_string()),
        ]
    );
}

#[test]
fn refused_requests_cost_no_token_request() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(200, &token_body("tok", 1200));
    let refusals = [
        (request("https://evil.example/v2.01/users", &[]), "foreign"),
        (
            request("https://api.sandbox.mangopay.com:444/", &[]),
            "foreign",
        ),
        (
            request("https://api.mangopay.com/v2.01/users", &[]),
            "foreign",
        ),
        (
            request("http://api.sandbox.mangopay.com/v2.01/users", &[]),
            "insecure",
        ),
        (request("/v2.01/users", &[]), "invalid"),
        (
            request(&format!("{BASE}/"), &[("X-A", "b\r\nInjected: 1")]),
            "invalid",
        ),
        (request(&format!("{BASE}/"), &[("X-A", "b\0")]), "invalid"),
        (request(&format!("{BASE}/"), &[("X A", "b")]), "invalid"),
    ];
    for (req, kind) in refusals {
        let url = req.url.clone();
        let got = client.authorize_request(req).expect_err("refused");
        let matched = match kind {
            "foreign" => matches!(got, Error::ForeignHost(_)),
            "insecure" => matches!(got, Error::InsecureUrl(_)),
            _ => matches!(got, Error::InvalidRequest(_)),
        };
        assert!(matched, "{url}: {got:?}");
    }
    let mut bad_method = request(&format!("{BASE}/"), &[]);
    bad_method.method = "GET /x".into();
    assert!(matches!(
        client.authorize_request(bad_method),
        Err(Error::InvalidRequest(_))
    ));
    assert_eq!(transport.sent(), 0);
}

#[test]
fn check_response_reads_401s() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(200, &token_body("t1", 1200));
    let sent = client
        .authorize_request(request(&format!("{BASE}/v2.01/my-client/users"), &[]))
        .expect("authorized");
    assert_eq!(
        client.check_response(&sent, 200, &[], b"[]"),
        Verdict::Accepted
    );

    let sca = vec![(
        "WWW-Authenticate".to_string(),
        "PendingUserAction RedirectUrl=https://sca.example/x".to_string(),
    )];
    assert_eq!(
        client.check_response(&sent, 401, &sca, b""),
        Verdict::ScaRequired(Some("https://sca.example/x".into()))
    );
    assert_eq!(client.get_token().expect("kept").access_token, "t1");
    assert_eq!(transport.sent(), 1);

    let verdict = client.check_response(&sent, 401, &[], INVALID.as_bytes());
    let Verdict::TokenRejected(Some(api)) = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(api.error_type, "invalid_credentials");
    transport.answer(200, &token_body("t2", 1200));
    assert_eq!(client.get_token().expect("renewed").access_token, "t2");
    // A late 401 for the old token does not drop the new one.
    assert_eq!(
        client.check_response(&sent, 401, &[], b""),
        Verdict::TokenRejected(None)
    );
    assert_eq!(client.get_token().expect("kept").access_token, "t2");
    assert_eq!(transport.sent(), 2);
}
