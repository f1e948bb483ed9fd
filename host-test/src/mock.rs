//! A mock Mangopay on 127.0.0.1: the token endpoint and one protected API endpoint, served by
//! hyper, over plain HTTP or over TLS (`start_tls`: a server certificate of the test PKI, and
//! a client certificate optional or required, as Mangopay's mTLS hosts require it). It records
//! every request (and over TLS the client certificate it came with, and every handshake that
//! failed) and measures token expiry on the shared virtual clock.

use crate::clock::VirtualClock;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi_http::io::TokioIo;

pub const TOKEN_PATH: &str = "/v2.01/oauth/token";
pub const LOCKOUT_BODY: &str = r#"{"error":"unauthorized_client","error_description":"This account has been temporarily locked for security reasons. Please try again later."}"#;

/// One request as it arrived on the wire.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// A request as it arrived: its head and its whole body.
    pub fn new(parts: &http::request::Parts, body: Vec<u8>) -> RecordedRequest {
        RecordedRequest {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map_or("/".into(), |p| p.to_string()),
            headers: crate::net::header_pairs(&parts.headers),
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        crate::header(&self.headers, name)
    }
}

/// A canned answer, served instead of the normal behaviour of the token endpoint.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Extra headers (e.g. `Retry-After`, `Location`).
    pub headers: Vec<(&'static str, String)>,
    pub delivery: Delivery,
}

impl Canned {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Canned {
        Canned {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
            delivery: Delivery::Whole,
        }
    }
}

/// How a canned answer travels: the socket-level faults the injector cannot show.
#[derive(Clone, Copy, Debug)]
pub enum Delivery {
    Whole,
    /// Nothing at all for this long, then the answer.
    Late(Duration),
    /// Headers, then one byte per interval, never ending.
    Drip(Duration),
    /// Headers and the start of the body, then the connection breaks.
    Broken,
}

struct Issued {
    client_id: String,
    expires_at: Duration,
}

#[derive(Default)]
struct MockState {
    accounts: HashMap<String, String>,
    expires_in: u64,
    locked: bool,
    tokens: HashMap<String, Issued>,
    canned: VecDeque<Canned>,
    /// Served to the next API requests, before any check.
    api_canned: VecDeque<Canned>,
    requests: Vec<RecordedRequest>,
    rejected_api_calls: usize,
    /// How long every token answer waits before it is sent: a slow token endpoint.
    token_delay: Duration,
    /// API requests are never read nor answered: a server that does not read the body.
    api_unread: bool,
    /// The token endpoint's behaviour for one client id, over the settings above.
    client_rules: HashMap<String, ClientRules>,
    /// While its `TokenHold` lives, token answers wait (the token is issued on arrival).
    token_hold: Option<tokio::sync::watch::Receiver<bool>>,
    /// Over TLS, per request (same order as `requests`): the client certificate presented.
    peers: Vec<Option<Vec<u8>>>,
    /// Over TLS: handshakes begun, and those that failed (rustls's error, with the alert).
    handshakes: usize,
    handshake_failures: Vec<String>,
}

/// Whether the TLS mock asks for a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// Never asks.
    None,
    /// Asks; serves without one too.
    Optional,
    /// Asks, and refuses the connection without one it trusts (Mangopay's mTLS hosts).
    Required,
}

/// The client certificate a request came with, put in its extensions by the TLS server.
#[derive(Clone)]
struct Peer(Option<Vec<u8>>);

/// Token answers wait while this lives (`MockMangopay::hold_token_answers`); dropping it
/// sends them.
pub struct TokenHold(#[allow(dead_code)] tokio::sync::watch::Sender<bool>);

/// How the token endpoint treats one client id (the id of the request's Basic header, whatever
/// its key), so that one mock serves several scenarios at once: one platform process can hold
/// several configurations, each under its own client id.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientRules {
    /// `expires_in` of this client's tokens, instead of the mock's.
    pub expires_in: Option<u64>,
    /// Answers this client the lockout body, as `set_locked` does for every client.
    pub locked: bool,
    /// This client's token answers come this late (the longer of this and `set_token_delay`).
    pub token_delay: Duration,
}

/// The running mock. Dropping it stops the server.
pub struct MockMangopay {
    addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
    _runtime: tokio::runtime::Runtime,
    tls: bool,
}

impl MockMangopay {
    /// Starts a server on an ephemeral 127.0.0.1 port; tokens live 1200 s (the sandbox default)
    /// until `set_expires_in` says otherwise.
    pub fn start(clock: VirtualClock) -> MockMangopay {
        MockMangopay::launch(clock, None)
    }

