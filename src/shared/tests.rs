use super::*;
use crate::config::{ClientConfig, Environment};
use crate::error;
use crate::fakes::*;
use crate::token::Source;

fn settings(base: Option<&str>, client: &str, key: &str) -> Settings {
    let mut config =
        ClientConfig::new(client.into(), Secret::new(key.into()), Environment::Sandbox);
    config.base_url = base.map(Into::into);
    Settings::new(config).expect("valid")
}

#[test]
fn keys_hide_the_secret_and_separate_credentials() {
    let a = Keys::new(&settings(None, "client", "key-1"));
    assert!(a.token.starts_with("mangopay-auth/v1/token/") && a.id.len() == 64);
    assert!(!a.token.contains("key-1") && !a.token.contains("client"));
    assert_eq!(a, Keys::new(&settings(None, "client", "key-1")));
    assert_ne!(a.id, Keys::new(&settings(None, "client", "key-2")).id);
    assert_ne!(a.id, Keys::new(&settings(None, "other", "key-1")).id);
    let prod = settings(Some("https://api.mangopay.com"), "client", "key-1");
    assert_ne!(a.id, Keys::new(&prod).id);
}

#[test]
fn entries_round_trip_and_refuse_foreign_or_corrupt_ones() {
    let token = SharedToken {
        access_token: Secret::new("tok".into()),
        token_type: "bearer".into(),
        expires_in: 1200,
        expires_at_ms: 5_000_000,
    };
    let value = token.encode("id-a");
    let back = SharedToken::decode(value.expose().as_bytes(), "id-a").expect("ours");
    assert_eq!(back.access_token.expose(), "tok");
    assert_eq!(back.expires_at_ms, 5_000_000);
    assert_eq!(
        back.remaining(Duration::from_millis(4_000_000)),
        Duration::from_secs(1000)
    );
    assert!(SharedToken::decode(value.expose().as_bytes(), "id-b").is_none());
    for corrupt in [
        &b"garbage"[..],
        b"",
        br#"{"v":2,"id":"id-a","access_token":"t","token_type":"bearer","expires_in":5,"expires_at_ms":1}"#,
        br#"{"v":1,"id":"id-a","access_token":"a b","token_type":"bearer","expires_in":5,"expires_at_ms":1}"#,
        br#"{"v":1,"id":"id-a","access_token":"t","token_type":"mac","expires_in":5,"expires_at_ms":1}"#,
        br#"{"v":1,"id":"id-a","access_token":"t","token_type":"bearer","expires_in":0,"expires_at_ms":1}"#,
    ] {
        assert!(SharedToken::decode(corrupt, "id-a").is_none());
    }
}

#[test]
fn instances_share_one_token_through_the_store() {
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("shared", 1200));
    let first = shared_client(&transport, &clock, &store);
    assert_eq!(first.get_token().expect("token").access_token, "shared");
    assert_eq!(first.status().source, Some(Source::FreshFetch));
    for _ in 0..100 {
        let fresh = shared_client(&transport, &clock, &store);
        let token = fresh.get_token().expect("token");
        assert_eq!(token.access_token, "shared");
        assert_eq!(fresh.status().source, Some(Source::SharedStore));
        assert_eq!(fresh.status().token_requests, 0);
    }
    assert_eq!(transport.sent(), 1);
    let lease = store.value(&keys().lease).expect("a released marker");
    assert!(String::from_utf8_lossy(&lease).contains(r#""released":true"#));
    assert!(
        store
            .keys()
            .iter()
            .all(|k| !k.contains("my-api-key") && !k.contains("my-client"))
    );

    // Past the refresh point, one instance renews and the others adopt the new token.
    clock.advance(secs(1140));
    transport.answer(200, &token_body("renewed", 1200));
    for _ in 0..10 {
        let fresh = shared_client(&transport, &clock, &store);
        assert_eq!(fresh.get_token().expect("token").access_token, "renewed");
    }
    assert_eq!(first.get_token().expect("token").access_token, "renewed");
    assert_eq!(transport.sent(), 2);
}

#[test]
fn corrupt_or_foreign_entries_are_replaced() {
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("mine", 1200));
    let key = keys().token;
    for junk in [&b"\xff not json"[..], br#"{"v":1,"id":"someone-else","access_token":"x","token_type":"bearer","expires_in":5,"expires_at_ms":99999999999999}"#] {
        store.insert(&key, junk);
        let fresh = shared_client(&transport, &clock, &store);
        assert_eq!(fresh.get_token().expect("no error").access_token, "mine");
        let stored = store.value(&key).expect("replaced");
        assert!(String::from_utf8_lossy(&stored).contains("\"access_token\":\"mine\""));
    }
}

