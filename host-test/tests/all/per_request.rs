//! The users-service example composed with each wasi:keyvalue artifact, served like
//! `wasmtime serve`: a fresh instance per HTTP request, wasi:keyvalue over one in-process map
//! or a real Redis shared by every instance. Counts come from the mock Mangopay and from the
//! answers' `x-mangopay-token-source` headers; no test asserts a time.

use host_test::clock::VirtualClock;
use host_test::fixture::{API_KEY, CLIENT_ID};
use host_test::keyvalue::{KvBackend, MapKv, RedisKv};
use host_test::mock::MockMangopay;
use host_test::sim::serve::{self, Flavor, Reply, ServeOptions, Server, Service, counts, sources};
use host_test::store::{HostStore, MapStore, RedisServer};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const SOURCE: &str = serve::TOKEN_SOURCE;
const STORE: &str = serve::STORE_HEALTH;
const VERSIONS: [Flavor; 2] = [Flavor::KeyvalueDraft2, Flavor::KeyvalueDraft];

fn world() -> (VirtualClock, MockMangopay) {
    let clock = VirtualClock::new();
    let mock = MockMangopay::start(clock.clone());
    mock.add_account(CLIENT_ID, API_KEY);
    (clock, mock)
}

fn env(mock: &MockMangopay) -> Vec<(String, String)> {
    vec![
        ("MANGOPAY_CLIENT_ID".into(), CLIENT_ID.into()),
        ("MANGOPAY_API_KEY".into(), API_KEY.into()),
        ("MANGOPAY_BASE_URL".into(), mock.base_url()),
    ]
}

/// The users-service composed with `flavor`, served over `kv`.
fn serve(
    flavor: Flavor,
    kv: Arc<dyn KvBackend>,
    clock: &VirtualClock,
    mock: &MockMangopay,
) -> Server {
    let service = Service::shared(serve::users_service(flavor));
    let options = ServeOptions {
        env: env(mock),
        clock: Some(clock.clone()),
        keyvalue: Some(kv),
        ..ServeOptions::default()
    };
    Server::start(service, options)
}

/// `GET /users`, which must answer 200.
fn users(server: &Server) -> Reply {
    let reply = server.get("/users").expect("an answer");
    assert_eq!(reply.status, 200, "{reply:?}");
    reply
}

/// 1,000 sequential requests, each through a fresh instance: one token request.
fn thousand_sequential(flavor: Flavor, kv: Arc<dyn KvBackend>) {
    let (clock, mock) = world();
    let server = serve(flavor, kv, &clock, &mock);
    let replies: Vec<Reply> = (0..1000).map(|_| users(&server)).collect();
    assert_eq!(mock.token_requests(), 1, "{flavor:?}");
    assert_eq!(mock.api_requests(), 1000);
    assert_eq!(server.instances(), 1000);
    assert_eq!(
        sources(&replies),
        counts(&[("fresh-fetch", 1), ("shared-store", 999)]),
        "{flavor:?}"
    );
    assert_eq!(replies[0].header(SOURCE), Some("fresh-fetch"));
    assert!(replies.iter().all(|r| r.header(STORE) == Some("ok")));
    assert_eq!(mock.rejected_api_calls(), 0);
}

#[test]
fn draft2_map_thousand_sequential_requests_one_token() {
    thousand_sequential(Flavor::KeyvalueDraft2, Arc::new(MapKv::new()));
}

#[test]
fn draft_map_thousand_sequential_requests_one_token() {
    thousand_sequential(Flavor::KeyvalueDraft, Arc::new(MapKv::new()));
}

#[test]
fn draft2_redis_thousand_sequential_requests_one_token() {
    let redis = RedisServer::start();
    thousand_sequential(Flavor::KeyvalueDraft2, Arc::new(RedisKv::new(&redis.url())));
}

#[test]
fn draft_redis_thousand_sequential_requests_one_token() {
    let redis = RedisServer::start();
    thousand_sequential(Flavor::KeyvalueDraft, Arc::new(RedisKv::new(&redis.url())));
}

