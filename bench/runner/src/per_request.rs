//! Section 6, the per-request path: what a host that makes an instance per request pays for
//! the auth part of it.
//!
//! First in-process: a fresh instance of the `with-token-store` component, `client.create`,
//! the token taken from a shared in-process store and `authorize-request` (and the same with
//! `send`, its API call answered by an in-process hook), against a fresh floor-auth instance
//! and one call. Then over HTTP: `GET /authorize` (the auth path alone, no outbound call) to
//! the users-service example composed with each keyvalue artifact, the token from the store,
//! against floor-service answering a constant; both served the same way (a fresh instance per
//! request, as `wasmtime serve` does) and sent by the same client. `GET /users`, which also
//! calls the mock API, is shown for information. Also the token requests each artifact made.

use crate::measure::{Phases, Variant, measure};
use crate::report::{MAX_PER_REQUEST_RATIO, Report, verdict};
use crate::setup::{API_KEY, CLIENT_ID, Setup, answer, instantiate};
use crate::stats::{Stats, show, spread};
use host_test::artifact;
use host_test::clock::VirtualClock;
use host_test::host::{ApiRequest, Host, InstanceOptions};
use host_test::inject::{Injection, Injector};
use host_test::keyvalue::MapKv;
use host_test::mock::MockMangopay;
use host_test::sim::serve::{self, Flavor, ServeOptions, Server, Service};
use host_test::store::{HostStore, MapStore};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FLAVORS: [Flavor; 2] = [Flavor::KeyvalueDraft2, Flavor::KeyvalueDraft];

pub fn section(setup: &Setup, report: &mut Report) -> Result<(), String> {
    report.line("## 6. Per-request path: a fresh instance per request");
    report.line("");
    in_process(setup, report)?;
    served(setup, report)
}

fn target(ratio: f64) -> String {
    format!(
        "**{ratio:.2}x** (≤ {MAX_PER_REQUEST_RATIO}x: {})",
        verdict(ratio <= MAX_PER_REQUEST_RATIO)
    )
}

