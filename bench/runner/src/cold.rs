//! Section 3, the cold token: a fresh instance's first token against the native client's,
//! same server; and where the time goes.

use crate::async_host::{self, AsyncHost};
use crate::baselines::NativeClient;
use crate::measure::{Phases, Variant, measure};
use crate::report::{MAX_COLD_RATIO, Report, verdict};
use crate::setup::Setup;
use crate::setup::{TOKEN, answer, client, instantiate};
use crate::stats::{Stats, show, spread};
use host_test::artifact;
use host_test::clock::VirtualClock;
use host_test::host::{Config, Host, Instance, InstanceOptions};
use host_test::inject::{Injection, Injector};
use host_test::mock::TOKEN_PATH;
use mangopay_auth::fakes::token_body;
use std::hint::black_box;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceAny;

struct Cold {
    /// The whole: instantiate + create + first get-token.
    instance: Stats,
    /// Its phases: instantiate, `client.create`, `get-token`.
    phases: [Stats; 3],
    /// `get-token` answered in-process by a wasi:http hook: no socket (wasmtime still runs
    /// the hook's future on its runtime's worker thread).
    hooked: Stats,
    native: Stats,
    /// wasmtime-wasi-http's own outgoing client, driven natively the way wasmtime drives it.
    wasmtime_client: Stats,
    /// The whole, with the component embedded async on a current-thread runtime.
    async_instance: Stats,
    /// A token fetch in a warm instance (the client's token expired), answered by a hook.
    warm: Stats,
}

pub fn section(setup: &Setup, report: &mut Report) -> Result<(), String> {
    let cold = cold_token(setup)?;
    let cold_ratio = cold.instance.ratio(&cold.native);
    report.line("## 3. Cold token: a fresh instance's first `get-token` over wasi:http");
    report.line("");
    report.line(
        "Same loopback mock. The native client (hyper 1 on a current-thread tokio runtime, a \
         new connection per request as wasmtime's outgoing client makes) sends the token \
         request the component sent, header for header, and parses the JSON answer.",
    );
    report.line("");
    let rows = vec![
        vec![
            "mangopay-auth: instantiate + `client.create` + first `get-token`".into(),
            show(cold.instance.median),
            spread(&cold.instance),
            format!("**{cold_ratio:.2}x**"),
        ],
        row(
            "native Rust client (hyper), identical request",
            &cold.native,
            &cold.native,
        ),
    ];
    report.table(&["path", "per token", "batches", "vs native"], &rows);
    report.line(format!(
        "Target ≤ {MAX_COLD_RATIO}x the native client: {} ({cold_ratio:.2}x).",
        verdict(cold_ratio <= MAX_COLD_RATIO)
    ));
    report.line("");
    parts(&cold, report);
    Ok(())
}

/// The table of where the time goes.
fn parts(cold: &Cold, report: &mut Report) {
    report.line("Where the time goes (medians of the same run):");
    report.line("");
    let row = |name: &str, s: &Stats| row(name, s, &cold.native);
    let rows = vec![
        row(
            "instantiate (harness `Host::instantiate`: WASI context, pipes, instance)",
            &cold.phases[0],
        ),
        row(
            "`client.create` (config validation, Basic header)",
            &cold.phases[1],
        ),
        row("first `get-token` over loopback", &cold.phases[2]),
        row(
            "first `get-token` answered by an in-process wasi:http hook (no socket)",
            &cold.hooked,
        ),
        row(
            "wasmtime-wasi-http's outgoing client alone, native, spawned on a multi-thread runtime",
            &cold.wasmtime_client,
        ),
        row(
            "the whole cold path, component embedded async on a current-thread runtime",
            &cold.async_instance,
        ),
        row(
            "a fetch in a warm instance (token expired), answered by the same hook",
            &cold.warm,
        ),
    ];
    report.table(&["part", "per token", "batches", "vs native"], &rows);
}

fn row(name: &str, s: &Stats, native: &Stats) -> Vec<String> {
    vec![
        name.to_owned(),
        show(s.median),
        spread(s),
        format!("{:.2}x", s.ratio(native)),
    ]
}