    /// The same mock over TLS at `https://localhost:<port>`, its certificate from `pki`, asking
    /// for client certificates of `pki` as `client_auth` says.
    pub fn start_tls(
        clock: VirtualClock,
        pki: &crate::tls::TestPki,
        client_auth: ClientAuth,
    ) -> MockMangopay {
        let identity = pki.server();
        let builder = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let verifier = || {
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(pki.roots()),
                crate::tls::provider(),
            )
        };
        let builder = match client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional => builder.with_client_cert_verifier(
                verifier()
                    .allow_unauthenticated()
                    .build()
                    .expect("a verifier"),
            ),
            ClientAuth::Required => {
                builder.with_client_cert_verifier(verifier().build().expect("a verifier"))
            }
        };
        let config = builder
            .with_single_cert(identity.chain.clone(), identity.key())
            .expect("the server certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        MockMangopay::launch(clock, Some(acceptor))
    }

    /// Serves on an ephemeral 127.0.0.1 port, over TLS when `tls` is given.
    fn launch(clock: VirtualClock, tls: Option<tokio_rustls::TlsAcceptor>) -> MockMangopay {
        let state = Arc::new(Mutex::new(MockState {
            expires_in: 1200,
            ..MockState::default()
        }));
        let (runtime, listener, addr) = crate::net::listen(1);
        let shared = state.clone();
        let over_tls = tls.is_some();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, clock) = (shared.clone(), clock.clone());
                match tls.clone() {
                    None => {
                        tokio::spawn(serve(TokioIo::new(stream), state, clock, Peer(None)));
                    }
                    Some(acceptor) => {
                        tokio::spawn(serve_tls(acceptor, stream, state, clock));
                    }
                }
            }
        });
        MockMangopay {
            addr,
            state,
            _runtime: runtime,
            tls: over_tls,
        }
    }

    /// `http://127.0.0.1:<port>`, or over TLS `https://localhost:<port>` (the name its
    /// certificate has).
    pub fn base_url(&self) -> String {
        match self.tls {
            true => format!("https://localhost:{}", self.addr.port()),
            false => format!("http://{}", self.addr),
        }
    }

    /// Over TLS: the client certificate each request came with, in the order of `requests`.
    pub fn client_certificates(&self) -> Vec<Option<Vec<u8>>> {
        self.state().peers.clone()
    }

    /// Over TLS: handshakes begun, and the failed ones' errors (the alert sent, or received).
    pub fn handshakes(&self) -> (usize, Vec<String>) {
        let state = self.state();
        (state.handshakes, state.handshake_failures.clone())
    }

    fn state(&self) -> MutexGuard<'_, MockState> {
        self.state.lock().expect("mock state")
    }

    pub fn add_account(&self, client_id: &str, api_key: &str) {
        self.state()
            .accounts
            .insert(client_id.to_owned(), api_key.to_owned());
    }

    /// `expires_in` of the tokens issued from now on.
    pub fn set_expires_in(&self, seconds: u64) {
        self.state().expires_in = seconds;
    }

    /// While locked, the token endpoint answers the documented 400 lockout body.
    pub fn set_locked(&self, locked: bool) {
        self.state().locked = locked;
    }

    /// Every token answer from now on comes `delay` late (canned ones keep their delivery).
    pub fn set_token_delay(&self, delay: Duration) {
        self.state().token_delay = delay;
    }

    /// From now on, API requests (not token requests) are left unread and unanswered, so a
    /// client writing a large body blocks once the socket buffers are full.
    pub fn set_api_unread(&self, unread: bool) {
        self.state().api_unread = unread;
    }

    /// How the token endpoint treats `client_id` from now on.
    pub fn set_client_rules(&self, client_id: &str, rules: ClientRules) {
        self.state()
            .client_rules
            .insert(client_id.to_owned(), rules);
    }

    /// Serves `answer` to the next token request, before any check.
    pub fn push_canned(&self, answer: Canned) {
        self.state().canned.push_back(answer);
    }

    /// Serves `answer` to the next API request, before any check.
    pub fn push_api_canned(&self, answer: Canned) {
        self.state().api_canned.push_back(answer);
    }

    /// Holds every token answer from now on until the returned hold is dropped: a renewal
    /// under way for as long as a test needs, whatever the machine's speed.
    pub fn hold_token_answers(&self) -> TokenHold {
        let (hold, held) = tokio::sync::watch::channel(true);
        self.state().token_hold = Some(held);
        TokenHold(hold)
    }

    /// Revokes every token issued so far: the API refuses them from now on.
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    pub fn token_requests(&self) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|r| r.path == TOKEN_PATH)
            .count()
    }

    /// Token requests whose Basic header names `client_id`, whatever their key.
    pub fn token_requests_for(&self, client_id: &str) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|r| r.path == TOKEN_PATH)
            .filter(|r| {
                basic_pair(r.header("authorization")).is_some_and(|(id, _)| id == client_id)
            })
            .count()
    }

    /// Requests to anything but the token endpoint.
    pub fn api_requests(&self) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|r| r.path != TOKEN_PATH)
            .count()
    }

    /// API requests refused for a missing, unknown, foreign or expired token.
    pub fn rejected_api_calls(&self) -> usize {
        self.state().rejected_api_calls
    }

    /// Every token issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state().tokens.keys().cloned().collect()
    }
}