/// The per-request path in-process: no HTTP server, the harness's host calls the exports.
fn in_process(setup: &Setup, report: &mut Report) -> Result<(), String> {
    let store_host = Host::load(artifact::store_component_wasm())
        .map_err(|e| format!("loading the store component: {e}"))?;
    let floor = &setup.floor_host;
    let config = &setup.config;
    let clock = VirtualClock::new();
    let store: Arc<dyn HostStore> = Arc::new(MapStore::new(clock.clone()));
    let options = |store: Option<Arc<dyn HostStore>>, hooks: Option<Injector>| InstanceOptions {
        clock: Some(clock.clone()),
        store,
        hooks: hooks.map(|h| h.hooks()),
        ..InstanceOptions::default()
    };
    let users = &setup.users;
    let api = ApiRequest {
        method: "GET".into(),
        path: "/v2.01/{ClientId}/users?per_page=10".into(),
        headers: vec![("Accept".into(), "application/json".into())],
        body: None,
    };
    // The first instance fetches the token from the mock and publishes it in the store.
    let before = setup.mock.token_requests();
    {
        let mut first = instantiate(&store_host, options(Some(store.clone()), None))?;
        let client = answer(first.create_client(config))?;
        answer(first.authorize_request(client, users))?;
    }
    let mut phases = Phases::<3>::new();
    let mut send_phases = Phases::<3>::new();
    let per_batch = setup.options.scaled(20);
    let stats = measure(
        101,
        per_batch,
        &mut [
            // instantiate + create + authorize-request, the token from the store.
            Variant::new(|| {
                let started = Instant::now();
                let mut instance = instantiate(&store_host, options(Some(store.clone()), None))?;
                let instantiated = Instant::now();
                let client = answer(instance.create_client(config))?;
                let created = Instant::now();
                black_box(answer(instance.authorize_request(client, users))?);
                let done = Instant::now();
                phases.add(split(started, instantiated, created, done), per_batch);
                Ok(())
            }),
            // floor-auth: instantiate + one call.
            Variant::new(|| {
                let mut instance = instantiate(floor, options(None, None))?;
                black_box(answer(instance.default_authorize_request(users))?);
                Ok(())
            }),
            // floor-auth: instantiate + create + authorize-request.
            Variant::new(|| {
                let mut instance = instantiate(floor, options(None, None))?;
                let client = answer(instance.create_client(config))?;
                black_box(answer(instance.authorize_request(client, users))?);
                Ok(())
            }),
            // instantiate + create + send, the API answered by an in-process hook.
            Variant::new(|| {
                let hooks = Injector::default();
                hooks.push(Injection::json(200, "[]"));
                let started = Instant::now();
                let mut instance =
                    instantiate(&store_host, options(Some(store.clone()), Some(hooks)))?;
                let instantiated = Instant::now();
                let client = answer(instance.create_client(config))?;
                let created = Instant::now();
                let response = answer(instance.send(client, &api))?;
                let done = Instant::now();
                if response.status != 200 {
                    return Err(format!("send: HTTP {}", response.status));
                }
                send_phases.add(split(started, instantiated, created, done), per_batch);
                Ok(())
            }),
            // floor-auth: instantiate + `send` (answers a constant, sends nothing).
            Variant::new(|| {
                let mut instance = instantiate(floor, options(None, None))?;
                black_box(answer(instance.default_send(&api))?);
                Ok(())
            }),
        ],
    )?;
    let tokens = setup.mock.token_requests() - before;
    let [auth, floor_one, floor_create, send, floor_send]: [Stats; 5] =
        stats.try_into().map_err(|_| "five variants")?;
    let [inst, create, authorize] = phases.stats();
    let [_, _, send_call] = send_phases.stats();
    report.line(
        "### In-process: fresh instance + `client.create` + token from a shared store + one call",
    );
    report.line("");
    report.line(format!(
        "The `with-token-store` component, its `token-store` import an in-process map every \
         instance shares (the token in it, fetched once: {tokens} token request(s) for all \
         of them); floor-auth answers constants. Each instance through the harness's \
         `Host::instantiate` in the harness's engine (pooling allocator, below)."
    ));
    report.line("");
    let row =
        |name: &str, s: &Stats, vs: String| vec![name.to_owned(), show(s.median), spread(s), vs];
    report.table(
        &["path", "per request", "batches", "vs floor"],
        &[
            row(
                "mangopay-auth: instantiate + `client.create` + `authorize-request`",
                &auth,
                target(auth.ratio(&floor_one)),
            ),
            row(
                "floor-auth: instantiate + `authorize-request` (one call)",
                &floor_one,
                "1.00x".into(),
            ),
            row(
                "floor-auth: instantiate + `client.create` + `authorize-request`",
                &floor_create,
                format!("{:.2}x", floor_create.ratio(&floor_one)),
            ),
            row(
                "mangopay-auth: instantiate + `client.create` + `send` (API answered by an in-process hook)",
                &send,
                format!("{:.2}x the floor's `send`", send.ratio(&floor_send)),
            ),
            row(
                "floor-auth: instantiate + `send` (a constant answer, nothing sent)",
                &floor_send,
                format!("{:.2}x", floor_send.ratio(&floor_one)),
            ),
        ],
    );
    report.line("Where the per-request path's time goes (medians of the same run):");
    report.line("");
    report.table(
        &["part", "per request", "batches"],
        &[
            vec![
                "instantiate (`Host::instantiate`)".into(),
                show(inst.median),
                spread(&inst),
            ],
            vec![
                "`client.create` (the first call into the instance)".into(),
                show(create.median),
                spread(&create),
            ],
            vec![
                "`authorize-request`, the token read from the store".into(),
                show(authorize.median),
                spread(&authorize),
            ],
            vec![
                "`send`, the token read from the store, the API answered by a hook".into(),
                show(send_call.median),
                spread(&send_call),
            ],
        ],
    );
    Ok(())
}

fn split(started: Instant, a: Instant, b: Instant, c: Instant) -> [Duration; 3] {
    [a - started, b - a, c - b]
}

