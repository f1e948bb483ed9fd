//! The `with-token-store` world: clients share one token per lifetime through the host's
//! `mangopay:auth/token-store`, so fresh instances and replicas do not each fetch one.
#![cfg(target_arch = "wasm32")]

use mangopay_auth_guest::{Component, TokenStore, World};

wit_bindgen::generate!({
    world: "with-token-store",
    path: "../../wit",
    // The auth export is the shared one of mangopay-auth-guest.
    with: { "mangopay:auth/auth@0.3.0": mangopay_auth_guest::bindings::exports::mangopay::auth::auth },
});

mangopay_auth_wasi::host_token_store!(mangopay::auth::token_store);

pub struct WithTokenStore;

impl World for WithTokenStore {
    fn token_store() -> Option<Box<dyn TokenStore>> {
        Some(Box::new(HostStore))
    }
}

type Auth = Component<WithTokenStore>;

mangopay_auth_guest::bindings::export_auth!(Auth);
