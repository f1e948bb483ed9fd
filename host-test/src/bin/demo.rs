//! The main job: build the component, load it in wasmtime, fetch and use a token; then serve
//! the users-service example per request and count the token requests; then WASI 0.3: a
//! service with no auth code behind `mangopay-auth-middleware`, served as `wasmtime serve`
//! serves it, and count the token requests again.
//!
//! Without credentials in the environment it starts the embedded mock Mangopay on 127.0.0.1.
//! With `MANGOPAY_CLIENT_ID` and `MANGOPAY_API_KEY` set (and optionally `MANGOPAY_ENVIRONMENT`,
//! `MANGOPAY_BASE_URL`) it talks to the real Mangopay instead.

use host_test::artifact;
use host_test::clock::VirtualClock;
use host_test::host::{Config, Environment, Error, Host, HttpRequest, InstanceOptions};
use host_test::http_client;
use host_test::keyvalue::MapKv;
use host_test::mock::MockMangopay;
use host_test::sim::p3::{self, Adapter, Middleware, P3Options, P3Server, P3Service};
use host_test::sim::serve::{self, Flavor, ServeOptions, Server, Service};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a token looks like in this output: its first 6 characters.
fn shorten(token: &str) -> String {
    format!("{}… ({} chars)", token.get(..6).unwrap_or(""), token.len())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("demo failed: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let real = env("MANGOPAY_CLIENT_ID").zip(env("MANGOPAY_API_KEY"));
    let clock = VirtualClock::new();
    let mut mock = None;
    let (config, client_id) = match real {
        Some((client_id, api_key)) => {
            // The mTLS hosts also need the client certificate, which this demo's host does not
            // present: they fail as `transport(tls)` (docs/deploying.md, mutual TLS).
            let environment = match env("MANGOPAY_ENVIRONMENT").as_deref() {
                None | Some("sandbox") => Environment::Sandbox,
                Some("production") => Environment::Production,
                Some("sandbox-mtls") => Environment::SandboxMtls,
                Some("production-mtls") => Environment::ProductionMtls,
                Some(other) => {
                    return Err(format!(
                        "MANGOPAY_ENVIRONMENT={other}: expected sandbox, production, sandbox-mtls or production-mtls"
                    ));
                }
            };
            println!("mode: real Mangopay ({environment:?}), credentials from the environment");
            let config = Config {
                environment,
                base_url: env("MANGOPAY_BASE_URL"),
                ..host_test::host::config(&client_id, &api_key, "")
            };
            (config, client_id)
        }
        None => {
            let server = MockMangopay::start(clock.clone());
            server.add_account("demo-client", "demo-api-key");
            println!(
                "mode: mock Mangopay at {} (set MANGOPAY_CLIENT_ID and MANGOPAY_API_KEY to use the real sandbox)",
                server.base_url()
            );
            let config = host_test::host::config("demo-client", "demo-api-key", &server.base_url());
            mock = Some(server);
            (config, "demo-client".to_owned())
        }
    };

    // Built by host-test's build script before this program ran.
    let wasm = artifact::component_wasm();
    let size = std::fs::metadata(wasm).map(|m| m.len()).unwrap_or(0);
    println!("component: {} ({} KiB)", wasm.display(), size / 1024);
    let started = Instant::now();
    let host = Host::load(wasm).map_err(|e| format!("loading the component: {e}"))?;
    // Real credentials run on real time; the mock on virtual time, to show renewal at once.
    let options = InstanceOptions {
        clock: mock.as_ref().map(|_| clock.clone()),
        ..InstanceOptions::default()
    };
    let mut instance = host.instantiate(options).map_err(|e| e.to_string())?;
    println!("loaded in wasmtime in {:.1?}", started.elapsed());

    let show = |e: Error| format!("{e:?}");
    let client = instance
        .create_client(&config)
        .map_err(|e| e.to_string())?
        .map_err(show)?;
    let token = instance
        .get_token(client)
        .map_err(|e| e.to_string())?
        .map_err(show)?;
    println!(
        "token: {}, type {}, expires in {} s (at unix time {})",
        shorten(&token.access_token),
        token.token_type,
        token.expires_in_seconds,
        token.expires_at_unix_seconds
    );

    let base = instance.base_url(client).map_err(|e| e.to_string())?;
    let request = HttpRequest {
        method: "GET".into(),
        url: format!("{base}/v2.01/{client_id}/users?per_page=1"),
        headers: vec![("Accept".into(), "application/json".into())],
    };
    let authorized = instance
        .authorize_request(client, &request)
        .map_err(|e| e.to_string())?
        .map_err(show)?;
    for (name, value) in &authorized.headers {
        let value = match value.strip_prefix("Bearer ") {
            Some(token) => format!("Bearer {}", shorten(token)),
            None => value.clone(),
        };
        println!("authorized header: {name}: {value}");
    }
    let answer = http_client::send(&authorized)?;
    println!("GET {} -> {}", request.url, answer.status);

    let started = Instant::now();
    for _ in 0..1000 {
        instance
            .authorize_request(client, &request)
            .map_err(|e| e.to_string())?
            .map_err(show)?;
    }
    println!("1000 more authorizations in {:.1?}", started.elapsed());

    let foreign = HttpRequest {
        url: "https://evil.example/steal".into(),
        ..request.clone()
    };
    match instance
        .authorize_request(client, &foreign)
        .map_err(|e| e.to_string())?
    {
        Err(error) => println!("foreign host refused: {error:?}"),
        Ok(_) => return Err("a foreign host was authorized".into()),
    }

    if let Some(mock) = &mock {
        clock.advance(Duration::from_secs(1140));
        let renewed = instance
            .get_token(client)
            .map_err(|e| e.to_string())?
            .map_err(show)?;
        println!(
            "virtual time +1140 s (expiry 1200 s minus the 60 s margin): renewed token {}",
            shorten(&renewed.access_token)
        );
        println!(
            "token requests made: {} (for {} API calls)",
            mock.token_requests(),
            mock.api_requests()
        );
    }
    let status = instance.token_status(client).map_err(|e| e.to_string())?;
    println!(
        "token-status: held {}, latest from {:?}, {} s left, {} token request(s) by this client, store {:?}",
        status.held,
        status.source,
        status.expires_in_seconds.unwrap_or(0),
        status.token_requests,
        status.store
    );
    if !(200..300).contains(&answer.status) {
        return Err(format!("the API call answered {}", answer.status));
    }
    per_request(mock.as_ref(), &clock)
}

/// What the served instances see: the demo account at the mock, or, with real credentials,
/// the same `MANGOPAY_*` variables as this process.
fn instance_env(mock: Option<&MockMangopay>) -> Vec<(String, String)> {
    match mock {
        Some(mock) => vec![
            ("MANGOPAY_CLIENT_ID".to_owned(), "demo-client".to_owned()),
            ("MANGOPAY_API_KEY".to_owned(), "demo-api-key".to_owned()),
            ("MANGOPAY_BASE_URL".to_owned(), mock.base_url()),
        ],
        None => std::env::vars()
            .filter(|(name, _)| name.starts_with("MANGOPAY_"))
            .collect(),
    }
}

/// Requests the per-request part sends.
const REQUESTS: usize = 20;

/// The platform's view: the users-service example composed with the Spin-style artifact,
/// served with a fresh instance per HTTP request (as `wasmtime serve` does), the token shared
/// through one wasi:keyvalue map.
fn per_request(mock: Option<&MockMangopay>, clock: &VirtualClock) -> Result<(), String> {
    let composed = serve::users_service(Flavor::KeyvalueDraft2);
    let service =
        Arc::new(Service::load(composed).map_err(|e| format!("loading {composed:?}: {e}"))?);
    let env = instance_env(mock);
    let options = ServeOptions {
        env,
        clock: mock.map(|_| clock.clone()),
        keyvalue: Some(Arc::new(MapKv::new())),
        ..ServeOptions::default()
    };
    let server = Server::start(service.clone(), options);
    println!(
        "per-request host at {} (a fresh instance per request, like `wasmtime serve`): {} \
         with users-service, wasi:keyvalue 0.2.0-draft2 over one in-process map",
        server.url(),
        Flavor::KeyvalueDraft2.artifact()
    );
    let before = mock.map(MockMangopay::token_requests);
    let mut sources: Vec<(String, usize)> = Vec::new();
    let mut answered = 0;
    for _ in 0..REQUESTS {
        let reply = server.get("/users")?;
        if reply.status != 200 {
            return Err(format!(
                "GET /users answered {}: {}",
                reply.status, reply.body
            ));
        }
        answered += 1;
        let source = reply.header("x-mangopay-token-source").unwrap_or("none");
        match sources.iter_mut().find(|(s, _)| s == source) {
            Some((_, n)) => *n += 1,
            None => sources.push((source.to_owned(), 1)),
        }
    }
    let fetched = sources
        .iter()
        .find(|(s, _)| s == "fresh-fetch")
        .map_or(0, |(_, n)| *n);
    let made = match (mock, before) {
        (Some(mock), Some(before)) => mock.token_requests() - before,
        _ => fetched,
    };
    let sources: Vec<String> = sources.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!(
        "GET /users x{REQUESTS}: {answered} requests answered by {} instances, token requests made: {made}, token sources: {}",
        server.instances(),
        sources.join(", ")
    );
    if let Some(mock) = mock {
        wrong_key(mock, clock, service)?;
    }
    middleware(mock, clock)
}

/// The same host with a wrong API key: the first instance meets the 401 and shares the
/// cool-down through the store, so the others answer at once with no token request; the
/// operator log (every instance's stderr) says so once.
fn wrong_key(
    mock: &MockMangopay,
    clock: &VirtualClock,
    service: Arc<Service>,
) -> Result<(), String> {
    let options = ServeOptions {
        env: vec![
            ("MANGOPAY_CLIENT_ID".to_owned(), "demo-client".to_owned()),
            ("MANGOPAY_API_KEY".to_owned(), "not-the-demo-key".to_owned()),
            ("MANGOPAY_BASE_URL".to_owned(), mock.base_url()),
        ],
        clock: Some(clock.clone()),
        keyvalue: Some(Arc::new(MapKv::new())),
        ..ServeOptions::default()
    };
    let server = Server::start(service, options);
    let before = mock.token_requests();
    let mut refused = 0;
    for _ in 0..REQUESTS {
        let reply = server.get("/users")?;
        if reply.status == 502 && reply.body.contains("invalid-credentials") {
            refused += 1;
        }
    }
    println!(
        "wrong API key, GET /users x{REQUESTS}: {refused} answered 502 invalid-credentials, token requests made: {}",
        mock.token_requests() - before
    );
    for line in server.log().lines() {
        println!("operator log: {line}");
    }
    Ok(())
}

/// Concurrent requests per batch in the WASI 0.3 part, and batches.
const AT_ONCE: usize = 20;
const BATCHES: usize = 5;

/// WASI 0.3: users-p3, a service with no auth code (it calls Mangopay through plain
/// `wasi:http/client`), with `mangopay-auth-middleware` plugged into that import and the
/// Spin-style adapter into the middleware's store, served as `wasmtime serve` serves p3
/// (instances reused for up to 16 requests at once and 128 in all).
fn middleware(mock: Option<&MockMangopay>, clock: &VirtualClock) -> Result<(), String> {
    let composed = p3::users_p3(Middleware::Auth, Adapter::KeyvalueDraft2);
    let service = Arc::new(
        P3Service::load(&composed).map_err(|e| format!("loading {}: {e}", composed.display()))?,
    );
    let env = instance_env(mock);
    let options = P3Options {
        env,
        clock: mock.map(|_| clock.clone()),
        keyvalue: Some(Arc::new(MapKv::new())),
        ..P3Options::default()
    };
    let server = P3Server::start(service, options);
    println!(
        "WASI 0.3 host at {} (instances reused as `wasmtime serve` reuses them): users-p3, \
         which has no auth code, with mangopay-auth-middleware plugged into its \
         wasi:http/client@0.3.0",
        server.url()
    );
    let before = mock.map(MockMangopay::token_requests);
    let mut answered = 0;
    for _ in 0..BATCHES {
        let requests = (0..AT_ONCE)
            .map(|_| p3::request("GET", "/users?per_page=1", &[], ""))
            .collect();
        for answer in server.send_all(requests) {
            let answer = answer?;
            if answer.status != 200 {
                return Err(format!(
                    "GET /users answered {}: {}",
                    answer.status,
                    answer.text()
                ));
            }
            answered += 1;
        }
    }
    let made = match (mock, before) {
        (Some(mock), Some(before)) => (mock.token_requests() - before).to_string(),
        _ => "see the operator log".to_owned(),
    };
    println!(
        "GET /users x{} ({BATCHES} batches of {AT_ONCE} at once): {answered} answered by {} \
         instance(s) (requests per instance {:?}), token requests made: {made}",
        BATCHES * AT_ONCE,
        server.instances(),
        server.requests_per_instance(),
    );
    Ok(())
}
