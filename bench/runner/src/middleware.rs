//! Section 8, the WASI 0.3 middleware: what `mangopay-auth-middleware` costs a request of a
//! service that calls Mangopay through plain `wasi:http/client@0.3.0`, and how that compares
//! with the WASI 0.2 per-request path.
//!
//! Three servers in one host process, one mock Mangopay: the users-p3 example composed with
//! `mangopay-auth-middleware` (its token store `keyvalue-draft2` over a wasi:keyvalue map in
//! the host), the same example composed with floor-middleware (a constant `authorization:
//! Bearer floor`, the floor of every row), both served by `host_test::sim::p3` with one instance
//! taking every request (up to 100 at once); and the users-service example composed with
//! `mangopay-auth-keyvalue-draft2.wasm`, served by `host_test::sim::serve` with a fresh instance
//! per request (section 6's `GET /users`). Every row is `GET /users?per_page=10`: the service
//! calls the mock's users page over a new outbound connection and answers its body. The mock
//! answers the floor's requests (whose `Bearer floor` it would refuse) with the same page from
//! its queue of canned answers, so every row makes the same round trip to the same server.
//! Each server has a client id of its own, so the mock counts each one's token requests. The
//! three share one engine, the harness's settings with a larger pool ([`POOL`]).
//!
//! Sequential: one request at a time over HTTP (a new connection each, the client of section
//! 6), and for the p3 pair also handed straight to the instance (no socket). Concurrent: `N`
//! requests at once over HTTP, each on its own connection, timed until the last answer.

use crate::measure::{Variant, measure};
use crate::report::Report;
use crate::setup::{API_KEY, Setup};
use crate::stats::{Stats, show, spread};
use bytes::Bytes;
use host_test::clock::VirtualClock;
use host_test::host::EngineSettings;
use host_test::keyvalue::MapKv;
use host_test::mock::{Canned, MockMangopay, TOKEN_PATH};
use host_test::sim::p3::{self, Adapter, Middleware, P3Options, P3Server, P3Service};
use host_test::sim::serve::{self, Flavor, ServeOptions, Server, Service};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::Engine;

/// The request of every row.
const USERS: &str = "/users?per_page=10";
/// The mock's users page: the answer of every row.
const PAGE: &str = r#"[{"Id":"user_1","FirstName":"Ada"}]"#;
/// Requests at once in the concurrent rows; the p3 instance takes the largest at once.
const AT_ONCE: [usize; 2] = [16, 100];
/// A client id per server, so that the mock counts each one's token requests.
const AUTH_CLIENT: &str = "bench-p3-auth";
const FLOOR_CLIENT: &str = "bench-p3-floor";
const P2_CLIENT: &str = "bench-p2-users";
/// Core instances, memories, tables, stacks the section's engine pools: 100 p2 requests at
/// once are 100 live instances of a composition of 9 core instances, and in the harness's
/// engine (wasmtime's default pool, 1,000 core instances in all) they failed with "maximum
/// concurrent limit of 1000 for core instances reached".
const POOL: u32 = 4_000;

pub fn section(setup: &Setup, report: &mut Report) -> Result<(), String> {
    let world = World::start()?;
    let sequential = world.sequential(setup)?;
    let mut concurrent = Vec::new();
    for n in AT_ONCE {
        concurrent.push(world.concurrent(setup, n)?);
    }
    let counts = world.counts()?;

    report.line("## 8. WASI 0.3 middleware: one reused instance against a fresh one per request");
    report.line("");
    report.line(format!(
        "`GET {USERS}` to the users-p3 example (WASI 0.3, no auth code) composed with \
         `mangopay-auth-middleware` (token store: `keyvalue-draft2` over a wasi:keyvalue map) \
         against the same example composed with floor-middleware (`authorization: Bearer \
         floor`, nothing else), both served by `host_test::sim::p3` with one instance taking every \
         request (up to {} at once, never retired), the token fetched by the warm-up request; \
         and the WASI 0.2 per-request path of section 6, users-service + `{}` with an \
         instance per request. Each request makes the service call the mock's users page over \
         a new connection and answer its body (the floor's answered from the mock's canned \
         queue: same server, same page). Sent over HTTP, a new connection per request, or \
         handed to the p3 instance directly (no socket). One engine for the three servers: \
         the harness's settings, a pool of {POOL} core instances (100 p2 instances at once \
         do not fit the harness's 1,000).",
        AT_ONCE[AT_ONCE.len() - 1],
        Flavor::KeyvalueDraft2.artifact(),
    ));
    report.line("");
    sequential.report(report);
    concurrent_report(&concurrent, report);
    counts.report(report);
    Ok(())
}