/// Every variant of the cold path, interleaved.
fn cold_token(setup: &Setup) -> Result<Cold, String> {
    let (host, config) = (&setup.auth_host, &setup.config);
    let native = native_client(setup)?;
    let async_host = AsyncHost::load(artifact::component_wasm())?;
    let async_config = async_host::config(config);
    async_host.first_token(&async_config)?;
    let answer = token_body(TOKEN, 1200);

    // 201 rounds of 10: 2,010 tokens per variant, in batches short enough (a few ms) for a
    // burst of load on the machine to hit the variants of a round alike.
    let per_batch = setup.options.scaled(10);
    let mut phases = Phases::<3>::new();
    let mut hooked = Phases::<3>::new();
    let mut warm = Warm::new(host, config, &answer)?;
    warm.fetch()?;
    let stats = measure(
        201,
        per_batch,
        &mut [
            Variant::new(|| {
                phases.add(first_token(host, config, None)?, per_batch);
                Ok(())
            }),
            Variant::new(|| native.fetch().map(drop)),
            Variant::new(|| native.fetch_like_wasmtime().map(drop)),
            Variant::new(|| async_host.first_token(&async_config)),
            Variant::new(|| {
                let injector = Injector::default();
                injector.push(Injection::json(200, &answer));
                hooked.add(first_token(host, config, Some(injector))?, per_batch);
                Ok(())
            }),
            Variant::new(|| warm.fetch()),
        ],
    )?;
    let [instance, native, wasmtime_client, async_instance, _, warm]: [Stats; 6] =
        stats.try_into().map_err(|_| "six variants, six results")?;
    let [_, _, hooked] = hooked.stats();
    Ok(Cold {
        instance,
        phases: phases.stats(),
        hooked,
        native,
        wasmtime_client,
        async_instance,
        warm,
    })
}

/// One token through the component first: its request, as the server saw it, is what the
/// native clients replay.
fn native_client(setup: &Setup) -> Result<NativeClient, String> {
    let seen = setup.mock.requests().len();
    let (mut probe, client) = client(&setup.auth_host, InstanceOptions::default(), &setup.config)?;
    answer(probe.get_token(client))?;
    let sent = setup
        .mock
        .requests()
        .into_iter()
        .skip(seen)
        .find(|r| r.path == TOKEN_PATH)
        .ok_or("the component sent no token request")?;
    let native = NativeClient::new(&setup.mock.base_url(), &sent)?;
    for token in [native.fetch()?, native.fetch_like_wasmtime()?] {
        if token.len() != 32 {
            return Err(format!("a native client got {token:?}"));
        }
    }
    Ok(native)
}

/// A fresh instance's first token, phase by phase: instantiate, `client.create`, `get-token`.
/// `hooks` answers in-process instead of the network when given.
fn first_token(
    host: &Host,
    config: &Config,
    hooks: Option<Injector>,
) -> Result<[Duration; 3], String> {
    let started = Instant::now();
    let mut instance = instantiate(
        host,
        InstanceOptions {
            hooks: hooks.map(|h| h.hooks()),
            ..InstanceOptions::default()
        },
    )?;
    let instantiated = Instant::now();
    let client = answer(instance.create_client(config))?;
    let created = Instant::now();
    let token = answer(instance.get_token(client))?;
    let done = Instant::now();
    black_box(token);
    Ok([
        instantiated - started,
        created - instantiated,
        done - created,
    ])
}

/// A warm instance: one that has already fetched a token, answering through a hook. Its
/// clock is virtual: each fetch moves it past the token's expiry, so `get-token` fetches
/// again in an instance whose memory pages are already touched.
struct Warm<'a> {
    hooks: Injector,
    clock: VirtualClock,
    instance: Instance,
    client: ResourceAny,
    answer: &'a str,
}

impl<'a> Warm<'a> {
    fn new(host: &Host, config: &Config, answer: &'a str) -> Result<Warm<'a>, String> {
        let hooks = Injector::default();
        let clock = VirtualClock::new();
        let options = InstanceOptions {
            hooks: Some(hooks.hooks()),
            clock: Some(clock.clone()),
            ..InstanceOptions::default()
        };
        let (instance, client) = client(host, options, config)?;
        Ok(Warm {
            hooks,
            clock,
            instance,
            client,
            answer,
        })
    }

    fn fetch(&mut self) -> Result<(), String> {
        self.hooks.push(Injection::json(200, self.answer));
        self.clock.advance(Duration::from_secs(1200));
        let token = answer(self.instance.get_token(self.client))?;
        black_box(token);
        Ok(())
    }
}
