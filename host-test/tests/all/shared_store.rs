//! One token per lifetime across instances and host processes: the `component-with-store`
//! world with the in-process map and with Redis. Counts come from the mock Mangopay.

use host_test::clock::VirtualClock;
use host_test::fixture::{API_KEY, CLIENT_ID};
use host_test::host::{
    AuthStatus, Host, HttpRequest, Instance, InstanceOptions, StoreHealth, TokenSource,
};
use host_test::mock::MockMangopay;
use host_test::store::{HostStore, MapStore, RedisServer, RedisStore};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// A fresh instance of the store world, configured by environment like a per-request host.
fn fresh(mock: &MockMangopay, clock: &VirtualClock, store: Arc<dyn HostStore>) -> Instance {
    let options = InstanceOptions {
        env: vec![
            ("MANGOPAY_CLIENT_ID".into(), CLIENT_ID.into()),
            ("MANGOPAY_API_KEY".into(), API_KEY.into()),
            ("MANGOPAY_BASE_URL".into(), mock.base_url()),
        ],
        clock: Some(clock.clone()),
        store: Some(store),
        ..InstanceOptions::default()
    };
    Host::with_store()
        .instantiate(options)
        .expect("instantiates")
}

fn users(mock: &MockMangopay) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        url: format!("{}/v2.01/{CLIENT_ID}/users", mock.base_url()),
        headers: Vec::new(),
    }
}

/// One request through a fresh instance; its status afterwards.
fn one_call(mock: &MockMangopay, clock: &VirtualClock, store: Arc<dyn HostStore>) -> AuthStatus {
    let mut instance = fresh(mock, clock, store);
    let authorized = instance
        .default_authorize_request(&users(mock))
        .expect("no trap")
        .expect("authorized");
    assert_eq!(
        host_test::http_client::send(&authorized)
            .expect("sent")
            .status,
        200
    );
    instance
        .default_token_status()
        .expect("no trap")
        .expect("status")
}

fn world() -> (VirtualClock, MockMangopay) {
    let clock = VirtualClock::new();
    let mock = MockMangopay::start(clock.clone());
    mock.add_account(CLIENT_ID, API_KEY);
    (clock, mock)
}

// 1. and 6.
#[test]
fn a_thousand_fresh_instances_share_one_token() {
    let (clock, mock) = world();
    let store = Arc::new(MapStore::new(clock.clone()));
    let first = one_call(&mock, &clock, store.clone());
    assert_eq!(first.source, Some(TokenSource::FreshFetch));
    for _ in 1..1000 {
        let status = one_call(&mock, &clock, store.clone());
        assert_eq!(status.source, Some(TokenSource::SharedStore));
        assert_eq!(status.token_requests, 0);
        assert_eq!(status.store, StoreHealth::Ok);
    }
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(mock.rejected_api_calls(), 0);

    // After the refresh point, one renewal for all.
    clock.advance(Duration::from_secs(1140));
    for _ in 0..100 {
        one_call(&mock, &clock, store.clone());
    }
    assert_eq!(mock.token_requests(), 2);

    // No secret in any key; the value holds the current token (and nothing else secret).
    let entries = store.entries();
    assert_eq!(
        entries.len(),
        1,
        "only the token entry; the lease was released"
    );
    let (key, value) = &entries[0];
    assert!(key.starts_with("mangopay-auth/v1/token/"), "{key}");
    let token = mock.issued_tokens();
    for secret in [API_KEY, CLIENT_ID] {
        assert!(!key.contains(secret), "{key}");
        assert!(!String::from_utf8_lossy(value).contains(API_KEY));
    }
    assert!(token.iter().all(|t| !key.contains(t.as_str())));
}

// 2.
#[test]
fn sixteen_threads_of_cold_instances_share_one_token() {
    let (clock, mock) = world();
    let store = Arc::new(MapStore::new(clock.clone()));
    Host::with_store(); // compile once before the threads start
    let fetched = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    (0..20)
                        .map(|_| one_call(&mock, &clock, store.clone()).token_requests)
                        .sum::<u64>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a worker"))
            .sum::<u64>()
    });
    // The lease makes the first cold instance fetch while the others wait for its token.
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(fetched, 1);
    assert_eq!(mock.rejected_api_calls(), 0);
}

