//! Real TLS, as production runs it: the TLS mock Mangopay (`MockMangopay::start_tls`, a test
//! CA made at run time) and the harness's outgoing requests through `host_test::tls::TlsHooks`,
//! the test CA as its roots: the code an embedder runs with the webpki roots. Each component
//! fetches a token and makes an API call over TLS: the standalone world, the Spin keyvalue
//! artifact in the per-request host, and the WASI 0.3 middleware. Mutual TLS: the mock
//! requires a client certificate, as Mangopay's `api-mtls` hosts do, and the hooks present
//! one to that origin only; a foreign TLS origin the same component reaches sees none.

use host_test::clock::VirtualClock;
use host_test::fixture::{API_KEY, CLIENT_ID};
use host_test::host::{
    ApiRequest, Config, Environment, Error, Host, InstanceOptions, TransportKind, config,
};
use host_test::keyvalue::MapKv;
use host_test::mock::{ClientAuth, MockMangopay};
use host_test::sim::p3::{self, Adapter, Middleware, P3Options, P3Server, P3Service};
use host_test::sim::serve::{self, Flavor, ServeOptions, Server, counts, sources};
use host_test::tls::{TestPki, TlsHooks};
use std::sync::{Arc, OnceLock};

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::new("mangopay-auth test CA"))
}

/// The client certificate the hooks present (the one Mangopay's Dashboard would issue).
fn identity() -> &'static host_test::tls::Identity {
    static ID: OnceLock<host_test::tls::Identity> = OnceLock::new();
    ID.get_or_init(|| pki().client("acme-payments mTLS"))
}

/// A TLS mock with the fixture account.
fn tls_mock(clock: &VirtualClock, client_auth: ClientAuth) -> MockMangopay {
    let mock = MockMangopay::start_tls(clock.clone(), pki(), client_auth);
    mock.add_account(CLIENT_ID, API_KEY);
    mock
}

/// Hooks trusting the test CA, presenting the client certificate to `mtls_origin` if any.
fn hooks(mtls_origin: Option<&str>) -> TlsHooks {
    let hooks = TlsHooks::new(pki().roots());
    match mtls_origin {
        Some(origin) => hooks
            .with_client_certificate(origin, identity().chain.clone(), identity().key())
            .expect("a client certificate"),
        None => hooks,
    }
}

fn users_request() -> ApiRequest {
    ApiRequest {
        method: "GET".into(),
        path: "/v2.01/{ClientId}/users?per_page=1".into(),
        headers: vec![("Accept".into(), "application/json".into())],
        body: None,
    }
}

/// The standalone world with its outgoing requests through `hooks` (and `env`), and a client
/// of the fixture account at `mock`: `environment` says whether it is an mTLS host.
fn standalone(
    mock: &MockMangopay,
    clock: &VirtualClock,
    hooks: TlsHooks,
    environment: Environment,
    env: Vec<(String, String)>,
) -> (host_test::host::Instance, wasmtime::component::ResourceAny) {
    let mut instance = Host::shared()
        .instantiate(InstanceOptions {
            clock: Some(clock.clone()),
            hooks: Some(hooks.boxed()),
            env,
            ..InstanceOptions::default()
        })
        .expect("instantiates");
    let client = instance
        .create_client(&Config {
            environment,
            ..config(CLIENT_ID, API_KEY, &mock.base_url())
        })
        .expect("no trap")
        .expect("a valid config");
    (instance, client)
}

/// users-service composed with the Spin artifact, an instance per request over one
/// in-process store, its outgoing requests through `hooks`, against `mock`.
fn per_request_server(mock: &MockMangopay, clock: &VirtualClock, hooks: TlsHooks) -> Server {
    let service = serve::Service::shared(serve::users_service(Flavor::KeyvalueDraft2));
    Server::start(
        service,
        ServeOptions {
            env: vec![
                ("MANGOPAY_CLIENT_ID".into(), CLIENT_ID.into()),
                ("MANGOPAY_API_KEY".into(), API_KEY.into()),
                ("MANGOPAY_BASE_URL".into(), mock.base_url()),
            ],
            clock: Some(clock.clone()),
            keyvalue: Some(Arc::new(MapKv::new())),
            hooks: Some(Arc::new(move || hooks.boxed())),
            ..ServeOptions::default()
        },
    )
}

