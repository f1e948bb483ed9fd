//! Section 6, per-request serving: one HTTP request to the users-service example composed with
//! each keyvalue artifact, the token taken from the store, against floor-service answering a
//! constant; both served the same way (a fresh instance per request, as `wasmtime serve`
//! does) and sent by the same client. Also the token requests each artifact made.

use crate::measure::{Variant, measure};
use crate::report::{MAX_PER_REQUEST_RATIO, Report, verdict};
use crate::setup::{API_KEY, CLIENT_ID, Setup};
use crate::stats::{Stats, show, spread};
use host_test::artifact;
use host_test::clock::VirtualClock;
use host_test::keyvalue::MapKv;
use host_test::mock::MockMangopay;
use host_test::serve::{self, Flavor, ServeOptions, Server, Service};
use std::sync::Arc;

const FLAVORS: [Flavor; 2] = [Flavor::KeyvalueDraft2, Flavor::KeyvalueDraft];

pub fn section(setup: &Setup, report: &mut Report) -> Result<(), String> {
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
        expect_ok(&server, "/users")?;
        servers.push(server);
        tokens.push(mock.token_requests() - before);
    }
    let floor = Server::start(load(artifact::floor_service_wasm())?, options.clone());
    let before = mock.token_requests();

    let mut variants: Vec<Variant<'_>> = servers
        .iter()
        .map(|server| Variant::new(move || expect_ok(server, "/users")))
        .collect();
    variants.push(Variant::new(|| expect_ok(&floor, "/")));
    let per_batch = setup.options.scaled(20);
    let stats = measure(31, per_batch, &mut variants)?;
    let [draft2, draft, floor_stats]: [Stats; 3] =
        stats.try_into().map_err(|_| "three variants")?;
    let measured = servers.iter().map(Server::instances).sum::<usize>() - servers.len();
    let warm_tokens = mock.token_requests() - before;

    report.line("## 6. Per-request serving: a fresh instance per HTTP request");
    report.line("");
    report.line(
        "`GET /users` to the users-service example composed with each keyvalue artifact \
         (the token from the store: one wasi:keyvalue map in the host; the request to the mock \
         API included), against floor-service answering a constant, served the same way \
         (hyper on 127.0.0.1, `ProxyPre::instantiate_async` per request) and sent by the same \
         client, one connection per request.",
    );
    report.line("");
    let row = |name: String, s: &Stats| {
        let ratio = s.ratio(&floor_stats);
        vec![
            name,
            show(s.median),
            spread(s),
            format!(
                "**{ratio:.2}x** (≤ {MAX_PER_REQUEST_RATIO}x: {})",
                verdict(ratio <= MAX_PER_REQUEST_RATIO)
            ),
        ]
    };
    report.table(
        &["service", "per request", "batches", "vs floor"],
        &[
            row(
                format!("users-service + `{}`", Flavor::KeyvalueDraft2.artifact()),
                &draft2,
            ),
            row(
                format!("users-service + `{}`", Flavor::KeyvalueDraft.artifact()),
                &draft,
            ),
            vec![
                "floor-service (answers a constant)".into(),
                show(floor_stats.median),
                spread(&floor_stats),
                "1.00x".into(),
            ],
        ],
    );
    report.table(
        &["token requests", "keyvalue-draft2", "keyvalue-draft"],
        &[
            vec![
                "first request (cold store)".into(),
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

fn expect_ok(server: &Server, path: &str) -> Result<(), String> {
    let reply = server.get(path)?;
    if reply.status == 200 {
        Ok(())
    } else {
        Err(format!("{path}: HTTP {}: {}", reply.status, reply.body))
    }
}
