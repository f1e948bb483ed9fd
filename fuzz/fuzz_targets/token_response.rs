//! Any body of a 2xx token answer: `parse_token_response` must not panic, and whatever it
//! accepts must be a token that can go into an `Authorization: Bearer` header as is.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mangopay_auth::wire::{self, MAX_EXPIRES_IN};

fuzz_target!(|body: &[u8]| {
    let Ok(token) = wire::parse_token_response(body) else {
        return;
    };
    let access_token = token.access_token.expose();
    assert!(!access_token.is_empty(), "empty access token accepted");
    assert!(
        access_token.bytes().all(|b| b.is_ascii_graphic()),
        "access token with a byte a header cannot carry: {access_token:?}"
    );
    assert!(
        token.token_type.eq_ignore_ascii_case("bearer"),
        "token type {:?} accepted",
        token.token_type
    );
    assert!(
        (1..=MAX_EXPIRES_IN).contains(&token.expires_in),
        "expires_in {} accepted",
        token.expires_in
    );
});
