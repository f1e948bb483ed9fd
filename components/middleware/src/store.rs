//! The imported `token-store`, as the core client's store (as the with-token-store world has it).

use crate::bindings::mangopay::auth::token_store;
use mangopay_auth::{StoreError, TokenStore};
use std::time::Duration;

pub(crate) struct HostStore;

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