// 5.
#[test]
fn corrupt_or_foreign_entries_are_ignored_and_replaced() {
    let (clock, mock) = world();
    let store = Arc::new(MapStore::new(clock.clone()));
    one_call(&mock, &clock, store.clone());
    let (key, _) = store.entries().pop().expect("the token entry");
    let foreign = br#"{"v":1,"id":"0000","access_token":"someone-elses","token_type":"bearer","expires_in":1200,"expires_at_ms":99999999999999}"#;
    for junk in [&b"\xff\xfe not json"[..], b"", foreign] {
        store.put_raw(&key, junk);
        let status = one_call(&mock, &clock, store.clone());
        assert_eq!(status.source, Some(TokenSource::FreshFetch));
        let (_, value) = store
            .entries()
            .into_iter()
            .find(|(k, _)| *k == key)
            .expect("replaced");
        assert!(value.starts_with(br#"{"v":1,"#));
        assert_eq!(
            one_call(&mock, &clock, store.clone()).source,
            Some(TokenSource::SharedStore)
        );
    }
    assert_eq!(mock.token_requests(), 4);
}

fn worker(redis: &RedisServer, mock: &MockMangopay, instances: u32, at: u64) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_store-worker"));
    command.args([
        redis.url(),
        mock.base_url(),
        CLIENT_ID.into(),
        API_KEY.into(),
        instances.to_string(),
        at.to_string(),
    ]);
    command.env(
        "MANGOPAY_AUTH_STORE_WASM",
        host_test::artifact::store_component_wasm(),
    );
    command
}

/// Runs two workers side by side; the `token-requests=` figures they print.
fn two_processes(redis: &RedisServer, mock: &MockMangopay, at: u64) -> Vec<String> {
    let children: Vec<_> = (0..2)
        .map(|_| {
            worker(redis, mock, 25, at)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("a worker process")
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().expect("the worker ends");
            assert!(output.status.success(), "worker failed");
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        })
        .collect()
}

// 3. and 4.
#[test]
fn host_processes_share_through_redis_and_survive_its_outage() {
    let mut redis = RedisServer::start();
    let (clock, mock) = world();
    let lines = two_processes(&redis, &mock, 0);
    assert_eq!(mock.token_requests(), 1, "{lines:?}");

    // Past expiry for everyone: one refresh in all.
    clock.advance(Duration::from_secs(1200));
    let lines = two_processes(&redis, &mock, 1200);
    assert_eq!(mock.token_requests(), 2, "{lines:?}");
    assert_eq!(mock.rejected_api_calls(), 0);

    // Redis stops mid-run: calls keep working, fetching directly, and the status says why.
    let store: Arc<dyn HostStore> = Arc::new(RedisStore::new(&redis.url()));
    redis.stop();
    let before = mock.token_requests();
    for _ in 0..3 {
        let status = one_call(&mock, &clock, store.clone());
        assert_eq!(status.store, StoreHealth::Unavailable);
        assert!(status.store_error.is_some_and(|e| e.starts_with("redis:")));
        assert_eq!(status.source, Some(TokenSource::FreshFetch));
    }
    assert_eq!(
        mock.token_requests() - before,
        3,
        "one direct fetch per cold instance"
    );

    // Redis is back (empty): the next instance fetches and shares, the rest reuse it.
    redis.resume();
    let before = mock.token_requests();
    let statuses: Vec<_> = (0..20)
        .map(|_| one_call(&mock, &clock, store.clone()))
        .collect();
    assert_eq!(mock.token_requests() - before, 1);
    assert!(statuses.iter().all(|s| s.store == StoreHealth::Ok));
    assert!(
        statuses[1..]
            .iter()
            .all(|s| s.source == Some(TokenSource::SharedStore))
    );
}
