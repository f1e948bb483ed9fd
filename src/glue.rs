//! The WIT glue: `mangopay:auth/auth` exports mapped onto `Client`. Compiled by the root
//! crate for world `component`, and by store-component (with `cfg(shared_store)`) for world
//! `component-with-store`, where clients share their token through the imported store.

use crate::client::{self, Client, HttpRequest as Request, Verdict};
use crate::clock::HostClock;
use crate::config::{
    self, ClientConfig, CoolDownGiven, Environment as Env, RetryGiven, TimeoutsMs,
};
use crate::error::{Error as E, TransportKind as K};
use crate::secret::Secret;
use crate::transport::WasiHttp;
use crate::wire::TokenProblem as P;
use std::cell::OnceCell;
use std::rc::Rc;
use std::time::Duration;

#[cfg(not(shared_store))]
wit_bindgen::generate!({
    world: "component",
    path: "wit",
});

#[cfg(shared_store)]
wit_bindgen::generate!({
    world: "component-with-store",
    path: "../wit",
});

use exports::mangopay::auth::auth::{
    ApiError, AuthStatus, Config, Environment, Error, Guest, GuestClient, HttpRequest,
    HttpResponse, OauthError, ResponseVerdict, StoreHealth, Token, TokenResponseProblem,
    TokenSource, TransportError, TransportKind, UnexpectedResponse,
};

/// A client of this world: with the host's store in `component-with-store`.
fn make_client(config: ClientConfig) -> Result<HostClient, E> {
    #[cfg(shared_store)]
    return Client::with_store(config, WasiHttp, HostClock, Box::new(HostStore));
    #[cfg(not(shared_store))]
    Client::new(config, WasiHttp, HostClock)
}

/// The imported `token-store`, as the client's store.
#[cfg(shared_store)]
struct HostStore;

#[cfg(shared_store)]
impl crate::store::TokenStore for HostStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, crate::store::StoreError> {
        mangopay::auth::token_store::get(key).map_err(crate::store::StoreError)
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, crate::store::StoreError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        mangopay::auth::token_store::compare_and_swap(key, expected, value, ttl_ms)
            .map_err(crate::store::StoreError)
    }

    fn delete(&self, key: &str) -> Result<(), crate::store::StoreError> {
        mangopay::auth::token_store::delete(key).map_err(crate::store::StoreError)
    }
}

type HostClient = Client<WasiHttp, HostClock>;

struct Component;

export!(Component);

thread_local! {
    // Components are single-threaded; the default client lives as long as the instance.
    static DEFAULT_CLIENT: OnceCell<Rc<HostClient>> = const { OnceCell::new() };
}

/// The client made from `MANGOPAY_*` variables on first use. A failure is not remembered,
/// so the error is reported on every call.
fn default_client() -> Result<Rc<HostClient>, Error> {
    DEFAULT_CLIENT.with(|cell| {
        if let Some(client) = cell.get() {
            return Ok(client.clone());
        }
        let config = config::from_env(|name| std::env::var(name).ok()).map_err(to_wit)?;
        let client = Rc::new(make_client(config).map_err(to_wit)?);
        Ok(cell.get_or_init(|| client).clone())
    })
}

impl Guest for Component {
    type Client = HostClient;

    fn get_token() -> Result<Token, Error> {
        default_client()?
            .get_token()
            .map(to_wit_token)
            .map_err(to_wit)
    }

    fn authorize_request(request: HttpRequest) -> Result<HttpRequest, Error> {
        default_client()?
            .authorize_request(from_wit_request(request))
            .map(to_wit_request)
            .map_err(to_wit)
    }

    fn check_response(request: HttpRequest, response: HttpResponse) -> ResponseVerdict {
        match default_client() {
            Ok(client) => check_response(&client, request, response),
            Err(_) => ResponseVerdict::Accepted,
        }
    }

    fn token_status() -> Result<AuthStatus, Error> {
        Ok(to_wit_status(default_client()?.status()))
    }
}

impl GuestClient for HostClient {
    fn create(config: Config) -> Result<exports::mangopay::auth::auth::Client, Error> {
        let timeouts = config
            .timeouts
            .map_or_else(TimeoutsMs::default, |t| TimeoutsMs {
                connect: t.connect_ms,
                first_byte: t.first_byte_ms,
                between_bytes: t.between_bytes_ms,
            });
        let retry = config
            .retry
            .map_or_else(RetryGiven::default, |r| RetryGiven {
                max_attempts: r.max_attempts,
                initial_backoff_ms: r.initial_backoff_ms,
                budget_ms: r.budget_ms,
            });
        let cool_down = config
            .cool_down
            .map_or_else(CoolDownGiven::default, |c| CoolDownGiven {
                initial_seconds: c.initial_seconds,
                max_seconds: c.max_seconds,
            });
        let config = ClientConfig {
            client_id: config.client_id,
            api_key: Secret::new(config.api_key),
            environment: match config.environment {
                Environment::Sandbox => Env::Sandbox,
                Environment::Production => Env::Production,
            },
            base_url: config.base_url,
            refresh_margin_seconds: config.refresh_margin_seconds,
            timeouts,
            retry,
            cool_down,
        };
        let client = make_client(config).map_err(to_wit)?;
        Ok(exports::mangopay::auth::auth::Client::new(client))
    }

