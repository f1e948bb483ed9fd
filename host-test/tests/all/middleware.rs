//! WASI 0.3: a service with no auth code (`examples/users-p3`, `wasi:http/handler@0.3.0`)
//! with a `wasi:http/client@0.3.0` middleware plugged into its client import (wac), served as
//! `wasmtime serve` 48 serves it (`host_test::sim::p3`: instances reused for up to 16 concurrent and
//! 128 requests), against the mock Mangopay or a recording upstream on 127.0.0.1.
//!
//! The plumbing is tested with the benchmark floor (`bench/floor-middleware`: `authorization:
//! Bearer floor` on every request) and with `mangopay-auth-middleware` as it is. Counts come
//! from the servers' records, the server's counters and the `send_request` hook; no test
//! asserts a time.

use host_test::clock::VirtualClock;
use host_test::fixture::{API_KEY, CLIENT_ID};
use host_test::inject::{Injection, Injector};
use host_test::keyvalue::MapKv;
use host_test::mock::{Canned, MockMangopay};
use host_test::sim::p3::{
    self, Adapter, Answer, Dispatch, Middleware, P3Options, P3Server, P3Service, Upstream,
};
use host_test::store::MapStore;
use std::sync::Arc;

// --- helpers, for these tests and the middleware's own ---------------------------------

/// A mock Mangopay with the fixture account, on a virtual clock.
fn world() -> (VirtualClock, MockMangopay) {
    let clock = VirtualClock::new();
    let mock = MockMangopay::start(clock.clone());
    mock.add_account(CLIENT_ID, API_KEY);
    (clock, mock)
}

/// The service's and the middleware's settings: the fixture account at `base_url`.
fn env(base_url: &str) -> Vec<(String, String)> {
    vec![
        ("MANGOPAY_CLIENT_ID".into(), CLIENT_ID.into()),
        ("MANGOPAY_API_KEY".into(), API_KEY.into()),
        ("MANGOPAY_BASE_URL".into(), base_url.into()),
    ]
}

/// `env`, plus where `/foreign/` goes.
fn env_with_foreign(base_url: &str, foreign_url: &str) -> Vec<(String, String)> {
    let mut env = env(base_url);
    env.push(("FOREIGN_URL".into(), foreign_url.into()));
    env
}

/// users-p3 with `middleware` (and `adapter`) plugged in, served with `options`.
fn serve(middleware: Middleware, adapter: Adapter, options: P3Options) -> P3Server {
    let service = P3Service::shared(&p3::users_p3(middleware, adapter));
    P3Server::start(service, options)
}

/// `options` with what a middleware composed with `adapter` finds in its host: the host's
/// token store (`Adapter::None`: a map on `clock`), or wasi:keyvalue over one map shared by
/// every instance and, for Spin's adapter, the `MANGOPAY_*` settings as Spin variables
/// (`mangopay_client_id`, ...).
fn with_store(options: P3Options, adapter: Adapter, clock: &VirtualClock) -> P3Options {
    match adapter {
        Adapter::None => P3Options {
            token_store: Some(Arc::new(MapStore::new(clock.clone()))),
            ..options
        },
        Adapter::KeyvalueDraft2 | Adapter::KeyvalueDraft => P3Options {
            keyvalue: Some(Arc::new(MapKv::new())),
            config: options
                .env
                .iter()
                .filter(|(name, _)| name.starts_with("MANGOPAY_"))
                .map(|(name, value)| (name.to_lowercase(), value.clone()))
                .collect(),
            ..options
        },
    }
}

/// Options with `env` and `clock`, everything else as `wasmtime serve`'s defaults.
fn options(env: Vec<(String, String)>, clock: &VirtualClock) -> P3Options {
    P3Options {
        env,
        clock: Some(clock.clone()),
        ..P3Options::default()
    }
}

