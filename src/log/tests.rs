use super::*;
use crate::client::Client;
use crate::fakes::*;
use crate::ports::{Clock, TokenStore};

fn logged_client(
    transport: &FakeTransport,
    clock: &FakeClock,
    store: Option<&FakeStore>,
    log: &FakeLog,
    level: Level,
) -> Client<FakeTransport, FakeClock> {
    let client = match store {
        Some(store) => Client::with_store(
            config(),
            transport.clone(),
            clock.clone(),
            Box::new(store.clone()),
        ),
        None => Client::new(config(), transport.clone(), clock.clone()),
    };
    client.expect("valid config").with_logger(log.logger(level))
}

/// The lines whose event is `event`.
fn events(log: &FakeLog, event: &str) -> Vec<String> {
    let tag = format!(" event={event} ");
    log.lines()
        .into_iter()
        .filter(|l| l.contains(&tag))
        .collect()
}

#[test]
fn levels_parse_in_any_case_and_order_by_verbosity() {
    assert_eq!(Level::parse(" Warn "), Some(Level::Warn));
    assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
    assert_eq!(Level::parse("off"), Some(Level::Off));
    assert_eq!(Level::parse("verbose"), None);
    assert!(Level::Error < Level::Warn && Level::Warn < Level::Info);
    assert_eq!(Level::DEFAULT, Level::Warn);
}

#[test]
fn lines_are_logfmt_with_the_fixed_keys_first_and_values_quoted() {
    let line = line(
        Level::Warn,
        "store-unavailable",
        "my-client",
        Duration::from_millis(1_795_824_000_250),
        &[
            (
                Field::Detail,
                Value::Text("wasi:keyvalue: \"default\" denied\nx"),
            ),
            (Field::RetryInS, Value::Number(60)),
            (Field::Shared, Value::Flag(true)),
            (Field::Source, Value::Text("")),
        ],
    );
    assert_eq!(
        line,
        "ts=1795824000.250 level=warn component=mangopay-auth event=store-unavailable \
         client_id=my-client detail=\"wasi:keyvalue: \\\"default\\\" denied x\" retry_in_s=60 \
         shared=true source=\"\""
    );
}

#[test]
fn a_disabled_level_writes_nothing() {
    let log = FakeLog::default();
    let logger = log.logger(Level::Warn);
    logger.event(Level::Info, "token-fetched", Duration::ZERO, &[]);
    logger.event(Level::Debug, "token-adopted", Duration::ZERO, &[]);
    assert!(log.lines().is_empty());
    logger.event(Level::Error, "locked-out", Duration::ZERO, &[]);
    assert_eq!(log.lines().len(), 1);
    let off = FakeLog::default();
    off.logger(Level::Off)
        .event(Level::Error, "locked-out", Duration::ZERO, &[]);
    assert!(off.lines().is_empty());
}

#[test]
fn a_fetch_is_logged_at_info_and_the_cached_path_logs_nothing() {
    let (transport, clock, log) = (
        FakeTransport::default(),
        FakeClock::default(),
        FakeLog::default(),
    );
    let client = logged_client(&transport, &clock, None, &log, Level::Debug);
    transport.answer(200, &token_body("first", 1200));
    for _ in 0..100 {
        client.get_token().expect("token");
    }
    let lines = log.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(" level=info ")
            && lines[0].contains(" event=token-fetched ")
            && lines[0].contains(" source=fresh-fetch lifetime_s=1200 took_ms=0 attempts=1"),
        "{lines:?}"
    );
}

