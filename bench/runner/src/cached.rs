//! Section 1, the cached path: `client.authorize-request` with a live token, per call, in the
//! component, in the floor component, and in the core library's client in-process.

use crate::baselines::in_process_client;
use crate::measure::{Variant, measure};
use crate::report::{MAX_CACHED_RATIO, Report, verdict};
use crate::setup::Setup;
use crate::setup::{answer, client};
use crate::stats::{Stats, show, spread};
use host_test::host::InstanceOptions;
use std::hint::black_box;

pub fn section(setup: &Setup, report: &mut Report) -> Result<(), String> {
    let [auth, floor, native]: [Stats; 3] = cached_path(setup)?
        .try_into()
        .map_err(|_| "three variants, three results")?;
    let cached_ratio = auth.ratio(&floor);
    report.line("## 1. Cached path: `client.authorize-request` with a live token");
    report.line("");
    report.table(
        &["call", "per call", "batches", "vs floor"],
        &[
            vec![
                "mangopay-auth, host → pre-made instance".into(),
                show(auth.median),
                spread(&auth),
                format!("**{cached_ratio:.2}x**"),
            ],
            vec![
                "floor-auth (same signature, appends a constant header)".into(),
                show(floor.median),
                spread(&floor),
                "1.00x".into(),
            ],
            vec![
                "native `mangopay_auth::client::Client` in-process (fake transport, clock)".into(),
                show(native.median),
                spread(&native),
                format!("{:.2}x", native.ratio(&floor)),
            ],
        ],
    );
    report.line(format!(
        "Target ≤ {MAX_CACHED_RATIO}x the floor: {} ({cached_ratio:.2}x).",
        verdict(cached_ratio <= MAX_CACHED_RATIO)
    ));
    report.line("");
    Ok(())
}

/// The real component, the floor component, and the native client, per call.
fn cached_path(setup: &Setup) -> Result<Vec<Stats>, String> {
    let (config, users) = (&setup.config, &setup.users);
    let (mut auth, auth_client) = client(&setup.auth_host, InstanceOptions::default(), config)?;
    // The token is fetched here; every measured call finds it cached.
    answer(auth.get_token(auth_client))?;
    let (mut floor, floor_client) = client(&setup.floor_host, InstanceOptions::default(), config)?;
    let native = in_process_client(Some(config.base_url.clone().unwrap_or_default()))?;

    // Same shape of answer from all three: one Authorization header added.
    one_bearer(&answer(auth.authorize_request(auth_client, users))?.headers)?;
    one_bearer(&answer(floor.authorize_request(floor_client, users))?.headers)?;
    let native_request = || mangopay_auth::HttpRequest {
        method: users.method.clone(),
        url: users.url.clone(),
        headers: users.headers.clone(),
    };
    let authorized = native
        .authorize_request(native_request())
        .map_err(|e| format!("{e:?}"))?;
    one_bearer(&authorized.headers)?;

    // 101 rounds of 1,000 calls: 101,000 calls per variant.
    let per_batch = setup.options.scaled(1_000);
    measure(
        101,
        per_batch,
        &mut [
            Variant::new(|| {
                let out = auth
                    .authorize_request(auth_client, black_box(users))
                    .map_err(|e| e.to_string())?;
                black_box(out).map(drop).map_err(|e| format!("{e:?}"))
            }),
            Variant::new(|| {
                let out = floor
                    .authorize_request(floor_client, black_box(users))
                    .map_err(|e| e.to_string())?;
                black_box(out).map(drop).map_err(|e| format!("{e:?}"))
            }),
            Variant::new(|| {
                let out = native.authorize_request(black_box(native_request()));
                black_box(out).map(drop).map_err(|e| format!("{e:?}"))
            }),
        ],
    )
}

/// Whether `headers` hold exactly one Bearer Authorization header.
fn one_bearer(headers: &[(String, String)]) -> Result<(), String> {
    let found = headers
        .iter()
        .filter(|(n, v)| n.eq_ignore_ascii_case("authorization") && v.starts_with("Bearer "))
        .count();
    (found == 1)
        .then_some(())
        .ok_or_else(|| format!("expected one Bearer header, got {headers:?}"))
}