/// The mock and the three servers.
struct World {
    mock: MockMangopay,
    auth: P3Server,
    floor: P3Server,
    p2: Server,
}

fn env(client_id: &str, base_url: &str) -> Vec<(String, String)> {
    vec![
        ("MANGOPAY_CLIENT_ID".into(), client_id.into()),
        ("MANGOPAY_API_KEY".into(), API_KEY.into()),
        ("MANGOPAY_BASE_URL".into(), base_url.into()),
    ]
}

/// The `MANGOPAY_*` settings as Spin variables (`mangopay_client_id`, ...): what the
/// keyvalue-draft2 adapter reads through wasi:config.
fn variables(env: &[(String, String)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(name, value)| (name.to_lowercase(), value.clone()))
        .collect()
}

/// The engine of every server of the section: the harness's settings
/// ([`EngineSettings::RECOMMENDED`]), a pool of [`POOL`] of each.
fn engine() -> Result<Engine, String> {
    EngineSettings {
        slots: Some(POOL),
        ..EngineSettings::RECOMMENDED
    }
    .engine()
    .map_err(|e| format!("the section's engine: {e:?}"))
}

fn p3_service(
    engine: &Engine,
    middleware: Middleware,
    adapter: Adapter,
) -> Result<Arc<P3Service>, String> {
    let wasm = p3::compose(host_test::artifact::users_p3_wasm(), middleware, adapter)?;
    P3Service::load_in(engine, &wasm)
        .map(Arc::new)
        .map_err(|e| format!("{}: {e:?}", wasm.display()))
}

