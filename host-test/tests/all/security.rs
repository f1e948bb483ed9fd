//! What an attacker or an unlucky operator can hand the component, through the real component:
//! smuggled bytes in the URL and headers, a Host header naming another server, 401s that are
//! not about the held token, IP literals in other spellings, and host or answer texts that echo
//! a piece of a secret.

use host_test::fixture::{API_KEY, CLIENT_ID, World, authorization_headers, basic};
use host_test::host::{
    Config, Error, HttpRequest, HttpResponse, ResponseVerdict, RetryPolicy, TransportKind,
    UnexpectedResponse, config,
};
use host_test::http_client;
use host_test::inject::{Injection, Injector};
use host_test::mock::Canned;
use wasmtime_wasi_http::Error as HostError;

const WITHHELD: &str = "<withheld: the text may contain a secret>";

fn with_url(request: &HttpRequest, url: String) -> HttpRequest {
    HttpRequest {
        url,
        ..request.clone()
    }
}

fn with_header(request: &HttpRequest, name: &str, value: &str) -> HttpRequest {
    let mut request = request.clone();
    request.headers.push((name.into(), value.into()));
    request
}

/// The mock's `host:port`.
fn authority(w: &World) -> String {
    w.mock.base_url().trim_start_matches("http://").to_owned()
}

#[test]
fn urls_with_a_fragment_or_bytes_outside_visible_ascii_are_refused() {
    let mut w = World::new();
    let client = w.client();
    let request = w.users(CLIENT_ID);
    let base = w.mock.base_url();
    let refused = [
        format!("{base}/v2.01/x#\r\nX-Injected: 1"),
        format!("{base}/v2.01/x#a\0b"),
        format!("{base}/v2.01/x#section"),
        format!("{base}/v2.01/x?q=a b"),
        format!("{base}/v2.01/x\t"),
        format!("{base}/v2.01/x\x7f"),
        format!("{base}/v2.01/caf\u{e9}"),
    ];
    for url in &refused {
        let error = w
            .authorize(client, &with_url(&request, url.clone()))
            .expect_err("refused");
        assert!(
            matches!(error, Error::InvalidRequest(_)),
            "{url:?}: {error:?}"
        );
    }
    assert_eq!(
        w.mock.token_requests(),
        0,
        "refused before any token request"
    );
    // And on the cached path, once a token is held.
    w.authorize(client, &request).expect("authorized");
    for url in &refused {
        let error = w
            .authorize(client, &with_url(&request, url.clone()))
            .expect_err("refused");
        assert!(
            matches!(error, Error::InvalidRequest(_)),
            "{url:?}: {error:?}"
        );
    }
    assert_eq!(w.mock.token_requests(), 1);
}

#[test]
fn header_values_with_any_control_byte_but_tab_are_refused() {
    let mut w = World::new();
    let client = w.client();
    let request = w.users(CLIENT_ID);
    for byte in (0u8..0x20).chain([0x7f]).filter(|b| *b != b'\t') {
        let value = format!("a{}b", char::from(byte));
        let error = w
            .authorize(client, &with_header(&request, "X-Note", &value))
            .expect_err("refused");
        assert!(
            matches!(error, Error::InvalidRequest(_)),
            "{byte:#04x}: {error:?}"
        );
    }
    assert_eq!(w.mock.token_requests(), 0);
    let tab = with_header(&request, "X-Note", "a\tb");
    let authorized = w.authorize(client, &tab).expect("tab is allowed");
    assert!(
        authorized
            .headers
            .contains(&("X-Note".into(), "a\tb".into()))
    );
}

#[test]
fn a_host_header_naming_another_authority_is_refused() {
    let mut w = World::new();
    let client = w.client();
    let request = w.users(CLIENT_ID);
    let own = authority(&w);
    let port: u16 = own
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    for other in [
        "evil.example".to_owned(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1).max(1)),
        "127.0.0.1".to_owned(),
        format!("evil.example@127.0.0.1:{port}"),
    ] {
        for name in ["Host", "host", "HOST"] {
            let error = w
                .authorize(client, &with_header(&request, name, &other))
                .expect_err("refused");
            assert!(
                matches!(error, Error::InvalidRequest(_)),
                "{other}: {error:?}"
            );
        }
    }
    let twice = with_header(&with_header(&request, "Host", &own), "host", &own);
    assert!(matches!(
        w.authorize(client, &twice),
        Err(Error::InvalidRequest(_))
    ));
    assert_eq!(w.mock.token_requests(), 0, "no token for a refused request");
    // The URL's own authority, in any case, is kept as given.
    let same = with_header(&request, "Host", &own.to_ascii_uppercase());
    let authorized = w.authorize(client, &same).expect("the URL's authority");
    assert!(
        authorized
            .headers
            .contains(&("Host".into(), own.to_ascii_uppercase()))
    );
    assert_eq!(http_client::send(&authorized).expect("sent").status, 200);
}