/// The per-request path through an HTTP server, an instance per request.
fn served(setup: &Setup, report: &mut Report) -> Result<(), String> {
    let clock = VirtualClock::new();
    let mock = MockMangopay::start(clock.clone());
    mock.add_account(CLIENT_ID, API_KEY);
    let options = ServeOptions {
        env: vec![
            ("MANGOPAY_CLIENT_ID".into(), CLIENT_ID.into()),
            ("MANGOPAY_API_KEY".into(), API_KEY.into()),
            ("MANGOPAY_BASE_URL".into(), mock.base_url()),
        ],
        clock: Some(clock),
        ..ServeOptions::default()
    };
    let load = |path: &std::path::Path| -> Result<Arc<Service>, String> {
        Service::load(path)
            .map(Arc::new)
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let mut servers = Vec::new();
    let mut tokens = Vec::new();
    for flavor in FLAVORS {
        let before = mock.token_requests();
        let server = Server::start(
            load(serve::users_service(flavor))?,
            ServeOptions {
                keyvalue: Some(Arc::new(MapKv::new())),
                ..options.clone()
            },
        );
        // The first request fetches and stores the token; every measured one takes it.
        expect(&server, "/authorize", 204)?;
        expect(&server, "/users", 200)?;
        servers.push(server);
        tokens.push(mock.token_requests() - before);
    }
    let floor = Server::start(load(artifact::floor_service_wasm())?, options.clone());
    let before = mock.token_requests();

    let mut variants: Vec<Variant<'_>> = Vec::new();
    for server in &servers {
        variants.push(Variant::new(move || expect(server, "/authorize", 204)));
    }
    variants.push(Variant::new(|| expect(&floor, "/", 200)));
    for server in &servers {
        variants.push(Variant::new(move || expect(server, "/users", 200)));
    }
    let per_batch = setup.options.scaled(20);
    let stats = measure(31, per_batch, &mut variants)?;
    let [auth2, auth1, floor_stats, users2, users1]: [Stats; 5] =
        stats.try_into().map_err(|_| "five variants")?;
    let measured = servers.iter().map(Server::instances).sum::<usize>() - 2 * servers.len();
    let warm_tokens = mock.token_requests() - before;

    report.line("### Served per request over HTTP");
    report.line("");
    report.line(
        "`GET /authorize` to the users-service example composed with each keyvalue artifact: \
         the default client takes the token from the store (one wasi:keyvalue map in the \
         host), authorizes a fixed request and the service answers 204 with the token's \
         source, nothing sent to Mangopay; against floor-service answering a constant, served \
         the same way (hyper on 127.0.0.1, `ProxyPre::instantiate_async` per request in the \
         harness's engine) and sent by the same client, one connection per request. \
         `GET /users` also calls the mock API (a new outbound connection, which the floor \
         does not make): for information.",
    );
    report.line("");
    let name = |route: &str, flavor: Flavor| {
        format!("`GET {route}`: users-service + `{}`", flavor.artifact())
    };
    let row = |name: String, s: &Stats, vs: String| vec![name, show(s.median), spread(s), vs];
    report.table(
        &["service", "per request", "batches", "vs floor"],
        &[
            row(
                name("/authorize", Flavor::KeyvalueDraft2),
                &auth2,
                target(auth2.ratio(&floor_stats)),
            ),
            row(
                name("/authorize", Flavor::KeyvalueDraft),
                &auth1,
                target(auth1.ratio(&floor_stats)),
            ),
            row(
                "floor-service (answers a constant)".into(),
                &floor_stats,
                "1.00x".into(),
            ),
            row(
                name("/users", Flavor::KeyvalueDraft2),
                &users2,
                format!("{:.2}x (API call included)", users2.ratio(&floor_stats)),
            ),
            row(
                name("/users", Flavor::KeyvalueDraft),
                &users1,
                format!("{:.2}x (API call included)", users1.ratio(&floor_stats)),
            ),
        ],
    );
    report.table(
        &["token requests", "keyvalue-draft2", "keyvalue-draft"],
        &[
            vec![
                "first requests (cold store)".into(),
                tokens.first().copied().unwrap_or(0).to_string(),
                tokens.get(1).copied().unwrap_or(0).to_string(),
            ],
            vec![
                format!("the {measured} measured requests, both artifacts"),
                warm_tokens.to_string(),
                String::new(),
            ],
        ],
    );
    Ok(())
}

fn expect(server: &Server, path: &str, status: u16) -> Result<(), String> {
    let reply = server.get(path)?;
    if reply.status != status {
        return Err(format!("{path}: HTTP {}: {}", reply.status, reply.body));
    }
    if path == "/" {
        return Ok(());
    }
    // Each instance is new: its token comes from the store (or, the first, from Mangopay).
    match reply.header("x-mangopay-token-source") {
        Some("shared-store" | "fresh-fetch") => Ok(()),
        other => Err(format!("{path}: token source {other:?}")),
    }
}
