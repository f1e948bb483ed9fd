//! A client: one set of credentials, its token cache, and the two operations on it.
//! Generic over the transport and the clock so the whole lifecycle is unit-tested natively.

use crate::cache::{self, CachedToken};
use crate::config::{ClientConfig, Settings, Timeouts};
use crate::error::{self, ApiError, Error, RawResponse, TransportError};
use crate::origin::{Origin, UrlError};
use crate::retry;
use crate::store::{self, Keys, SharedToken, StoreError, TokenStore};
use crate::wire;
use std::cell::RefCell;
use std::time::Duration;
use zeroize::Zeroize;

/// Sends the token request and reads the answer. Implemented over wasi:http in the component.
pub trait Transport {
    fn post_token(&self, request: &TokenRequest<'_>) -> Result<RawResponse, TransportError>;
}

/// Time as the host reports it.
pub trait Clock {
    /// Monotonic time since an arbitrary origin: what expiry is measured on.
    fn monotonic(&self) -> Duration;
    /// Wall time since the Unix epoch: to report the expiry instant and read HTTP dates.
    fn wall(&self) -> Duration;
    /// Waits (between retries).
    fn sleep(&self, duration: Duration);
}

/// Everything the transport needs to send one token request.
pub struct TokenRequest<'a> {
    pub origin: &'a Origin,
    pub path: &'static str,
    pub headers: [(&'static str, &'a str); 5],
    pub body: &'static str,
    pub timeouts: Timeouts,
}

/// A token as handed to the caller.
#[derive(Debug, PartialEq, Eq)]
pub struct Token {
    pub access_token: String,
    pub token_type: String,
    pub expires_in_seconds: u64,
    pub expires_at_unix_seconds: u64,
}

/// An HTTP request to authorize.
#[derive(Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// What a 401 from the Mangopay API means, as `check_response` reads it.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Not a 401: nothing for authentication to do.
    Accepted,
    /// The token was refused. If it was the held one it is dropped, so the next call fetches a
    /// new one; the API error of the answer, if it had one, is carried along.
    TokenRejected(Option<ApiError>),
    /// Strong Customer Authentication is pending: the token is fine and kept; the user must
    /// complete the action at the redirect URL (when the challenge names one).
    ScaRequired(Option<String>),
}

/// Where the token of the latest call came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    InstanceCache,
    SharedStore,
    FreshFetch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreHealth {
    NotConfigured,
    Ok,
    Unavailable,
}

/// `token-status`: what a client holds and has done. No secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub held: bool,
    pub source: Option<Source>,
    pub expires_in_seconds: Option<u64>,
    pub token_requests: u64,
    pub cool_down: Option<Duration>,
    pub store: StoreHealth,
    pub store_error: Option<String>,
}

/// The shared store of a client and its keys.
struct Shared {
    store: Box<dyn TokenStore>,
    keys: Keys,
}

/// What the shared store gave.
enum Acquired {
    /// A usable token another instance fetched.
    Adopted(CachedToken),
    /// This instance holds the lease: it fetches and publishes, replacing `expected`.
    Leader { expected: Option<Vec<u8>> },
    /// Fetch without the store (it failed, or the lease holder took too long).
    Direct,
}

/// A lease value: random, so a holder could tell its own lease from another's.
fn lease_value() -> Vec<u8> {
    format!("{:016x}", retry::jitter().to_bits()).into_bytes()
}

/// A held token and what the client remembers between calls.
#[derive(Default)]
struct State {
    held: Option<CachedToken>,
    source: Option<Source>,
    store_error: Option<String>,
    /// No token request before `until`; meanwhile calls get `error` (or the held token while
    /// it lives).
    block: Option<Block>,
    /// Consecutive credential failures, for the doubling cool-down.
    strikes: u32,
    token_requests: u64,
}

struct Block {
    until: Duration,
    error: Error,
}

/// A failed token request, with the server's `Retry-After` if it sent one.
struct Failure {
    error: Error,
    retry_after: Option<Duration>,
}

pub struct Client<T, C> {
    settings: Settings,
    state: RefCell<State>,
    transport: T,
    clock: C,
    shared: Option<Shared>,
}

impl<T: Transport, C: Clock> Client<T, C> {
    /// Validates the configuration; sends nothing.
    pub fn new(config: ClientConfig, transport: T, clock: C) -> Result<Self, Error> {
        Ok(Client {
            settings: Settings::new(config)?,
            state: RefCell::new(State::default()),
            transport,
            clock,
            shared: None,
        })
    }

    /// A client that shares its token with other instances through `store`.
    pub fn with_store(
        config: ClientConfig,
        transport: T,
        clock: C,
        store: Box<dyn TokenStore>,
    ) -> Result<Self, Error> {
        let mut client = Client::new(config, transport, clock)?;
        client.shared = Some(Shared {
            keys: Keys::new(&client.settings),
            store,
        });
        Ok(client)
    }

    pub fn get_token(&self) -> Result<Token, Error> {
        self.with_token(|token, now| Token {
            access_token: token.access_token.expose().to_owned(),
            token_type: token.token_type.clone(),
            expires_in_seconds: token.seconds_left(now),
            expires_at_unix_seconds: token.expires_at_unix_seconds(),
        })
    }