/// 16 cold requests at once, each a fresh instance: the token requests they made.
fn sixteen_concurrent(flavor: Flavor, kv: Arc<dyn KvBackend>) -> (usize, BTreeMap<String, usize>) {
    let (clock, mock) = world();
    let server = serve(flavor, kv, &clock, &mock);
    let replies: Vec<Reply> = serve::at_once(16, || users(&server));
    assert_eq!(server.instances(), 16);
    assert_eq!(mock.rejected_api_calls(), 0);
    let sources = sources(&replies);
    assert_eq!(
        sources.get("fresh-fetch").copied().unwrap_or(0),
        mock.token_requests(),
        "each fetching instance made one token request"
    );
    (mock.token_requests(), sources)
}

#[test]
fn draft2_sixteen_concurrent_cold_requests_one_token_through_cas() {
    for (name, kv) in [
        ("map", Arc::new(MapKv::new()) as Arc<dyn KvBackend>),
        ("redis", Arc::new(RedisKv::new(&RedisServer::start().url()))),
    ] {
        let (requests, sources) = sixteen_concurrent(Flavor::KeyvalueDraft2, kv);
        assert_eq!(requests, 1, "{name}: {sources:?}");
        assert_eq!(sources, counts(&[("fresh-fetch", 1), ("shared-store", 15)]));
    }
}

#[test]
fn draft_sixteen_concurrent_cold_requests_one_token() {
    let redis = RedisServer::start();
    for (name, kv) in [
        ("map", Arc::new(MapKv::new()) as Arc<dyn KvBackend>),
        ("redis", Arc::new(RedisKv::new(&redis.url()))),
    ] {
        let (requests, sources) = sixteen_concurrent(Flavor::KeyvalueDraft, kv);
        assert_eq!(requests, 1, "{name}: {sources:?}");
    }
}

/// Spin's SQLite store lets a `swap` of an absent key through unchecked, so a lease made by
/// `cas` alone would admit every cold instance. The adapter uses no atomic: it settles each
/// write by reading it back (`src/keyvalue.rs`), which keeps 16 cold instances to one token
/// request whatever the store's `swap` does.
#[test]
fn draft2_with_spin_upsert_sixteen_concurrent_cold_requests_one_token() {
    let kv = Arc::new(MapKv::with_spin_upsert());
    let (requests, cold) = sixteen_concurrent(Flavor::KeyvalueDraft2, kv);
    assert_eq!(requests, 1, "{cold:?}");

    // Warm: sequential requests share the published token.
    let (clock, mock) = world();
    let server = serve(
        Flavor::KeyvalueDraft2,
        Arc::new(MapKv::with_spin_upsert()),
        &clock,
        &mock,
    );
    let replies: Vec<Reply> = (0..50).map(|_| users(&server)).collect();
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(
        sources(&replies),
        counts(&[("fresh-fetch", 1), ("shared-store", 49)])
    );
}

/// Two host processes, each serving its own per-request instances, on one Redis: one token.
#[test]
fn two_host_processes_on_one_redis_share_one_token() {
    let redis = RedisServer::start();
    for flavor in VERSIONS {
        let (_clock, mock) = world();
        let wasm = serve::users_service(flavor);
        let children: Vec<_> = (0..2)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_serve-worker"))
                    .arg(wasm)
                    .args([
                        redis.url(),
                        mock.base_url(),
                        CLIENT_ID.into(),
                        API_KEY.into(),
                    ])
                    .args(["25", "0"])
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("a worker process")
            })
            .collect();
        let lines: Vec<String> = children
            .into_iter()
            .map(|child| {
                let output = child.wait_with_output().expect("the worker ends");
                assert!(output.status.success(), "worker failed");
                String::from_utf8_lossy(&output.stdout).trim().to_owned()
            })
            .collect();
        assert_eq!(mock.token_requests(), 1, "{flavor:?}: {lines:?}");
        assert_eq!(mock.api_requests(), 50);
        let fresh: usize = lines
            .iter()
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("fresh-fetch="))
            })
            .map(|n| n.parse::<usize>().expect("a count"))
            .sum();
        assert_eq!(fresh, 1, "{lines:?}");
        // Empty for the next version.
        let kv = RedisKv::new(&redis.url());
        for key in kv.keys("default").expect("keys") {
            kv.delete("default", &key).expect("delete");
        }
    }
}

