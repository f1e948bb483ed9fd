//! The `with-token-store` world: clients share one token per lifetime through the host's
//! `mangopay:auth/token-store`, so fresh instances and replicas do not each fetch one.
#![cfg(target_arch = "wasm32")]

use mangopay_auth::StoreError;
use mangopay_auth_guest::{Component, TokenStore, World};
use std::time::Duration;

wit_bindgen::generate!({
    world: "with-token-store",
    path: "../../wit",
    // The auth export is the shared one of mangopay-auth-guest.
    with: { "mangopay:auth/auth@0.2.0": mangopay_auth_guest::bindings::exports::mangopay::auth::auth },
});

use mangopay::auth::token_store;

/// The imported `token-store`, as the core client's store.
struct HostStore;

impl TokenStore for HostStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        token_store::get(key).map_err(StoreError)
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        token_store::compare_and_swap(key, expected, value, ttl_ms).map_err(StoreError)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        token_store::delete(key).map_err(StoreError)
    }
}

pub struct WithTokenStore;

impl World for WithTokenStore {
    fn token_store() -> Option<Box<dyn TokenStore>> {
        Some(Box::new(HostStore))
    }
}

type Auth = Component<WithTokenStore>;

mangopay_auth_guest::bindings::export_auth!(Auth);
