//! The `standalone` world: each client keeps its token in the instance. For hosts that keep
//! an instance alive across requests.
#![cfg(target_arch = "wasm32")]

use mangopay_auth_guest::{Component, TokenStore, World};

pub struct Standalone;

impl World for Standalone {
    fn token_store() -> Option<Box<dyn TokenStore>> {
        None
    }
}

type Auth = Component<Standalone>;

mangopay_auth_guest::bindings::export_auth!(Auth);