/// `GET /users?per_page=1`, `n` times.
fn users(n: usize) -> Vec<http::Request<wasmtime_wasi_http::WasiBody>> {
    (0..n)
        .map(|_| p3::request("GET", "/users?per_page=1", &[], ""))
        .collect()
}

/// Every answer, which must have come with `status`.
fn all_with(answers: Vec<Result<Answer, String>>, status: u16) -> Vec<Answer> {
    answers
        .into_iter()
        .enumerate()
        .map(|(i, answer)| {
            let answer = answer.unwrap_or_else(|e| panic!("request {i}: {e}"));
            assert_eq!(answer.status, status, "request {i}: {}", answer.text());
            answer
        })
        .collect()
}

/// `len` bytes that repeat nowhere near a power of two (xorshift).
fn payload(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

// --- composition ---------------------------------------------------------------------------

/// The composed service exports the 0.3 handler and imports the 0.3 client once (the
/// middleware's): the service's own client import is satisfied inside.
#[test]
fn composition_exports_the_handler_and_imports_the_middlewares_client() {
    for middleware in [Middleware::Floor, Middleware::Auth] {
        let (imports, exports) =
            p3::world_of(&p3::users_p3(middleware, Adapter::None)).expect("a component");
        assert!(
            exports.iter().any(|e| e == "wasi:http/handler@0.3.0"),
            "{middleware:?}: {exports:?}"
        );
        assert!(
            imports.iter().any(|i| i == "wasi:http/client@0.3.0"),
            "{middleware:?}: {imports:?}"
        );
        assert!(
            imports
                .iter()
                .all(|i| !i.starts_with("mangopay:") || i.starts_with("mangopay:auth/token-store")),
            "{middleware:?}: {imports:?}"
        );
        println!("{middleware:?}: imports {imports:?}");
    }
}

// --- the floor middleware ------------------------------------------------------------------

/// `GET /users` reaches Mangopay (the mock) rebuilt by the middleware, and the service
/// answers the API's status, content type and body.
#[test]
fn floor_get_users_reaches_mangopay_with_the_floor_header() {
    let (clock, mock) = world();
    mock.push_api_canned(Canned::new(
        200,
        "application/json; charset=utf-8",
        r#"[{"Id":"user_1"}]"#,
    ));
    let server = serve(
        Middleware::Floor,
        Adapter::None,
        options(env(&mock.base_url()), &clock),
    );
    let reply = server.get("/users?per_page=2").expect("an answer");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(reply.body, r#"[{"Id":"user_1"}]"#);
    let requests = mock.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, format!("/v2.01/{CLIENT_ID}/users?per_page=2"));
    assert_eq!(request.header("authorization"), Some("Bearer floor"));
    assert_eq!(request.header("accept"), Some("application/json"));
    // The hook saw the same request, from the one instance.
    let outgoing = server.outgoing();
    assert_eq!(outgoing.len(), 1);
    assert_eq!(outgoing[0].header("authorization"), Some("Bearer floor"));
    assert_eq!(server.instances(), 1);
    assert!(server.failures().is_empty(), "{:?}", server.failures());
}

/// 100 requests at once with room for 100 per instance: one instance holds all 100 at once
/// (the upstream answers none until all 100 are in), and answers them all.
#[test]
fn floor_hundred_concurrent_requests_one_instance() {
    let clock = VirtualClock::new();
    let upstream = Upstream::start();
    upstream.hold_until(100);
    let server = serve(
        Middleware::Floor,
        Adapter::None,
        P3Options {
            max_concurrent: 100,
            ..options(env(&upstream.url()), &clock)
        },
    );
    all_with(server.send_all(users(100)), 200);
    assert!(!upstream.gave_up_holding());
    assert_eq!(server.instances(), 1);
    assert_eq!(server.requests_per_instance(), [100]);
    assert_eq!(server.peak_per_instance(), [100]);
    let seen = upstream.requests();
    assert_eq!(seen.len(), 100);
    let path = format!("/v2.01/{CLIENT_ID}/users?per_page=1");
    assert!(seen.iter().all(|r| r.path == path));
    assert!(
        seen.iter()
            .all(|r| r.header("authorization") == Some("Bearer floor"))
    );
    assert!(server.failures().is_empty(), "{:?}", server.failures());
}

/// 1,000 requests with `wasmtime serve`'s defaults (16 at once, 128 per instance), fired
/// `at_once` at a time: at least 8 instances, none over its quota, every request answered.
///
/// Not all 1,000 at once: with wasmtime-wasi-http's dispatcher a cold burst starts about one
/// instance per request, and ~170 of these compositions use up the 1,000 core instances of
/// the harness engine's pooling allocator, which every test of the binary shares.
fn thousand_requests_default_reuse(dispatch: Dispatch, at_once: usize) {
    let clock = VirtualClock::new();
    let upstream = Upstream::start();
    let server = serve(
        Middleware::Floor,
        Adapter::None,
        P3Options {
            dispatch,
            ..options(env(&upstream.url()), &clock)
        },
    );
    for _ in 0..1000 / at_once {
        all_with(server.send_all(users(at_once)), 200);
    }
    let per_instance = server.requests_per_instance();
    println!(
        "{dispatch:?}: {} instances, requests per instance {per_instance:?}, peaks {:?}",
        per_instance.len(),
        server.peak_per_instance()
    );
    assert!(per_instance.len() >= 8, "{per_instance:?}");
    assert_eq!(per_instance.iter().sum::<usize>(), 1000);
    assert!(per_instance.iter().all(|&n| n <= p3::DEFAULT_MAX_REQUESTS));
    assert!(
        server
            .peak_per_instance()
            .iter()
            .all(|&n| n <= p3::DEFAULT_MAX_CONCURRENT),
        "{:?}",
        server.peak_per_instance()
    );
    assert_eq!(upstream.requests().len(), 1000);
    assert!(server.failures().is_empty(), "{:?}", server.failures());
}

#[test]
fn floor_thousand_requests_default_reuse_spread_over_instances() {
    thousand_requests_default_reuse(Dispatch::Pool, 50);
}

/// The same through wasmtime-wasi-http's `ProxyHandler`, `wasmtime serve`'s own dispatcher.
#[test]
fn floor_thousand_requests_wasmtime_serve_dispatch() {
    thousand_requests_default_reuse(Dispatch::WasmtimeServe, 20);
}

/// A sequence of requests stays on one instance until its quota is used, then the next
/// instance takes over.
#[test]
fn floor_sequential_requests_reuse_until_the_quota() {
    let clock = VirtualClock::new();
    let upstream = Upstream::start();
    for dispatch in [Dispatch::Pool, Dispatch::WasmtimeServe] {
        let server = serve(
            Middleware::Floor,
            Adapter::None,
            P3Options {
                max_requests: 4,
                dispatch,
                ..options(env(&upstream.url()), &clock)
            },
        );
        for _ in 0..10 {
            let answer = server.send(p3::request("GET", "/users", &[], ""));
            assert_eq!(answer.expect("an answer").status, 200);
        }
        assert_eq!(server.requests_per_instance(), [4, 4, 2], "{dispatch:?}");
    }
}

/// A 5 MiB body posted to the Mangopay route goes upstream byte for byte (streamed through
/// the service and the middleware), and the echo comes back byte for byte.
#[test]
fn floor_five_mib_body_arrives_byte_exact() {
    let clock = VirtualClock::new();
    let upstream = Upstream::start();
    let server = serve(
        Middleware::Floor,
        Adapter::None,
        options(env(&upstream.url()), &clock),
    );
    let sent = payload(5 << 20);
    let answer = server
        .send(p3::request(
            "POST",
            "/mangopay/users/natural",
            &[("content-type", "application/octet-stream")],
            sent.clone(),
        ))
        .expect("an answer");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(answer.body == sent, "the echo differs from what was sent");
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/v2.01/{CLIENT_ID}/users/natural"));
    assert_eq!(request.header("authorization"), Some("Bearer floor"));
    assert_eq!(request.body.len(), sent.len());
    assert!(request.body == sent, "the upstream got other bytes");
    assert!(server.failures().is_empty(), "{:?}", server.failures());
}

/// Outgoing requests go through the test's hooks when given (no socket): the middleware's
/// request is what the hooks see, their answer is what the service relays.
#[test]
fn floor_requests_through_injected_hooks() {
    let clock = VirtualClock::new();
    let injector = Injector::default();
    injector.push(Injection::json(201, r#"{"Id":"user_2"}"#));
    let hooks = injector.clone();
    let server = serve(
        Middleware::Floor,
        Adapter::None,
        P3Options {
            hooks: Some(Arc::new(move || hooks.hooks())),
            ..options(env("https://api.mangopay.invalid"), &clock)
        },
    );
    let answer = server
        .send(p3::request("POST", "/mangopay/users/natural", &[], "{}"))
        .expect("an answer");
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(answer.text(), r#"{"Id":"user_2"}"#);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(injector.requests(), 1);
    let outgoing = server.outgoing();
    assert_eq!(outgoing.len(), 1);
    assert_eq!(
        outgoing[0].uri,
        format!("https://api.mangopay.invalid/v2.01/{CLIENT_ID}/users/natural")
    );
    assert_eq!(outgoing[0].header("authorization"), Some("Bearer floor"));
}

/// An upstream that refuses connections: the service answers 502 with the error code, and
/// its line reaches the operator's log (the instance's stderr).
#[test]
fn floor_unreachable_upstream_is_a_502_and_a_log_line() {
    let clock = VirtualClock::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}", closed.local_addr().expect("an address"));
    drop(closed);
    let server = serve(Middleware::Floor, Adapter::None, options(env(&url), &clock));
    let answer = server
        .send(p3::request("GET", "/users", &[], ""))
        .expect("an answer");
    assert_eq!(answer.status, 502, "{}", answer.text());
    assert_eq!(answer.text(), "upstream: ErrorCode::ConnectionRefused");
    assert_eq!(
        server.instance_log(0),
        "users-p3: GET /users: upstream: ErrorCode::ConnectionRefused\n"
    );
    assert_eq!(server.log(), server.instance_log(0));
}

// --- mangopay-auth-middleware ------------------------------------------------------------

/// A request to another origin passes through with the caller's own `authorization`, and
/// Mangopay hears nothing of it (no token request): with the host's token store, and with
/// Spin's adapter over wasi:keyvalue.
#[test]
fn auth_foreign_origin_keeps_its_own_authorization() {
    for adapter in [Adapter::None, Adapter::KeyvalueDraft2] {
        foreign_origin_keeps_its_own_authorization(adapter);
    }
}

fn foreign_origin_keeps_its_own_authorization(adapter: Adapter) {
    let (clock, mock) = world();
    let foreign = Upstream::start();
    let env = env_with_foreign(&mock.base_url(), &foreign.url());
    let server = serve(
        Middleware::Auth,
        adapter,
        with_store(options(env, &clock), adapter, &clock),
    );
    let answer = server
        .send(p3::request(
            "POST",
            "/foreign/hooks/payments?id=7",
            &[
                ("authorization", "Bearer mine"),
                ("content-type", "application/json"),
            ],
            r#"{"id":7}"#,
        ))
        .expect("an answer");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), r#"{"id":7}"#);
    let seen = foreign.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/hooks/payments?id=7");
    assert_eq!(seen[0].header("authorization"), Some("Bearer mine"));
    assert_eq!(seen[0].body, br#"{"id":7}"#);
    assert!(
        mock.requests().is_empty(),
        "{adapter:?}: {:?}",
        mock.requests()
    );
    assert!(server.failures().is_empty(), "{:?}", server.failures());
}

/// The middleware's server: users-p3 with `mangopay-auth-middleware` and `adapter`, the
/// fixture account at the mock, and `extra` settings.
fn auth_server(
    adapter: Adapter,
    clock: &VirtualClock,
    mock: &MockMangopay,
    extra: &[(&str, &str)],
    tune: impl FnOnce(P3Options) -> P3Options,
) -> P3Server {
    let mut env = env(&mock.base_url());
    for (name, value) in extra {
        env.retain(|(n, _)| n != name);
        env.push(((*name).into(), (*value).into()));
    }
    let options = with_store(options(env, clock), adapter, clock);
    serve(Middleware::Auth, adapter, tune(options))
}

/// The Bearer tokens of the API requests the mock saw, in order.
fn bearers(mock: &MockMangopay) -> Vec<String> {
    mock.requests()
        .iter()
        .filter(|r| r.path != "/v2.01/oauth/token")
        .map(|r| r.header("authorization").unwrap_or_default().to_owned())
        .collect()
}

/// A request to the Mangopay route with the caller's own `authorization`: the token request
/// goes out exactly as the WASI 0.2 worlds send it, and the API call carries one
/// `authorization`, the Bearer token, in place of the caller's.
#[test]
fn auth_mangopay_requests_carry_the_token_in_place_of_the_callers() {
    let (clock, mock) = world();
    let server = auth_server(Adapter::None, &clock, &mock, &[], |o| o);
    let answer = server
        .send(p3::request(
            "GET",
            "/mangopay/users?per_page=1",
            &[
                ("authorization", "Bearer mine"),
                ("accept", "application/json"),
            ],
            "",
        ))
        .expect("an answer");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let requests = mock.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let token = &requests[0];
    assert_eq!(token.method, "POST");
    assert_eq!(token.path, "/v2.01/oauth/token");
    assert_eq!(
        token.header("authorization"),
        Some(host_test::fixture::basic(CLIENT_ID, API_KEY).as_str())
    );
    assert_eq!(
        token.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(token.body, b"grant_type=client_credentials");
    let call = &requests[1];
    assert_eq!(call.path, format!("/v2.01/{CLIENT_ID}/users?per_page=1"));
    let issued = mock.issued_tokens();
    assert_eq!(issued.len(), 1);
    let authorizations: Vec<&str> = call
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(authorizations, [format!("Bearer {}", issued[0])]);
    assert_eq!(call.header("accept"), Some("application/json"));
    assert!(server.failures().is_empty(), "{:?}", server.failures());
}

/// 100 requests at once into one instance with no token: one token request, answered only
/// once all 100 are in the instance (the mock holds it), and every request carries its token.
#[test]
fn auth_hundred_concurrent_requests_in_one_instance_make_one_token_request() {
    let (clock, mock) = world();
    let server = auth_server(Adapter::None, &clock, &mock, &[], |o| P3Options {
        max_concurrent: 100,
        ..o
    });
    let hold = mock.hold_token_answers();
    let answers = std::thread::scope(|scope| {
        let sent = scope.spawn(|| server.send_all(users(100)));
        // Released once all 100 are in flight in the instance, waiting for the one request.
        while server.peak_per_instance().first() != Some(&100) && !sent.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(hold);
        sent.join().expect("the requests")
    });
    all_with(answers, 200);
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(server.instances(), 1);
    assert_eq!(server.peak_per_instance(), [100]);
    let token = format!("Bearer {}", mock.issued_tokens()[0]);
    let bearers = bearers(&mock);
    assert_eq!(bearers.len(), 100);
    assert!(bearers.iter().all(|b| *b == token));
    assert!(server.failures().is_empty(), "{:?}", server.failures());
}

/// 1,000 requests through instances reused as `wasmtime serve` reuses them (16 at once, 128
/// each), sharing the token through the store: one token request for all of them, with the
/// host's token store and with each keyvalue adapter.
#[test]
fn auth_thousand_requests_across_reused_instances_with_the_store_make_one_token_request() {
    for adapter in [
        Adapter::None,
        Adapter::KeyvalueDraft2,
        Adapter::KeyvalueDraft,
    ] {
        let (clock, mock) = world();
        let server = auth_server(adapter, &clock, &mock, &[], |o| o);
        for _ in 0..20 {
            all_with(server.send_all(users(50)), 200);
        }
        let per_instance = server.requests_per_instance();
        println!(
            "{adapter:?}: {} instances {per_instance:?}",
            per_instance.len()
        );
        assert!(per_instance.len() >= 8, "{adapter:?}: {per_instance:?}");
        assert_eq!(mock.token_requests(), 1, "{adapter:?}");
        assert_eq!(mock.api_requests(), 1000);
        assert_eq!(mock.rejected_api_calls(), 0);
        assert!(server.failures().is_empty(), "{:?}", server.failures());
    }
}

/// Past the refresh point, 50 requests at once while the renewal's token request is held by
/// the mock: all 50 are answered with the live token before the renewal ends (no caller waits
/// for it), and there was one renewal. Once it ends, requests carry the new token.
#[test]
fn auth_a_renewal_under_concurrent_load_holds_no_caller() {
    let (clock, mock) = world();
    let server = auth_server(Adapter::None, &clock, &mock, &[], |o| P3Options {
        max_concurrent: 100,
        ..o
    });
    all_with(server.send_all(users(1)), 200);
    let first = mock.issued_tokens();
    // Tokens live 1,200 s, refreshed 60 s ahead: at 1,150 s the token is due and alive.
    clock.advance(std::time::Duration::from_secs(1150));
    let hold = mock.hold_token_answers();
    all_with(server.send_all(users(50)), 200);
    // Every caller was answered while the renewal's answer was still held.
    assert_eq!(mock.token_requests(), 2);
    let live = format!("Bearer {}", first[0]);
    let during = bearers(&mock);
    assert_eq!(during.len(), 51);
    assert!(during.iter().all(|b| *b == live), "{during:?}");
    drop(hold);
    let renewed = (0..200).find_map(|_| {
        all_with(server.send_all(users(1)), 200);
        let last = bearers(&mock).pop().unwrap_or_default();
        if last != live {
            return Some(last);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        None
    });
    let renewed = renewed.expect("the renewal ended");
    assert!(
        mock.issued_tokens()
            .iter()
            .any(|t| renewed == format!("Bearer {t}"))
    );
    assert_eq!(mock.token_requests(), 2);
    assert!(server.failures().is_empty(), "{:?}", server.failures());
}

const NATURAL_USER: &str = r#"{"FirstName":"Ada","LastName":"Lovelace"}"#;

/// A revoked token: the API's 401 drops it, one renewal, and the request is sent once more
/// with the same body and the new token; the caller sees only the answer to the resend.
#[test]
fn auth_a_revoked_token_costs_one_renewal_and_one_resend() {
    let (clock, mock) = world();
    let server = auth_server(Adapter::None, &clock, &mock, &[], |o| o);
    all_with(server.send_all(users(1)), 200);
    mock.revoke_tokens();
    let answer = server
        .send(p3::request(
            "POST",
            "/mangopay/users/natural",
            &[("content-type", "application/json")],
            NATURAL_USER,
        ))
        .expect("an answer");
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(answer.text(), NATURAL_USER);
    assert_eq!(mock.token_requests(), 2);
    assert_eq!(mock.rejected_api_calls(), 1);
    let posts: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/users/natural"))
        .collect();
    assert_eq!(posts.len(), 2, "the request and one resend");
    assert!(posts.iter().all(|p| p.body == NATURAL_USER.as_bytes()));
    assert_ne!(
        posts[0].header("authorization"),
        posts[1].header("authorization")
    );
    assert!(server.failures().is_empty(), "{:?}", server.failures());
}

/// A body over `MANGOPAY_AUTH_RESEND_BODY_MAX` is streamed and not kept: its 401 comes back as
/// it is (no resend), the refused token is dropped all the same, so the next request renews.
#[test]
fn auth_a_body_over_the_resend_cap_is_not_sent_again() {
    let (clock, mock) = world();
    let extra = [("MANGOPAY_AUTH_RESEND_BODY_MAX", "16")];
    let server = auth_server(Adapter::None, &clock, &mock, &extra, |o| o);
    all_with(server.send_all(users(1)), 200);
    mock.revoke_tokens();
    let post = || p3::request("POST", "/mangopay/users/natural", &[], NATURAL_USER);
    let answer = server.send(post()).expect("an answer");
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(mock.token_requests(), 1);
    let answer = server.send(post()).expect("an answer");
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(mock.token_requests(), 2);
    assert_eq!(mock.rejected_api_calls(), 1);
}

/// A 401 with Mangopay's Strong Customer Authentication challenge comes back untouched: no
/// resend, no renewal, and the next request carries the same token.
#[test]
fn auth_an_sca_401_is_passed_through_and_the_token_kept() {
    let (clock, mock) = world();
    let server = auth_server(Adapter::None, &clock, &mock, &[], |o| o);
    all_with(server.send_all(users(1)), 200);
    let challenge = r#"{"Message":"SCA required","Type":"sca_required"}"#;
    mock.push_api_canned(Canned {
        headers: vec![(
            "www-authenticate",
            "PendingUserAction RedirectUrl=https://sca.mangopay.com/?token=x".into(),
        )],
        ..Canned::new(401, "application/json", challenge)
    });
    let answer = server
        .send(p3::request(
            "POST",
            "/mangopay/users/natural",
            &[],
            NATURAL_USER,
        ))
        .expect("an answer");
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(answer.text(), challenge);
    all_with(server.send_all(users(1)), 200);
    assert_eq!(mock.token_requests(), 1);
    let bearers = bearers(&mock);
    assert_eq!(bearers.len(), 3, "no resend");
    assert!(bearers.iter().all(|b| *b == bearers[0]));
}

/// Bodies stream through byte for byte: 5 MiB (over the resend cap: piped as it comes) and
/// 512 KiB (kept for a resend), each echoed back exact by the mock.
#[test]
fn auth_bodies_arrive_byte_exact() {
    let (clock, mock) = world();
    let server = auth_server(Adapter::None, &clock, &mock, &[], |o| o);
    for len in [5 << 20, 512 << 10] {
        let sent = payload(len);
        let answer = server
            .send(p3::request(
                "POST",
                "/mangopay/users/natural",
                &[("content-type", "application/octet-stream")],
                sent.clone(),
            ))
            .expect("an answer");
        assert_eq!(answer.status, 201, "{len}");
        assert!(answer.body == sent, "{len}: the echo differs");
        let seen = mock.requests().pop().expect("the request");
        assert_eq!(seen.body.len(), len);
        assert!(seen.body == sent, "{len}: the mock got other bytes");
    }
    assert_eq!(mock.token_requests(), 1);
}

/// Bad credentials and a lockout reach the caller as a typed error (through the service's
/// 502, which quotes the middleware's `error-code`): one token request for 50 requests, one
/// more once the cool-down ends. With the store, instances share the cool-down.
#[test]
fn auth_bad_credentials_reach_the_caller_typed_one_token_request_per_cool_down() {
    for (adapter, locked) in [
        (Adapter::None, false),
        (Adapter::None, true),
        (Adapter::KeyvalueDraft2, false),
    ] {
        let (clock, mock) = world();
        mock.set_locked(locked);
        let extra = [("MANGOPAY_API_KEY", "sk-wrong")];
        let server = auth_server(adapter, &clock, &mock, &extra, |o| P3Options {
            max_requests: 5,
            ..o
        });
        let case = match locked {
            true => "locked-out status=400",
            false => "invalid-credentials status=401",
        };
        for _ in 0..50 {
            let answer = server
                .send(p3::request("GET", "/users", &[], ""))
                .expect("an answer");
            assert_eq!(answer.status, 502);
            let text = answer.text();
            assert!(
                text.starts_with(&format!(
                    "upstream: ErrorCode::InternalError(Some(\"mangopay-auth: {case} retry-in-s="
                )),
                "{adapter:?}: {text}"
            );
        }
        assert_eq!(mock.token_requests(), 1, "{adapter:?} locked {locked}");
        assert!(server.instances() >= 10);
        clock.advance(std::time::Duration::from_secs(61));
        for _ in 0..10 {
            let answer = server.send(p3::request("GET", "/users", &[], ""));
            assert_eq!(answer.expect("an answer").status, 502);
        }
        assert_eq!(mock.token_requests(), 2, "{adapter:?} locked {locked}");
        let event = match locked {
            true => "event=locked-out",
            false => "event=cool-down-started",
        };
        assert!(server.log().contains(event), "{}", server.log());
    }
}

/// No secret in any output: the API key (alone or in its Basic form) and every token issued
/// appear in no answer, no header, no operator log line (at debug level) and no failure,
/// through a token fetch, a revoked token, a wrong key and a lockout.
#[test]
fn auth_no_secret_in_any_output() {
    let (clock, mock) = world();
    let debug = [("MANGOPAY_AUTH_LOG", "debug")];
    let server = auth_server(Adapter::KeyvalueDraft2, &clock, &mock, &debug, |o| o);
    let mut outputs = Vec::new();
    let mut record = |answers: Vec<Result<Answer, String>>| {
        for answer in answers {
            match answer {
                Ok(a) => {
                    outputs.push(format!("{} {:?}", a.status, a.headers));
                    outputs.push(String::from_utf8_lossy(&a.body).into_owned());
                }
                Err(e) => outputs.push(e),
            }
        }
    };
    record(server.send_all(users(5)));
    // Revoking forgets them: every token issued, kept as it goes.
    let mut tokens = mock.issued_tokens();
    mock.revoke_tokens();
    record(server.send_all(vec![p3::request(
        "POST",
        "/mangopay/users/natural",
        &[],
        "{}",
    )]));
    let wrong = auth_server(
        Adapter::None,
        &clock,
        &mock,
        &[("MANGOPAY_API_KEY", "sk-wrong"), debug[0]],
        |o| o,
    );
    record(wrong.send_all(users(3)));
    mock.set_locked(true);
    clock.advance(std::time::Duration::from_secs(2000));
    record(server.send_all(users(3)));
    outputs.push(server.log());
    outputs.push(wrong.log());
    outputs.extend(server.failures());
    outputs.extend(wrong.failures());
    let basic = host_test::fixture::basic(CLIENT_ID, API_KEY);
    let mut secrets = vec![API_KEY.to_owned(), basic["Basic ".len()..].to_owned()];
    tokens.extend(mock.issued_tokens());
    assert!(tokens.len() >= 2, "{tokens:?}");
    secrets.extend(tokens);
    assert!(
        server.log().contains("event=token-fetched"),
        "{}",
        server.log()
    );
    for output in &outputs {
        for secret in &secrets {
            assert!(!output.contains(secret.as_str()), "a secret in {output}");
        }
    }
}

/// A token endpoint that answers 503 once: the middleware waits its backoff (on WASI 0.3's
/// clock, without holding the instance) and tries again, as the WASI 0.2 worlds do; the
/// caller sees only the API's answer.
#[test]
fn auth_a_transient_token_endpoint_failure_is_retried() {
    let (clock, mock) = world();
    mock.push_canned(Canned::new(503, "text/plain", "upstream connect error"));
    let server = auth_server(Adapter::None, &clock, &mock, &[], |o| o);
    let answers = all_with(server.send_all(users(3)), 200);
    assert_eq!(answers.len(), 3);
    assert_eq!(mock.token_requests(), 2);
    assert_eq!(mock.api_requests(), 3);
    assert!(server.failures().is_empty(), "{:?}", server.failures());
}
