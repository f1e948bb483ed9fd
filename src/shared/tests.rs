use super::*;
use crate::config::{ClientConfig, Environment};
use crate::fakes::*;
use crate::lifecycle::Source;

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
fn the_wait_is_bounded() {
    let total: u64 = WAIT_SCHEDULE_MS.iter().sum();
    assert!((5_000..=6_000).contains(&total), "{total}");
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
    let keys = store.keys();
    assert_eq!(keys.len(), 1, "the lease was released: {keys:?}");
    assert!(
        keys.iter()
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

#[test]
fn waiters_take_the_leaders_token_or_give_up_in_bounded_time() {
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("own", 1200));
    let client = shared_client(&transport, &clock, &store);
    let keys = keys();
    // Another instance holds the lease and publishes at our third look.
    store.insert(&keys.lease, b"other");
    let published = SharedToken {
        access_token: crate::secret::Secret::new("leaders".into()),
        token_type: "bearer".into(),
        expires_in: 1200,
        expires_at_ms: (1_800_000_000 + 1200) * 1000,
    };
    let value = published.encode(&keys.id).expose().as_bytes().to_vec();
    store.arrive_at(3, &keys.token, value);
    assert_eq!(client.get_token().expect("token").access_token, "leaders");
    assert_eq!(transport.sent(), 0);
    assert_eq!(clock.slept(), Duration::from_millis(15));

    // A lease that is never released: the waiter fetches itself after about 5 s.
    let (transport, clock, store) = shared_parts();
    transport.answer(200, &token_body("own", 1200));
    let client = shared_client(&transport, &clock, &store);
    store.insert(&keys.lease, b"dead");
    assert_eq!(client.get_token().expect("token").access_token, "own");
    assert_eq!(transport.sent(), 1);
    assert_eq!(clock.slept(), Duration::from_millis(5275));
}