type Reply = Response<BoxBody<Bytes, std::io::Error>>;

/// The TLS handshake on `stream` (counted, and recorded when it fails), then HTTP/1.1, each
/// request tagged with the client certificate presented.
async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    state: Arc<Mutex<MockState>>,
    clock: VirtualClock,
) {
    state.lock().expect("mock state").handshakes += 1;
    let stream = match acceptor.accept(stream).await {
        Ok(stream) => stream,
        Err(e) => {
            let mut state = state.lock().expect("mock state");
            state.handshake_failures.push(e.to_string());
            return;
        }
    };
    let peer = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.to_vec());
    serve(TokioIo::new(stream), state, clock, Peer(peer)).await;
}

/// Serves HTTP/1.1 on one connection, each request tagged with the connection's peer.
async fn serve<I>(io: I, state: Arc<Mutex<MockState>>, clock: VirtualClock, peer: Peer)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(peer.clone());
        handle(state.clone(), clock.clone(), request)
    });
    let _ = http1::Builder::new().serve_connection(io, service).await;
}

async fn handle(
    state: Arc<Mutex<MockState>>,
    clock: VirtualClock,
    request: Request<Incoming>,
) -> Result<Reply, Infallible> {
    let (parts, body) = request.into_parts();
    let unread = parts.uri.path() != TOKEN_PATH && state.lock().expect("mock state").api_unread;
    if unread {
        // Holds the body unread until the mock stops.
        std::future::pending::<()>().await;
    }
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let recorded = RecordedRequest::new(&parts, body);
    let (reply, delivery, hold) = {
        let mut state = state.lock().expect("mock state");
        let hold = match recorded.path == TOKEN_PATH {
            true => state.token_hold.clone(),
            false => None,
        };
        let reply = if recorded.path == TOKEN_PATH {
            token_endpoint(&mut state, &clock, &recorded)
        } else if let Some(canned) = state.api_canned.pop_front() {
            (canned_reply(canned.clone()), canned.delivery)
        } else {
            (api_endpoint(&mut state, &clock, &recorded), Delivery::Whole)
        };
        let peer = parts.extensions.get::<Peer>().and_then(|p| p.0.clone());
        state.peers.push(peer);
        state.requests.push(recorded);
        (reply.0, reply.1, hold)
    };
    if let Some(mut hold) = hold {
        // Err: the hold was dropped, which releases too.
        let _ = hold.wait_for(|held| !held).await;
    }
    Ok(match delivery {
        Delivery::Whole => reply,
        Delivery::Late(delay) => {
            tokio::time::sleep(delay).await;
            reply
        }
        Delivery::Drip(every) => reply.map(|_| Drip::new(every).boxed()),
        Delivery::Broken => reply.map(|_| Broken(false).boxed()),
    })
}

fn reply(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(
            Full::new(body.into())
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("a valid response")
}

/// A body that sends one byte per interval and never ends.
struct Drip(tokio::time::Interval);

impl Drip {
    fn new(every: Duration) -> Drip {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Drip(interval)
    }
}

impl Body for Drip {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_tick(cx)
            .map(|_| Some(Ok(Frame::data(Bytes::from_static(b" ")))))
    }
}

/// A body that sends a few bytes, then fails, which makes hyper drop the connection.
struct Broken(bool);

impl Body for Broken {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.0 {
            return Poll::Ready(Some(Err(std::io::Error::other("connection reset"))));
        }
        self.0 = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{\"access_")))))
    }
}

fn json(status: u16, body: String) -> Reply {
    reply(status, "application/json; charset=utf-8", body)
}