#[test]
fn a_wrong_key_logs_a_warning_naming_the_error_and_the_next_try() {
    let (transport, clock, log) = (
        FakeTransport::default(),
        FakeClock::default(),
        FakeLog::default(),
    );
    let client = logged_client(&transport, &clock, None, &log, Level::Warn);
    transport.answer(
        401,
        r#"{"Message":"invalid_credentials","Type":"invalid_credentials","Id":"x","Date":1}"#,
    );
    for _ in 0..10 {
        client.get_token().expect_err("wrong key");
    }
    let lines = events(&log, "cool-down-started");
    assert_eq!(lines.len(), 1, "{:?}", log.lines());
    let next = clock.wall().as_secs() + 60;
    assert!(
        lines[0].contains(" level=warn ")
            && lines[0].contains(" error=invalid-credentials status=401 retry_in_s=60 ")
            && lines[0].contains(&format!(" next_try_unix={next} strikes=1 shared=false")),
        "{lines:?}"
    );
    assert_eq!(
        log.lines().len(),
        1,
        "the blocked calls log nothing at warn"
    );
}

#[test]
fn a_lockout_is_logged_as_an_error() {
    let (transport, clock, log) = (
        FakeTransport::default(),
        FakeClock::default(),
        FakeLog::default(),
    );
    let client = logged_client(&transport, &clock, None, &log, Level::Error);
    transport.answer(
        400,
        r#"{"error":"unauthorized_client","error_description":"temporarily locked"}"#,
    );
    client.get_token().expect_err("locked out");
    let lines = events(&log, "locked-out");
    assert_eq!(lines.len(), 1, "{:?}", log.lines());
    assert!(
        lines[0].contains(" level=error ") && lines[0].contains(" error=locked-out status=400")
    );
}