/// The standalone world over TLS: a token and an API call, `rounds` times.
fn standalone_calls(
    mock: &MockMangopay,
    clock: &VirtualClock,
    hooks: TlsHooks,
    environment: Environment,
    rounds: usize,
) {
    let (mut instance, client) = standalone(mock, clock, hooks, environment, Vec::new());
    for _ in 0..rounds {
        let token = instance
            .get_token(client)
            .expect("no trap")
            .expect("a token");
        assert_eq!(token.token_type.to_lowercase(), "bearer");
        let response = instance
            .send(client, &users_request())
            .expect("no trap")
            .expect("an answer");
        assert_eq!(response.status, 200, "{response:?}");
    }
}

#[test]
fn the_standalone_component_fetches_a_token_and_calls_the_api_over_tls() {
    let clock = VirtualClock::new();
    let mock = tls_mock(&clock, ClientAuth::None);
    assert!(mock.base_url().starts_with("https://localhost:"));
    standalone_calls(&mock, &clock, hooks(None), Environment::Sandbox, 3);
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(mock.api_requests(), 3);
    let (handshakes, failures) = mock.handshakes();
    assert!(failures.is_empty(), "{failures:?}");
    // wasmtime's client opens a connection per request; the hooks do the same.
    assert_eq!(handshakes, 4);
}

#[test]
fn mutual_tls_the_client_certificate_goes_with_every_mangopay_request() {
    let clock = VirtualClock::new();
    let mock = tls_mock(&clock, ClientAuth::Required);
    standalone_calls(
        &mock,
        &clock,
        hooks(Some(&mock.base_url())),
        Environment::SandboxMtls,
        2,
    );
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(mock.api_requests(), 2);
    let presented = mock.client_certificates();
    assert_eq!(presented.len(), 3);
    let ours = identity().chain[0].to_vec();
    assert!(presented.iter().all(|cert| cert.as_ref() == Some(&ours)));
    assert!(mock.handshakes().1.is_empty(), "{:?}", mock.handshakes());
}

/// The WIT `environment` names Mangopay's mTLS hosts, as `MANGOPAY_ENVIRONMENT` does.
#[test]
fn the_wit_environment_selects_the_mtls_hosts() {
    let mut instance = Host::shared()
        .instantiate(InstanceOptions::default())
        .expect("instantiates");
    for (environment, origin) in [
        (
            Environment::SandboxMtls,
            "https://api-mtls.sandbox.mangopay.com",
        ),
        (Environment::ProductionMtls, "https://api-mtls.mangopay.com"),
        (Environment::Sandbox, "https://api.sandbox.mangopay.com"),
        (Environment::Production, "https://api.mangopay.com"),
    ] {
        let client = instance
            .create_client(&Config {
                environment,
                base_url: None,
                ..config(CLIENT_ID, API_KEY, "")
            })
            .expect("no trap")
            .expect("a valid config");
        assert_eq!(instance.base_url(client).expect("no trap"), origin);
    }
}

#[test]
fn mutual_tls_without_the_client_certificate_is_a_tls_error_not_a_credential_one() {
    let clock = VirtualClock::new();
    let mock = tls_mock(&clock, ClientAuth::Required);
    let (mut instance, client) = standalone(
        &mock,
        &clock,
        hooks(None),
        Environment::SandboxMtls,
        Vec::new(),
    );
    let error = instance
        .get_token(client)
        .expect("no trap")
        .expect_err("no token without the certificate");
    let Error::Transport(transport) = &error else {
        panic!("not a transport error: {error:?}");
    };
    assert_eq!(transport.kind, TransportKind::Tls, "{error:?}");
    // The server refused every handshake; no token request reached it.
    assert_eq!(mock.token_requests(), 0);
    let (handshakes, failures) = mock.handshakes();
    assert_eq!(failures.len(), handshakes, "{failures:?}");
    assert!(
        failures
            .iter()
            .all(|f| f.contains("peer sent no certificates")),
        "{failures:?}"
    );
    let text = format!("{error:?}");
    assert!(
        !text.contains(API_KEY) && !text.contains("PRIVATE KEY"),
        "{text}"
    );
    eprintln!("mTLS without a certificate: {error:?}; {handshakes} handshake(s)");
}