    /// Adds exactly one `Authorization: Bearer` header. The request is checked before any
    /// token is fetched, so a refused request never costs a token request.
    pub fn authorize_request(&self, mut request: HttpRequest) -> Result<HttpRequest, Error> {
        check_request(&request, &self.settings)?;
        let bearer = self.with_token(|token, _| token.bearer.expose().to_owned())?;
        request
            .headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
        request.headers.push(("Authorization".to_owned(), bearer));
        Ok(request)
    }

    /// Reads the answer to an API call this client authorized. A 401 with a Strong Customer
    /// Authentication challenge leaves the token alone; any other 401 drops the held token if
    /// it is the one `request` carried (a token renewed since is kept).
    pub fn check_response(
        &self,
        request: &HttpRequest,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Verdict {
        if status != 401 {
            return Verdict::Accepted;
        }
        if let Some(challenge) =
            header_values(headers, "www-authenticate").find(|v| wire::is_sca_challenge(v))
        {
            return Verdict::ScaRequired(wire::sca_redirect_url(challenge));
        }
        let sent = header_values(&request.headers, "authorization")
            .find_map(|v| v.strip_prefix("Bearer "));
        let mut state = self.state.borrow_mut();
        let held_was_sent = state
            .held
            .as_ref()
            .is_some_and(|held| sent.is_none_or(|sent| sent == held.access_token.expose()));
        if held_was_sent {
            state.held = None;
        }
        let [key, credential] = self.settings.secrets();
        let secrets = [key, credential, sent.unwrap_or_default()];
        let api_error = match wire::parse_error_body(body) {
            Some(wire::ErrorBody::Api {
                message,
                error_type,
                id,
                date,
            }) => Some(ApiError {
                status,
                message: error::quote(&message, &secrets),
                error_type: error::quote(&error_type, &secrets),
                id: id.as_deref().map(|id| error::quote(id, &secrets)),
                date,
                retry_in: None,
            }),
            _ => None,
        };
        Verdict::TokenRejected(api_error)
    }

    /// What the client holds and has done; sends nothing.
    pub fn status(&self) -> Status {
        let now = self.clock.monotonic();
        let state = self.state.borrow();
        let alive = state.held.as_ref().filter(|t| t.is_alive(now));
        Status {
            held: alive.is_some(),
            source: state.source,
            expires_in_seconds: alive.map(|t| t.seconds_left(now)),
            token_requests: state.token_requests,
            cool_down: state
                .block
                .as_ref()
                .filter(|b| now < b.until)
                .map(|b| b.until - now),
            store: match (&self.shared, &state.store_error) {
                (None, _) => StoreHealth::NotConfigured,
                (Some(_), None) => StoreHealth::Ok,
                (Some(_), Some(_)) => StoreHealth::Unavailable,
            },
            store_error: state.store_error.clone(),
        }
    }

    /// Runs `f` on a usable token. The held one while it is before its refresh point (the
    /// cached path: one clock read, no allocation); otherwise see `renew`.
    fn with_token<R>(&self, f: impl FnOnce(&CachedToken, Duration) -> R) -> Result<R, Error> {
        let now = self.clock.monotonic();
        {
            let mut state = self.state.borrow_mut();
            if let Some(token) = state.held.as_ref().filter(|t| t.is_usable(now)) {
                let result = f(token, now);
                state.source = Some(Source::InstanceCache);
                return Ok(result);
            }
        }
        let now = self.renew(now)?;
        let state = self.state.borrow();
        match state.held.as_ref() {
            Some(token) => Ok(f(token, now)),
            None => Err(Error::InvalidRequest("no token held".into())),
        }
    }

    /// Makes the held token one that may be sent, or says why there is none. Unless a
    /// cool-down or `Retry-After` forbids it: a token shared by another instance, else one
    /// fetched (by this instance, or by the one holding the store's lease while this one
    /// waits). A held token that has not expired is served through failed renewals.
    /// Returns the monotonic time after the work.
    fn renew(&self, now: Duration) -> Result<Duration, Error> {
        {
            let mut state = self.state.borrow_mut();
            if let Some(block) = state.block.as_ref().filter(|b| now < b.until) {
                if state.held.as_ref().is_some_and(|t| t.is_alive(now)) {
                    state.source = Some(Source::InstanceCache);
                    return Ok(now);
                }
                return Err(block.error.clone().with_retry_in(block.until - now));
            }
        }
        let lead = match self.shared.as_ref().map(|shared| self.acquire(shared)) {
            Some(Acquired::Adopted(token)) => {
                let mut state = self.state.borrow_mut();
                state.held = Some(token);
                state.source = Some(Source::SharedStore);
                return Ok(self.clock.monotonic());
            }
            Some(Acquired::Leader { expected }) => Some(expected),
            Some(Acquired::Direct) | None => None,
        };
        let fetched = self.fetch();
        let now = self.clock.monotonic();
        if let (Some(shared), Some(expected)) = (&self.shared, &lead) {
            self.publish(shared, fetched.as_ref().ok(), expected.as_deref());
        }
        let mut state = self.state.borrow_mut();
        let failure = match fetched {
            Ok(token) => {
                state.block = None;
                state.strikes = 0;
                state.held = Some(token);
                state.source = Some(Source::FreshFetch);
                return Ok(now);
            }
            Err(failure) => failure,
        };
        let alive = state.held.as_ref().is_some_and(|t| t.is_alive(now));
        let cool_down = self.settings.cool_down;
        let pause = if retry::is_credential_failure(&failure.error) {
            state.strikes = state.strikes.saturating_add(1);
            Some(retry::cool_down(
                cool_down.initial,
                cool_down.max,
                state.strikes,
            ))
        } else if let Some(retry_after) = failure.retry_after {
            Some(retry_after.min(cool_down.max))
        } else if alive {
            Some(retry::RENEWAL_RETRY)
        } else {
            None
        };
        if let Some(pause) = pause {
            state.block = Some(Block {
                until: now.saturating_add(pause),
                error: failure.error.clone(),
            });
        }
        if alive {
            state.source = Some(Source::InstanceCache);
            return Ok(now);
        }
        Err(match pause {
            Some(pause) => failure.error.with_retry_in(pause),
            None => failure.error,
        })
    }

    /// A usable shared token, or the lease to fetch one, waiting a bounded time while another
    /// instance holds the lease. Any store failure means fetching directly.
    fn acquire(&self, shared: &Shared) -> Acquired {
        let pauses = std::iter::once(0).chain(store::WAIT_SCHEDULE_MS);
        for pause in pauses {
            if pause > 0 {
                self.clock.sleep(Duration::from_millis(pause));
            }
            let expected = match shared.store.get(&shared.keys.token) {
                Ok(value) => value,
                Err(e) => return self.store_failed(e),
            };
            let wall = self.clock.wall();
            let found = expected
                .as_deref()
                .and_then(|value| SharedToken::decode(value, &shared.keys.id));
            if let Some(found) = found {
                let margin = cache::effective_margin(
                    self.settings.refresh_margin,
                    Duration::from_secs(found.expires_in),
                );
                if found.remaining(wall) > margin {
                    self.store_ok();
                    let now = self.clock.monotonic();
                    let margin = self.settings.refresh_margin;
                    return Acquired::Adopted(CachedToken::adopt(found, now, wall, margin));
                }
            }
            let lease = shared.store.compare_and_swap(
                &shared.keys.lease,
                None,
                &lease_value(),
                store::LEASE_TTL,
            );
            match lease {
                Ok(true) => {
                    self.store_ok();
                    return Acquired::Leader { expected };
                }
                // Another instance is fetching: look again after a pause.
                Ok(false) => {}
                Err(e) => return self.store_failed(e),
            }
        }
        Acquired::Direct
    }

    /// Shares a fetched token (replacing what was read, stale, foreign or corrupt) and
    /// releases the lease, also after a failed fetch so that waiters stop waiting.
    fn publish(&self, shared: &Shared, token: Option<&CachedToken>, expected: Option<&[u8]>) {
        if let Some(token) = token {
            let ttl = Duration::from_secs(token.seconds_left(self.clock.monotonic()));
            let value = token.to_shared().encode(&shared.keys.id);
            let stored = shared.store.compare_and_swap(
                &shared.keys.token,
                expected,
                value.expose().as_bytes(),
                ttl,
            );
            if let Err(e) = stored {
                self.store_failed(e);
                return;
            }
        }
        match shared.store.delete(&shared.keys.lease) {
            Ok(()) => self.store_ok(),
            Err(e) => {
                self.store_failed(e);
            }
        }
    }

    fn store_ok(&self) {
        self.state.borrow_mut().store_error = None;
    }

    fn store_failed(&self, error: StoreError) -> Acquired {
        self.state.borrow_mut().store_error = Some(error.0);
        Acquired::Direct
    }

    /// Token requests until one succeeds, a fault is not transient, or the attempts or the
    /// time budget run out.
    fn fetch(&self) -> Result<CachedToken, Box<Failure>> {
        let policy = self.settings.retry;
        let started = self.clock.monotonic();
        let mut attempt = 1;
        loop {
            let failure = match self.fetch_once() {
                Ok(token) => return Ok(token),
                Err(failure) => failure,
            };
            if attempt >= policy.max_attempts || !retry::is_transient(&failure.error) {
                return Err(failure);
            }
            let wait = failure.retry_after.unwrap_or_else(|| {
                retry::backoff(policy.initial_backoff, attempt, retry::jitter())
            });
            let elapsed = self.clock.monotonic().saturating_sub(started);
            if elapsed.saturating_add(wait) > policy.budget {
                return Err(failure);
            }
            self.clock.sleep(wait);
            attempt += 1;
        }
    }

    // Failures are boxed: the error path is cold and the success path should stay small.
    fn fetch_once(&self) -> Result<CachedToken, Box<Failure>> {
        let settings = &self.settings;
        let now = self.clock.monotonic();
        let wall = self.clock.wall();
        let request = TokenRequest {
            origin: &settings.base,
            path: wire::TOKEN_PATH,
            headers: wire::token_request_headers(settings.basic_authorization.expose()),
            body: wire::TOKEN_BODY,
            timeouts: settings.timeouts,
        };
        self.state.borrow_mut().token_requests += 1;
        let mut response = self.transport.post_token(&request).map_err(|e| {
            Box::new(Failure {
                error: Error::Transport(e),
                retry_after: None,
            })
        })?;
        let judged = self.judge(&response, now, wall);
        // The body held the token (or an echo of a secret): wipe it, as `Secret` does.
        response.body.zeroize();
        judged
    }

    /// The token in a complete answer, or the failure it stands for.
    fn judge(
        &self,
        response: &RawResponse,
        now: Duration,
        wall: Duration,
    ) -> Result<CachedToken, Box<Failure>> {
        let settings = &self.settings;
        let retry_after = response
            .retry_after
            .as_deref()
            .and_then(|value| retry::parse_retry_after(value, wall));
        let success = (200..300).contains(&response.status) && !response.truncated;
        if success {
            match wire::parse_token_response(&response.body) {
                Ok(token) => {
                    return Ok(CachedToken::new(token, now, wall, settings.refresh_margin));
                }
                // A 2xx carrying an error body is that error, not a malformed token.
                Err(problem) if wire::parse_error_body(&response.body).is_none() => {
                    return Err(Box::new(Failure {
                        error: Error::MalformedTokenResponse(problem),
                        retry_after,
                    }));
                }
                Err(_) => {}
            }
        }
        let state = self.state.borrow();
        let [key, credential] = settings.secrets();
        let held = state.held.as_ref().map_or("", |t| t.access_token.expose());
        let secrets = [key, credential, held];
        Err(Box::new(Failure {
            error: error::classify_token_failure(response, &secrets),
            retry_after,
        }))
    }
}

/// Refuses a request the token must not be attached to.
fn check_request(request: &HttpRequest, settings: &Settings) -> Result<(), Error> {
    let invalid = |why: String| Err(Error::InvalidRequest(why));
    if request.method.is_empty() || !request.method.bytes().all(is_token_char) {
        return invalid("method is not an HTTP token".into());
    }
    for (index, (name, value)) in request.headers.iter().enumerate() {
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return invalid(format!("header {index}: the name is not an HTTP token"));
        }
        if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
            return invalid(format!(
                "header {index} ({name}): the value contains CR, LF or NUL"
            ));
        }
    }
    if Origin::has_prefix_of(&request.url, &settings.base_url) {
        return Ok(());
    }
    let base = &settings.base;
    let (origin, _) = Origin::parse(&request.url).map_err(|e| match e {
        UrlError::Insecure => {
            Error::InsecureUrl("the request URL uses http:// to a host that is not loopback".into())
        }
        UrlError::Invalid(why) => Error::InvalidRequest(format!("url: {why}")),
    })?;
    if origin != *base {
        return Err(Error::ForeignHost(format!(
            "{} is not this client's base URL {}",
            origin.to_url(),
            base.to_url()
        )));
    }
    Ok(())
}

