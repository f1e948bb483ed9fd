//! The distributed stores failing under load, on the real platforms: Spin on Redis (the data
//! flushed, Redis stalled by `DEBUG SLEEP 2`, Redis killed and restarted empty), `wash dev` on
//! Redis and on NATS JetStream (the server killed and restarted empty), and the WASI 0.3
//! middleware on NATS (killed) and on Redis (flushed, stalled). Every scenario has its own
//! store server and platform process, since it breaks them.
//!
//! What must hold: every request is answered (a held, shared or direct token); a store that
//! fails costs at most one token request per instance while it is down (the platforms make an
//! instance per request: the answers that say `x-mangopay-store: unavailable`), and at most one
//! more once it is back; a stall or a flush at most one more. Counts are exact bounds; no test
//! asserts a time.

use super::distributed::{Store, ok, start_p3_wash, start_wash_on};
use super::platforms::tool;
use host_platforms::backends::{self, NatsServer};
use host_platforms::{self as platform, Platform, PlatformProcess};
use host_test::fixture::API_KEY;
use host_test::sim::serve::{self, Reply, sources};
use host_test::store::RedisServer;
use std::time::{Duration, Instant};

const SPIN_FAULTS: &str = "spin-redis-faults";
const WASH_REDIS_KILLED: &str = "wash-redis-killed";
const WASH_NATS_KILLED: &str = "wash-nats-killed";
const P3_NATS_KILLED: &str = "wash-nats-p3-killed";
const P3_REDIS_STALLED: &str = "wash-redis-p3-stalled";

/// The client ids of these scenarios, one each.
pub(super) const CLIENTS: [&str; 5] = [
    SPIN_FAULTS,
    WASH_REDIS_KILLED,
    WASH_NATS_KILLED,
    P3_NATS_KILLED,
    P3_REDIS_STALLED,
];

/// The mock the scenarios' platforms call: distributed.rs's, which has their accounts.
fn mock_with(_client: &str) -> &'static host_test::mock::MockMangopay {
    super::distributed::mock()
}

/// 4 clients requesting in a closed loop for `run` through `get`, while `faults` happen at
/// their times (from the main thread); every answer.
fn under_load(
    run: Duration,
    get: impl Fn() -> Reply + Sync,
    faults: Vec<(Duration, Box<dyn FnOnce() + Send + '_>)>,
) -> Vec<Reply> {
    let started = Instant::now();
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut replies = Vec::new();
                    while started.elapsed() < run {
                        replies.push(get());
                    }
                    replies
                })
            })
            .collect();
        for (at, fault) in faults {
            std::thread::sleep(at.saturating_sub(started.elapsed()));
            fault();
        }
        clients
            .into_iter()
            .flat_map(|c| c.join().expect("a client thread"))
            .collect()
    })
}

/// Answers whose instance found the store unavailable (each may have fetched directly).
fn unavailable(replies: &[Reply]) -> usize {
    replies
        .iter()
        .filter(|r| r.header(serve::STORE_HEALTH) == Some("unavailable"))
        .count()
}

fn spin_on_own_redis(redis: &RedisServer) -> Option<PlatformProcess> {
    let tool = tool(Platform::Spin)?;
    let url = redis.url().trim_end_matches('/').to_owned();
    let runtime_config = super::distributed::shipped_with(
        &super::distributed::example_file("runtime-config.redis.toml"),
        super::distributed::SHIPPED_REDIS,
        &url,
        "spin-faults-runtime-config.toml",
    );
    let wasm = platform::served_wasm(Platform::Spin).expect("the Spin composition");
    let variables = [
        ("mangopay_client_id", SPIN_FAULTS.to_owned()),
        ("mangopay_api_key", API_KEY.to_owned()),
        ("mangopay_base_url", mock_with(SPIN_FAULTS).base_url()),
    ];
    let up = platform::SpinUp {
        app: platform::USERS_SERVICE,
        name: "redis-faults",
        wasm: &wasm,
        variables: &variables,
        env: &[],
        extra: &[],
        runtime_config: Some(&runtime_config),
    };
    Some(platform::spin_up(&tool, &up).unwrap_or_else(|e| panic!("Spin on Redis: {e}")))
}