#[test]
fn the_spin_artifact_per_request_shares_one_token_over_tls() {
    let clock = VirtualClock::new();
    let mock = tls_mock(&clock, ClientAuth::Required);
    let tls = hooks(Some(&mock.base_url()));
    let server = per_request_server(&mock, &clock, tls);
    let replies: Vec<_> = (0..20)
        .map(|_| {
            let reply = server.get("/users").expect("an answer");
            assert_eq!(reply.status, 200, "{reply:?}");
            reply
        })
        .collect();
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(mock.api_requests(), 20);
    assert_eq!(
        sources(&replies),
        counts(&[("fresh-fetch", 1), ("shared-store", 19)])
    );
    let ours = identity().chain[0].to_vec();
    assert!(
        mock.client_certificates()
            .iter()
            .all(|cert| cert.as_ref() == Some(&ours))
    );
}

#[test]
fn the_middleware_over_mutual_tls_presents_the_certificate_to_mangopay_only() {
    let clock = VirtualClock::new();
    let mock = tls_mock(&clock, ClientAuth::Required);
    // Another TLS origin the service reaches through the same client import: it asks for a
    // certificate, and must get none.
    let foreign = MockMangopay::start_tls(clock.clone(), pki(), ClientAuth::Optional);
    let tls = hooks(Some(&mock.base_url()));
    let env = vec![
        ("MANGOPAY_CLIENT_ID".into(), CLIENT_ID.into()),
        ("MANGOPAY_API_KEY".into(), API_KEY.into()),
        ("MANGOPAY_BASE_URL".into(), mock.base_url()),
        ("FOREIGN_URL".into(), foreign.base_url()),
    ];
    let service = P3Service::shared(&p3::users_p3(Middleware::Auth, Adapter::KeyvalueDraft2));
    let server = P3Server::start(
        service,
        P3Options {
            env: env.clone(),
            clock: Some(clock.clone()),
            keyvalue: Some(Arc::new(MapKv::new())),
            config: env
                .iter()
                .filter(|(name, _)| name.starts_with("MANGOPAY_"))
                .map(|(name, value)| (name.to_lowercase(), value.clone()))
                .collect(),
            hooks: Some(Arc::new(move || tls.boxed())),
            ..P3Options::default()
        },
    );
    for _ in 0..10 {
        let answer = server
            .send(p3::request("GET", "/users?per_page=1", &[], ""))
            .expect("an answer");
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let answer = server
        .send(p3::request("GET", "/foreign/v2.01/x/users", &[], ""))
        .expect("an answer");
    assert!(answer.status > 0, "{}", answer.text());
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(mock.api_requests(), 10);
    let ours = identity().chain[0].to_vec();
    assert!(
        mock.client_certificates()
            .iter()
            .all(|cert| cert.as_ref() == Some(&ours))
    );
    assert_eq!(foreign.requests().len(), 1);
    assert_eq!(foreign.client_certificates(), [None]);
}

/// An instance per request, the Spin artifact's store shared, Mangopay's mTLS host reached
/// without the client certificate: the first request's instance meets the refusal and shares
/// the pause; the next 19 answer the typed error at once, with no handshake of their own.
#[test]
fn per_request_without_the_client_certificate_twenty_requests_one_handshake() {
    let clock = VirtualClock::new();
    let mock = tls_mock(&clock, ClientAuth::Required);
    let tls = hooks(None);
    let server = per_request_server(&mock, &clock, tls);
    for i in 0..20 {
        let reply = server.get("/users").expect("an answer");
        assert_eq!(reply.status, 502, "request {i}: {reply:?}");
        assert!(
            reply.body.contains("tls") || reply.body.contains("transport"),
            "request {i}: {reply:?}"
        );
    }
    let (handshakes, failures) = mock.handshakes();
    assert!(handshakes <= 3, "{handshakes} handshakes: {failures:?}");
    assert_eq!(handshakes, 1, "{failures:?}");
    assert_eq!(mock.token_requests(), 0);
    // The operator's log: one error line naming the fix, no secret, no certificate.
    let log = server.log();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" event=tls-failed "))
        .collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert!(
        failed[0].contains(" level=error ") && failed[0].contains("[[client_tls]]"),
        "{}",
        failed[0]
    );
    for secret in [API_KEY, "PRIVATE KEY", "CERTIFICATE"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
    eprintln!("per request, no client certificate: 20 requests -> {handshakes} handshake");
}

