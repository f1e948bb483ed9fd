//! The imported `token-store`, as the core client's store (as the with-token-store world has it).

use crate::bindings;

mangopay_auth_wasi::host_token_store!(bindings::mangopay::auth::token_store);
