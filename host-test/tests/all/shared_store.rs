//! One token per lifetime across instances and host processes: the `component-with-store`
//! world with the in-process map and with Redis. Counts come from the mock Mangopay.

use host_test::clock::VirtualClock;
use host_test::fixture::{API_KEY, CLIENT_ID};
use host_test::host::{
    AuthStatus, Host, HttpRequest, HttpResponse, Instance, InstanceOptions, ResponseVerdict,
    StoreHealth, TokenSource,
};
use host_test::mock::MockMangopay;
use host_test::store::{EchoingStore, HostStore, MapStore, RedisServer, RedisStore};
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
    // The lease was released: its key holds, for a moment, a marker that is not a lease.
    let (leases, entries): (Vec<_>, Vec<_>) = store
        .entries()
        .into_iter()
        .partition(|(key, _)| key.starts_with("mangopay-auth/v1/lease/"));
    assert!(
        leases
            .iter()
            .all(|(_, value)| String::from_utf8_lossy(value).contains(r#""released":true"#)),
        "the lease was released: {leases:?}"
    );
    assert_eq!(entries.len(), 1, "only the token entry: {entries:?}");
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
    let (key, _) = store
        .entries()
        .into_iter()
        .find(|(key, _)| key.starts_with("mangopay-auth/v1/token/"))
        .expect("the token entry");
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

fn authorize(instance: &mut Instance, request: &HttpRequest) -> HttpRequest {
    instance
        .default_authorize_request(request)
        .expect("no trap")
        .expect("authorized")
}

fn status(instance: &mut Instance) -> AuthStatus {
    instance
        .default_token_status()
        .expect("no trap")
        .expect("status")
}

fn bearer(request: &HttpRequest) -> String {
    request
        .headers
        .iter()
        .find(|(name, _)| name == "Authorization")
        .map(|(_, value)| value.clone())
        .expect("an Authorization header")
}

/// Sends an authorized request that the API refuses, and reports the answer to the instance.
fn refused_call(instance: &mut Instance, authorized: &HttpRequest) {
    let answer = host_test::http_client::send(authorized).expect("sent");
    assert_eq!(answer.status, 401, "{}", answer.body);
    let response = HttpResponse {
        status: 401,
        headers: vec![],
        body: answer.body.into_bytes(),
    };
    let verdict = instance
        .default_check_response(authorized, &response)
        .expect("no trap");
    assert!(
        matches!(verdict, ResponseVerdict::TokenRejected(Some(_))),
        "{verdict:?}"
    );
}

/// Two long-lived instances share a token; the API revokes it. The one that sees the 401
/// drops it, and no instance is handed it again: a fresh one fetches, the first adopts that,
/// the second (still holding the revoked token) adopts it after its own 401.
fn a_refused_token_is_never_served_again(store: impl FnOnce(&VirtualClock) -> Arc<dyn HostStore>) {
    let (clock, mock) = world();
    let store = store(&clock);
    let request = users(&mock);
    let mut first = fresh(&mock, &clock, store.clone());
    let mut second = fresh(&mock, &clock, store.clone());
    let revoked_first = authorize(&mut first, &request);
    let revoked_second = authorize(&mut second, &request);
    assert_eq!(bearer(&revoked_first), bearer(&revoked_second), "shared");
    assert_eq!(mock.token_requests(), 1);

    mock.revoke_tokens();
    refused_call(&mut first, &revoked_first);
    // A per-request host: the next instance must not adopt the refused token.
    let fetched = one_call(&mock, &clock, store.clone());
    assert_eq!(fetched.source, Some(TokenSource::FreshFetch));
    assert_eq!(mock.token_requests(), 2);

    let renewed = authorize(&mut first, &request);
    assert_ne!(bearer(&renewed), bearer(&revoked_first));
    assert_eq!(status(&mut first).source, Some(TokenSource::SharedStore));
    assert_eq!(
        host_test::http_client::send(&renewed).expect("sent").status,
        200
    );

    refused_call(&mut second, &revoked_second);
    let adopted = authorize(&mut second, &request);
    assert_eq!(bearer(&adopted), bearer(&renewed));
    assert_eq!(status(&mut second).source, Some(TokenSource::SharedStore));
    assert_eq!(
        host_test::http_client::send(&adopted).expect("sent").status,
        200
    );

    for _ in 0..20 {
        assert_eq!(
            one_call(&mock, &clock, store.clone()).source,
            Some(TokenSource::SharedStore)
        );
    }
    assert_eq!(mock.token_requests(), 2);
    let revoked = bearer(&revoked_first);
    let revoked = revoked.trim_start_matches("Bearer ");
    let entry = store.get(&token_key(&mock)).expect("the store answers");
    let entry = String::from_utf8(entry.expect("an entry")).expect("UTF-8");
    assert!(!entry.contains(revoked), "{entry}");
    assert!(entry.contains(bearer(&renewed).trim_start_matches("Bearer ")));
}

/// The store key of the fixture's credentials against `mock`, as the component derives it.
fn token_key(mock: &MockMangopay) -> String {
    let mut config = mangopay_auth::ClientConfig::new(
        CLIENT_ID.into(),
        mangopay_auth::Secret::new(API_KEY.into()),
        mangopay_auth::Environment::Sandbox,
    );
    config.base_url = Some(mock.base_url());
    let settings = mangopay_auth::settings::Settings::new(config).expect("a valid config");
    mangopay_auth::shared::stored::Keys::new(&settings).token
}

#[test]
fn a_refused_token_is_never_served_again_through_the_in_process_store() {
    a_refused_token_is_never_served_again(|clock| Arc::new(MapStore::new(clock.clone())));
}

#[test]
fn a_refused_token_is_never_served_again_through_redis() {
    let redis = RedisServer::start();
    a_refused_token_is_never_served_again(|_| Arc::new(RedisStore::new(&redis.url())));
}

#[test]
fn an_entry_with_a_far_future_expiry_is_held_no_longer_than_its_lifetime() {
    let (clock, mock) = world();
    let store = Arc::new(MapStore::new(clock.clone()));
    one_call(&mock, &clock, store.clone());
    let key = token_key(&mock);
    let (_, value) = store
        .entries()
        .into_iter()
        .find(|(k, _)| *k == key)
        .expect("the token entry");
    let mut entry: serde_json::Value = serde_json::from_slice(&value).expect("JSON");
    // Ten days ahead, as a publisher with a fast clock (or a corrupt writer) would say.
    let ten_days_ms = 10 * 86_400_000;
    let far = entry["expires_at_ms"].as_u64().expect("a number") + ten_days_ms;
    entry["expires_at_ms"] = far.into();
    store.put_raw(&key, entry.to_string().as_bytes());

    let mut instance = fresh(&mock, &clock, store.clone());
    let token = instance
        .default_get_token()
        .expect("no trap")
        .expect("adopted");
    assert_eq!(token.expires_in_seconds, 1200);
    assert_eq!(token.expires_at_unix_seconds, clock.wall().as_secs() + 1200);
    let adopted = status(&mut instance);
    assert_eq!(adopted.source, Some(TokenSource::SharedStore));
    assert_eq!(adopted.expires_in_seconds, Some(1200));
    assert_eq!(mock.token_requests(), 1);
}

#[test]
fn store_error_texts_never_show_a_token() {
    let echoes: [fn(&str, &[u8]) -> String; 3] = [
        |key, value| format!("ERR cannot SET {key} {}", String::from_utf8_lossy(value)),
        |_, value| format!("ERR value too large near '{}'", token_piece(value, 0..20)),
        |_, value| format!("ERR near \\u0030{}", token_piece(value, 1..18)),
    ];
    for echo in echoes {
        let (clock, mock) = world();
        let store = Arc::new(EchoingStore::new(clock.clone(), echo));
        let status = one_call(&mock, &clock, store);
        assert_eq!(status.store, StoreHealth::Unavailable);
        let text = status.store_error.expect("the store's words");
        assert_eq!(text, "<withheld: the text may contain a secret>");
        for token in mock.issued_tokens() {
            assert!(!text.contains(&token[..16]) && !text.contains(&token[16..]));
        }
    }
}

/// Part of the token in a stored entry.
fn token_piece(value: &[u8], range: std::ops::Range<usize>) -> String {
    let text = String::from_utf8_lossy(value);
    let token = text.split(r#""access_token":""#).nth(1).unwrap_or_default();
    token.get(range).unwrap_or_default().to_owned()
}