    fn get_token(&self) -> Result<Token, Error> {
        Client::get_token(self).map(to_wit_token).map_err(to_wit)
    }

    fn authorize_request(&self, request: HttpRequest) -> Result<HttpRequest, Error> {
        Client::authorize_request(self, from_wit_request(request))
            .map(to_wit_request)
            .map_err(to_wit)
    }

    fn check_response(&self, request: HttpRequest, response: HttpResponse) -> ResponseVerdict {
        check_response(self, request, response)
    }

    fn token_status(&self) -> AuthStatus {
        to_wit_status(self.status())
    }
}

fn to_wit_status(status: client::Status) -> AuthStatus {
    AuthStatus {
        held: status.held,
        source: status.source.map(|s| match s {
            client::Source::InstanceCache => TokenSource::InstanceCache,
            client::Source::SharedStore => TokenSource::SharedStore,
            client::Source::FreshFetch => TokenSource::FreshFetch,
        }),
        expires_in_seconds: status.expires_in_seconds,
        token_requests: status.token_requests,
        cool_down_seconds: seconds(status.cool_down),
        store: match status.store {
            client::StoreHealth::NotConfigured => StoreHealth::NotConfigured,
            client::StoreHealth::Ok => StoreHealth::Ok,
            client::StoreHealth::Unavailable => StoreHealth::Unavailable,
        },
        store_error: status.store_error,
    }
}

fn check_response(
    client: &HostClient,
    request: HttpRequest,
    response: HttpResponse,
) -> ResponseVerdict {
    let request = from_wit_request(request);
    match client.check_response(&request, response.status, &response.headers, &response.body) {
        Verdict::Accepted => ResponseVerdict::Accepted,
        Verdict::TokenRejected(api) => ResponseVerdict::TokenRejected(api.map(to_wit_api_error)),
        Verdict::ScaRequired(url) => ResponseVerdict::ScaRequired(url),
    }
}

/// Whole seconds, rounded up: "retry in 0 s" must not be said while the pause still runs.
fn seconds(d: Option<Duration>) -> Option<u64> {
    d.map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

fn to_wit_api_error(e: crate::error::ApiError) -> ApiError {
    ApiError {
        status: e.status,
        message: e.message,
        error_type: e.error_type,
        id: e.id,
        date: e.date,
        retry_in_seconds: seconds(e.retry_in),
    }
}

fn to_wit_token(token: client::Token) -> Token {
    Token {
        access_token: token.access_token,
        token_type: token.token_type,
        expires_in_seconds: token.expires_in_seconds,
        expires_at_unix_seconds: token.expires_at_unix_seconds,
    }
}

fn from_wit_request(request: HttpRequest) -> Request {
    Request {
        method: request.method,
        url: request.url,
        headers: request.headers,
    }
}

fn to_wit_request(request: Request) -> HttpRequest {
    HttpRequest {
        method: request.method,
        url: request.url,
        headers: request.headers,
    }
}

fn to_wit(error: E) -> Error {
    let oauth = |e: crate::error::OAuthError| OauthError {
        status: e.status,
        error: e.error,
        description: e.description,
        retry_in_seconds: seconds(e.retry_in),
    };
    match error {
        E::InvalidCredentials(e) => Error::InvalidCredentials(to_wit_api_error(e)),
        E::LockedOut(e) => Error::LockedOut(oauth(e)),
        E::OAuth(e) => Error::Oauth(oauth(e)),
        E::InvalidConfig(why) => Error::InvalidConfig(why),
        E::InsecureUrl(why) => Error::InsecureUrl(why),
        E::ForeignHost(why) => Error::ForeignHost(why),
        E::InvalidRequest(why) => Error::InvalidRequest(why),
        E::Transport(e) => Error::Transport(TransportError {
            kind: match e.kind {
                K::Dns => TransportKind::Dns,
                K::ConnectionRefused => TransportKind::ConnectionRefused,
                K::Timeout => TransportKind::Timeout,
                K::Tls => TransportKind::Tls,
                K::ConnectionLost => TransportKind::ConnectionLost,
                K::Denied => TransportKind::Denied,
                K::Other => TransportKind::Other,
            },
            detail: e.detail,
        }),
        E::MalformedTokenResponse(problem) => Error::MalformedTokenResponse(match problem {
            P::NotJson => TokenResponseProblem::NotJson,
            P::MissingAccessToken => TokenResponseProblem::MissingAccessToken,
            P::InvalidAccessToken => TokenResponseProblem::InvalidAccessToken,
            P::UnsupportedTokenType => TokenResponseProblem::UnsupportedTokenType,
            P::InvalidExpiresIn => TokenResponseProblem::InvalidExpiresIn,
            P::BodyTooLarge => TokenResponseProblem::BodyTooLarge,
        }),
        E::UnexpectedResponse(e) => Error::UnexpectedResponse(UnexpectedResponse {
            status: e.status,
            excerpt: e.excerpt,
            retry_in_seconds: seconds(e.retry_in),
        }),
    }
}
