//! The wasmCloud adapter: `mangopay:auth/token-store` over `wasi:keyvalue@0.2.0-draft` (what
//! wasmCloud 1.x and 2.x link), whose atomics are not used: a write is settled by reading it
//! back (the core library's `keyvalue` module). Composed into the `with-token-store` component by `cargo xtask dist`. Settings come from
//! `wasi:cli/environment`, where wasmCloud puts the workload's config.
#![cfg(target_arch = "wasm32")]

use mangopay_auth::keyvalue::{self, Bucket, KeyValueStore, KvError};
use mangopay_auth_wasi::HostClock;
use std::rc::Rc;
use std::time::Duration;

wit_bindgen::generate!({
    inline: r#"
        package mangopay:keyvalue-draft-adapter@0.3.0;

        world adapter {
            import wasi:keyvalue/store@0.2.0-draft;
            export mangopay:auth/token-store@0.3.0;
        }
    "#,
    path: ["../../wit", "../../vendor/wit/wasi-keyvalue-0.2.0-draft"],
    generate_all,
});

use exports::mangopay::auth::token_store;
use wasi::keyvalue::store;

/// An open bucket of the instance, with the wall clock and randomness.
struct Kv(Rc<store::Bucket>);

thread_local! {
    static BUCKET: std::cell::RefCell<Option<Rc<store::Bucket>>> = const { std::cell::RefCell::new(None) };
}

/// The bucket named by `MANGOPAY_AUTH_KV_BUCKET`, opened once.
fn open() -> Result<Kv, KvError> {
    if let Some(bucket) = BUCKET.with_borrow(Clone::clone) {
        return Ok(Kv(bucket));
    }
    let label = wasip2::cli::environment::get_environment()
        .into_iter()
        .find_map(|(name, value)| (name == keyvalue::BUCKET_VAR).then_some(value));
    let label = keyvalue::bucket_label(label.as_deref());
    let bucket = Rc::new(store::open(label).map_err(|e| error(e, label))?);
    BUCKET.set(Some(bucket.clone()));
    Ok(Kv(bucket))
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

export!(Adapter);