/// Redis stops: every request is still answered (each instance fetches directly) and says so;
/// Redis comes back (empty): one fetch, then every instance shares again.
#[test]
fn redis_outage_requests_still_answered_then_sharing_resumes() {
    let mut redis = RedisServer::start();
    for flavor in VERSIONS {
        let (clock, mock) = world();
        let server = serve(flavor, Arc::new(RedisKv::new(&redis.url())), &clock, &mock);
        for _ in 0..5 {
            users(&server);
        }
        assert_eq!(mock.token_requests(), 1);

        redis.stop();
        let down: Vec<Reply> = (0..3).map(|_| users(&server)).collect();
        assert!(
            down.iter().all(|r| r.header(STORE) == Some("unavailable")),
            "{down:?}"
        );
        assert_eq!(sources(&down), counts(&[("fresh-fetch", 3)]));
        assert_eq!(mock.token_requests(), 4, "one direct fetch per instance");
        // At the default level the operator's log holds one warning per instance that found
        // the store down, and nothing of the healthy requests.
        let log = server.log();
        assert_eq!(log.lines().count(), 3, "{log}");
        assert!(
            log.lines().all(|l| l.contains(" level=warn ")
                && l.contains(" event=store-unavailable ")
                && l.contains(" detail=")),
            "{log}"
        );

        redis.resume();
        let back: Vec<Reply> = (0..20).map(|_| users(&server)).collect();
        assert_eq!(mock.token_requests(), 5, "{flavor:?}");
        assert!(back.iter().all(|r| r.header(STORE) == Some("ok")));
        assert_eq!(
            sources(&back),
            counts(&[("fresh-fetch", 1), ("shared-store", 19)])
        );
    }
}

/// The API refuses the shared token: the instance that meets the 401 drops it from the store,
/// fetches a new one and resends; no instance sends the refused token again.
#[test]
fn a_token_rejected_by_the_api_is_never_served_again() {
    for flavor in VERSIONS {
        let (clock, mock) = world();
        let server = serve(flavor, Arc::new(MapKv::new()), &clock, &mock);
        for _ in 0..10 {
            users(&server);
        }
        let revoked = mock.issued_tokens();
        assert_eq!(revoked.len(), 1);
        mock.revoke_tokens();
        let seen = mock.requests().len();

        let replies: Vec<Reply> = (0..50).map(|_| users(&server)).collect();
        assert_eq!(mock.token_requests(), 2, "{flavor:?}");
        assert_eq!(
            mock.rejected_api_calls(),
            1,
            "only the first request met the 401"
        );
        let with_revoked = mock.requests()[seen..]
            .iter()
            .filter(|r| {
                r.header("authorization")
                    .is_some_and(|a| revoked.iter().any(|t| a.ends_with(t.as_str())))
            })
            .count();
        assert_eq!(with_revoked, 1);
        assert_eq!(replies[0].header(SOURCE), Some("fresh-fetch"));
        assert!(
            replies[1..]
                .iter()
                .all(|r| r.header(SOURCE) == Some("shared-store"))
        );
    }
}