/// A client certificate from a CA the server does not trust, and a server certificate the
/// host does not trust: both typed `transport(tls)`, neither a credential error, neither
/// retried.
#[test]
fn untrusted_certificates_either_way_are_tls_errors() {
    let clock = VirtualClock::new();
    // The client's certificate is from another CA.
    let mock = tls_mock(&clock, ClientAuth::Required);
    let stranger = TestPki::new("another CA").client("not Mangopay's");
    let untrusted_client = TlsHooks::new(pki().roots())
        .with_client_certificate(&mock.base_url(), stranger.chain.clone(), stranger.key())
        .expect("a client certificate");
    // The host trusts another CA than the server's.
    let other_roots = TlsHooks::new(TestPki::new("the host's CA").roots());
    for (case, hooks, server) in [
        ("untrusted client certificate", untrusted_client, &mock),
        ("untrusted server certificate", other_roots, &mock),
    ] {
        let before = server.handshakes().0;
        let (mut instance, client) =
            standalone(server, &clock, hooks, Environment::SandboxMtls, Vec::new());
        let error = instance
            .get_token(client)
            .expect("no trap")
            .expect_err(case);
        let Error::Transport(transport) = &error else {
            panic!("{case}: not a transport error: {error:?}");
        };
        assert_eq!(transport.kind, TransportKind::Tls, "{case}: {error:?}");
        assert_eq!(server.handshakes().0 - before, 1, "{case}: not retried");
        assert_eq!(server.token_requests(), 0, "{case}");
    }
}

// --- Spin: the runtime config's [[client_tls]], as shipped ----------------------------------

