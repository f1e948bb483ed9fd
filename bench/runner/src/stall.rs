//! Section 7, renewal under load: does a renewal stall the fleet?
//!
//! The users-service example composed with `keyvalue-draft2`, served per request (a fresh
//! instance each) on real clocks over one wasi:keyvalue map; the mock's token endpoint
//! answers in 2 s and its tokens live 20 s (so the refresh point is 10 s after a fetch).
//! After one warm-up request, 4 clients send `GET /users` in a closed loop for 30 s. Only
//! the lease holder's own request should wait for a renewal: every other instance serves the
//! stored token, past its refresh point but alive, at once.

use crate::report::Report;
use crate::setup::{API_KEY, CLIENT_ID, Setup};
use crate::stats::show;
use host_test::clock::VirtualClock;
use host_test::keyvalue::MapKv;
use host_test::mock::MockMangopay;
use host_test::sim::serve::{self, Flavor, ServeOptions, Server, Service};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 4;
const TOKEN_DELAY: Duration = Duration::from_secs(2);
const LIFETIME_SECONDS: u64 = 20;
/// A request slower than this waited for a token request.
const SLOW: Duration = Duration::from_millis(1500);

pub fn section(setup: &Setup, report: &mut Report) -> Result<(), String> {
    let run_for = Duration::from_secs_f64(30.0 * setup.options.scale());
    // The mock's clock decides when its tokens expire; never moved, they stay valid there,
    // and the component renews by its own (real) clock.
    let mock = MockMangopay::start(VirtualClock::new());
    mock.add_account(CLIENT_ID, API_KEY);
    mock.set_expires_in(LIFETIME_SECONDS);
    mock.set_token_delay(TOKEN_DELAY);
    let wasm = serve::users_service(Flavor::KeyvalueDraft2);
    let service = Service::load(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let server = Server::start(
        Arc::new(service),
        ServeOptions {
            env: vec![
                ("MANGOPAY_CLIENT_ID".into(), CLIENT_ID.into()),
                ("MANGOPAY_API_KEY".into(), API_KEY.into()),
                ("MANGOPAY_BASE_URL".into(), mock.base_url()),
            ],
            keyvalue: Some(Arc::new(MapKv::new())),
            ..ServeOptions::default()
        },
    );
    get_users(&server)?;
    let before = mock.token_requests();
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|_| {
                scope.spawn(|| {
                    let mut latencies = Vec::new();
                    while started.elapsed() < run_for {
                        let sent = Instant::now();
                        get_users(&server)?;
                        latencies.push(sent.elapsed());
                    }
                    Ok::<_, String>(latencies)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| "a client panicked".to_owned())?)
            .collect::<Result<Vec<_>, String>>()
    })?;
    let mut latencies: Vec<Duration> = latencies.into_iter().flatten().collect();
    latencies.sort();
    let renewals = mock.token_requests() - before;
    let slow = latencies.iter().filter(|l| **l > SLOW).count();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).copied().unwrap_or_default()
    };

    report.line("## 7. Renewal stall: a renewal under load");
    report.line("");
    report.line(format!(
        "users-service + `{}` per request (a fresh instance each, real clocks, one \
         wasi:keyvalue map); the token endpoint answers in {} s, tokens live {LIFETIME_SECONDS} \
         s; after one warm-up request, {CLIENTS} clients in a closed loop for {:.0} s. A request \
         slower than {} s waited for a token request: one per renewal is the lease holder's own.",
        Flavor::KeyvalueDraft2.artifact(),
        TOKEN_DELAY.as_secs(),
        run_for.as_secs_f64(),
        SLOW.as_secs_f64(),
    ));
    report.line("");
    report.table(
        &[
            "renewal stall",
            "requests",
            "p50",
            "p99",
            "max",
            "slower than 1.5 s",
            "token requests (renewals)",
        ],
        &[vec![
            format!(
                "{CLIENTS} clients, {} s token endpoint",
                TOKEN_DELAY.as_secs()
            ),
            latencies.len().to_string(),
            show(at(0.5)),
            show(at(0.99)),
            show(latencies.last().copied().unwrap_or_default()),
            format!("**{slow}**"),
            renewals.to_string(),
        ]],
    );
    Ok(())
}

fn get_users(server: &Server) -> Result<(), String> {
    let reply = server.get("/users")?;
    match reply.status {
        200 => Ok(()),
        status => Err(format!("GET /users: HTTP {status}: {}", reply.body)),
    }
}