/// Spin on Redis: the data flushed, then Redis stalled 2 s, then killed and restarted empty,
/// while four clients keep requesting. Spin's Redis client waits for the server rather than
/// failing (docs/deploying.md): the stall and the restart only slow answers down.
#[test]
fn spin_on_redis_flushed_stalled_and_restarted_every_request_answered() {
    let mut redis = RedisServer::start();
    let Some(spin) = spin_on_own_redis(&redis) else {
        return;
    };
    let what = "Spin on Redis, faults";
    let get = || ok(spin.get("/users").unwrap_or_else(|e| panic!("{e}")), what);
    get();
    let client = SPIN_FAULTS;
    assert_eq!(mock_with(client).token_requests_for(client), 1, "{what}");
    let redis_ref = &redis;
    let flushed = under_load(
        Duration::from_secs(3),
        get,
        vec![(
            Duration::from_secs(1),
            Box::new(move || {
                let () = backends::redis_command(redis_ref, &["FLUSHALL"]);
            }),
        )],
    );
    let after_flush = mock_with(client).token_requests_for(client);
    assert_eq!(after_flush, 2, "{what}, flushed: {:?}", sources(&flushed));
    let stalled = under_load(
        Duration::from_secs(4),
        get,
        vec![(
            Duration::from_secs(1),
            Box::new(move || {
                let () = backends::redis_command(redis_ref, &["DEBUG", "SLEEP", "2"]);
            }),
        )],
    );
    let after_stall = mock_with(client).token_requests_for(client);
    assert_eq!(
        after_stall,
        after_flush,
        "{what}, stalled: {:?}",
        sources(&stalled)
    );
    // Killed and back at once (empty): Spin's client reconnects on its first retry (1-2 s).
    redis.stop();
    redis.resume();
    let restarted = under_load(Duration::from_secs(4), get, Vec::new());
    let after_restart = mock_with(client).token_requests_for(client);
    assert!(
        after_restart - after_stall <= 1 + unavailable(&restarted),
        "{what}, restarted: {:?}",
        sources(&restarted)
    );
    eprintln!(
        "{what}: flushed mid-load ({} requests) +1 token request; stalled 2 s ({} requests) +0; \
         killed and restarted empty ({} requests, {} store-unavailable) +{}",
        flushed.len(),
        stalled.len(),
        restarted.len(),
        unavailable(&restarted),
        after_restart - after_stall
    );
}

/// A store killed mid-load and restarted empty after a second: every request answered; at
/// most one token request per answer that found the store unavailable, plus one after.
fn killed_mid_load(
    what: &str,
    client: &str,
    get: impl Fn() -> Reply + Sync,
    kill: impl FnOnce() + Send,
) {
    get();
    let before = mock_with(client).token_requests_for(client);
    assert_eq!(before, 1, "{what}");
    let replies = under_load(
        Duration::from_secs(5),
        get,
        vec![(Duration::from_secs(1), Box::new(kill))],
    );
    let made = mock_with(client).token_requests_for(client) - before;
    let down = unavailable(&replies);
    assert!(
        made <= down + 1,
        "{what}: {made} token requests for {down} answers without the store: {:?}",
        sources(&replies)
    );
    eprintln!(
        "{what}: {} requests, {down} without the store, +{made} token requests",
        replies.len()
    );
}

/// The users-service on `wash dev` on its own `store`, which is killed for a second under
/// load and restarted empty.
fn wash_store_killed(store: Store, client: &'static str) {
    let (Some(tool), Some(backends)) = (
        tool(Platform::Wasmcloud),
        super::distributed::WashBackends::start(),
    ) else {
        return;
    };
    let dev = start_wash_on(&tool, store, &backends, client, API_KEY, "killed")
        .unwrap_or_else(|e| panic!("{e}"));
    let what = format!("wash dev on {store:?}, killed");
    let redis = std::sync::Mutex::new(backends.redis);
    let nats = &backends.nats;
    killed_mid_load(
        &what,
        client,
        || ok(dev.get("/users").unwrap_or_else(|e| panic!("{e}")), &what),
        || match store {
            Store::Redis => {
                let mut redis = redis.lock().unwrap();
                redis.stop();
                std::thread::sleep(Duration::from_secs(1));
                redis.resume();
            }
            Store::Nats => {
                nats.stop(true);
                std::thread::sleep(Duration::from_secs(1));
                nats.resume();
            }
        },
    );
}

