//! A client: one set of credentials, its token cache, and the two operations on it.
//! Generic over the transport and the clock so the whole lifecycle is unit-tested natively.

use crate::cache::CachedToken;
use crate::config::{ClientConfig, Settings, Timeouts};
use crate::error::{self, Error, RawResponse, TransportError};
use crate::origin::{Origin, UrlError};
use crate::wire;
use std::cell::RefCell;
use std::time::Duration;

/// Sends the token request and reads the answer. Implemented over wasi:http in the component.
pub trait Transport {
    fn post_token(&self, request: &TokenRequest<'_>) -> Result<RawResponse, TransportError>;
}

/// Time as the host reports it.
pub trait Clock {
    /// Monotonic time since an arbitrary origin: what expiry is measured on.
    fn monotonic(&self) -> Duration;
    /// Wall time since the Unix epoch: only to report the expiry instant.
    fn wall(&self) -> Duration;
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

pub struct Client<T, C> {
    settings: Settings,
    cached: RefCell<Option<CachedToken>>,
    transport: T,
    clock: C,
}

impl<T: Transport, C: Clock> Client<T, C> {
    /// Validates the configuration; sends nothing.
    pub fn new(config: ClientConfig, transport: T, clock: C) -> Result<Self, Error> {
        Ok(Client {
            settings: Settings::new(config)?,
            cached: RefCell::new(None),
            transport,
            clock,
        })
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
        check_request(&request, &self.settings.base)?;
        let bearer =
            self.with_token(|token, _| format!("Bearer {}", token.access_token.expose()))?;
        request
            .headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
        request.headers.push(("Authorization".to_owned(), bearer));
        Ok(request)
    }

    /// Runs `f` on a usable token, fetching one first when none is held or the held one has
    /// reached its refresh point.
    fn with_token<R>(&self, f: impl FnOnce(&CachedToken, Duration) -> R) -> Result<R, Error> {
        let now = self.clock.monotonic();
        if let Some(token) = self.cached.borrow().as_ref().filter(|t| t.is_usable(now)) {
            return Ok(f(token, now));
        }
        let fresh = self.fetch(now)?;
        let result = f(&fresh, now);
        *self.cached.borrow_mut() = Some(fresh);
        Ok(result)
    }

    fn fetch(&self, now: Duration) -> Result<CachedToken, Error> {
        let settings = &self.settings;
        let wall = self.clock.wall();
        let request = TokenRequest {
            origin: &settings.base,
            path: wire::TOKEN_PATH,
            headers: wire::token_request_headers(settings.basic_authorization.expose()),
            body: wire::TOKEN_BODY,
            timeouts: settings.timeouts,
        };
        let response = self
            .transport
            .post_token(&request)
            .map_err(Error::Transport)?;
        if !(200..300).contains(&response.status) || response.truncated {
            let held = self.cached.borrow();
            let secrets = [
                settings.api_key.expose(),
                settings.basic_authorization.expose(),
                held.as_ref().map_or("", |t| t.access_token.expose()),
            ];
            return Err(error::classify_token_failure(&response, &secrets));
        }
        let token =
            wire::parse_token_response(&response.body).map_err(Error::MalformedTokenResponse)?;
        Ok(CachedToken::new(token, now, wall, settings.refresh_margin))
    }
}

/// Refuses a request the token must not be attached to.
fn check_request(request: &HttpRequest, base: &Origin) -> Result<(), Error> {
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

/// RFC 9110 `tchar`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Environment, TimeoutsMs};
    use crate::error::TransportKind;
    use crate::secret::Secret;
    use std::cell::Cell;
    use std::rc::Rc;

    type Answer = Result<(u16, String), TransportError>;

    /// Answers token requests from a script and counts them.
    #[derive(Clone, Default)]
    struct FakeTransport {
        sent: Rc<Cell<u32>>,
        answer: Rc<RefCell<Option<Answer>>>,
    }

    impl FakeTransport {
        fn answer(&self, status: u16, body: &str) {
            *self.answer.borrow_mut() = Some(Ok((status, body.to_owned())));
        }
    }

    impl Transport for FakeTransport {
        fn post_token(&self, _: &TokenRequest<'_>) -> Result<RawResponse, TransportError> {
            self.sent.set(self.sent.get() + 1);
            let (status, body) = self.answer.borrow().clone().expect("scripted answer")?;
            Ok(RawResponse {
                status,
                body: body.into_bytes(),
                truncated: false,
            })
        }
    }

    #[derive(Clone, Default)]
    struct FakeClock(Rc<Cell<Duration>>);

    impl FakeClock {
        fn advance(&self, by: Duration) {
            self.0.set(self.0.get() + by);
        }
    }

    impl Clock for FakeClock {
        fn monotonic(&self) -> Duration {
            self.0.get()
        }
        fn wall(&self) -> Duration {
            Duration::from_secs(1_800_000_000) + self.0.get()
        }
    }

    const BASE: &str = "https://api.sandbox.mangopay.com";

    fn client(transport: &FakeTransport, clock: &FakeClock) -> Client<FakeTransport, FakeClock> {
        let config = ClientConfig {
            client_id: "my-client".into(),
            api_key: Secret::new("my-api-key".into()),
            environment: Environment::Sandbox,
            base_url: None,
            refresh_margin_seconds: None,
            timeouts: TimeoutsMs::default(),
        };
        Client::new(config, transport.clone(), clock.clone()).expect("valid config")
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
        clock.advance(Duration::from_secs(1138));
        transport.answer(200, &token_body("second", 1200));
        assert_eq!(client.get_token().expect("token").access_token, "first");
        clock.advance(Duration::from_secs(1));
        let token = client.get_token().expect("token");
        assert_eq!(token.access_token, "second");
        assert_eq!(token.expires_in_seconds, 1200);
        assert_eq!(transport.sent.get(), 2);
    }

    #[test]
    fn token_reports_time_left_and_wall_expiry() {
        let (transport, clock) = (FakeTransport::default(), FakeClock::default());
        let client = client(&transport, &clock);
        transport.answer(200, &token_body("t", 7200));
        clock.advance(Duration::from_secs(10));
        client.get_token().expect("token");
        clock.advance(Duration::from_secs(100));
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
    fn failures_are_typed_and_not_cached() {
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
        *transport.answer.borrow_mut() = Some(Err(TransportError {
            kind: TransportKind::ConnectionRefused,
            detail: "refused".into(),
        }));
        assert!(matches!(client.get_token(), Err(Error::Transport(_))));
        transport.answer(500, "my-api-key leaked?");
        assert_eq!(
            client.get_token(),
            Err(Error::UnexpectedResponse {
                status: 500,
                excerpt: error::WITHHELD.into()
            })
        );
        transport.answer(200, &token_body("ok", 60));
        assert_eq!(client.get_token().expect("recovers").access_token, "ok");
        assert_eq!(transport.sent.get(), 4);
    }
}