#[test]
fn a_401_drops_the_held_token_only_when_the_request_carried_it() {
    let mut w = World::new();
    let client = w.client();
    let request = w.users(CLIENT_ID);
    let authorized = w.authorize(client, &request).expect("authorized");
    let held = authorization_headers(&authorized)[0].to_owned();
    let refused = HttpResponse {
        status: 401,
        headers: vec![],
        body: br#"{"Message":"The authorization credentials are not valid","Type":"invalid_credentials","Id":"x","Date":1.0,"errors":null}"#.to_vec(),
    };
    let not_ours = [
        request.clone(),
        with_header(
            &request,
            "Authorization",
            "Bearer 0123456789abcdef0123456789abcdef",
        ),
        with_header(&request, "Authorization", &basic(CLIENT_ID, API_KEY)),
    ];
    for sent in &not_ours {
        let verdict = w
            .instance
            .check_response(client, sent, &refused)
            .expect("no trap");
        assert!(
            matches!(verdict, ResponseVerdict::TokenRejected(Some(_))),
            "{verdict:?}"
        );
        let again = w.authorize(client, &request).expect("authorized");
        assert_eq!(authorization_headers(&again), vec![held.as_str()], "kept");
    }
    assert_eq!(w.mock.token_requests(), 1);
    // The held token itself, refused: dropped, and the next authorization renews.
    let verdict = w
        .instance
        .check_response(client, &authorized, &refused)
        .expect("no trap");
    assert!(matches!(verdict, ResponseVerdict::TokenRejected(Some(_))));
    let renewed = w.authorize(client, &request).expect("authorized");
    assert_ne!(authorization_headers(&renewed), vec![held.as_str()]);
    assert_eq!(w.mock.token_requests(), 2);
}

#[test]
fn ip_literals_are_compared_in_canonical_form() {
    let injector = Injector::default();
    let mut w = World::with_injector(&injector);
    injector.push(Injection::json(
        200,
        r#"{"access_token":"tok-ipv6-literal-0001","token_type":"bearer","expires_in":1200}"#,
    ));
    // Loopback, spelled out in full: a valid http:// base URL.
    let spelled_out = config(CLIENT_ID, API_KEY, "http://[0:0:0:0:0:0:0:1]:8080");
    let client = w.client_with(&spelled_out);
    for url in [
        "http://[::1]:8080/v2.01/x/users",
        "http://[0::1]:8080/v2.01/x/users",
        "http://[0:0:0:0:0:0:0:1]:8080/v2.01/x/users",
    ] {
        let request = HttpRequest {
            method: "GET".into(),
            url: url.into(),
            headers: vec![("Host".into(), "[0:0::1]:8080".into())],
        };
        let authorized = w.authorize(client, &request).expect("the same origin");
        assert_eq!(
            authorization_headers(&authorized),
            vec!["Bearer tok-ipv6-literal-0001"],
            "{url}"
        );
    }
    let elsewhere = HttpRequest {
        method: "GET".into(),
        url: "http://[::2]:8080/v2.01/x/users".into(),
        headers: vec![],
    };
    assert!(matches!(
        w.authorize(client, &elsewhere),
        Err(Error::InsecureUrl(_))
    ));
    let other_port = HttpRequest {
        url: "http://[::1]:8081/v2.01/x/users".into(),
        ..elsewhere
    };
    assert!(matches!(
        w.authorize(client, &other_port),
        Err(Error::ForeignHost(_))
    ));
    assert_eq!(injector.requests(), 1);
}

#[test]
fn transport_error_texts_that_echo_a_credential_are_withheld() {
    let injector = Injector::default();
    let mut w = World::with_injector(&injector);
    let client = w.client_with(&Config {
        retry: Some(RetryPolicy {
            max_attempts: Some(1),
            initial_backoff_ms: None,
            budget_ms: None,
        }),
        ..w.config()
    });
    // A proxy that quotes the start of the header it refused.
    injector.push(Injection::Fail(|| {
        let header = basic(CLIENT_ID, API_KEY);
        HostError::InternalError(Some(format!(
            "proxy refused: Authorization: {}...",
            header.get(..30).unwrap_or_default()
        )))
    }));
    let error = w.token_error(client);
    assert_eq!(
        error,
        Error::Transport(host_test::host::TransportError {
            kind: TransportKind::Other,
            detail: WITHHELD.into(),
        })
    );
}

#[test]
fn answers_that_echo_a_piece_of_a_secret_are_withheld() {
    let mut w = World::new();
    let client = w.client_with(&Config {
        retry: Some(RetryPolicy {
            max_attempts: Some(1),
            initial_backoff_ms: None,
            budget_ms: None,
        }),
        ..w.config()
    });
    let credential = basic(CLIENT_ID, API_KEY);
    let credential = credential.trim_start_matches("Basic ");
    for body in [
        // A gateway that logs a truncated header.
        format!(
            "bad gateway; request had Authorization: Basic {}",
            credential.get(..18).unwrap_or_default()
        ),
        // The middle of the key, JSON-escaped.
        format!(
            r#"{{"detail":"key \u0073{}"}}"#,
            API_KEY.get(1..20).unwrap_or_default()
        ),
        // Percent-encoded, as in a logged URL.
        format!(
            "upstream=/auth?basic={}",
            credential
                .get(4..24)
                .unwrap_or_default()
                .replace('=', "%3D")
        ),
    ] {
        w.mock
            .push_canned(Canned::new(502, "text/plain", body.clone()));
        let error = w.token_error(client);
        assert_eq!(
            error,
            Error::UnexpectedResponse(UnexpectedResponse {
                status: 502,
                excerpt: WITHHELD.into(),
                retry_in_seconds: None,
            }),
            "{body}"
        );
    }
    // A 401 from the API that echoes the start of the token it refused.
    let request = w.users(CLIENT_ID);
    let authorized = w.authorize(client, &request).expect("authorized");
    let token = authorization_headers(&authorized)[0]
        .trim_start_matches("Bearer ")
        .to_owned();
    let echo = HttpResponse {
        status: 401,
        headers: vec![],
        body: format!(
            r#"{{"Message":"token {}… is not valid","Type":"invalid_credentials"}}"#,
            token.get(..16).unwrap_or_default()
        )
        .into_bytes(),
    };
    let verdict = w
        .instance
        .check_response(client, &authorized, &echo)
        .expect("no trap");
    let ResponseVerdict::TokenRejected(Some(api)) = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(api.message, WITHHELD);
    assert_eq!(api.error_type, "invalid_credentials");
}
