//! The fleet under faults: shared cool-downs, the owned lease, renewal without stalls.

use super::*;
use crate::client::Client;
use crate::config::{ClientConfig, Environment};
use crate::fakes::*;
use crate::ports::TransportKind;
use crate::shared::sharing::Sharing;
use crate::token::Source;
use crate::{retry, wire};

fn config_with_key(key: &str) -> ClientConfig {
    ClientConfig::new(
        "my-client".into(),
        Secret::new(key.into()),
        Environment::Sandbox,
    )
}

fn client_with(
    config: ClientConfig,
    transport: &FakeTransport,
    clock: &FakeClock,
    store: &FakeStore,
) -> Client<FakeTransport, FakeClock> {
    Client::with_store(
        config,
        transport.clone(),
        clock.clone(),
        Box::new(store.clone()),
    )
    .expect("valid config")
}

fn settings() -> Settings {
    Settings::new(config()).expect("valid")
}

fn is_released(store: &FakeStore) -> bool {
    store
        .value(&keys().lease)
        .is_none_or(|v| String::from_utf8_lossy(&v).contains(r#""released":true"#))
}

fn retry_in(error: &Error) -> Option<Duration> {
    match error {
        Error::InvalidCredentials(e) => e.retry_in,
        Error::LockedOut(e) | Error::OAuth(e) => e.retry_in,
        Error::UnexpectedResponse(e) => e.retry_in,
        _ => None,
    }
}

#[test]
fn a_wrong_key_costs_the_fleet_one_token_request_per_cool_down() {
    let (transport, clock, store) = shared_parts();
    transport.answer(401, INVALID);
    for n in 0..50 {
        let fresh = shared_client(&transport, &clock, &store);
        let error = fresh.get_token().expect_err("wrong key");
        assert!(matches!(error, Error::InvalidCredentials(_)), "{error:?}");
        let left = retry_in(&error).expect("says when");
        assert_eq!(left, secs(60) - Duration::from_millis(n * 100), "call {n}");
        clock.advance(Duration::from_millis(100));
    }
    assert_eq!(transport.sent(), 1);
    assert!(is_released(&store));
    // The entry names the error and no secret.
    let entry = String::from_utf8(store.value(&keys().block).expect("a cool-down")).unwrap();
    assert!(entry.contains("invalid-credentials") && entry.contains(r#""strikes":1"#));
    for secret in ["my-api-key", "bXktY2xpZW50Om15LWFwaS1rZXk="] {
        assert!(!entry.contains(secret), "{entry}");
    }

    // Correct credentials (another key id) are never blocked by it.
    transport.answer(200, &token_body("good", 1200));
    let right = client_with(config_with_key("right-key"), &transport, &clock, &store);
    assert_eq!(right.get_token().expect("token").access_token, "good");
    assert_eq!(transport.sent(), 2);
}

#[test]
fn a_lockout_doubles_its_shared_cool_down_to_the_maximum() {
    let (transport, clock, store) = shared_parts();
    transport.answer(400, LOCKOUT);
    // A fresh instance every 10 s for 30 minutes.
    let mut sent_at = Vec::new();
    for _ in 0..180 {
        let before = transport.sent();
        let error = shared_client(&transport, &clock, &store)
            .get_token()
            .expect_err("locked");
        assert!(matches!(error, Error::LockedOut(_)), "{error:?}");
        assert!(retry_in(&error).is_some_and(|r| r <= secs(900)));
        if transport.sent() > before {
            sent_at.push(clock.monotonic().as_secs());
        }
        clock.advance(secs(10));
    }
    // 60, 120, 240, 480, then the 900 s maximum.
    assert_eq!(sent_at, vec![0, 60, 180, 420, 900]);
}

#[test]
fn concurrent_waiters_answer_the_cool_down_their_leader_published() {
    let (transport, clock, store) = shared_parts();
    transport.answer(401, INVALID);
    let keys = keys();
    // A waiter finds the leader's lease; the leader publishes its cool-down meanwhile.
    let leader = shared_client(&transport, &clock, &store);
    leader.get_token().expect_err("wrong key");
    let block = store.value(&keys.block).expect("published");
    let (transport, clock, store) = shared_parts();
    transport.answer(401, INVALID);
    let settings = settings();
    store.insert(&keys.lease, &lease_value(&keys.id, lease_ttl(&settings)));
    store.arrive_at(4, &keys.block, block);
    let waiter = shared_client(&transport, &clock, &store);
    let error = waiter.get_token().expect_err("blocked");
    assert!(matches!(error, Error::InvalidCredentials(_)), "{error:?}");
    assert_eq!(transport.sent(), 0);
}

#[test]
fn a_failing_store_keeps_the_instance_cool_down() {
    let (transport, clock, store) = shared_parts();
    transport.answer(401, INVALID);
    store.set_down(true);
    let client = shared_client(&transport, &clock, &store);
    for _ in 0..59 {
        let error = client.get_token().expect_err("wrong key");
        assert!(retry_in(&error).is_some());
        clock.advance(secs(1));
    }
    assert_eq!(transport.sent(), 1);
    clock.advance(secs(1));
    client.get_token().expect_err("wrong key");
    assert_eq!(transport.sent(), 2);
}

#[test]
fn retry_after_lengthens_a_shared_pause_and_never_shortens_it() {
    let lockout = |retry_after: &str| {
        Ok(crate::ports::RawResponse {
            status: 400,
            retry_after: Some(retry_after.into()),
            body: LOCKOUT.as_bytes().to_vec(),
            truncated: false,
        })
    };
    for (retry_after, pause) in [("300", 300), ("5", 60), ("0", 60), ("99999", 900)] {
        let (transport, clock, store) = shared_parts();
        transport.script(vec![lockout(retry_after)]);
        let first = shared_client(&transport, &clock, &store).get_token();
        assert_eq!(retry_in(&first.expect_err("locked")), Some(secs(pause)));
        clock.advance(secs(pause - 1));
        let other = shared_client(&transport, &clock, &store).get_token();
        assert_eq!(retry_in(&other.expect_err("blocked")), Some(secs(1)));
        assert_eq!(transport.sent(), 1, "Retry-After {retry_after}");
    }
}

#[test]
fn a_lease_is_released_only_by_its_holder() {
    let (transport, clock, store) = shared_parts();
    let settings = settings();
    let shared = Shared::new(Box::new(store.clone()), &settings);
    let deadline = Deadline::start(clock.monotonic(), settings.retry.budget);
    let Acquired::Leader(lead) = shared.acquire(&clock, false, &deadline, WAIT_FIRST) else {
        panic!("the lease is free");
    };
    // This instance's lease expired and another instance took it over.
    let theirs = lease_value(&keys().id, lease_ttl(&settings));
    store.insert(&keys().lease, &theirs);
    shared.finish(&clock, lead, Outcome::Failed);
    assert_eq!(store.value(&keys().lease), Some(theirs));
    drop(transport);
}

#[test]
fn every_way_out_after_winning_the_lease_releases_it() {
    // (operation, key part, from the n-th call of it): each fails some step after the lease.
    let faults = [
        (Op::CompareAndSwap, "token/", 1),
        (Op::CompareAndSwap, "cool-down/", 1),
        (Op::Get, "token/", 2),
        (Op::Get, "cool-down/", 2),
    ];
    for (op, part, nth) in faults {
        for answer_with in [token_body("t", 1200), INVALID.to_owned()] {
            let (transport, clock, store) = shared_parts();
            let status = if answer_with == INVALID { 401 } else { 200 };
            transport.answer(status, &answer_with);
            store.fail(op, part, nth);
            let _ = shared_client(&transport, &clock, &store).get_token();
            assert!(is_released(&store), "{op:?} {part} {nth} {status}");
            assert_eq!(transport.sent(), 1);
        }
    }
}

#[test]
fn a_live_token_is_served_at_once_while_another_instance_renews() {
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("old", 1200));
    let holder = shared_client(&transport, &clock, &store);
    holder.get_token().expect("token");
    let settings = settings();
    let keys = keys();
    // Past the refresh point; another instance holds the lease.
    clock.advance(secs(1150));
    store.insert(&keys.lease, &lease_value(&keys.id, lease_ttl(&settings)));
    transport.answer(200, &token_body("new", 1200));
    assert_eq!(holder.get_token().expect("held").access_token, "old");
    // A fresh instance finds the same token in the store, past its refresh point but alive.
    let fresh = shared_client(&transport, &clock, &store);
    assert_eq!(fresh.get_token().expect("stored").access_token, "old");
    assert_eq!(fresh.status().source, Some(Source::SharedStore));
    assert_eq!(clock.slept(), Duration::ZERO, "nobody waits");
    assert_eq!(transport.sent(), 1);
}

#[test]
fn a_fetch_that_outlives_the_entry_it_read_still_publishes() {
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("old", 1200));
    shared_client(&transport, &clock, &store)
        .get_token()
        .expect("token");
    clock.advance(secs(1150));
    let settings = settings();
    let shared = Shared::new(Box::new(store.clone()), &settings);
    let deadline = Deadline::start(clock.monotonic(), settings.retry.budget);
    let Acquired::Leader(lead) = shared.acquire(&clock, false, &deadline, WAIT_FIRST) else {
        panic!("the lease is free");
    };
    // The entry read expires in the store while the fetch runs.
    store.delete(&keys().token).expect("deleted");
    let response = wire::parse_token_response(token_body("new", 1200).as_bytes()).expect("ok");
    let token = HeldToken::new(response, clock.monotonic(), clock.wall(), secs(60));
    shared.finish(&clock, lead, Outcome::Fetched(std::rc::Rc::new(token)));
    let stored = store.value(&keys().token).expect("published");
    let stored = SharedToken::decode(&stored, &keys().id).expect("a token");
    assert_eq!(stored.access_token.expose(), "new");
    assert!(is_released(&store));
}

#[test]
fn a_token_with_json_escapes_is_shared_like_any_other() {
    let (transport, clock, store) = shared_parts();
    transport.answer(
        200,
        r#"{"access_token":"a\"b\\c\u0041d\/e","token_type":"bearer","expires_in":1200}"#,
    );
    let first = shared_client(&transport, &clock, &store);
    assert_eq!(
        first.get_token().expect("token").access_token,
        r#"a"b\cAd/e"#
    );
    let fresh = shared_client(&transport, &clock, &store);
    assert_eq!(
        fresh.get_token().expect("token").access_token,
        r#"a"b\cAd/e"#
    );
    assert_eq!(fresh.status().source, Some(Source::SharedStore));
    assert_eq!(transport.sent(), 1);
}

/// Two machines whose wall clocks are 10 s apart, a fresh instance per call on each in turn,
/// over two hours of 20-minute tokens: one token request per renewal.
#[test]
fn clocks_ten_seconds_apart_still_make_one_token_request_per_renewal() {
    for ahead in [secs(10), secs(0)] {
        let (transport, clock, store) = shared_parts();
        let skewed = clock.skewed(ahead);
        let mut n = 0u32;
        transport.script(
            (0..10)
                .map(|i| answer(200, &token_body(&format!("t{i}"), 1200)))
                .collect(),
        );
        for call in 0..720 {
            let on = if call % 2 == 0 { &clock } else { &skewed };
            let fresh = shared_client(&transport, on, &store);
            fresh.get_token().expect("token");
            n += 1;
            clock.advance(secs(10));
        }
        assert_eq!(n, 720);
        // 7,200 s of tokens refreshed 60 s before they expire: a request at 0, 1140, 2280,
        // 3420, 4560, 5700 and 6840 s.
        assert_eq!(transport.sent(), 7, "ahead {ahead:?}");
    }
}

#[test]
fn a_lease_lives_its_own_ttl_from_when_it_was_first_seen() {
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("own", 1200));
    let settings = settings();
    let ttl = lease_ttl(&settings);
    let keys = keys();
    // A lease that is never released: it lives its own TTL from when this instance saw it.
    let entry = br#"{"v":1,"id":"ID","holder":"x","ttl_ms":12000}"#;
    let entry = String::from_utf8_lossy(entry).replace("ID", &keys.id);
    store.insert(&keys.lease, entry.as_bytes());
    let client = shared_client(&transport, &clock, &store);
    let error = client.get_token().expect_err("waited to the deadline");
    assert!(matches!(&error, Error::Transport(e) if e.kind == TransportKind::Timeout));
    clock.advance(ttl);
    assert_eq!(client.get_token().expect("took over").access_token, "own");
    assert_eq!(transport.sent(), 1);
}

/// A lockout, then another instance's token: the fleet recovered. The next lockout starts
/// at the base cool-down again, whether this instance adopted that token or slept through
/// it, and whatever ended cool-down entry the store still holds.
#[test]
fn a_recovery_by_another_instance_restarts_the_doubling() {
    for adopts in [true, false] {
        let (transport, clock, store) = shared_parts();
        transport.answer(400, LOCKOUT);
        let long_lived = shared_client(&transport, &clock, &store);
        let error = long_lived.get_token().expect_err("locked");
        assert_eq!(retry_in(&error), Some(secs(60)));
        clock.advance(secs(60));
        transport.answer(200, &token_body("back", 1200));
        shared_client(&transport, &clock, &store)
            .get_token()
            .expect("token");
        if adopts {
            let token = long_lived.get_token().expect("adopted");
            assert_eq!(token.access_token, "back");
            assert_eq!(long_lived.status().source, Some(Source::SharedStore));
        }
        // The token has expired; the token endpoint locks the account again.
        clock.advance(secs(1200));
        transport.answer(400, LOCKOUT);
        let error = long_lived.get_token().expect_err("locked again");
        assert_eq!(retry_in(&error), Some(secs(60)), "adopts {adopts}");
        let entry = String::from_utf8(store.value(&keys().block).expect("a cool-down")).unwrap();
        assert!(entry.contains(r#""strikes":1,"#), "{entry}");
        assert_eq!(transport.sent(), 3);
    }
}

#[test]
fn an_ended_cool_down_older_than_the_shared_token_counts_no_strikes() {
    let (transport, clock, store) = shared_parts();
    transport.answer(400, LOCKOUT);
    shared_client(&transport, &clock, &store)
        .get_token()
        .expect_err("locked");
    let ended = store.value(&keys().block).expect("published");
    clock.advance(secs(60));
    transport.answer(200, &token_body("back", 1200));
    shared_client(&transport, &clock, &store)
        .get_token()
        .expect("token");
    // The store lost the write that cleared the cool-down: the ended entry is back.
    store.insert(&keys().block, &ended);
    clock.advance(secs(1200));
    transport.answer(400, LOCKOUT);
    let error = shared_client(&transport, &clock, &store)
        .get_token()
        .expect_err("locked again");
    assert_eq!(retry_in(&error), Some(secs(60)));
    // Without a token since, an ended entry still doubles the next pause.
    clock.advance(secs(60));
    let error = shared_client(&transport, &clock, &store)
        .get_token()
        .expect_err("locked again");
    assert_eq!(retry_in(&error), Some(secs(120)));
    assert_eq!(transport.sent(), 4);
}

/// A cool-down written by a host whose clock runs 10 minutes ahead: a reader trusts it for
/// no longer than its pause from when it first saw it.
#[test]
fn a_cool_down_from_a_clock_ten_minutes_ahead_ends_after_its_pause() {
    let (transport, clock, store) = shared_parts();
    transport.answer(400, LOCKOUT);
    let ahead = clock.skewed(secs(600));
    shared_client(&transport, &ahead, &store)
        .get_token()
        .expect_err("locked");
    clock.advance(secs(20));
    let reader = shared_client(&transport, &clock, &store);
    let error = reader.get_token().expect_err("blocked");
    assert_eq!(retry_in(&error), Some(secs(60)));
    clock.advance(secs(59));
    let error = reader.get_token().expect_err("still blocked");
    assert_eq!(retry_in(&error), Some(secs(1)));
    assert_eq!(transport.sent(), 1);
    clock.advance(secs(1));
    transport.answer(200, &token_body("back", 1200));
    assert_eq!(
        reader.get_token().expect("its pause is over").access_token,
        "back"
    );
    assert_eq!(transport.sent(), 2);
}

/// A cool-down key holding something else (a cleared cool-down whose marker the store keeps
/// longer than asked, a corrupt value) is still replaced by the next cool-down.
#[test]
fn a_cool_down_is_published_over_whatever_its_key_holds() {
    for there in [released(&keys().id), b"garbage".to_vec()] {
        let (transport, clock, store) = shared_parts();
        store.insert(&keys().block, &there);
        transport.answer(400, LOCKOUT);
        shared_client(&transport, &clock, &store)
            .get_token()
            .expect_err("locked");
        let error = shared_client(&transport, &clock, &store)
            .get_token()
            .expect_err("blocked by the fleet");
        assert_eq!(retry_in(&error), Some(secs(60)));
        assert_eq!(transport.sent(), 1);
    }
}

fn mtls_config() -> ClientConfig {
    ClientConfig::new(
        "my-client".into(),
        Secret::new("my-api-key".into()),
        Environment::SandboxMtls,
    )
}

/// The typed TLS fault's detail, or a panic.
fn tls_detail(error: &Error) -> &str {
    match error {
        Error::Transport(t) if t.kind == TransportKind::Tls => &t.detail,
        _ => panic!("a TLS fault: {error:?}"),
    }
}

const CLIENT_CERTIFICATE: &str = "TLS to https://api-mtls.sandbox.mangopay.com failed: the host must trust its certificate and present Mangopay's client certificate to an mTLS host (Spin: [[client_tls]]; wasmtime: send_request hook); the host said: ";
const SERVER_CERTIFICATE: &str = "TLS to https://api.sandbox.mangopay.com failed: the host must trust its certificate and present Mangopay's client certificate to an mTLS host (Spin: [[client_tls]]; wasmtime: send_request hook); the host said: ";

/// A host that presents no client certificate to an mTLS host (TLS 1.3: the connection is
/// closed after the handshake; TLS 1.2: an alert), or one that does not trust the server's
/// certificate: 20 per-request instances make one handshake between them, each answered the
/// typed fault naming the fix; after the pause one instance tries once, the pause not
/// doubled.
#[test]
fn a_tls_fault_costs_the_fleet_one_handshake_per_pause() {
    let cases = [
        (
            mtls_config(),
            TransportKind::ConnectionLost,
            "connection-terminated",
            CLIENT_CERTIFICATE,
        ),
        (
            mtls_config(),
            TransportKind::Tls,
            "tls-alert-received: certificate required",
            CLIENT_CERTIFICATE,
        ),
        (
            config(),
            TransportKind::Tls,
            "tls-certificate-error",
            SERVER_CERTIFICATE,
        ),
    ];
    for (config, kind, words, hint) in cases {
        let (transport, clock, store) = shared_parts();
        let keys = Keys::new(&Settings::new(config_like(&config)).expect("valid"));
        transport.script(vec![failed(kind, words)]);
        for n in 0..20 {
            let fresh = client_with(config_like(&config), &transport, &clock, &store);
            let error = fresh.get_token().expect_err("no TLS");
            assert_eq!(
                tls_detail(&error),
                format!("{hint}{words}; no token request for {} s", 60 - n),
                "{kind:?} call {n}"
            );
            clock.advance(secs(1));
        }
        assert_eq!(transport.sent(), 1, "{kind:?}");
        assert_eq!(clock.slept(), Duration::ZERO);
        let lease = store.value(&keys.lease).expect("taken once");
        assert!(String::from_utf8_lossy(&lease).contains(r#""released":true"#));
        // The shared entry: flat, the host's words only, no strike.
        let entry = String::from_utf8(store.value(&keys.block).expect("shared")).unwrap();
        assert!(
            entry.contains(r#""strikes":0,"#)
                && entry.contains(r#""kind":"transport","status":0"#)
                && entry.contains(&format!(r#""text":"{words}","detail":"tls""#)),
            "{entry}"
        );
        // After the pause, one instance tries once; the next pause is the base again.
        clock.advance(secs(40));
        for _ in 0..5 {
            let error = client_with(config_like(&config), &transport, &clock, &store)
                .get_token()
                .expect_err("still no TLS");
            assert!(tls_detail(&error).ends_with("no token request for 60 s"));
        }
        assert_eq!(transport.sent(), 2, "{kind:?}");
    }
}

/// `ClientConfig` is not `Clone` (it holds a `Secret`): the same configuration again.
fn config_like(config: &ClientConfig) -> ClientConfig {
    ClientConfig::new(
        config.client_id.clone(),
        Secret::new(config.api_key.expose().to_owned()),
        config.environment,
    )
}

/// Without mTLS, a lost connection is the network's: retried in the call, never shared.
#[test]
fn a_lost_connection_to_a_host_without_mtls_is_still_retried() {
    let (transport, clock, store) = shared_parts();
    transport.script(vec![failed(
        TransportKind::ConnectionLost,
        "connection-terminated",
    )]);
    for _ in 0..2 {
        let error = shared_client(&transport, &clock, &store)
            .get_token()
            .expect_err("lost");
        assert!(
            matches!(&error, Error::Transport(t) if t.kind == TransportKind::ConnectionLost),
            "{error:?}"
        );
    }
    assert_eq!(transport.sent(), 6, "three attempts per call, no pause");
    assert!(store.value(&keys().block).is_none());
}

/// TLS faults are no credential strikes: they never double the invalid-credentials
/// cool-down nor read as invalid credentials or a lockout, and the strikes the fleet
/// counted survive them.
#[test]
fn tls_faults_count_no_credential_strikes() {
    let (transport, clock, store) = shared_parts();
    let tls = || failed(TransportKind::Tls, "tls-certificate-error");
    transport.script(vec![tls()]);
    for _ in 0..3 {
        let error = shared_client(&transport, &clock, &store)
            .get_token()
            .expect_err("no TLS");
        assert!(!retry::is_credential_failure(&error));
        tls_detail(&error);
        clock.advance(secs(60));
    }
    assert_eq!(transport.sent(), 3);
    // Then a wrong key: the first strike, the base cool-down.
    transport.answer(401, INVALID);
    let error = shared_client(&transport, &clock, &store)
        .get_token()
        .expect_err("wrong key");
    assert!(matches!(error, Error::InvalidCredentials(_)), "{error:?}");
    assert_eq!(retry_in(&error), Some(secs(60)));
    // A TLS fault in between keeps that strike, and adds none.
    clock.advance(secs(60));
    transport.script(vec![tls()]);
    let error = shared_client(&transport, &clock, &store)
        .get_token()
        .expect_err("no TLS");
    assert!(tls_detail(&error).ends_with("no token request for 60 s"));
    let entry = String::from_utf8(store.value(&keys().block).expect("shared")).unwrap();
    assert!(entry.contains(r#""strikes":1,"#), "{entry}");
    clock.advance(secs(60));
    transport.answer(401, INVALID);
    let error = shared_client(&transport, &clock, &store)
        .get_token()
        .expect_err("wrong key");
    assert_eq!(retry_in(&error), Some(secs(120)), "the second strike");
    assert_eq!(transport.sent(), 6);
}

/// A TLS fault at renewal while the renewing instance's token lives: the token is served,
/// and the pause is `RENEWAL_RETRY`, shared, so that per-request instances serve the token
/// from the store meanwhile instead of each trying.
#[test]
fn a_tls_fault_at_renewal_is_tried_again_by_one_instance_while_the_token_lives() {
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("live", 1200));
    let holder = shared_client(&transport, &clock, &store);
    holder.get_token().expect("token");
    clock.advance(secs(1140));
    transport.script(vec![failed(TransportKind::Tls, "tls-protocol-error")]);
    assert_eq!(holder.get_token().expect("served").access_token, "live");
    assert_eq!(transport.sent(), 2);
    for _ in 0..10 {
        let fresh = shared_client(&transport, &clock, &store);
        assert_eq!(fresh.get_token().expect("served").access_token, "live");
        clock.advance(Duration::from_millis(400));
    }
    assert_eq!(transport.sent(), 2);
    clock.advance(secs(1));
    shared_client(&transport, &clock, &store)
        .get_token()
        .expect_err("its renewal fails, as any renewal by an instance holding no token");
    assert_eq!(transport.sent(), 3);
}