fn header_values<'a>(
    headers: &'a [(String, String)],
    wanted: &'a str,
) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |(name, _)| name.eq_ignore_ascii_case(wanted))
        .map(|(_, value)| value.as_str())
}

/// RFC 9110 `tchar`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;
    use crate::error::{OAuthError, TransportKind, UnexpectedResponse};
    use crate::secret::Secret;
    use std::cell::Cell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    type Answer = Result<RawResponse, TransportError>;

    /// Answers token requests from a script (the last answer repeats) and counts them.
    #[derive(Clone, Default)]
    struct FakeTransport {
        sent: Rc<Cell<u32>>,
        script: Rc<RefCell<VecDeque<Answer>>>,
    }

    fn answer(status: u16, body: &str) -> Answer {
        Ok(RawResponse {
            status,
            body: body.as_bytes().to_vec(),
            ..RawResponse::default()
        })
    }

    fn refused() -> Answer {
        Err(TransportError {
            kind: TransportKind::ConnectionRefused,
            detail: "refused".into(),
        })
    }

    impl FakeTransport {
        fn answer(&self, status: u16, body: &str) {
            self.script(vec![answer(status, body)]);
        }

        fn script(&self, answers: Vec<Answer>) {
            *self.script.borrow_mut() = answers.into();
        }
    }

    impl Transport for FakeTransport {
        fn post_token(&self, _: &TokenRequest<'_>) -> Result<RawResponse, TransportError> {
            self.sent.set(self.sent.get() + 1);
            let mut script = self.script.borrow_mut();
            let next = if script.len() > 1 {
                script.pop_front()
            } else {
                script.front().map(|a| match a {
                    Ok(r) => Ok(RawResponse {
                        status: r.status,
                        retry_after: r.retry_after.clone(),
                        body: r.body.clone(),
                        truncated: r.truncated,
                    }),
                    Err(e) => Err(e.clone()),
                })
            };
            next.expect("a scripted answer")
        }
    }

    #[derive(Clone, Default)]
    struct FakeClock {
        now: Rc<Cell<Duration>>,
        slept: Rc<Cell<Duration>>,
    }

    impl FakeClock {
        fn advance(&self, by: Duration) {
            self.now.set(self.now.get() + by);
        }
    }

    impl Clock for FakeClock {
        fn monotonic(&self) -> Duration {
            self.now.get()
        }
        fn wall(&self) -> Duration {
            Duration::from_secs(1_800_000_000) + self.now.get()
        }
        fn sleep(&self, duration: Duration) {
            self.slept.set(self.slept.get() + duration);
            self.advance(duration);
        }
    }

    const BASE: &str = "https://api.sandbox.mangopay.com";
    const INVALID: &str = r#"{"Message":"The authorization credentials are not valid","Type":"invalid_credentials","Id":"x","Date":1.0,"errors":null}"#;
    const LOCKOUT: &str = r#"{"error":"unauthorized_client","error_description":"This account has been temporarily locked for security reasons. Please try again later."}"#;

    fn config() -> ClientConfig {
        ClientConfig::new(
            "my-client".into(),
            Secret::new("my-api-key".into()),
            Environment::Sandbox,
        )
    }

    fn client(transport: &FakeTransport, clock: &FakeClock) -> Client<FakeTransport, FakeClock> {
        Client::new(config(), transport.clone(), clock.clone()).expect("valid config")
    }

    fn token_body(token: &str, expires_in: u64) -> String {
        format!(r#"{{"access_token":"{token}","token_type":"bearer","expires_in":{expires_in}}}"#)
    }

    fn request(url: &str, headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn one_token_request_per_lifetime() {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let client = client(&transport, &clock);
        transport.answer(200, &token_body("first", 1200));
        for _ in 0..1000 {
            let token = client.get_token().expect("token");
            assert_eq!(token.access_token, "first");
            clock.advance(Duration::from_millis(1));
        }
        assert_eq!(transport.sent.get(), 1);
        // 1 s in; the refresh point is 1140 s.
        clock.advance(secs(1138));
        transport.answer(200, &token_body("second", 1200));
        assert_eq!(client.get_token().expect("token").access_token, "first");
        clock.advance(secs(1));
        let token = client.get_token().expect("token");
        assert_eq!(token.access_token, "second");
        assert_eq!(token.expires_in_seconds, 1200);
        assert_eq!(transport.sent.get(), 2);
        assert_eq!(client.status().token_requests, 2);
    }

    #[test]
    fn token_reports_time_left_and_wall_expiry() {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let client = client(&transport, &clock);
        transport.answer(200, &token_body("t", 7200));
        clock.advance(secs(10));
        client.get_token().expect("token");
        clock.advance(secs(100));
        let token = client.get_token().expect("token");
        assert_eq!(token.expires_in_seconds, 7100);
        assert_eq!(token.expires_at_unix_seconds, 1_800_000_000 + 10 + 7200);
    }

    #[test]
    fn authorize_replaces_authorization_and_keeps_the_rest() {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let client = client(&transport, &clock);
        transport.answer(200, &token_body("tok", 1200));
        let authorized = client
            .authorize_request(request(
                &format!("{BASE}/v2.01/my-client/users?page=2"),
                &[
                    ("authorization", "Basic old"),
                    ("Accept", "application/json"),
                    ("AUTHORIZATION", "x"),
                ],
            ))
            .expect("authorized");
        assert_eq!(
            authorized.headers,
            vec![
                ("Accept".to_string(), "application/json".to_string()),
                ("Authorization".to_string(), "Bearer tok".to_string()),
            ]
        );
    }

    #[test]
    fn refused_requests_cost_no_token_request() {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let client = client(&transport, &clock);
        transport.answer(200, &token_body("tok", 1200));
        let refusals = [
            (request("https://evil.example/v2.01/users", &[]), "foreign"),
            (
                request("https://api.sandbox.mangopay.com:444/", &[]),
                "foreign",
            ),
            (
                request("https://api.mangopay.com/v2.01/users", &[]),
                "foreign",
            ),
            (
                request("http://api.sandbox.mangopay.com/v2.01/users", &[]),
                "insecure",
            ),
            (request("/v2.01/users", &[]), "invalid"),
            (
                request(&format!("{BASE}/"), &[("X-A", "b\r\nInjected: 1")]),
                "invalid",
            ),
            (request(&format!("{BASE}/"), &[("X-A", "b\0")]), "invalid"),
            (request(&format!("{BASE}/"), &[("X A", "b")]), "invalid"),
        ];
        for (req, kind) in refusals {
            let url = req.url.clone();
            let got = client.authorize_request(req).expect_err("refused");
            let matched = match kind {
                "foreign" => matches!(got, Error::ForeignHost(_)),
                "insecure" => matches!(got, Error::InsecureUrl(_)),
                _ => matches!(got, Error::InvalidRequest(_)),
            };
            assert!(matched, "{url}: {got:?}");
        }
        let mut bad_method = request(&format!("{BASE}/"), &[]);
        bad_method.method = "GET /x".into();
        assert!(matches!(
            client.authorize_request(bad_method),
            Err(Error::InvalidRequest(_))
        ));
        assert_eq!(transport.sent.get(), 0);
    }

    #[test]
    fn failures_are_typed_and_the_client_recovers() {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let client = client(&transport, &clock);
        transport.answer(
            200,
            r#"{"access_token":"t","token_type":"mac","expires_in":5}"#,
        );
        assert_eq!(
            client.get_token(),
            Err(Error::MalformedTokenResponse(
                wire::TokenProblem::UnsupportedTokenType
            ))
        );
        transport.answer(404, "my-api-key leaked?");
        assert_eq!(
            client.get_token(),
            Err(Error::UnexpectedResponse(UnexpectedResponse {
                status: 404,
                excerpt: error::WITHHELD.into(),
                retry_in: None,
            }))
        );
        transport.answer(200, LOCKOUT);
        assert!(
            matches!(
                client.get_token(),
                Err(Error::LockedOut(OAuthError { status: 200, .. }))
            ),
            "a 2xx with an OAuth error body is that error"
        );
        clock.advance(secs(60));
        transport.answer(200, &token_body("ok", 60));
        assert_eq!(client.get_token().expect("recovers").access_token, "ok");
        assert_eq!(transport.sent.get(), 4);
    }

    #[test]
    fn credential_failures_cool_down_doubling() {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let client = client(&transport, &clock);
        transport.answer(401, INVALID);
        // 1,000 calls across 10 minutes: requests at 0, 60, 180 and 420 s.
        let mut sent_at = Vec::new();
        for call in 0..1000u64 {
            let before = transport.sent.get();
            let error = client.get_token().expect_err("refused");
            if transport.sent.get() > before {
                sent_at.push(clock.monotonic().as_secs());
            }
            let Error::InvalidCredentials(e) = error else {
                panic!("call {call}: {error:?}");
            };
            let retry_in = e.retry_in.expect("says when to retry");
            assert!(
                retry_in > Duration::ZERO && retry_in <= secs(480),
                "{retry_in:?}"
            );
            clock.advance(Duration::from_millis(600));
        }
        assert_eq!(sent_at, vec![0, 60, 180, 420]);
    }

    #[test]
    fn lockout_cools_down_and_success_resets_it() {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let client = client(&transport, &clock);
        transport.answer(400, LOCKOUT);
        let error = client.get_token().expect_err("locked");
        assert!(matches!(&error, Error::LockedOut(e) if e.retry_in == Some(secs(60))));
        clock.advance(secs(59));
        assert!(
            matches!(client.get_token(), Err(Error::LockedOut(e)) if e.retry_in == Some(secs(1)))
        );
        assert_eq!(transport.sent.get(), 1);
        clock.advance(secs(1));
        transport.answer(200, &token_body("back", 1200));
        assert_eq!(client.get_token().expect("token").access_token, "back");
        clock.advance(secs(1200));
        transport.answer(400, LOCKOUT);
        assert!(
            matches!(client.get_token(), Err(Error::LockedOut(e)) if e.retry_in == Some(secs(60)))
        );
        assert_eq!(transport.sent.get(), 3);
    }

    #[test]
    fn transient_faults_are_retried_with_backoff_inside_the_budget() {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let client = client(&transport, &clock);
        transport.script(vec![
            refused(),
            answer(503, "busy"),
            answer(200, &token_body("third", 1200)),
        ]);
        assert_eq!(client.get_token().expect("token").access_token, "third");
        assert_eq!(transport.sent.get(), 3);
        // Full jitter: at most 200 ms then 400 ms.
        assert!(clock.slept.get() <= Duration::from_millis(600));

        transport.script(vec![answer(500, "down")]);
        clock.advance(secs(1200));
        let error = client.get_token().expect_err("down");
        assert!(
            matches!(&error, Error::UnexpectedResponse(r) if r.status == 500 && r.retry_in.is_none())
        );
        assert_eq!(transport.sent.get(), 6, "three attempts, no more");
        // Not retried at all: other 4xx.
        transport.answer(400, r#"{"error":"invalid_request"}"#);
        assert!(matches!(client.get_token(), Err(Error::OAuth(_))));
        assert_eq!(transport.sent.get(), 7);
    }

    #[test]
    fn retry_after_is_honoured_and_remembered() {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let client = client(&transport, &clock);
        transport.script(vec![Ok(RawResponse {
            status: 429,
            retry_after: Some("120".into()),
            body: b"slow down".to_vec(),
            truncated: false,
        })]);
        let error = client.get_token().expect_err("rate limited");
        assert!(
            matches!(&error, Error::UnexpectedResponse(r) if r.status == 429 && r.retry_in == Some(secs(120)))
        );
        assert_eq!(
            transport.sent.get(),
            1,
            "a 120 s wait does not fit the 10 s budget"
        );
        clock.advance(secs(119));
        assert!(client.get_token().is_err());
        assert_eq!(transport.sent.get(), 1);
        // Within the budget, the wait is taken and the call succeeds.
        clock.advance(secs(1));
        transport.script(vec![
            Ok(RawResponse {
                status: 503,
                retry_after: Some("2".into()),
                ..RawResponse::default()
            }),
            answer(200, &token_body("after", 1200)),
        ]);
        assert_eq!(client.get_token().expect("token").access_token, "after");
        assert_eq!(clock.slept.get(), secs(2));
        // A huge Retry-After is capped at the cool-down maximum (15 min).
        clock.advance(secs(1200));
        transport.script(vec![Ok(RawResponse {
            status: 503,
            retry_after: Some("999999".into()),
            ..RawResponse::default()
        })]);
        assert!(
            matches!(client.get_token(), Err(Error::UnexpectedResponse(r)) if r.retry_in == Some(secs(900)))
        );
    }

    #[test]
    fn a_live_token_is_served_through_failed_renewals() {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let client = client(&transport, &clock);
        transport.answer(200, &token_body("old", 1200));
        client.get_token().expect("token");
        clock.advance(secs(1140));
        transport.script(vec![refused()]);
        assert_eq!(client.get_token().expect("held").access_token, "old");
        let sent = transport.sent.get();
        assert_eq!(sent, 4, "one fetch plus two retries");
        // No new attempt for 5 s: the held token is served.
        assert_eq!(client.get_token().expect("held").access_token, "old");
        assert_eq!(transport.sent.get(), sent);
        // Never once fewer than 5 s of life remain.
        clock.advance(secs(1200 - 1140 - 5));
        let error = client.get_token().expect_err("expired for sending");
        assert!(matches!(error, Error::Transport(_)));
    }

    #[test]
    fn check_response_reads_401s() {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let client = client(&transport, &clock);
        transport.answer(200, &token_body("t1", 1200));
        let sent = client
            .authorize_request(request(&format!("{BASE}/v2.01/my-client/users"), &[]))
            .expect("authorized");
        assert_eq!(
            client.check_response(&sent, 200, &[], b"[]"),
            Verdict::Accepted
        );

        let sca = vec![(
            "WWW-Authenticate".to_string(),
            "PendingUserAction RedirectUrl=https://sca.example/x".to_string(),
        )];
        assert_eq!(
            client.check_response(&sent, 401, &sca, b""),
            Verdict::ScaRequired(Some("https://sca.example/x".into()))
        );
        assert_eq!(client.get_token().expect("kept").access_token, "t1");
        assert_eq!(transport.sent.get(), 1);

        let verdict = client.check_response(&sent, 401, &[], INVALID.as_bytes());
        let Verdict::TokenRejected(Some(api)) = verdict else {
            panic!("{verdict:?}");
        };
        assert_eq!(api.error_type, "invalid_credentials");
        transport.answer(200, &token_body("t2", 1200));
        assert_eq!(client.get_token().expect("renewed").access_token, "t2");
        // A late 401 for the old token does not drop the new one.
        assert_eq!(
            client.check_response(&sent, 401, &[], b""),
            Verdict::TokenRejected(None)
        );
        assert_eq!(client.get_token().expect("kept").access_token, "t2");
        assert_eq!(transport.sent.get(), 2);
    }

    /// A key and value that appear in the store at the n-th `get`.
    type Arrival = (u32, String, Vec<u8>);

    /// An in-memory store shared by clients; it can be switched off to fail every call.
    #[derive(Clone, Default)]
    struct FakeStore {
        map: Rc<RefCell<std::collections::HashMap<String, Vec<u8>>>>,
        down: Rc<Cell<bool>>,
        gets: Rc<Cell<u32>>,
        /// Put into the map at the n-th `get`: another instance publishing meanwhile.
        arrives: Rc<RefCell<Option<Arrival>>>,
    }

    impl TokenStore for FakeStore {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            if self.down.get() {
                return Err(StoreError("connection refused".into()));
            }
            self.gets.set(self.gets.get() + 1);
            let arrival = self.arrives.borrow().clone();
            if let Some((_, k, v)) = arrival.filter(|(at, ..)| *at == self.gets.get()) {
                self.map.borrow_mut().insert(k, v);
            }
            Ok(self.map.borrow().get(key).cloned())
        }
        fn compare_and_swap(
            &self,
            key: &str,
            expected: Option<&[u8]>,
            value: &[u8],
            _: Duration,
        ) -> Result<bool, StoreError> {
            if self.down.get() {
                return Err(StoreError("connection refused".into()));
            }
            let mut map = self.map.borrow_mut();
            if map.get(key).map(Vec::as_slice) != expected {
                return Ok(false);
            }
            map.insert(key.to_owned(), value.to_vec());
            Ok(true)
        }
        fn delete(&self, key: &str) -> Result<(), StoreError> {
            if self.down.get() {
                return Err(StoreError("connection refused".into()));
            }
            self.map.borrow_mut().remove(key);
            Ok(())
        }
    }

    fn shared_parts() -> (FakeTransport, FakeClock, FakeStore) {
        Default::default()
    }

    fn shared_client(
        transport: &FakeTransport,
        clock: &FakeClock,
        store: &FakeStore,
    ) -> Client<FakeTransport, FakeClock> {
        Client::with_store(
            config(),
            transport.clone(),
            clock.clone(),
            Box::new(store.clone()),
        )
        .expect("valid config")
    }

    #[test]
    fn instances_share_one_token_through_the_store() {
        let (transport, clock, store) = shared_parts();
        transport.answer(200, &token_body("shared", 1200));
        let first = shared_client(&transport, &clock, &store);
        assert_eq!(first.get_token().expect("token").access_token, "shared");
        assert_eq!(first.status().source, Some(Source::FreshFetch));
        for _ in 0..100 {
            let fresh = shared_client(&transport, &clock, &store);
            let token = fresh.get_token().expect("token");
            assert_eq!(token.access_token, "shared");
            assert_eq!(fresh.status().source, Some(Source::SharedStore));
            assert_eq!(fresh.status().token_requests, 0);
        }
        assert_eq!(transport.sent.get(), 1);
        let keys: Vec<String> = store.map.borrow().keys().cloned().collect();
        assert_eq!(keys.len(), 1, "the lease was released: {keys:?}");
        assert!(
            keys.iter()
                .all(|k| !k.contains("my-api-key") && !k.contains("my-client"))
        );

        // Past the refresh point, one instance renews and the others adopt the new token.
        clock.advance(secs(1140));
        transport.answer(200, &token_body("renewed", 1200));
        for _ in 0..10 {
            let fresh = shared_client(&transport, &clock, &store);
            assert_eq!(fresh.get_token().expect("token").access_token, "renewed");
        }
        assert_eq!(first.get_token().expect("token").access_token, "renewed");
        assert_eq!(transport.sent.get(), 2);
    }

    #[test]
    fn corrupt_or_foreign_entries_are_replaced() {
        let (transport, clock, store) = shared_parts();
        transport.answer(200, &token_body("mine", 1200));
        let client = shared_client(&transport, &clock, &store);
        let key = client.shared.as_ref().expect("store").keys.token.clone();
        for junk in [&b"\xff not json"[..], br#"{"v":1,"id":"someone-else","access_token":"x","token_type":"bearer","expires_in":5,"expires_at_ms":99999999999999}"#] {
            store.map.borrow_mut().insert(key.clone(), junk.to_vec());
            let fresh = shared_client(&transport, &clock, &store);
            assert_eq!(fresh.get_token().expect("no error").access_token, "mine");
            let stored = store.map.borrow().get(&key).cloned().expect("replaced");
            assert!(String::from_utf8_lossy(&stored).contains("\"access_token\":\"mine\""));
        }
    }

    #[test]
    fn a_store_failure_never_fails_a_call() {
        let (transport, clock, store) = shared_parts();
        transport.answer(200, &token_body("direct", 1200));
        store.down.set(true);
        let client = shared_client(&transport, &clock, &store);
        assert_eq!(client.get_token().expect("token").access_token, "direct");
        let status = client.status();
        assert_eq!(status.store, StoreHealth::Unavailable);
        assert_eq!(status.store_error.as_deref(), Some("connection refused"));
        assert_eq!(status.source, Some(Source::FreshFetch));
        // The store comes back: the next renewal shares again.
        store.down.set(false);
        clock.advance(secs(1140));
        assert_eq!(client.get_token().expect("token").access_token, "direct");
        assert_eq!(client.status().store, StoreHealth::Ok);
        let other = shared_client(&transport, &clock, &store);
        other.get_token().expect("token");
        assert_eq!(other.status().source, Some(Source::SharedStore));
        assert_eq!(transport.sent.get(), 2);
    }

    #[test]
    fn waiters_take_the_leaders_token_or_give_up_in_bounded_time() {
        let (transport, clock, store) = shared_parts();
        transport.answer(200, &token_body("own", 1200));
        let client = shared_client(&transport, &clock, &store);
        let keys = client.shared.as_ref().expect("store").keys.clone();
        // Another instance holds the lease and publishes at our third look.
        store
            .map
            .borrow_mut()
            .insert(keys.lease.clone(), b"other".to_vec());
        let published = SharedToken {
            access_token: crate::secret::Secret::new("leaders".into()),
            token_type: "bearer".into(),
            expires_in: 1200,
            expires_at_ms: (1_800_000_000 + 1200) * 1000,
        };
        let value = published.encode(&keys.id).expose().as_bytes().to_vec();
        *store.arrives.borrow_mut() = Some((3, keys.token.clone(), value));
        assert_eq!(client.get_token().expect("token").access_token, "leaders");
        assert_eq!(transport.sent.get(), 0);
        assert_eq!(clock.slept.get(), Duration::from_millis(15));

        // A lease that is never released: the waiter fetches itself after about 5 s.
        let (transport, clock, store) = shared_parts();
        transport.answer(200, &token_body("own", 1200));
        let client = shared_client(&transport, &clock, &store);
        store
            .map
            .borrow_mut()
            .insert(keys.lease.clone(), b"dead".to_vec());
        assert_eq!(client.get_token().expect("token").access_token, "own");
        assert_eq!(transport.sent.get(), 1);
        assert_eq!(clock.slept.get(), Duration::from_millis(5275));
    }

    #[test]
    fn status_reports_without_secrets() {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let client = client(&transport, &clock);
        let empty = client.status();
        assert!(!empty.held && empty.source.is_none() && empty.token_requests == 0);
        assert_eq!(empty.store, StoreHealth::NotConfigured);
        transport.answer(401, INVALID);
        let _ = client.get_token();
        assert_eq!(client.status().cool_down, Some(secs(60)));
        clock.advance(secs(60));
        transport.answer(200, &token_body("tok-secret", 1200));
        client.get_token().expect("token");
        client.get_token().expect("token");
        let status = client.status();
        assert!(status.held);
        assert_eq!(status.source, Some(Source::InstanceCache));
        assert_eq!(status.expires_in_seconds, Some(1200));
        assert_eq!(status.token_requests, 2);
        assert_eq!(status.cool_down, None);
        assert!(!format!("{status:?}").contains("tok-secret"));
    }
}