#[test]
fn a_store_failure_never_fails_a_call() {
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("direct", 1200));
    store.set_down(true);
    let client = shared_client(&transport, &clock, &store);
    assert_eq!(client.get_token().expect("token").access_token, "direct");
    let status = client.status();
    assert_eq!(status.store, StoreHealth::Unavailable);
    assert_eq!(status.store_error.as_deref(), Some("connection refused"));
    assert_eq!(status.source, Some(Source::FreshFetch));
    // The store comes back: the next renewal shares again.
    store.set_down(false);
    clock.advance(secs(1140));
    assert_eq!(client.get_token().expect("token").access_token, "direct");
    assert_eq!(client.status().store, StoreHealth::Ok);
    let other = shared_client(&transport, &clock, &store);
    other.get_token().expect("token");
    assert_eq!(other.status().source, Some(Source::SharedStore));
    assert_eq!(transport.sent(), 2);
}

/// wasmCloud's NATS store holds a call up to 10 s (its request timeout) while NATS is down,
/// the whole default budget: the direct token request still gets a budget of its own.
#[test]
fn a_store_that_hangs_past_the_budget_still_never_fails_a_call() {
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("direct", 1200));
    transport.set_latency(&clock, Duration::from_millis(300));
    store.set_down(true);
    store.hang_while_down(&clock, secs(11));
    let client = shared_client(&transport, &clock, &store);
    assert_eq!(client.get_token().expect("token").access_token, "direct");
    // The token request had the whole default budget (10 s) to itself.
    assert_eq!(transport.withins(), [secs(10)]);
    assert_eq!(client.status().store, StoreHealth::Unavailable);
    assert_eq!(transport.sent(), 1);
}

#[test]
fn waiters_take_the_leaders_token_or_wait_to_their_deadline() {
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("own", 1200));
    let client = shared_client(&transport, &clock, &store);
    let keys = keys();
    let settings = Settings::new(config()).expect("valid");
    let ttl = lease_ttl(&settings);
    // Another instance holds the lease and publishes at our second look (get #4: token,
    // cool-down and lease are read on each look).
    store.insert(&keys.lease, &lease_value(&keys.id, ttl));
    let published = SharedToken {
        access_token: crate::secret::Secret::new("leaders".into()),
        token_type: "bearer".into(),
        expires_in: 1200,
        expires_at_ms: (1_800_000_000 + 1200) * 1000,
    };
    let value = published.encode(&keys.id).expose().as_bytes().to_vec();
    store.arrive_at(4, &keys.token, value);
    assert_eq!(client.get_token().expect("token").access_token, "leaders");
    assert_eq!(transport.sent(), 0);
    assert_eq!(clock.slept(), Duration::from_millis(5));

    // A lease that is never released: the waiter waits as long as its call's budget allows,
    // sends nothing, and says why.
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("own", 1200));
    let client = shared_client(&transport, &clock, &store);
    store.insert(&keys.lease, &lease_value(&keys.id, ttl));
    let error = client.get_token().expect_err("timed out");
    assert!(
        matches!(&error, Error::Transport(e) if e.kind == crate::ports::TransportKind::Timeout),
        "{error:?}"
    );
    assert_eq!(transport.sent(), 0);
    let budget = settings.retry.budget;
    assert!(clock.slept() <= budget && clock.slept() > budget - WAIT_STEP_MAX);

    // The holder is dead: its lease lives no longer than its TTL from when this instance
    // first saw it. The next call takes over and fetches, once.
    assert_eq!(client.get_token().expect("token").access_token, "own");
    assert_eq!(transport.sent(), 1);
    assert!(clock.monotonic() >= ttl);
    assert_eq!(stored_token(&store).as_deref(), Some("own"));
}

fn refused_request(token: &str) -> crate::authorize::HttpRequest {
    request(
        &format!("{BASE}/v2.01/my-client/users"),
        &[("Authorization", &format!("Bearer {token}"))],
    )
}

fn stored_token(store: &FakeStore) -> Option<String> {
    let keys = keys();
    let value = store.value(&keys.token)?;
    SharedToken::decode(&value, &keys.id).map(|t| t.access_token.expose().to_owned())
}

