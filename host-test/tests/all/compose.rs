//! Composition: the list-users example (which imports `mangopay:auth/auth`) composed with the
//! auth component by `examples/list-users/compose.wac` (wac-parser) and by `wac_graph::plug`,
//! run in wasmtime with WASI and wasi:http only, against the mock Mangopay on 127.0.0.1.

use host_test::artifact;
use host_test::clock::VirtualClock;
use host_test::compose::{self, ListUsersHost};
use host_test::fixture::{API_KEY, CLIENT_ID};
use host_test::mock::{MockMangopay, TOKEN_PATH};
use std::sync::OnceLock;
use std::time::Duration;

/// The `compose.wac` composition, compiled once per test binary.
fn composed() -> &'static ListUsersHost {
    static HOST: OnceLock<ListUsersHost> = OnceLock::new();
    HOST.get_or_init(|| {
        ListUsersHost::load(compose::composed_wasm())
            .expect("the composition links against WASI and wasi:http alone")
    })
}

fn env(mock: &MockMangopay, api_key: &str) -> Vec<(String, String)> {
    [
        ("MANGOPAY_CLIENT_ID", CLIENT_ID),
        ("MANGOPAY_API_KEY", api_key),
        ("MANGOPAY_BASE_URL", &mock.base_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn mock(clock: &VirtualClock) -> MockMangopay {
    let mock = MockMangopay::start(clock.clone());
    mock.add_account(CLIENT_ID, API_KEY);
    mock
}

#[test]
fn composed_component_calls_the_protected_endpoint_with_one_token_fetch() {
    let clock = VirtualClock::new();
    let mock = mock(&clock);
    let mut app = composed()
        .instantiate(&env(&mock, API_KEY), Some(&clock))
        .expect("instantiate");

    for _ in 0..5 {
        let body = app.list_users(1).expect("no trap").expect("users listed");
        assert!(body.contains("user_1"), "the mock's users: {body}");
    }
    assert_eq!(mock.token_requests(), 1, "one token for five API calls");
    assert_eq!(mock.api_requests(), 5);
    assert_eq!(mock.rejected_api_calls(), 0);
    let tokens = mock.issued_tokens();
    for request in mock.requests().iter().filter(|r| r.path != TOKEN_PATH) {
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, format!("/v2.01/{CLIENT_ID}/users?per_page=1"));
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {}", tokens[0]).as_str())
        );
        assert_eq!(request.header("accept"), Some("application/json"));
    }

    // The auth instance inside the composition keeps its cache across calls and renews on
    // the (virtual) WASI clock: 1200 s tokens, 60 s margin.
    clock.advance(Duration::from_secs(1139));
    app.list_users(1).expect("no trap").expect("users listed");
    assert_eq!(mock.token_requests(), 1, "still the first token at 1139 s");
    clock.advance(Duration::from_secs(2));
    app.list_users(1).expect("no trap").expect("users listed");
    assert_eq!(mock.token_requests(), 2, "renewed after 1140 s");
    assert_eq!(mock.rejected_api_calls(), 0);
}

#[test]
fn a_token_the_api_refuses_is_dropped_and_the_call_resent_once() {
    // The mock's clock runs ahead of the component's: the API refuses the token as expired
    // while the component still holds it. check-response drops it; the example resends.
    let mock_clock = VirtualClock::new();
    let component_clock = VirtualClock::new();
    let mock = mock(&mock_clock);
    let mut app = composed()
        .instantiate(&env(&mock, API_KEY), Some(&component_clock))
        .expect("instantiate");
    app.list_users(2).expect("no trap").expect("users listed");
    mock_clock.advance(Duration::from_secs(1201));

    let body = app
        .list_users(2)
        .expect("no trap")
        .expect("listed after a resend");
    assert!(body.contains("user_1"));
    assert_eq!(mock.rejected_api_calls(), 1);
    assert_eq!(mock.token_requests(), 2);
    assert_eq!(mock.api_requests(), 3);
}

#[test]
fn the_composed_example_creates_a_user_with_a_post_body_through_send() {
    let clock = VirtualClock::new();
    let mock = mock(&clock);
    let mut app = composed()
        .instantiate(&env(&mock, API_KEY), Some(&clock))
        .expect("instantiate");
    let user = r#"{"FirstName":"Zoë","LastName":"Ångström"}"#;
    let body = app
        .create_natural_user(user, "create-zoe-1")
        .expect("no trap")
        .expect("created");
    assert_eq!(body, user, "the mock answers the body it received");
    let posted = mock
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path != TOKEN_PATH)
        .expect("the POST");
    assert_eq!(posted.path, format!("/v2.01/{CLIENT_ID}/users/natural"));
    assert_eq!(posted.body, user.as_bytes());
    assert_eq!(posted.header("idempotency-key"), Some("create-zoe-1"));
    assert_eq!(mock.token_requests(), 1);
}

#[test]
fn the_own_client_path_authorizes_sends_with_waki_and_resends_once() {
    let mock_clock = VirtualClock::new();
    let component_clock = VirtualClock::new();
    let mock = mock(&mock_clock);
    let mut app = composed()
        .instantiate(&env(&mock, API_KEY), Some(&component_clock))
        .expect("instantiate");
    let body = app
        .list_users_own_client(2)
        .expect("no trap")
        .expect("listed");
    assert!(body.contains("user_1"));
    mock_clock.advance(Duration::from_secs(1201));
    app.list_users_own_client(2)
        .expect("no trap")
        .expect("listed after a resend");
    assert_eq!(mock.rejected_api_calls(), 1);
    assert_eq!(mock.token_requests(), 2);
    assert_eq!(mock.api_requests(), 3);
}

#[test]
fn an_auth_error_reaches_the_business_component_as_a_typed_case() {
    let clock = VirtualClock::new();
    let mock = mock(&clock);
    let mut app = composed()
        .instantiate(&env(&mock, "sk-wrong"), Some(&clock))
        .expect("instantiate");
    let error = app.list_users(1).expect("no trap").expect_err("bad key");
    assert!(
        error.starts_with("send: Error::InvalidCredentials("),
        "{error}"
    );
    assert!(!error.contains("sk-wrong"), "no key in the error: {error}");
    assert_eq!(mock.api_requests(), 0, "nothing is sent without a token");
    // The cool-down holds inside the composition too.
    app.list_users(1)
        .expect("no trap")
        .expect_err("still refused");
    assert_eq!(mock.token_requests(), 1);
}

#[test]
fn wac_graph_plug_gives_a_working_composition_too() {
    let bytes = compose::compose_with_plug(artifact::component_wasm(), artifact::example_wasm())
        .expect("wac_graph::plug composes the two components");
    let path = compose::out_dir().join("list-users-plugged.wasm");
    std::fs::write(&path, bytes).expect("write");
    let host = ListUsersHost::load(&path).expect("links against WASI and wasi:http alone");

    let clock = VirtualClock::new();
    let mock = mock(&clock);
    let mut app = host
        .instantiate(&env(&mock, API_KEY), Some(&clock))
        .expect("instantiate");
    for _ in 0..3 {
        app.list_users(1).expect("no trap").expect("users listed");
    }
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(mock.api_requests(), 3);
}

#[test]
fn the_example_alone_does_not_link_without_the_auth_component() {
    // Uncomposed, the example's `mangopay:auth/auth` import is open: a WASI-only host
    // refuses it, which is what composition fixes.
    let error = ListUsersHost::load(artifact::example_wasm())
        .err()
        .expect("an unsatisfied import");
    assert!(
        format!("{error:#}").contains("mangopay:auth/auth"),
        "{error:#}"
    );
}
