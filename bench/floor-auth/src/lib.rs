//! Benchmark floor for the cached path: exports the same `standalone` world as mangopay-auth
//! (`../../wit/auth.wit`), but `authorize-request` only appends a constant Authorization
//! header and every other call answers a constant. What a call into it costs is what the
//! component model and wasmtime charge for the signature alone.

/// The constant token: 32 characters, the shape of a mock token.
pub const TOKEN: &str = "0123456789abcdef0123456789abcdef";
/// The constant header value.
pub const BEARER: &str = "Bearer 0123456789abcdef0123456789abcdef";

#[cfg(target_arch = "wasm32")]
mod glue {
    wit_bindgen::generate!({
        world: "standalone",
        path: "../../wit",
    });

    use exports::mangopay::auth::auth::{
        ApiRequest, ApiResponse, AuthStatus, Config, Error, Guest, GuestClient, HttpRequest,
        HttpResponse, ResponseVerdict, StoreHealth, Token,
    };

    struct Floor;

    struct FloorClient;

    export!(Floor);

    fn token() -> Token {
        Token {
            access_token: super::TOKEN.to_owned(),
            token_type: "bearer".to_owned(),
            expires_in_seconds: 1200,
            expires_at_unix_seconds: 1_795_825_200,
        }
    }

    fn status() -> AuthStatus {
        AuthStatus {
            held: true,
            source: None,
            expires_in_seconds: Some(1200),
            token_requests: 0,
            cool_down_seconds: None,
            store: StoreHealth::NotConfigured,
            store_error: None,
        }
    }

    /// A constant 200, without sending anything.
    fn answer(request: ApiRequest) -> Result<ApiResponse, Error> {
        Ok(ApiResponse {
            status: 200,
            headers: request.headers,
            body: Vec::new(),
            verdict: ResponseVerdict::Accepted,
        })
    }

    const BASE_URL: &str = "https://api.sandbox.mangopay.com";

    fn authorize(mut request: HttpRequest) -> Result<HttpRequest, Error> {
        request
            .headers
            .push(("Authorization".to_owned(), super::BEARER.to_owned()));
        Ok(request)
    }

    impl Guest for Floor {
        type Client = FloorClient;

        fn get_token() -> Result<Token, Error> {
            Ok(token())
        }

        fn authorize_request(request: HttpRequest) -> Result<HttpRequest, Error> {
            authorize(request)
        }

        fn check_response(_: HttpRequest, _: HttpResponse) -> ResponseVerdict {
            ResponseVerdict::Accepted
        }

        fn token_status() -> Result<AuthStatus, Error> {
            Ok(status())
        }

        fn send(request: ApiRequest) -> Result<ApiResponse, Error> {
            answer(request)
        }

        fn base_url() -> Result<String, Error> {
            Ok(BASE_URL.to_owned())
        }
    }

    impl GuestClient for FloorClient {
        fn create(_: Config) -> Result<exports::mangopay::auth::auth::Client, Error> {
            Ok(exports::mangopay::auth::auth::Client::new(FloorClient))
        }

        fn get_token(&self) -> Result<Token, Error> {
            Ok(token())
        }

        fn authorize_request(&self, request: HttpRequest) -> Result<HttpRequest, Error> {
            authorize(request)
        }

        fn check_response(&self, _: HttpRequest, _: HttpResponse) -> ResponseVerdict {
            ResponseVerdict::Accepted
        }

        fn token_status(&self) -> AuthStatus {
            status()
        }

        fn send(&self, request: ApiRequest) -> Result<ApiResponse, Error> {
            answer(request)
        }

        fn base_url(&self) -> String {
            BASE_URL.to_owned()
        }
    }
}