/// 1,000 requests with the token's refresh point in the middle: one renewal for everyone.
#[test]
fn thousand_requests_spanning_a_renewal_make_two_token_requests() {
    for flavor in VERSIONS {
        let (clock, mock) = world();
        let server = serve(flavor, Arc::new(MapKv::new()), &clock, &mock);
        let mut replies = Vec::new();
        for i in 0..1000 {
            if i == 500 {
                // Expiry 1200 s minus the 60 s margin.
                clock.advance(Duration::from_secs(1140));
            }
            replies.push(users(&server));
        }
        assert_eq!(mock.token_requests(), 2, "{flavor:?}");
        assert_eq!(mock.rejected_api_calls(), 0);
        assert_eq!(
            sources(&replies),
            counts(&[("fresh-fetch", 2), ("shared-store", 998)])
        );
        assert_eq!(replies[500].header(SOURCE), Some("fresh-fetch"));
    }
}

/// The host's own `token-store` (no adapter) under the same per-request host: the baseline
/// the keyvalue artifacts are held to.
#[test]
fn host_token_store_baseline() {
    let (clock, mock) = world();
    let service = Service::shared(serve::users_service(Flavor::TokenStore));
    let store: Arc<dyn HostStore> = Arc::new(MapStore::new(clock.clone()));
    let options = ServeOptions {
        env: env(&mock),
        clock: Some(clock.clone()),
        token_store: Some(store),
        ..ServeOptions::default()
    };
    let server = Server::start(service, options);
    let replies: Vec<Reply> = (0..20).map(|_| users(&server)).collect();
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(
        sources(&replies),
        counts(&[("fresh-fetch", 1), ("shared-store", 19)])
    );
    let missing = server.get("/nowhere").expect("an answer");
    assert_eq!(missing.status, 404);
}

/// The switch does what Spin's SQLite store does, and nothing else.
#[test]
fn the_spin_upsert_switch_lets_a_swap_of_an_absent_key_through() {
    let (checked, spin) = (MapKv::new(), MapKv::with_spin_upsert());
    for kv in [&checked, &spin] {
        kv.set("b", "k", b"someone's").expect("set");
        assert!(!kv.swap("b", "k", Some(b"stale"), b"mine").expect("swap"));
    }
    assert!(!checked.swap("b", "k", None, b"mine").expect("swap"));
    assert!(spin.swap("b", "k", None, b"mine").expect("swap"));
    assert_eq!(
        spin.get("b", "k").expect("get").as_deref(),
        Some(&b"mine"[..])
    );
}

// The fleet under faults: every case through both keyvalue versions, on the in-process map
// and on a real Redis.

/// Each keyvalue version over each backend, named; the Redis server lives as long as they do.
fn backends(redis: &RedisServer) -> Vec<(String, Flavor, Arc<dyn KvBackend>)> {
    VERSIONS
        .into_iter()
        .flat_map(|flavor| {
            [
                (
                    format!("{flavor:?}/map"),
                    flavor,
                    Arc::new(MapKv::new()) as Arc<dyn KvBackend>,
                ),
                (
                    format!("{flavor:?}/redis"),
                    flavor,
                    Arc::new(RedisKv::new(&redis.url())) as Arc<dyn KvBackend>,
                ),
            ]
        })
        .collect()
}

/// The users-service with a key the mock does not know.
fn serve_with_wrong_key(
    flavor: Flavor,
    kv: Arc<dyn KvBackend>,
    clock: &VirtualClock,
    mock: &MockMangopay,
) -> Server {
    let mut env = env(mock);
    env.retain(|(name, _)| name != "MANGOPAY_API_KEY");
    env.push(("MANGOPAY_API_KEY".into(), "a-wrong-api-key".into()));
    let options = ServeOptions {
        env,
        clock: Some(clock.clone()),
        keyvalue: Some(kv),
        ..ServeOptions::default()
    };
    Server::start(Service::shared(serve::users_service(flavor)), options)
}

/// A refused request: 502 naming the typed error, and the cool-down as `Retry-After`.
fn refused(server: &Server, error: &str) -> u64 {
    let reply = server.get("/users").expect("an answer");
    assert_eq!(reply.status, 502, "{reply:?}");
    assert!(reply.body.contains(error), "{reply:?}");
    let retry_after = reply.header("retry-after").expect("a cool-down");
    retry_after.parse().expect("seconds")
}