impl World {
    fn start() -> Result<World, String> {
        let engine = engine()?;
        let clock = VirtualClock::new();
        let mock = MockMangopay::start(clock.clone());
        for client in [AUTH_CLIENT, FLOOR_CLIENT, P2_CLIENT] {
            mock.add_account(client, API_KEY);
        }
        let base = mock.base_url();
        // The same options for both p3 servers but the client id: one instance for all.
        let p3_options = |client: &str| {
            let env = env(client, &base);
            P3Options {
                config: variables(&env),
                env,
                clock: Some(clock.clone()),
                keyvalue: Some(Arc::new(MapKv::new())),
                max_concurrent: AT_ONCE[AT_ONCE.len() - 1],
                max_requests: usize::MAX,
                ..P3Options::default()
            }
        };
        let auth = P3Server::start(
            p3_service(&engine, Middleware::Auth, Adapter::KeyvalueDraft2)?,
            p3_options(AUTH_CLIENT),
        );
        let floor = P3Server::start(
            p3_service(&engine, Middleware::Floor, Adapter::None)?,
            p3_options(FLOOR_CLIENT),
        );
        let wasm = serve::users_service(Flavor::KeyvalueDraft2);
        let service =
            Service::load_in(&engine, wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
        let p2_env = env(P2_CLIENT, &base);
        let p2 = Server::start(
            Arc::new(service),
            ServeOptions {
                config: variables(&p2_env),
                env: p2_env,
                clock: Some(clock),
                keyvalue: Some(Arc::new(MapKv::new())),
                ..ServeOptions::default()
            },
        );
        let world = World {
            mock,
            auth,
            floor,
            p2,
        };
        // Warm-up: the auth instance fetches its token, the p2 path stores one.
        world.get_auth()?;
        world.get_p2()?;
        world.send_auth()?;
        world.canned(2);
        world.get_floor()?;
        world.send_floor()?;
        Ok(world)
    }

    /// The floor's answer from the mock: the users page, whatever its token.
    fn canned(&self, n: usize) {
        for _ in 0..n {
            self.mock
                .push_api_canned(Canned::new(200, "application/json; charset=utf-8", PAGE));
        }
    }

    fn get_auth(&self) -> Result<(), String> {
        let reply = self.auth.get(USERS)?;
        page("p3 + middleware", reply.status, reply.body.as_bytes())
    }

    /// The floor's request; its answer must be queued first (`canned`).
    fn get_floor(&self) -> Result<(), String> {
        let reply = self.floor.get(USERS)?;
        page("p3 + floor", reply.status, reply.body.as_bytes())
    }

    fn get_p2(&self) -> Result<(), String> {
        let reply = self.p2.get(USERS)?;
        page("p2 per request", reply.status, reply.body.as_bytes())?;
        match reply.header(serve::TOKEN_SOURCE) {
            Some("shared-store" | "fresh-fetch") => Ok(()),
            other => Err(format!("p2 per request: token source {other:?}")),
        }
    }

    fn send_auth(&self) -> Result<(), String> {
        let answer = self.auth.send(p3::request("GET", USERS, &[], ""))?;
        page("p3 + middleware, direct", answer.status, &answer.body)
    }

    /// The floor's request; its answer must be queued first (`canned`).
    fn send_floor(&self) -> Result<(), String> {
        let answer = self.floor.send(p3::request("GET", USERS, &[], ""))?;
        page("p3 + floor, direct", answer.status, &answer.body)
    }

    /// One request at a time.
    fn sequential(&self, setup: &Setup) -> Result<Sequential, String> {
        let per_batch = setup.options.scaled(40);
        let samples: [RefCell<Vec<Duration>>; 5] = Default::default();
        let timed = |i: usize, run: fn(&World) -> Result<(), String>, floor: bool| {
            let samples = &samples[i];
            Variant::new(move || {
                if floor {
                    self.canned(1);
                }
                let started = Instant::now();
                run(self)?;
                samples.borrow_mut().push(started.elapsed());
                Ok(())
            })
        };
        measure(
            101,
            per_batch,
            &mut [
                timed(0, World::get_auth, false),
                timed(1, World::get_floor, true),
                timed(2, World::get_p2, false),
                timed(3, World::send_auth, false),
                timed(4, World::send_floor, true),
            ],
        )?;
        let [auth, floor, p2, auth_direct, floor_direct] =
            samples.map(|s| timings(s.into_inner(), per_batch));
        Ok(Sequential {
            auth,
            floor,
            p2,
            auth_direct,
            floor_direct,
        })
    }

    /// `n` requests at once over HTTP, timed until the last answer.
    fn concurrent(&self, setup: &Setup, n: usize) -> Result<Concurrent, String> {
        let per_batch = setup.options.scaled(if n > 50 { 2 } else { 8 });
        let batches: [RefCell<Vec<Duration>>; 3] = Default::default();
        let urls = [self.auth.url(), self.floor.url(), self.p2.url()];
        let names = ["p3 + middleware", "p3 + floor", "p2 per request"];
        let timed = |i: usize| {
            let batches = &batches[i];
            let url = format!("{}{USERS}", urls[i]);
            Variant::new(move || {
                if i == 1 {
                    self.canned(n);
                }
                let started = Instant::now();
                let answers = get_all(&url, n)?;
                batches.borrow_mut().push(started.elapsed());
                for (status, body) in answers {
                    page(&format!("{n} at once, {}", names[i]), status, &body)?;
                }
                Ok(())
            })
        };
        measure(41, per_batch, &mut [timed(0), timed(1), timed(2)])?;
        let [auth, floor, p2] = batches.map(|s| timings(s.into_inner(), per_batch));
        Ok(Concurrent { n, auth, floor, p2 })
    }

    /// What the mock and the servers counted.
    fn counts(&self) -> Result<Counts, String> {
        let requests = self.mock.requests();
        let api = |client: &str| {
            let path = format!("/v2.01/{client}/users");
            requests
                .iter()
                .filter(|r| r.path.starts_with(&path))
                .count()
        };
        let row = |client: &str, instances: usize| CountRow {
            api: api(client),
            tokens: self.mock.token_requests_for(client),
            instances,
        };
        let counts = Counts {
            auth: row(AUTH_CLIENT, self.auth.instances()),
            floor: row(FLOOR_CLIENT, self.floor.instances()),
            p2: row(P2_CLIENT, self.p2.instances()),
            auth_peak: self.auth.peak_per_instance(),
            floor_peak: self.floor.peak_per_instance(),
            rejected: self.mock.rejected_api_calls(),
            tokens: requests.iter().filter(|r| r.path == TOKEN_PATH).count(),
        };
        let failures = [self.auth.failures(), self.floor.failures()].concat();
        if !failures.is_empty() {
            return Err(format!("p3 instances failed: {failures:?}"));
        }
        Ok(counts)
    }
}

/// An answer must be the mock's users page.
fn page(what: &str, status: u16, body: &[u8]) -> Result<(), String> {
    if status != 200 || body != PAGE.as_bytes() {
        return Err(format!(
            "{what}: HTTP {status}: {}",
            String::from_utf8_lossy(body)
        ));
    }
    Ok(())
}

/// The client of the concurrent rows: `n` body-less GETs of `url` at once, each on a
/// connection of its own (as `serve::get`, the sequential rows' client), on a one-worker
/// runtime; their statuses and bodies.
fn get_all(url: &str, n: usize) -> Result<Vec<(u16, Bytes)>, String> {
    let runtime = host_test::sim::serve::client_runtime();
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    runtime.block_on(async {
        let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(get(uri.clone()))).collect();
        let mut answers = Vec::with_capacity(n);
        for task in tasks {
            answers.push(task.await.map_err(|e| e.to_string())??);
        }
        Ok(answers)
    })
}

