//! Another host: the same release `.wasm` transpiled by jco and run on Node.js with
//! @bytecodealliance/preview2-shim, driven by `jco/test.mjs` (node:test) against the mock
//! Mangopay on 127.0.0.1. This test installs the pinned npm packages (`npm ci` from the
//! committed `jco/package-lock.json`) when `jco/node_modules` is missing or older than the
//! lockfile, through the same function as `cargo xtask dist` (`xtask::optimize::jco_modules`:
//! once per run, whatever else installs at the same time), transpiles the auth component and
//! the composed list-users component (see tests/compose.rs) into `target/jco/`, runs the Node
//! test, then checks on the mocks how many token requests the components made under Node.
//!
//! Without `node` and `npm` on PATH it fails and says so: it never passes silently.

use host_test::clock::VirtualClock;
use host_test::fixture::{API_KEY, CLIENT_ID};
use host_test::mock::MockMangopay;
use host_test::{artifact, compose};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `program --version`, or a failure that names what is missing.
fn require(program: &str) -> String {
    let output = Command::new(program).arg("--version").output();
    match output {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
        _ => panic!(
            "`{program}` was not found on PATH. The jco test runs the component on Node.js and \
             needs Node.js 20+ with npm (Debian: `apt-get install nodejs npm`). It fails rather \
             than passing without them."
        ),
    }
}

fn run(what: &str, command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    if !output.status.success() {
        panic!(
            "{what} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// Transpiles `wasm` into `target/jco/<name>/`, returning `<name>.js`. `target/jco/node_modules`
/// links to `jco/node_modules`, so the output's `@bytecodealliance/preview2-shim` imports
/// resolve.
fn transpile(modules: &Path, wasm: &Path, name: &str) -> PathBuf {
    let out = xtask::target_dir("jco").expect("create target/jco");
    let dir = out.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let link = out.join("node_modules");
    if std::fs::read_link(&link).ok().as_deref() != Some(modules) {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(modules, &link).expect("link target/jco/node_modules");
    }
    run(
        "jco transpile",
        Command::new("node")
            .arg(modules.join("@bytecodealliance/jco/dist/jco.js"))
            .arg("transpile")
            .arg(wasm)
            .args(["--name", name, "--quiet", "-o"])
            .arg(&dir),
    );
    dir.join(format!("{name}.js"))
}

/// The `test(...)` cases in jco/test.mjs: all must have run and passed.
const NODE_TESTS: usize = 9;

#[test]
fn the_component_runs_on_node_through_jco() {
    let node = require("node");
    require("npm");
    let jco = xtask::optimize::jco_dir();
    let modules = xtask::optimize::jco_modules().unwrap_or_else(|e| panic!("{e}"));
    let module = transpile(&modules, artifact::component_wasm(), "mangopay-auth");
    // The composition of tests/compose.rs (list-users + auth), on Node as well.
    let composed = transpile(&modules, compose::composed_wasm(), "list-users-composed");

    // Two mocks on 127.0.0.1: Mangopay's 1200 s tokens, and 2 s tokens for a renewal on
    // Node's real clock. Both know the account.
    let clock = VirtualClock::new();
    let mock = MockMangopay::start(clock.clone());
    mock.add_account(CLIENT_ID, API_KEY);
    let short = MockMangopay::start(clock);
    short.add_account(CLIENT_ID, API_KEY);
    short.set_expires_in(2);

    let output = Command::new("node")
        .current_dir(&jco)
        .args(["--test", "--test-reporter=spec", "test.mjs"])
        .env("JCO_AUTH_MODULE", &module)
        .env("JCO_LIST_USERS_MODULE", &composed)
        .env("MOCK_MANGOPAY_URL", mock.base_url())
        .env("MOCK_MANGOPAY_SHORT_URL", short.base_url())
        .env("MANGOPAY_CLIENT_ID", CLIENT_ID)
        .env("MANGOPAY_API_KEY", API_KEY)
        .env("MANGOPAY_BASE_URL", mock.base_url())
        .env_remove("MANGOPAY_ENVIRONMENT")
        .env("NO_COLOR", "1")
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("node {node}, jco/test.mjs:\n{stdout}{stderr}");
    assert!(
        output.status.success(),
        "the Node test failed ({}); its output is above",
        output.status
    );
    assert!(
        stdout.contains(&format!("pass {NODE_TESTS}\n")) && stdout.contains("fail 0\n"),
        "expected {NODE_TESTS} passing Node tests:\n{stdout}"
    );

    // One token for the explicit client (50 authorizations), one for the default client (its
    // authorizations and its `send`s), one
    // refused for the wrong key (the second call was answered from the cool-down), one for the
    // composed component's own auth instance (3 calls); nothing for the foreign host, the bad
    // configs or the dead servers.
    assert_eq!(
        mock.token_requests(),
        4,
        "token requests to the 1200 s mock"
    );
    assert_eq!(
        mock.api_requests(),
        6,
        "Node's protected call, the default client's two `send`s and the composed component's three"
    );
    assert_eq!(
        mock.rejected_api_calls(),
        0,
        "every protected call was accepted"
    );
    // The 2 s token: fetched, reused, renewed after 1 s.
    assert_eq!(short.token_requests(), 2, "token requests to the 2 s mock");
    // The operator log reaches Node's stderr (which `node --test` relays into its report): the
    // wrong key's cool-down, once, as a warning.
    let output = format!("{stdout}{stderr}");
    let cool_downs: Vec<&str> = output
        .lines()
        .filter(|l| l.contains(" event=cool-down-started "))
        .collect();
    assert_eq!(cool_downs.len(), 1, "{output}");
    assert!(
        cool_downs[0].contains(" level=warn component=mangopay-auth ")
            && cool_downs[0].contains(" error=invalid-credentials status=401 retry_in_s=60 "),
        "{output}"
    );
    // No secret on Node's output.
    let api_key_b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{API_KEY}"))
    };
    for secret in [API_KEY, api_key_b64.as_str()] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    for token in mock.issued_tokens().iter().chain(&short.issued_tokens()) {
        assert!(!stdout.contains(token.as_str()) && !stderr.contains(token.as_str()));
    }
}