#[test]
fn fifty_requests_with_a_wrong_key_or_a_lockout_make_one_token_request() {
    let redis = RedisServer::start();
    for (name, flavor, kv) in backends(&redis) {
        let (clock, mock) = world();
        let server = serve_with_wrong_key(flavor, kv, &clock, &mock);
        for n in 0..50 {
            let retry_after = refused(&server, "invalid-credentials");
            assert!(
                (59..=60).contains(&retry_after),
                "{name} {n}: {retry_after}"
            );
        }
        assert_eq!(mock.token_requests(), 1, "{name}: wrong key");
        assert_eq!(server.instances(), 50);
        // One warning, from the instance that met the 401, saying when the next try is.
        let next_try = (clock.wall() + Duration::from_secs(60)).as_secs();
        let log = server.log();
        assert_eq!(log.lines().count(), 1, "{name}: {log}");
        assert!(
            log.contains(" level=warn component=mangopay-auth event=cool-down-started ")
                && log
                    .contains(" error=invalid-credentials status=401 retry_in_s=60 next_try_unix=")
                && log.contains(" strikes=1 shared=true"),
            "{name}: {log}"
        );
        let logged_at: u64 = log
            .split(" next_try_unix=")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("next_try_unix");
        assert!(logged_at.abs_diff(next_try) <= 1, "{name}: {log}");
        assert!(!log.contains(API_KEY) && !log.contains("a-wrong-api-key"));
    }
    for (name, flavor, kv) in backends(&redis) {
        let (clock, mock) = world();
        mock.set_locked(true);
        let server = serve(flavor, kv, &clock, &mock);
        for _ in 0..50 {
            refused(&server, "locked-out");
        }
        assert_eq!(mock.token_requests(), 1, "{name}: lockout");
        let log = server.log();
        assert_eq!(log.lines().count(), 1, "{name}: {log}");
        assert!(
            log.contains(" level=error component=mangopay-auth event=locked-out ")
                && log.contains(" error=locked-out status=400 retry_in_s=60 "),
            "{name}: {log}"
        );
    }
}

#[test]
fn sixteen_concurrent_cold_requests_with_a_wrong_key_make_one_token_request() {
    let redis = RedisServer::start();
    for (name, flavor, kv) in backends(&redis) {
        let (clock, mock) = world();
        let server = serve_with_wrong_key(flavor, kv, &clock, &mock);
        serve::at_once(16, || refused(&server, "invalid-credentials"));
        assert_eq!(mock.token_requests(), 1, "{name}");
    }
}

#[test]
fn a_wrong_keys_cool_down_never_blocks_the_right_key() {
    let redis = RedisServer::start();
    for (name, flavor, kv) in backends(&redis) {
        let (clock, mock) = world();
        let wrong = serve_with_wrong_key(flavor, kv.clone(), &clock, &mock);
        refused(&wrong, "invalid-credentials");
        let right = serve(flavor, kv, &clock, &mock);
        for _ in 0..5 {
            users(&right);
        }
        assert_eq!(mock.token_requests(), 2, "{name}");
    }
}

/// Ten minutes of requests, one every 10 s, against a permanent lockout with the default
/// cool-down (60 s doubling to 15 min): token requests at 0, 60, 180 and 420 s.
#[test]
fn ten_minutes_of_a_lockout_cost_one_token_request_per_cool_down() {
    let redis = RedisServer::start();
    for (name, flavor, kv) in backends(&redis) {
        let (clock, mock) = world();
        mock.set_locked(true);
        let server = serve(flavor, kv, &clock, &mock);
        let mut sent_at = Vec::new();
        for second in (0..600).step_by(10) {
            let before = mock.token_requests();
            refused(&server, "locked-out");
            if mock.token_requests() > before {
                sent_at.push(second);
            }
            clock.advance(Duration::from_secs(10));
        }
        assert_eq!(sent_at, [0, 60, 180, 420], "{name}");
    }
}