async fn get(uri: http::Uri) -> Result<(u16, Bytes), String> {
    let answer = host_test::net::get(uri).await?;
    Ok((answer.status, answer.body))
}

/// A variant's single timings as `measure` sums them up (the mean of each round's batch, the
/// warm-up round left out), and their percentiles. Timed here rather than by `measure`, so
/// that queueing the floor's canned answers is not in its figures.
fn timings(samples: Vec<Duration>, per_batch: usize) -> Measured {
    let n = u32::try_from(per_batch).unwrap_or(1);
    let rounds = samples
        .chunks(per_batch)
        .skip(1)
        .map(|batch| batch.iter().sum::<Duration>() / n)
        .collect();
    (Stats::of(rounds), Percentiles::of(samples, per_batch))
}

/// Percentiles of single timings (requests, or batches of requests at once).
struct Percentiles {
    sorted: Vec<Duration>,
}

impl Percentiles {
    /// `samples` without the first `skip` (the warm-up round's).
    fn of(samples: Vec<Duration>, skip: usize) -> Percentiles {
        let mut sorted: Vec<Duration> = samples.into_iter().skip(skip).collect();
        sorted.sort();
        Percentiles { sorted }
    }

    /// Nearest rank.
    fn at(&self, q: f64) -> Duration {
        let i = ((self.sorted.len() as f64 - 1.0) * q).round() as usize;
        self.sorted.get(i).copied().unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.sorted.len()
    }
}

/// `a - b` in µs, signed.
fn minus(a: Duration, b: Duration) -> String {
    format!("{:+.1} µs", (a.as_secs_f64() - b.as_secs_f64()) * 1e6)
}

type Measured = (Stats, Percentiles);

struct Sequential {
    auth: Measured,
    floor: Measured,
    p2: Measured,
    auth_direct: Measured,
    floor_direct: Measured,
}

