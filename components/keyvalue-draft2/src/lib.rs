//! The Spin adapter: `mangopay:auth/token-store` over `wasi:keyvalue@0.2.0-draft2` (what
//! Spin 3.x and 4.x link), and `wasi:cli/environment` with the `MANGOPAY_*` settings taken
//! from Spin's application variables (`wasi:config`) before the host environment. Composed
//! into the `with-token-store` component by `cargo xtask dist`; the logic is the core
//! library's `keyvalue` module.
#![cfg(target_arch = "wasm32")]

use mangopay_auth::keyvalue::{self, Bucket, KeyValueStore, KvError};
use mangopay_auth_wasi::HostClock;
use std::rc::Rc;
use std::time::Duration;

wit_bindgen::generate!({
    inline: r#"
        package mangopay:keyvalue-draft2-adapter@0.3.0;

        world adapter {
            import wasi:keyvalue/store@0.2.0-draft2;
            import wasi:config/store@0.2.0-draft-2024-09-27;
            import wasi:cli/environment@0.2.12;
            export wasi:cli/environment@0.2.12;
            export mangopay:auth/token-store@0.3.0;
        }
    "#,
    path: [
        "../../wit",
        "../../vendor/wit/wasi-keyvalue-0.2.0-draft2",
        "../../vendor/wit/wasi-config-0.2.0-draft-2024-09-27",
        "../../vendor/wit/wasi-cli-0.2.12-environment.wit",
    ],
    generate_all,
});

use exports::mangopay::auth::token_store;
use wasi::keyvalue::store;

/// An open bucket of the instance, with the wall clock and randomness.
struct Kv(Rc<store::Bucket>);

thread_local! {
    static BUCKET: std::cell::RefCell<Option<Rc<store::Bucket>>> = const { std::cell::RefCell::new(None) };
}

/// The bucket named by `mangopay_auth_kv_bucket` / `MANGOPAY_AUTH_KV_BUCKET`, opened once.
fn open() -> Result<Kv, KvError> {
    if let Some(bucket) = BUCKET.with_borrow(Clone::clone) {
        return Ok(Kv(bucket));
    }
    let label = setting("mangopay_auth_kv_bucket", keyvalue::BUCKET_VAR);
    let label = keyvalue::bucket_label(label.as_deref());
    let bucket = Rc::new(store::open(label).map_err(|e| error(e, label))?);
    BUCKET.set(Some(bucket.clone()));
    Ok(Kv(bucket))
}

/// A Spin variable, else the environment variable.
fn setting(variable: &str, env: &str) -> Option<String> {
    wasi::config::store::get(variable)
        .ok()
        .flatten()
        .or_else(|| {
            wasi::cli::environment::get_environment()
                .into_iter()
                .find_map(|(name, value)| (name == env).then_some(value))
        })
}

fn error(e: store::Error, label: &str) -> KvError {
    match e {
        store::Error::NoSuchStore => KvError::no_such_store(label),
        store::Error::AccessDenied => KvError::access_denied(label),
        store::Error::Other(detail) => KvError::other(&detail),
    }
}

fn op_error(e: store::Error) -> KvError {
    error(e, "(open)")
}

impl Bucket for Kv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.0.get(key).map_err(op_error)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.0.set(key, value).map_err(op_error)
    }

    fn nonce(&self) -> u64 {
        wasip2::random::random::get_random_u64()
    }
}

struct Adapter;

impl token_store::Guest for Adapter {
    fn get(key: String) -> Result<Option<Vec<u8>>, String> {
        let store = KeyValueStore::new(open().map_err(|e| e.0)?, HostClock);
        store.get(&key).map_err(|e| e.0)
    }

    fn compare_and_swap(
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
        ttl_ms: u64,
    ) -> Result<bool, String> {
        let store = KeyValueStore::new(open().map_err(|e| e.0)?, HostClock);
        store
            .compare_and_swap(
                &key,
                expected.as_deref(),
                &value,
                Duration::from_millis(ttl_ms),
            )
            .map_err(|e| e.0)
    }

    fn delete(key: String) -> Result<(), String> {
        let store = KeyValueStore::new(open().map_err(|e| e.0)?, HostClock);
        store.delete(&key).map_err(|e| e.0)
    }
}

impl exports::wasi::cli::environment::Guest for Adapter {
    fn get_environment() -> Vec<(String, String)> {
        let host = wasi::cli::environment::get_environment();
        keyvalue::spin_environment(host, |name| wasi::config::store::get(name).ok().flatten())
    }

    fn get_arguments() -> Vec<String> {
        wasi::cli::environment::get_arguments()
    }

    fn initial_cwd() -> Option<String> {
        wasi::cli::environment::initial_cwd()
    }
}

export!(Adapter);
