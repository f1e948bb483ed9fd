//! The components the harness loads, as built by `build.rs`. An environment variable of the
//! same name at run time (`MANGOPAY_AUTH_STANDALONE_WASM=<file>`, …) points at a prebuilt file
//! instead.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

macro_rules! artifact {
    ($(#[$doc:meta])* $name:ident, $var:literal) => {
        $(#[$doc])*
        pub fn $name() -> &'static Path {
            static PATH: OnceLock<PathBuf> = OnceLock::new();
            PATH.get_or_init(|| {
                std::env::var_os($var).map_or_else(|| PathBuf::from(env!($var)), PathBuf::from)
            })
        }
    };
}

artifact!(
    /// World `standalone`: the token lives in the instance.
    component_wasm,
    "MANGOPAY_AUTH_STANDALONE_WASM"
);
artifact!(
    /// World `with-token-store`: the token is shared through the host's token store.
    store_component_wasm,
    "MANGOPAY_AUTH_WITH_TOKEN_STORE_WASM"
);
artifact!(
    /// The Spin adapter: exports `token-store` over `wasi:keyvalue@0.2.0-draft2` and
    /// `wasi:cli/environment` with Spin variables (`wasi:config`) mapped onto `MANGOPAY_*`.
    keyvalue_draft2_wasm,
    "MANGOPAY_AUTH_KEYVALUE_DRAFT2_WASM"
);
artifact!(
    /// The wasmCloud adapter: exports `token-store` over `wasi:keyvalue@0.2.0-draft`.
    keyvalue_draft_wasm,
    "MANGOPAY_AUTH_KEYVALUE_DRAFT_WASM"
);
artifact!(
    /// The example business component (imports `mangopay:auth/auth`).
    example_wasm,
    "LIST_USERS_WASM"
);
artifact!(
    /// Benchmark floor: world `standalone` answering constants.
    floor_auth_wasm,
    "FLOOR_AUTH_WASM"
);
artifact!(
    /// Benchmark floor: one export returning a constant.
    floor_const_wasm,
    "FLOOR_CONST_WASM"
);
artifact!(
    /// The example HTTP service (`wasi:http/proxy`, imports `mangopay:auth/auth`).
    users_service_wasm,
    "USERS_SERVICE_WASM"
);
artifact!(
    /// Benchmark floor: a `wasi:http/proxy` component answering a constant.
    floor_service_wasm,
    "FLOOR_SERVICE_WASM"
);
artifact!(
    /// The example WASI 0.3 service (`examples/users-p3`): no auth code, calls Mangopay
    /// through plain `wasi:http/client@0.3.0`.
    users_p3_wasm,
    "USERS_P3_WASM"
);
artifact!(
    /// Benchmark floor of the middleware (`bench/floor-middleware`): adds `authorization:
    /// Bearer floor` to every request.
    floor_middleware_wasm,
    "FLOOR_MIDDLEWARE_WASM"
);
artifact!(
    /// `mangopay-auth-middleware` (`components/middleware`).
    middleware_wasm,
    "MANGOPAY_AUTH_MIDDLEWARE_WASM"
);