/// A token endpoint that takes 8 s (inside the default timeouts and the 10 s budget): 20 cold
/// requests at once wait for the one lease holder, and every one is answered.
#[test]
fn a_slow_token_endpoint_costs_twenty_concurrent_cold_requests_one_token_request() {
    let redis = RedisServer::start();
    for (name, flavor, kv) in backends(&redis) {
        let (clock, mock) = world();
        mock.set_token_delay(Duration::from_secs(8));
        let server = serve(flavor, kv, &clock, &mock);
        let replies: Vec<Reply> = serve::at_once(20, || users(&server));
        assert_eq!(mock.token_requests(), 1, "{name}: {:?}", sources(&replies));
        assert_eq!(
            sources(&replies),
            counts(&[("fresh-fetch", 1), ("shared-store", 19)]),
            "{name}"
        );
    }
}

/// Two hosts whose wall clocks are 10 s apart share one store, each answering every other
/// request (one every 10 s) over two hours of 20-minute tokens: the envelopes and entries carry
/// the writer's wall-clock expiry, yet the fleet makes one token request per renewal: at 0,
/// 1140, 2280 ... 6840 s, or up to 10 s (the skew) earlier when the host ahead sees the refresh
/// point first. Never later: no token is sent past its refresh point on the slower clock.
#[test]
fn hosts_ten_seconds_apart_make_one_token_request_per_renewal() {
    for (flavor, ahead_first) in VERSIONS.into_iter().flat_map(|f| [(f, true), (f, false)]) {
        let (clock, mock) = world();
        let kv: Arc<dyn KvBackend> = Arc::new(MapKv::new());
        let skewed = clock.skewed(Duration::from_secs(10));
        let (first, second) = match ahead_first {
            true => (&skewed, &clock),
            false => (&clock, &skewed),
        };
        let hosts = [
            serve(flavor, kv.clone(), first, &mock),
            serve(flavor, kv, second, &mock),
        ];
        let mut sent_at = Vec::new();
        for call in 0..720u64 {
            let before = mock.token_requests();
            users(&hosts[(call % 2) as usize]);
            if mock.token_requests() > before {
                sent_at.push(call * 10);
            }
            clock.advance(Duration::from_secs(10));
        }
        let ideal: [u64; 7] = [0, 1140, 2280, 3420, 4560, 5700, 6840];
        let context = format!("{flavor:?}, the first host ahead: {ahead_first}: {sent_at:?}");
        assert_eq!(sent_at.len(), ideal.len(), "{context}");
        for (sent, ideal) in sent_at.iter().zip(ideal) {
            assert!(
                (ideal.saturating_sub(10)..=ideal).contains(sent),
                "{context}"
            );
        }
    }
}

/// A platform that links wasi:keyvalue but opens no store for the component (Spin without
/// `key_value_stores`): every request still answers, each costs a token request, and each
/// instance tells the operator what to add.
#[test]
fn a_store_that_cannot_be_opened_is_logged_with_what_to_add() {
    for flavor in VERSIONS {
        let (clock, mock) = world();
        let options = ServeOptions {
            env: env(&mock),
            clock: Some(clock.clone()),
            keyvalue: None,
            ..ServeOptions::default()
        };
        let server = Server::start(Service::shared(serve::users_service(flavor)), options);
        let replies: Vec<Reply> = (0..5).map(|_| users(&server)).collect();
        assert!(
            replies
                .iter()
                .all(|r| r.header(STORE) == Some("unavailable"))
        );
        assert_eq!(mock.token_requests(), 5, "{flavor:?}: no store, no sharing");
        let log = server.log();
        let warnings: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" level=warn ") && l.contains(" event=store-unavailable "))
            .collect();
        assert_eq!(warnings.len(), 5, "{flavor:?}: {log}");
        assert!(
            warnings.iter().all(|l| l.contains("key_value_stores")),
            "{flavor:?}: {log}"
        );
    }
}
