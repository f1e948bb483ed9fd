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

#[test]
fn fragments_and_bytes_outside_visible_ascii_are_refused_anywhere_in_the_url() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(200, &token_body("tok", 1200));
    let refused = [
        format!("{BASE}/v2.01/x#\r\nX-Injected: 1"),
        format!("{BASE}/v2.01/x#a\0b"),
        format!("{BASE}/v2.01/x#section"),
        format!("{BASE}/v2.01/x?q=a b"),
        format!("{BASE}/v2.01/x\t"),
        format!("{BASE}/v2.01/x\x7f"),
        format!("{BASE}/v2.01/x\x1b[0m"),
        format!("{BASE}/v2.01/caf\u{e9}"),
        format!("{BASE}#"),
    ];
    for url in &refused {
        let got = client.authorize_request(request(url, &[]));
        assert!(
            matches!(got, Err(Error::InvalidRequest(_))),
            "{url:?}: {got:?}"
        );
    }
    assert_eq!(transport.sent(), 0, "refused before any token request");
    // The same on the cached path, once a token is held.
    client
        .authorize_request(request(&format!("{BASE}/v2.01/x"), &[]))
        .expect("authorized");
    for url in &refused {
        let got = client.authorize_request(request(url, &[]));
        assert!(
            matches!(got, Err(Error::InvalidRequest(_))),
            "{url:?}: {got:?}"
        );
    }
}

#[test]
fn header_values_with_any_control_byte_but_tab_are_refused() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(200, &token_body("tok", 1200));
    let url = format!("{BASE}/v2.01/x");
    for byte in (0u8..0x20).chain([0x7f]).filter(|b| *b != b'\t') {
        let value = format!("a{}b", char::from(byte));
        let got = client.authorize_request(request(&url, &[("X-Note", &value)]));
        assert!(
            matches!(got, Err(Error::InvalidRequest(_))),
            "{byte:#04x}: {got:?}"
        );
    }
    assert_eq!(transport.sent(), 0);
    for fine in ["a\tb", "caf\u{e9}", "", " spaced ", "!~"] {
        let authorized = client
            .authorize_request(request(&url, &[("X-Note", fine)]))
            .expect("a field value");
        assert_eq!(
            authorized.headers.first(),
            Some(&("X-Note".into(), fine.into()))
        );
    }
}

#[test]
fn a_host_header_must_name_the_urls_authority() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(200, &token_body("tok", 1200));
    let url = format!("{BASE}/v2.01/x");
    for same in [
        "api.sandbox.mangopay.com",
        "API.Sandbox.Mangopay.COM",
        "api.sandbox.mangopay.com:443",
        " api.sandbox.mangopay.com\t",
    ] {
        for name in ["Host", "host", "HOST"] {
            let authorized = client
                .authorize_request(request(&url, &[(name, same)]))
                .expect("the URL's own authority");
            assert_eq!(
                authorized.headers.first(),
                Some(&(name.into(), same.into()))
            );
        }
    }
    for other in [
        "evil.example",
        "api.sandbox.mangopay.com:444",
        "api.sandbox.mangopay.com:80",
        "api.sandbox.mangopay.com.evil.example",
        "api.mangopay.com",
        "user@api.sandbox.mangopay.com",
        "api.sandbox.mangopay.com:0",
        "api.sandbox.mangopay.com/x",
        "",
        "127.0.0.1",
    ] {
        let got = client.authorize_request(request(&url, &[("hOsT", other)]));
        assert!(
            matches!(got, Err(Error::InvalidRequest(_))),
            "{other:?}: {got:?}"
        );
    }
    let twice = [
        ("Host", "api.sandbox.mangopay.com"),
        ("host", "api.sandbox.mangopay.com"),
    ];
    let got = client.authorize_request(request(&url, &twice));
    assert!(matches!(got, Err(Error::InvalidRequest(_))), "{got:?}");
}

#[test]
fn the_shared_checks_are_usable_on_their_own() {
    let settings = crate::settings::Settings::new(config()).expect("valid");
    let headers = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(check_method("PATCH"), Ok(()));
    assert!(check_method("GET /").is_err());
    let host = headers(&[("Host", "api.sandbox.mangopay.com")]);
    assert_eq!(check_headers(&host, &settings.base), Ok(()));
    let other = crate::origin::Origin::parse_base("https://api.mangopay.com").expect("valid");
    assert!(check_headers(&host, &other).is_err());
    assert!(is_field_value("a\tb\u{e9}"));
    assert!(!is_field_value("a\x0bb"));
    assert_eq!(check_url(&format!("{BASE}/v2.01/x"), &settings), Ok(()));
    assert!(matches!(
        check_url("https://evil.example/", &settings),
        Err(Error::ForeignHost(_))
    ));
}

#[test]
fn only_a_rejection_of_the_held_token_drops_it() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.script(vec![
        answer(200, &token_body("held-token", 1200)),
        answer(200, &token_body("renewed-token", 1200)),
    ]);
    let url = format!("{BASE}/v2.01/my-client/users");
    client
        .authorize_request(request(&url, &[]))
        .expect("authorized");
    let not_ours = [
        request(&url, &[]),
        request(&url, &[("Authorization", "Bearer another-token")]),
        request(&url, &[("Authorization", "Basic aGVsZC10b2tlbg==")]),
        request(&url, &[("Authorization", "Bearer ")]),
        request(&url, &[("X-Token", "Bearer held-token")]),
    ];
    for sent in &not_ours {
        let verdict = client.check_response(sent, 401, &[], INVALID.as_bytes());
        assert!(
            matches!(verdict, Verdict::TokenRejected(Some(_))),
            "{verdict:?}"
        );
        assert_eq!(client.get_token().expect("kept").access_token, "held-token");
    }
    assert_eq!(transport.sent(), 1, "nothing dropped, nothing renewed");
    // The scheme is case-insensitive: this is the held token, refused.
    let ours = request(&url, &[("authorization", "bearer held-token")]);
    assert!(matches!(
        client.check_response(&ours, 401, &[], b""),
        Verdict::TokenRejected(None)
    ));
    assert_eq!(
        client.get_token().expect("renewed").access_token,
        "renewed-token"
    );
    assert_eq!(transport.sent(), 2);
}

#[test]
fn debug_output_of_an_authorized_request_never_shows_the_token() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(200, &token_body("tok-never-printed", 1200));
    let authorized = client
        .authorize_request(request(
            &format!("{BASE}/v2.01/x"),
            &[("Proxy-Authorization", "Basic c2VjcmV0"), ("Accept", "*/*")],
        ))
        .expect("authorized");
    let debug = format!("{authorized:?} {authorized:#?}");
    assert!(!debug.contains("tok-never-printed"), "{debug}");
    assert!(!debug.contains("c2VjcmV0"), "{debug}");
    assert!(debug.contains("Accept") && debug.contains("*/*"), "{debug}");
    let token = client.get_token().expect("token");
    let debug = format!("{token:?} {token:#?}");
    assert!(!debug.contains("tok-never-printed"), "{debug}");
    let raw = crate::ports::RawResponse {
        status: 200,
        body: token_body("tok-never-printed", 1200).into_bytes(),
        ..Default::default()
    };
    let debug = format!("{raw:?}");
    assert!(!debug.contains("tok-never-printed"), "{debug}");
}