impl Sequential {
    fn report(&self, report: &mut Report) {
        let (floor, floor_p) = &self.floor;
        let (floor_direct, floor_direct_p) = &self.floor_direct;
        report.line(format!(
            "### Sequential: one request at a time ({} per row)",
            floor_p.len()
        ));
        report.line("");
        let row = |name: &str, (s, p): &Measured, vs: (&Stats, &Percentiles)| {
            let floor = std::ptr::eq(s, vs.0);
            vec![
                name.to_owned(),
                show(p.at(0.5)),
                show(p.at(0.99)),
                show(s.median),
                spread(s),
                format!("{:.2}x", s.ratio(vs.0)),
                if floor {
                    String::new()
                } else {
                    minus(p.at(0.5), vs.1.at(0.5))
                },
            ]
        };
        let http = (floor, floor_p);
        let direct = (floor_direct, floor_direct_p);
        report.table(
            &[
                "path",
                "p50",
                "p99",
                "per request",
                "batches",
                "vs p3 floor",
                "p50 over the p3 floor",
            ],
            &[
                row(
                    "p3, HTTP: users-p3 + mangopay-auth-middleware, one reused instance",
                    &self.auth,
                    http,
                ),
                row(
                    "p3, HTTP: users-p3 + floor-middleware, one reused instance",
                    &self.floor,
                    http,
                ),
                row(
                    "p2, HTTP: users-service + `mangopay-auth-keyvalue-draft2.wasm`, an instance per request",
                    &self.p2,
                    http,
                ),
                row(
                    "p3, direct (no socket): users-p3 + mangopay-auth-middleware",
                    &self.auth_direct,
                    direct,
                ),
                row(
                    "p3, direct (no socket): users-p3 + floor-middleware",
                    &self.floor_direct,
                    direct,
                ),
            ],
        );
    }
}

struct Concurrent {
    n: usize,
    auth: Measured,
    floor: Measured,
    p2: Measured,
}

fn concurrent_report(rows: &[Concurrent], report: &mut Report) {
    report.line(
        "### Concurrent: N requests at once over HTTP, each on its own connection, until the \
         last answer",
    );
    report.line("");
    let mut table = Vec::new();
    for c in rows {
        let n = c.n;
        let (floor, _) = &c.floor;
        let row = |name: &str, (s, p): &Measured| {
            let over = if std::ptr::eq(s, floor) {
                String::new()
            } else {
                minus(
                    s.median / u32::try_from(n).unwrap_or(1),
                    floor.median / u32::try_from(n).unwrap_or(1),
                )
            };
            vec![
                format!("{n} at once: {name}"),
                show(s.median),
                spread(s),
                show(p.at(0.99)),
                format!("{:.0}", n as f64 / s.median.as_secs_f64()),
                format!("{:.2}x", s.ratio(floor)),
                over,
            ]
        };
        table.push(row("p3 + mangopay-auth-middleware, one instance", &c.auth));
        table.push(row("p3 + floor-middleware, one instance", &c.floor));
        table.push(row("p2 users-service, an instance per request", &c.p2));
    }
    report.table(
        &[
            "requests",
            "per batch",
            "batches",
            "p99 batch",
            "requests/s",
            "vs p3 floor",
            "per request over the p3 floor",
        ],
        &table,
    );
}

struct CountRow {
    api: usize,
    tokens: usize,
    instances: usize,
}

struct Counts {
    auth: CountRow,
    floor: CountRow,
    p2: CountRow,
    auth_peak: Vec<usize>,
    floor_peak: Vec<usize>,
    rejected: usize,
    tokens: usize,
}

impl Counts {
    fn report(&self, report: &mut Report) {
        report.line(
            "Counted by the mock for each server (its own client id), warm-up included: API \
             requests, token requests, and instances the host made.",
        );
        report.line("");
        let row = |name: &str, c: &CountRow| {
            vec![
                name.to_owned(),
                c.api.to_string(),
                format!("**{}**", c.tokens),
                format!("{:.5}", c.tokens as f64 / c.api.max(1) as f64),
                c.instances.to_string(),
            ]
        };
        report.table(
            &[
                "server",
                "requests",
                "token requests",
                "per request",
                "instances",
            ],
            &[
                row("p3: users-p3 + mangopay-auth-middleware", &self.auth),
                row("p3: users-p3 + floor-middleware", &self.floor),
                row(
                    "p2: users-service + `mangopay-auth-keyvalue-draft2.wasm`",
                    &self.p2,
                ),
            ],
        );
        report.line(format!(
            "Token requests in all: {}; API calls the mock refused: {}; most requests one p3 \
             instance held at once: {:?} (middleware), {:?} (floor).",
            self.tokens, self.rejected, self.auth_peak, self.floor_peak
        ));
        report.line("");
    }
}