#[test]
fn a_rejected_token_is_never_served_again_by_any_instance() {
    let (transport, clock, store) = shared_parts();
    transport.script(vec![
        answer(200, &token_body("refused-token", 1200)),
        answer(200, &token_body("next-token", 1200)),
    ]);
    let first = shared_client(&transport, &clock, &store);
    let second = shared_client(&transport, &clock, &store);
    assert_eq!(
        first.get_token().expect("token").access_token,
        "refused-token"
    );
    assert_eq!(
        second.get_token().expect("token").access_token,
        "refused-token"
    );
    assert_eq!(second.status().source, Some(Source::SharedStore));

    // The API refuses it on the second instance: the store no longer offers it.
    clock.advance(secs(10));
    second.check_response(
        &refused_request("refused-token"),
        401,
        &[],
        INVALID.as_bytes(),
    );
    assert_eq!(stored_token(&store), None);
    let tombstone = store.value(&keys().token).expect("a tombstone");
    assert!(String::from_utf8_lossy(&tombstone).contains(r#""rejected":true"#));

    // A fresh instance fetches rather than adopt it, and shares what it fetched.
    let fresh = shared_client(&transport, &clock, &store);
    assert_eq!(fresh.get_token().expect("token").access_token, "next-token");
    assert_eq!(fresh.status().source, Some(Source::FreshFetch));
    assert_eq!(stored_token(&store).as_deref(), Some("next-token"));
    // The instance that saw the refusal adopts the new one; the first, told of the refusal
    // too, does the same.
    assert_eq!(
        second.get_token().expect("token").access_token,
        "next-token"
    );
    assert_eq!(second.status().source, Some(Source::SharedStore));
    first.check_response(&refused_request("refused-token"), 401, &[], b"");
    assert_eq!(first.get_token().expect("token").access_token, "next-token");
    assert_eq!(stored_token(&store).as_deref(), Some("next-token"), "kept");
    for _ in 0..10 {
        let other = shared_client(&transport, &clock, &store);
        assert_eq!(other.get_token().expect("token").access_token, "next-token");
    }
    assert_eq!(transport.sent(), 2);
}

#[test]
fn an_instance_never_adopts_a_token_it_saw_rejected() {
    let (transport, clock, store) = shared_parts();
    transport.script(vec![
        answer(200, &token_body("refused-token", 1200)),
        answer(200, &token_body("next-token", 1200)),
    ]);
    let publisher = shared_client(&transport, &clock, &store);
    publisher.get_token().expect("token");
    let stale = store.value(&keys().token).expect("published");
    let client = shared_client(&transport, &clock, &store);
    client.get_token().expect("adopted");
    client.check_response(&refused_request("refused-token"), 401, &[], b"");
    // A writer that missed the refusal puts the refused token back.
    store.insert(&keys().token, &stale);
    assert_eq!(
        client.get_token().expect("token").access_token,
        "next-token"
    );
    assert_eq!(client.status().source, Some(Source::FreshFetch));
    assert_eq!(
        stored_token(&store).as_deref(),
        Some("next-token"),
        "replaced"
    );
}

#[test]
fn a_late_rejection_keeps_a_token_published_since() {
    let (transport, clock, store) = shared_parts();
    transport.script(vec![
        answer(200, &token_body("old-token", 1200)),
        answer(200, &token_body("new-token", 1200)),
    ]);
    let client = shared_client(&transport, &clock, &store);
    client.get_token().expect("token");
    clock.advance(secs(1140));
    assert_eq!(
        client.get_token().expect("renewed").access_token,
        "new-token"
    );
    let before = store.value(&keys().token);
    client.check_response(&refused_request("old-token"), 401, &[], b"");
    assert_eq!(
        store.value(&keys().token),
        before,
        "compare-and-swap on the exact value"
    );
    assert_eq!(client.get_token().expect("kept").access_token, "new-token");
    assert_eq!(transport.sent(), 2);
}

#[test]
fn an_adopted_entry_lives_no_longer_than_its_own_lifetime() {
    let wall_now_ms = 1_800_000_000_000u64;
    for (expires_in, far) in [(1200, 10 * 86_400_000), (86_400, 400 * 86_400_000)] {
        let (transport, clock, store) = shared_parts();
        transport.answer(200, &token_body("fetched", 1200));
        let keys = keys();
        let entry = SharedToken {
            access_token: Secret::new("far-future".into()),
            token_type: "bearer".into(),
            expires_in,
            expires_at_ms: wall_now_ms + far,
        };
        store.insert(&keys.token, entry.encode(&keys.id).expose().as_bytes());
        let client = shared_client(&transport, &clock, &store);
        let token = client.get_token().expect("adopted");
        assert_eq!(token.access_token, "far-future");
        assert_eq!(token.expires_in_seconds, expires_in);
        assert_eq!(token.expires_at_unix_seconds, 1_800_000_000 + expires_in);
        assert_eq!(client.status().expires_in_seconds, Some(expires_in));
        // Past its refresh point the instance renews, whatever the entry's expiry says.
        clock.advance(secs(expires_in - 60));
        store.set_down(true);
        assert_eq!(client.get_token().expect("fetched").access_token, "fetched");
        assert_eq!(transport.sent(), 1);
    }
    let capped = SharedToken {
        access_token: Secret::new("t".into()),
        token_type: "bearer".into(),
        expires_in: u64::MAX,
        expires_at_ms: u64::MAX,
    };
    assert_eq!(
        capped.remaining(Duration::ZERO),
        Duration::from_secs(crate::wire::MAX_EXPIRES_IN)
    );
}

/// Part of the token in a stored entry.
fn token_in(value: &[u8], range: std::ops::Range<usize>) -> String {
    let text = String::from_utf8_lossy(value);
    let token = text.split(r#""access_token":""#).nth(1).unwrap_or_default();
    token.get(range).expect("a token in the entry").to_owned()
}

/// A store whose failures echo what it was given, as careless error messages do.
struct EchoingStore {
    inner: FakeStore,
    echo: fn(&str, &[u8]) -> String,
}

impl TokenStore for EchoingStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        if key.contains("/token/") {
            return Err(StoreError((self.echo)(key, value)));
        }
        self.inner.compare_and_swap(key, expected, value, ttl)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key)
    }
}