/// The documented API error for bad credentials and bad tokens.
fn invalid_credentials(clock: &VirtualClock) -> Reply {
    let id: u128 = rand::random();
    json(
        401,
        format!(
            r#"{{"Message":"The authorization credentials are not valid","Type":"invalid_credentials","Id":"{id:032x}","Date":{}.0,"errors":null}}"#,
            clock.wall().as_secs()
        ),
    )
}

fn token_endpoint(
    state: &mut MockState,
    clock: &VirtualClock,
    req: &RecordedRequest,
) -> (Reply, Delivery) {
    if let Some(canned) = state.canned.pop_front() {
        let delivery = canned.delivery;
        return (canned_reply(canned), delivery);
    }
    let delivery = match state.token_delay.max(rules(state, req).token_delay) {
        Duration::ZERO => Delivery::Whole,
        delay => Delivery::Late(delay),
    };
    (token_answer(state, clock, req), delivery)
}

fn canned_reply(canned: Canned) -> Reply {
    let mut answer = reply(canned.status, canned.content_type, canned.body);
    for (name, value) in canned.headers {
        let value = value.parse().expect("a valid header value");
        answer.headers_mut().insert(name, value);
    }
    answer
}

fn token_answer(state: &mut MockState, clock: &VirtualClock, req: &RecordedRequest) -> Reply {
    let oauth_error = |status, error: &str| json(status, format!(r#"{{"error":"{error}"}}"#));
    if req.method != "POST" {
        return oauth_error(405, "invalid_request");
    }
    if req.header("content-type") != Some("application/x-www-form-urlencoded") {
        return oauth_error(400, "invalid_request");
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
    if form != [("grant_type".to_owned(), "client_credentials".to_owned())] {
        return oauth_error(400, "unsupported_grant_type");
    }
    let rules = rules(state, req);
    if state.locked || rules.locked {
        return json(400, LOCKOUT_BODY.to_owned());
    }
    let Some(client_id) = basic_client(state, req.header("authorization")) else {
        return invalid_credentials(clock);
    };
    let expires_in = rules.expires_in.unwrap_or(state.expires_in);
    let token = format!("{:032x}", rand::random::<u128>());
    state.tokens.insert(
        token.clone(),
        Issued {
            client_id,
            expires_at: clock.now() + Duration::from_secs(expires_in),
        },
    );
    json(
        200,
        format!(r#"{{"access_token":"{token}","token_type":"bearer","expires_in":{expires_in}}}"#),
    )
}

/// The rules for the client id the token request names.
fn rules(state: &MockState, req: &RecordedRequest) -> ClientRules {
    basic_pair(req.header("authorization"))
        .and_then(|(id, _)| state.client_rules.get(&id).copied())
        .unwrap_or_default()
}

/// `(id, key)` of a `Basic base64(id:key)` header.
fn basic_pair(authorization: Option<&str>) -> Option<(String, String)> {
    let encoded = authorization?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let pair = String::from_utf8(decoded).ok()?;
    let (id, key) = pair.split_once(':')?;
    Some((id.to_owned(), key.to_owned()))
}

/// The client id of a valid `Basic base64(id:key)` header.
fn basic_client(state: &MockState, authorization: Option<&str>) -> Option<String> {
    let (id, key) = basic_pair(authorization)?;
    (state.accounts.get(&id) == Some(&key)).then_some(id)
}

/// `GET /v2.01/{ClientId}/users` and `POST /v2.01/{ClientId}/users/natural` (answered 201
/// with the request's body): only with a live token issued to that client.
fn api_endpoint(state: &mut MockState, clock: &VirtualClock, req: &RecordedRequest) -> Reply {
    let path = req.path.split('?').next().unwrap_or_default();
    let rest = path.strip_prefix("/v2.01/");
    let route = match req.method.as_str() {
        "GET" => rest.and_then(|p| p.strip_suffix("/users")),
        "POST" => rest.and_then(|p| p.strip_suffix("/users/natural")),
        _ => None,
    };
    let Some(client_id) = route else {
        return json(404, r#"{"Message":"Not found","Type":"not_found"}"#.into());
    };
    let live = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .and_then(|token| state.tokens.get(token))
        .is_some_and(|t| t.client_id == client_id && clock.now() < t.expires_at);
    if !live {
        state.rejected_api_calls += 1;
        return invalid_credentials(clock);
    }
    if req.method == "POST" {
        return reply(201, "application/json; charset=utf-8", req.body.clone());
    }
    json(200, r#"[{"Id":"user_1","FirstName":"Ada"}]"#.into())
}