#[test]
fn wasmcloud_on_redis_killed_and_restarted_every_request_answered() {
    wash_store_killed(Store::Redis, WASH_REDIS_KILLED);
}

#[test]
fn wasmcloud_on_nats_killed_and_restarted_every_request_answered() {
    wash_store_killed(Store::Nats, WASH_NATS_KILLED);
}

#[test]
fn wasmcloud_middleware_on_nats_killed_and_restarted_every_request_answered() {
    let Some(tool) = tool(Platform::Wasmcloud) else {
        return;
    };
    let Some(nats) = super::distributed::available("nats-server", NatsServer::start()) else {
        return;
    };
    let dev = start_p3_wash(
        &tool,
        "nats-killed",
        P3_NATS_KILLED,
        ("wasi_keyvalue_nats_url", nats.url()),
    );
    let what = "wash dev on NATS, users-p3 + middleware, killed";
    let get = || {
        let reply = dev.get("/users").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reply.status, 200, "{what}: {reply:?}");
        reply
    };
    get();
    let client = P3_NATS_KILLED;
    let before = mock_with(client).token_requests_for(client);
    assert_eq!(before, 1, "{what}");
    let replies = under_load(
        Duration::from_secs(5),
        get,
        vec![(
            Duration::from_secs(1),
            Box::new(|| {
                nats.stop(true);
                std::thread::sleep(Duration::from_secs(1));
                nats.resume();
            }),
        )],
    );
    // The middleware answers no store header: the instances that found the store down say so
    // in the operator log, once each.
    let made = mock_with(client).token_requests_for(client) - before;
    let log = std::fs::read_to_string(&dev.log).unwrap_or_default();
    let down = log
        .lines()
        .filter(|l| l.contains(" event=store-unavailable ") && l.contains(client))
        .count();
    assert!(
        made <= down + 1,
        "{what}: {made} token requests for {down} instances without the store"
    );
    eprintln!(
        "{what}: {} requests, {down} instances without the store, +{made} token requests",
        replies.len()
    );
}

/// The WASI 0.3 middleware on wash dev's Redis store: the data flushed, then Redis stalled 2 s
/// (`DEBUG SLEEP 2`), while four clients keep requesting: every request answered, one token
/// request more for the flush, none for the stall.
#[test]
fn wasmcloud_middleware_on_redis_flushed_and_stalled_every_request_answered() {
    let Some(tool) = tool(Platform::Wasmcloud) else {
        return;
    };
    let redis = RedisServer::start();
    let client = P3_REDIS_STALLED;
    let url = redis.url().trim_end_matches('/').to_owned();
    let dev = start_p3_wash(
        &tool,
        "redis-stalled",
        client,
        ("wasi_keyvalue_redis_url", url),
    );
    let what = "wash dev on Redis, users-p3 + middleware";
    let get = || {
        let reply = dev.get("/users").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reply.status, 200, "{what}: {reply:?}");
        reply
    };
    get();
    assert_eq!(mock_with(client).token_requests_for(client), 1, "{what}");
    let redis = &redis;
    let replies = under_load(
        Duration::from_secs(5),
        get,
        vec![
            (
                Duration::from_secs(1),
                Box::new(move || {
                    let () = backends::redis_command(redis, &["FLUSHALL"]);
                }),
            ),
            (
                Duration::from_secs(3),
                Box::new(move || {
                    let () = backends::redis_command(redis, &["DEBUG", "SLEEP", "2"]);
                }),
            ),
        ],
    );
    let made = mock_with(client).token_requests_for(client) - 1;
    assert_eq!(
        made,
        1,
        "{what}: flushed and stalled, {} requests",
        replies.len()
    );
    eprintln!(
        "{what}: flushed, then stalled 2 s, {} requests -> +{made} token request",
        replies.len()
    );
}