#[test]
fn store_error_texts_are_quoted_like_answers() {
    let token = "c0ffee00c0ffee11c0ffee22c0ffee33";
    let echoes: [fn(&str, &[u8]) -> String; 4] = [
        |key, value| format!("ERR cannot SET {key} {}", String::from_utf8_lossy(value)),
        |_, value| format!("ERR value too large near '{}'", token_in(value, 0..20)),
        |_, value| format!("ERR near \\u0063{}", token_in(value, 1..18)),
        |_, _| "ERR\r\nread-only replica".into(),
    ];
    for echo in echoes {
        let (transport, clock, _) = shared_parts();
        transport.answer(200, &token_body(token, 1200));
        let store = EchoingStore {
            inner: FakeStore::default(),
            echo,
        };
        let client = crate::Client::with_store(config(), transport, clock, Box::new(store))
            .expect("valid config");
        client.get_token().expect("a token whatever the store says");
        let status = client.status();
        assert_eq!(status.store, StoreHealth::Unavailable);
        let text = status.store_error.expect("the store's words");
        assert!(
            !text.contains(&token[..16]) && !text.contains(&token[16..]),
            "{text}"
        );
        assert!(!text.chars().any(char::is_control), "{text}");
        if text != crate::redact::WITHHELD {
            assert_eq!(text, "ERR  read-only replica");
        }
    }
}

