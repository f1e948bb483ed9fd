use super::*;
use crate::fakes::*;
use crate::ports::{TransportError, TransportKind};

fn settings() -> Settings {
    Settings::new(config()).expect("valid config")
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn only_the_base_urls_origin_gets_the_token() {
    let settings = settings();
    for (scheme, authority) in [
        ("https", "api.sandbox.mangopay.com"),
        ("https", "API.Sandbox.Mangopay.com:443"),
    ] {
        assert!(
            is_mangopay(&settings, scheme, authority),
            "{scheme}://{authority}"
        );
    }
    for (scheme, authority) in [
        ("http", "api.sandbox.mangopay.com"),
        ("https", "api.mangopay.com"),
        ("https", "api.sandbox.mangopay.com:8443"),
        ("https", "api.sandbox.mangopay.com.evil.example"),
        ("https", "user@api.sandbox.mangopay.com"),
        ("https", ""),
        ("https", "api.sandbox.mangopay.com/x"),
    ] {
        assert!(
            !is_mangopay(&settings, scheme, authority),
            "{scheme}://{authority}"
        );
    }
}

/// The scheme and authority come apart from the caller's request: neither may smuggle in a
/// URL whose origin is the base URL's.
#[test]
fn a_hostile_scheme_or_authority_never_passes_for_the_base_url() {
    let settings = settings();
    for (scheme, authority) in [
        ("https://api.sandbox.mangopay.com/x?", "evil.example"),
        ("https://api.sandbox.mangopay.com?", "evil.example"),
        ("https://api.sandbox.mangopay.com:443/", "evil.example"),
        ("https://api.sandbox.mangopay.com/", ""),
        ("https:", "//api.sandbox.mangopay.com"),
        ("https ", "api.sandbox.mangopay.com"),
        ("", "api.sandbox.mangopay.com"),
        ("ftp", "api.sandbox.mangopay.com"),
        ("https", "evil.example@api.sandbox.mangopay.com"),
        ("https", "api.sandbox.mangopay.com@evil.example"),
        ("https", "api.sandbox.mangopay.com?x"),
        ("https", "api.sandbox.mangopay.com#x"),
        ("https", "api.sandbox.mangopay.com\\x"),
        ("https", "api.sandbox.mangopay.com "),
        ("https", " api.sandbox.mangopay.com"),
        ("https", "api.sandbox.mangopay.com\t"),
        ("https", "api.sandbox.mangopay.com:"),
        ("https", "api.sandbox.mangopay.com:443 "),
        ("https", "api.sandbox.mangopay.com:80"),
        ("https", "api.sandbox.mangopay.com."),
    ] {
        assert!(
            !is_mangopay(&settings, scheme, authority),
            "{scheme:?} {authority:?}"
        );
    }
    // Default ports compare equal to explicit ones, for either scheme of the base URL.
    assert!(is_mangopay(
        &settings,
        "HTTPS",
        "api.sandbox.mangopay.com:443"
    ));
    let mut local = config();
    local.base_url = Some("http://localhost".into());
    let local = Settings::new(local).expect("valid config");
    assert!(is_mangopay(&local, "http", "localhost:80"));
    assert!(is_mangopay(&local, "http", "LOCALHOST"));
    assert!(!is_mangopay(&local, "https", "localhost"));
    assert!(!is_mangopay(&local, "https", "localhost:80"));
    assert!(!is_mangopay(&local, "http", "localhost:443"));
}

#[test]
fn requests_are_checked_as_authorize_request_checks_them() {
    let settings = settings();
    assert_eq!(
        check_request(&settings, "POST", &headers(&[("content-type", "a/b")])),
        Ok(())
    );
    let host = headers(&[("host", "api.sandbox.mangopay.com")]);
    assert_eq!(check_request(&settings, "GET", &host), Ok(()));
    for (method, bad) in [
        ("GET", headers(&[("host", "evil.example")])),
        ("GET", headers(&[("transfer-encoding", "chunked")])),
        ("GET", headers(&[("x-a", "b\r\nx-b: c")])),
        ("GET", headers(&[("x a", "b")])),
        ("GE T", headers(&[])),
    ] {
        let error = check_request(&settings, method, &bad).expect_err("refused");
        assert_eq!(code(&error), Code::Denied, "{error:?}");
    }
}

#[test]
fn the_resend_cap_defaults_to_one_mib_and_must_be_a_number() {
    assert_eq!(resend_body_max(|_| None), Ok(1 << 20));
    assert_eq!(resend_body_max(|_| Some("0".into())), Ok(0));
    assert_eq!(resend_body_max(|_| Some(" 4096 ".into())), Ok(4096));
    let error = resend_body_max(|_| Some("1MB".into())).expect_err("not bytes");
    assert_eq!(error.case_name(), "invalid-config");
}

#[test]
fn the_resend_cap_is_bounded() {
    // 64 MiB.
    assert_eq!(resend_body_max(|_| Some("67108864".into())), Ok(64 << 20));
    for over in [(64usize << 20) + 1, usize::MAX] {
        let Err(Error::InvalidConfig(text)) = resend_body_max(|_| Some(over.to_string())) else {
            panic!("{over} refused");
        };
        assert!(
            text.contains(RESEND_BODY_MAX_VAR) && text.contains("67108864"),
            "{text}"
        );
    }
}

#[test]
fn errors_read_as_one_line_with_their_case_status_and_pause() {
    let transport = FakeTransport::default();
    let client = client(&transport, &FakeClock::default());
    transport.answer(401, INVALID);
    let error = client.get_token().expect_err("invalid credentials");
    let line = detail(&error);
    assert!(
        line.starts_with("mangopay-auth: invalid-credentials status=401 retry-in-s="),
        "{line}"
    );
    assert!(line.ends_with("invalid_credentials: The authorization credentials are not valid"));
    assert_eq!(code(&error), Code::Internal);
    assert!(!line.contains("my-api-key"));

    let timeout = Error::Transport(TransportError {
        kind: TransportKind::Timeout,
        detail: "connection-timeout".into(),
    });
    assert_eq!(code(&timeout), Code::Timeout);
    assert_eq!(
        detail(&timeout),
        "mangopay-auth: transport: connection-timeout"
    );
}

/// A TLS fault is no network hiccup a caller could wait out: `internal-error`, its words
/// naming the host's fix and the pause.
#[test]
fn a_tls_fault_reads_as_an_internal_error_naming_the_fix() {
    let transport = FakeTransport::default();
    let client = client(&transport, &FakeClock::default());
    transport.script(vec![failed(TransportKind::Tls, "tls-certificate-error")]);
    let error = client.get_token().expect_err("untrusted certificate");
    assert_eq!(code(&error), Code::Internal);
    let line = detail(&error);
    let head = "mangopay-auth: transport: TLS to https://api.sandbox.mangopay.com failed: \
                the host must trust";
    let tail = "; the host said: tls-certificate-error; no token request for 60 s";
    assert!(line.starts_with(head) && line.ends_with(tail), "{line}");
}