/// `examples/users-service/runtime-config.mtls.toml` for the test PKI: its host the mock's
/// name, its certificate files written beside it, the test CA as the roots; `with_certificate`
/// false drops the client certificate (a host set up without it).
fn spin_mtls_config(name: &str, with_certificate: bool) -> std::path::PathBuf {
    let shipped = host_test::workspace().join("examples/users-service/runtime-config.mtls.toml");
    let text = std::fs::read_to_string(&shipped).expect("the shipped mTLS runtime config");
    let dir =
        std::env::temp_dir().join(format!("mangopay-auth-mtls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(dir.join("certs")).expect("a folder");
    std::fs::write(dir.join("certs/mangopay-client.pem"), &identity().chain_pem).expect("write");
    std::fs::write(dir.join("certs/mangopay-client.key"), identity().key_pem()).expect("write");
    std::fs::write(dir.join("certs/ca.pem"), pki().ca_pem()).expect("write");
    assert!(text.contains(r#"hosts = ["api-mtls.sandbox.mangopay.com"]"#));
    let mut text = text.replace(
        r#"hosts = ["api-mtls.sandbox.mangopay.com"]"#,
        "hosts = [\"localhost\"]\nca_roots_file = \"certs/ca.pem\"",
    );
    if !with_certificate {
        text = text
            .lines()
            .filter(|l| {
                !l.starts_with("client_cert_file") && !l.starts_with("client_private_key_file")
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    let path = dir.join("runtime-config.toml");
    std::fs::write(&path, text).expect("write");
    path
}

/// `spin up` of `app` (users-service composed with the Spin artifact, or users-p3 with the
/// middleware) against `mock` as `client`, with the runtime config at `config`.
fn spin_mtls(
    app: host_platforms::Example,
    name: &str,
    client: &str,
    mock: &MockMangopay,
    config: &std::path::Path,
) -> Option<host_platforms::PlatformProcess> {
    use host_platforms::{self as platform, Platform};
    let tool = super::platforms::tool(Platform::Spin)?;
    let p3 = app == platform::USERS_P3;
    let wasm = match p3 {
        true => platform::served_p3_wasm(Platform::Spin),
        false => platform::served_wasm(Platform::Spin),
    }
    .expect("the composition");
    // The mTLS sandbox, its host replaced by the mock's (as a proxy would).
    let variables = [
        ("mangopay_client_id", client.to_owned()),
        ("mangopay_api_key", API_KEY.to_owned()),
        ("mangopay_environment", "sandbox-mtls".to_owned()),
        ("mangopay_base_url", mock.base_url()),
    ];
    // users-p3's own settings come from its environment (docs/middleware.md).
    let env: Vec<(&str, String)> = match p3 {
        true => vec![
            ("MANGOPAY_CLIENT_ID", client.to_owned()),
            ("MANGOPAY_BASE_URL", mock.base_url()),
        ],
        false => Vec::new(),
    };
    let up = platform::SpinUp {
        app,
        name,
        wasm: &wasm,
        variables: &variables,
        env: &env,
        extra: &[],
        runtime_config: Some(config),
    };
    Some(platform::spin_up(&tool, &up).unwrap_or_else(|e| panic!("Spin, mTLS ({name}): {e}")))
}

/// 20 concurrent cold requests, then 30 sequential ones, through Spin with the shipped mTLS
/// runtime config: one token request, the client certificate on every Mangopay request.
fn spin_mtls_one_token(app: host_platforms::Example, name: &str, client: &str) {
    let clock = VirtualClock::new();
    let mock = tls_mock(&clock, ClientAuth::Required);
    mock.add_account(client, API_KEY);
    let Some(spin) = spin_mtls(app, name, client, &mock, &spin_mtls_config(name, true)) else {
        return;
    };
    let get = || {
        let reply = spin.get("/users").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reply.status, 200, "{name}: {reply:?}");
        reply
    };
    serve::at_once(20, get);
    for _ in 0..30 {
        get();
    }
    assert_eq!(mock.token_requests_for(client), 1, "{name}");
    let ours = identity().chain[0].to_vec();
    let presented = mock.client_certificates();
    assert_eq!(presented.len(), mock.requests().len());
    assert!(
        presented.iter().all(|c| c.as_ref() == Some(&ours)),
        "{name}"
    );
    eprintln!(
        "Spin [[client_tls]], {name}: 20 concurrent cold + 30 sequential -> {} token request, \
         {} requests at the mock, each with the client certificate",
        mock.token_requests_for(client),
        presented.len()
    );
}

#[test]
fn spin_client_tls_presents_the_certificate_users_service() {
    spin_mtls_one_token(host_platforms::USERS_SERVICE, "mtls", "spin-mtls");
}

#[test]
fn spin_client_tls_presents_the_certificate_middleware() {
    spin_mtls_one_token(host_platforms::USERS_P3, "mtls", "spin-mtls-p3");
}

/// Spin set up without the client certificate: 20 sequential requests, each answered at once
/// with the typed error; at most 3 handshakes reach the mock.
#[test]
fn spin_without_the_client_certificate_twenty_requests_few_handshakes() {
    let clock = VirtualClock::new();
    let mock = tls_mock(&clock, ClientAuth::Required);
    let client = "spin-mtls-missing";
    mock.add_account(client, API_KEY);
    let config = spin_mtls_config("missing", false);
    let Some(spin) = spin_mtls(
        host_platforms::USERS_SERVICE,
        "mtls-missing",
        client,
        &mock,
        &config,
    ) else {
        return;
    };
    for i in 0..20 {
        let reply = spin.get("/users").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reply.status, 502, "request {i}: {reply:?}");
        assert!(reply.body.contains("transport"), "request {i}: {reply:?}");
    }
    let (handshakes, failures) = mock.handshakes();
    assert!(handshakes <= 3, "{handshakes} handshakes: {failures:?}");
    assert_eq!(mock.token_requests_for(client), 0);
    // Spin's log: the one tls-failed line, naming [[client_tls]], no key or certificate.
    let log = std::fs::read_to_string(&spin.log).unwrap_or_default();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" event=tls-failed "))
        .collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert!(failed[0].contains("[[client_tls]]"), "{}", failed[0]);
    assert!(!log.contains(API_KEY) && !log.contains("PRIVATE KEY"));
    eprintln!("Spin without the client certificate: 20 requests -> {handshakes} handshake(s)");
}

// --- wasmCloud: extra CA roots, no client certificate ----------------------------------------

/// `wash dev` with the test CA as an extra root (`dev.http_client_ca_paths`): TLS to the mock
/// works, but wash has no setting for a client certificate, so Mangopay's mTLS host refuses it;
/// the fleet then makes one handshake per pause, each request answered with the typed error.
#[test]
fn wasmcloud_trusts_extra_roots_but_cannot_present_a_client_certificate() {
    use host_platforms::{self as platform, Platform};
    let Some(tool) = super::platforms::tool(Platform::Wasmcloud) else {
        return;
    };
    let clock = VirtualClock::new();
    let dir = std::env::temp_dir().join(format!("mangopay-auth-wash-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pki().ca_pem()).expect("write");
    let roots = format!("[{:?}]", ca.display().to_string());
    let wasm = platform::served_wasm(Platform::Wasmcloud).expect("the composition");
    let start = |name: &str, client: &str, mock: &MockMangopay, environment: &str| {
        platform::wash_dev(
            &tool,
            &platform::WashDev {
                app: platform::USERS_SERVICE,
                name,
                wasm: &wasm,
                config: &[
                    ("MANGOPAY_BASE_URL", mock.base_url()),
                    ("MANGOPAY_ENVIRONMENT", environment.to_owned()),
                ],
                env: &[
                    ("MANGOPAY_CLIENT_ID", client.to_owned()),
                    ("MANGOPAY_API_KEY", API_KEY.to_owned()),
                ],
                config_file: None,
                dev: &[("http_client_ca_paths", roots.clone())],
            },
        )
        .unwrap_or_else(|e| panic!("wash dev ({name}): {e}"))
    };
    // TLS with the extra root: served.
    let plain = tls_mock(&clock, ClientAuth::None);
    plain.add_account("wash-tls", API_KEY);
    let dev = start("tls", "wash-tls", &plain, "sandbox");
    let reply = dev.get("/users").expect("an answer");
    assert_eq!(reply.status, 200, "{reply:?}");
    // Mutual TLS: refused, typed, paused.
    let mtls = tls_mock(&clock, ClientAuth::Required);
    mtls.add_account("wash-mtls", API_KEY);
    let dev = start("mtls", "wash-mtls", &mtls, "sandbox-mtls");
    for i in 0..20 {
        let reply = dev.get("/users").expect("an answer");
        assert_eq!(reply.status, 502, "request {i}: {reply:?}");
    }
    let (handshakes, failures) = mtls.handshakes();
    assert!(handshakes <= 3, "{handshakes} handshakes: {failures:?}");
    assert!(
        failures
            .iter()
            .all(|f| f.contains("peer sent no certificates")),
        "{failures:?}"
    );
    eprintln!(
        "wash dev, extra CA root: TLS served; mTLS host, 20 requests -> {handshakes} handshake(s), \
         each refused for want of a client certificate"
    );
}

// --- secrets ------------------------------------------------------------------------------

/// Over TLS and mutual TLS, healthy and refused: no private key, no certificate body, no API
/// key and no token in any error, operator log line (debug level) or Debug output.
#[test]
fn no_key_certificate_or_token_in_any_output_over_tls() {
    let clock = VirtualClock::new();
    let mock = tls_mock(&clock, ClientAuth::Required);
    let mut texts = vec![format!("{:?}", identity())];
    for with_certificate in [true, false] {
        let origin = mock.base_url();
        let hooks = hooks(with_certificate.then_some(origin.as_str()));
        let debug = vec![("MANGOPAY_AUTH_LOG".into(), "debug".into())];
        let (mut instance, client) =
            standalone(&mock, &clock, hooks, Environment::SandboxMtls, debug);
        let token = instance.get_token(client).expect("no trap");
        let sent = instance.send(client, &users_request()).expect("no trap");
        texts.push(format!(
            "{:?}",
            token
                .as_ref()
                .map(|t| t.expires_in_seconds)
                .map_err(|e| e.clone())
        ));
        texts.push(format!("{sent:?}"));
        texts.push(instance.output());
        if with_certificate {
            assert!(token.is_ok() && sent.is_ok());
        } else {
            assert!(token.is_err() && sent.is_err());
        }
    }
    let text = texts.join("\n");
    let body_lines = |pem: &str| -> Vec<String> {
        pem.lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
            .map(str::to_owned)
            .collect()
    };
    let mut secrets = vec![API_KEY.to_owned(), "PRIVATE KEY".to_owned()];
    secrets.extend(body_lines(identity().key_pem()));
    secrets.extend(body_lines(&identity().chain_pem));
    secrets.extend(mock.issued_tokens());
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret in the output: {text}"
        );
    }
    assert!(text.contains("event=tls-failed"), "{text}");
}

// --- wasmtime serve: the webpki roots only, no client certificate ----------------------------

/// `wasmtime serve` trusts only the webpki roots compiled into it (no flag adds one) and
/// builds its TLS client `with_no_client_auth()`: a Mangopay stand-in with a private CA is
/// refused at the server certificate, so neither extra roots nor a client certificate can be
/// tried by running it. Each request is still answered at once with the typed error, and the
/// instance's pause keeps it to one handshake.
#[test]
fn wasmtime_serve_trusts_only_its_compiled_roots() {
    let Some(tool) = super::wasmtime_serve::cli() else {
        return;
    };
    let clock = VirtualClock::new();
    let mock = tls_mock(&clock, ClientAuth::Required);
    let client = "wasmtime-serve-mtls";
    mock.add_account(client, API_KEY);
    let env = [("MANGOPAY_ENVIRONMENT", "sandbox-mtls".to_owned())];
    let served = super::wasmtime_serve::serve(&tool, "mtls", client, &mock, &env, Some(100));
    for i in 0..10 {
        let reply = served.get("/users").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reply.status, 502, "request {i}: {reply:?}");
        assert!(reply.body.contains("transport"), "request {i}: {reply:?}");
    }
    let (handshakes, failures) = mock.handshakes();
    assert_eq!(handshakes, 1, "{failures:?}");
    // The client, not the server, broke it off: it does not know the test CA.
    assert!(
        failures.iter().all(|f| f.contains("UnknownCA")),
        "{failures:?}"
    );
    assert_eq!(mock.token_requests_for(client), 0);
    eprintln!("wasmtime serve against a private CA: 10 requests, 1 handshake: {failures:?}");
    let log = std::fs::read_to_string(&served.log).unwrap_or_default();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" event=tls-failed "))
        .collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert!(!log.contains(API_KEY) && !log.contains("PRIVATE KEY"));
    eprintln!("{}", failed[0]);
}