#[test]
fn a_token_published_just_before_the_lease_was_won_is_adopted_not_fetched_again() {
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("own", 1200));
    let client = shared_client(&transport, &clock, &store);
    let keys = keys();
    // The previous leader publishes and releases between our first look and our lease.
    let published = SharedToken {
        access_token: crate::secret::Secret::new("leaders".into()),
        token_type: "bearer".into(),
        expires_in: 1200,
        expires_at_ms: (1_800_000_000 + 1200) * 1000,
    };
    let value = published.encode(&keys.id).expose().as_bytes().to_vec();
    store.arrive_at(2, &keys.token, value);
    assert_eq!(client.get_token().expect("token").access_token, "leaders");
    assert_eq!(transport.sent(), 0);
    let lease = store.value(&keys.lease).expect("a released marker");
    assert!(String::from_utf8_lossy(&lease).contains(r#""released":true"#));
}

/// The lease wait as an async driver sees it: no sleep inside the core, but `Action::Sleep`
/// with the doubling pause, until the other instance's token is in the store; then the
/// renewal ends adopting it, with no token request.
#[test]
fn a_renewal_waiting_for_another_instances_lease_asks_its_driver_to_sleep() {
    use crate::lifecycle::{Action, Begin, Renewal};
    use crate::retry::Deadline;
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("own", 1200));
    let client = shared_client(&transport, &clock, &store);
    let tokens = &client.tokens;
    let keys = keys();
    let settings = Settings::new(config()).expect("valid");
    store.insert(&keys.lease, &lease_value(&keys.id, lease_ttl(&settings)));
    let Begin::Renew(mut renewal) = tokens.begin(clock.monotonic()) else {
        panic!("no token: a renewal");
    };
    let deadline = Deadline::start(clock.monotonic(), settings.retry.budget);
    // The driver's part: each look at the store, answered by the store.
    let next = |renewal: &mut Renewal| loop {
        match tokens.next(renewal, clock.now(), &deadline) {
            Action::Look { held_alive, pause } => {
                let acquired = client.store.acquire(&clock, held_alive, &deadline, pause);
                tokens.looked(renewal, acquired);
            }
            action => return action,
        }
    };
    let mut pauses = Vec::new();
    for _ in 0..3 {
        match next(&mut renewal) {
            Action::Sleep(pause) => {
                clock.advance(pause);
                deadline.slept(pause);
                pauses.push(pause.as_millis());
            }
            _ => panic!("the lease is held: wait"),
        }
    }
    assert_eq!(pauses, [5, 10, 20]);
    assert_eq!(
        clock.slept(),
        Duration::ZERO,
        "the core slept nothing itself"
    );
    let published = SharedToken {
        access_token: crate::secret::Secret::new("leaders".into()),
        token_type: "bearer".into(),
        expires_in: 1200,
        expires_at_ms: (1_800_000_000 + 1200) * 1000,
    };
    store.insert(&keys.token, published.encode(&keys.id).expose().as_bytes());
    let Action::Done(Ok(_)) = next(&mut renewal) else {
        panic!("adopted");
    };
    let bearer = tokens.usable(clock.monotonic()).expect("the adopted token");
    assert_eq!(bearer.expose(), "Bearer leaders");
    assert_eq!(transport.sent(), 0);
}

/// A TLS fault is stored flat with the host's words only (the hint is each reader's own, for
/// the base URL the keys stand for); entries written before it are read as ever.
#[test]
fn a_tls_cool_down_is_stored_flat_and_older_entries_still_read() {
    use crate::ports::{TransportError, TransportKind};
    let settings = settings(Some("https://api-mtls.mangopay.com"), "client", "key-1");
    let fault = error::tls_fault(&settings.base, "connection-terminated");
    let stored = StoredError::from_error(&Error::Transport(fault.clone())).expect("stored");
    let text = serde_json::to_string(&stored).expect("json");
    assert_eq!(
        text,
        r#"{"kind":"transport","status":0,"text":"connection-terminated","detail":"tls","error_id":null,"date":null}"#
    );
    let entry = |error: &str| {
        format!(
            r#"{{"v":1,"id":"id","until_ms":60000,"pause_ms":60000,"strikes":2,"error":{error}}}"#
        )
    };
    let block = SharedBlock::decode(
        entry(&text).as_bytes(),
        "id",
        Duration::ZERO,
        &[],
        &settings.base,
    )
    .expect("ours");
    assert_eq!(block.error, Error::Transport(fault));
    assert_eq!(block.strikes, 2);
    // The host's words are quoted again: text from the store is text from outside.
    let echo = entry(
        r#"{"kind":"transport","status":0,"text":"key-1","detail":"tls","error_id":null,"date":null}"#,
    );
    let block = SharedBlock::decode(
        echo.as_bytes(),
        "id",
        Duration::ZERO,
        &["key-1"],
        &settings.base,
    )
    .expect("ours");
    assert!(matches!(&block.error, Error::Transport(t) if t.detail.ends_with(redact::WITHHELD)));
    // Only TLS faults are shared, and only they are read back.
    let lost = Error::Transport(TransportError {
        kind: TransportKind::ConnectionLost,
        detail: "x".into(),
    });
    assert!(StoredError::from_error(&lost).is_none());
    let other = entry(
        r#"{"kind":"transport","status":0,"text":"x","detail":"dns","error_id":null,"date":null}"#,
    );
    assert!(
        SharedBlock::decode(other.as_bytes(), "id", Duration::ZERO, &[], &settings.base).is_none()
    );
    // An entry as this version's predecessors wrote it (no `over`).
    let old = entry(
        r#"{"kind":"invalid-credentials","status":401,"text":"m","detail":"invalid_credentials","error_id":"x","date":1.0}"#,
    );
    let block = SharedBlock::decode(old.as_bytes(), "id", Duration::ZERO, &[], &settings.base)
        .expect("still read");
    assert!(matches!(block.error, Error::InvalidCredentials(e) if e.message == "m"));
    assert_eq!((block.remaining, block.over), (secs(60), None));
}