#[test]
fn a_failed_renewal_serving_the_held_token_then_the_end_of_a_cool_down_are_logged() {
    let (transport, clock, log) = (
        FakeTransport::default(),
        FakeClock::default(),
        FakeLog::default(),
    );
    let client = logged_client(&transport, &clock, None, &log, Level::Info);
    transport.answer(200, &token_body("first", 1200));
    client.get_token().expect("token");
    clock.advance(secs(1140));
    transport.answer(503, "busy");
    transport.answer(503, "busy");
    transport.answer(503, "busy");
    assert_eq!(client.get_token().expect("held").access_token, "first");
    let failed = events(&log, "renewal-failed");
    assert_eq!(failed.len(), 1, "{:?}", log.lines());
    assert!(
        failed[0].contains(" error=unexpected-response status=503 ")
            && failed[0].contains(" seconds_left="),
        "{failed:?}"
    );

    let (transport, clock, log) = (
        FakeTransport::default(),
        FakeClock::default(),
        FakeLog::default(),
    );
    let client = logged_client(&transport, &clock, None, &log, Level::Info);
    transport.answer(401, r#"{"Message":"m","Type":"invalid_credentials"}"#);
    client.get_token().expect_err("wrong key");
    clock.advance(secs(60));
    transport.answer(200, &token_body("second", 1200));
    client.get_token().expect("token");
    assert_eq!(
        events(&log, "cool-down-ended").len(),
        1,
        "{:?}",
        log.lines()
    );
}

#[test]
fn the_store_lost_and_back_each_log_once() {
    let (transport, clock, store) = shared_parts();
    let log = FakeLog::default();
    let client = logged_client(&transport, &clock, Some(&store), &log, Level::Info);
    store.set_down(true);
    transport.answer(200, &token_body("first", 1200));
    client.get_token().expect("direct");
    clock.advance(secs(1140));
    transport.answer(200, &token_body("second", 1200));
    client.get_token().expect("direct again");
    let lost = events(&log, "store-unavailable");
    assert_eq!(lost.len(), 1, "{:?}", log.lines());
    assert!(
        lost[0].contains(" level=warn ") && lost[0].contains(" detail="),
        "{lost:?}"
    );
    store.set_down(false);
    clock.advance(secs(1140));
    transport.answer(200, &token_body("third", 1200));
    client.get_token().expect("shared again");
    assert_eq!(events(&log, "store-back").len(), 1, "{:?}", log.lines());
    assert!(store.get(&keys().token).expect("up").is_some());
}

#[test]
fn no_line_holds_a_secret() {
    let (transport, clock, store) = shared_parts();
    let log = FakeLog::default();
    let client = logged_client(&transport, &clock, Some(&store), &log, Level::Debug);
    transport.answer(200, &token_body("tok-1234567890abcdef-secret", 1200));
    let token = client.get_token().expect("token").access_token;
    let request = request(
        "https://api.sandbox.mangopay.com/v2.01/x",
        &[("Authorization", &format!("Bearer {token}"))],
    );
    client.check_response(&request, 401, &[], b"");
    transport.answer(
        401,
        &format!(r#"{{"Message":"{token}","Type":"invalid_credentials"}}"#),
    );
    client.get_token().expect_err("refused");
    // A TLS fault whose host text echoes the credential and the token.
    clock.advance(secs(60));
    transport.script(vec![failed(
        crate::ports::TransportKind::Tls,
        &format!("tls-alert-received: my-api-key bXktY2xpZW50Om15LWFwaS1rZXk= {token}"),
    )]);
    let error = format!("{:?}", client.get_token().expect_err("no TLS"));
    assert!(
        error.contains("TLS to https://api.sandbox.mangopay.com failed"),
        "{error}"
    );
    let lines = log.lines().join("\n");
    assert!(lines.contains("event=token-refused"), "{lines}");
    assert!(lines.contains("event=tls-failed"), "{lines}");
    let settings = crate::settings::Settings::new(config()).expect("valid");
    for secret in crate::redact::secrets(&settings, &token) {
        assert!(!lines.contains(secret), "{lines}");
        assert!(!error.contains(secret), "{error}");
    }
}

/// 20 per-request instances behind a host that presents no client certificate to an mTLS
/// host: one `error` line naming the fix, from the instance that tried; the others, which
/// only observed the shared pause, at `debug`.
#[test]
fn a_tls_fault_is_logged_once_per_pause_at_error_naming_the_fix() {
    let (transport, clock, store) = shared_parts();
    let log = FakeLog::default();
    transport.script(vec![failed(
        crate::ports::TransportKind::ConnectionLost,
        "connection-terminated",
    )]);
    let mut config = config();
    config.environment = crate::config::Environment::SandboxMtls;
    let settings = crate::settings::Settings::new(config).expect("valid");
    for _ in 0..20 {
        let mut config = crate::fakes::config();
        config.environment = crate::config::Environment::SandboxMtls;
        let fresh = Client::with_store(
            config,
            transport.clone(),
            clock.clone(),
            Box::new(store.clone()),
        )
        .expect("valid")
        .with_logger(log.logger(Level::Debug));
        fresh.get_token().expect_err("no client certificate");
        clock.advance(secs(1));
    }
    assert_eq!(transport.sent(), 1);
    let failed = events(&log, "tls-failed");
    assert_eq!(failed.len(), 1, "{:?}", log.lines());
    let next = 1_800_000_000 + 60;
    assert_eq!(
        failed[0],
        format!(
            "ts=1800000000.000 level=error component=mangopay-auth event=tls-failed \
             client_id=my-client error=transport retry_in_s=60 next_try_unix={next} \
             shared=true detail=\"{}; the host said: connection-terminated\"",
            crate::error::tls_hint(&settings.base)
        )
    );
    assert!(failed[0].contains(
        "detail=\"TLS to https://api-mtls.sandbox.mangopay.com failed: the host must trust its certificate and present Mangopay's client certificate to an mTLS host"
    ));
    let observed = events(&log, "cool-down-observed");
    assert_eq!(observed.len(), 19, "{:?}", log.lines());
    assert!(
        observed
            .iter()
            .all(|l| l.contains(" level=debug ") && l.contains(" error=transport ")),
        "{observed:?}"
    );
    assert!(events(&log, "token-request-failed").is_empty());
}
