//! Test fakes of the ports, for unit tests here and for other crates' tests and the benchmark
//! (feature `fakes`): a scripted transport, a clock that moves only when told, an in-memory
//! store. Clones share their state, so a test keeps a handle on what it gave a client.

use crate::authorize::HttpRequest;
use crate::config::{ClientConfig, Environment};
use crate::ports::{
    ApiAnswer, ApiCall, Clock, RawResponse, StoreError, TokenRequest, TokenStore, Transport,
    TransportError, TransportKind,
};
use crate::secret::Secret;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

/// The answer of the transport to one token request.
pub type Answer = Result<RawResponse, TransportError>;

/// A body of Mangopay's invalid-credentials answer.
pub const INVALID: &str = r#"{"Message":"The authorization credentials are not valid","Type":"invalid_credentials","Id":"x","Date":1.0,"errors":null}"#;
/// A body of Mangopay's lockout answer.
pub const LOCKOUT: &str = r#"{"error":"unauthorized_client","error_description":"This account has been temporarily locked for security reasons. Please try again later."}"#;
/// The base URL of `config()`.
pub const BASE: &str = "https://api.sandbox.mangopay.com";

/// A sandbox configuration of the client `my-client` with the API key `my-api-key`.
pub fn config() -> ClientConfig {
    ClientConfig::new(
        "my-client".into(),
        Secret::new("my-api-key".into()),
        Environment::Sandbox,
    )
}

/// A token answer's body.
pub fn token_body(token: &str, expires_in: u64) -> String {
    format!(r#"{{"access_token":"{token}","token_type":"bearer","expires_in":{expires_in}}}"#)
}

/// An answer with `status` and `body`.
pub fn answer(status: u16, body: &str) -> Answer {
    Ok(RawResponse {
        status,
        body: body.as_bytes().to_vec(),
        ..RawResponse::default()
    })
}

/// A refused connection.
pub fn refused() -> Answer {
    Err(TransportError {
        kind: TransportKind::ConnectionRefused,
        detail: "refused".into(),
    })
}

/// A transport failure of `kind`, in the host's words `detail`.
pub fn failed(kind: TransportKind, detail: &str) -> Answer {
    Err(TransportError {
        kind,
        detail: detail.into(),
    })
}

/// A request to authorize.
pub fn request(url: &str, headers: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        url: url.into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// An API call as the fake transport saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentCall {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// An API answer for the fake transport's script.
pub type ApiScript = Result<(u16, Vec<(String, String)>, Vec<u8>), TransportError>;

/// Answers token requests from a script (the last answer repeats) and counts them; answers
/// API calls from a script of their own (the last repeats) and records them.
#[derive(Clone, Default)]
pub struct FakeTransport {
    sent: Rc<Cell<u32>>,
    script: Rc<RefCell<VecDeque<Answer>>>,
    api_script: Rc<RefCell<VecDeque<ApiScript>>>,
    calls: Rc<RefCell<Vec<SentCall>>>,
    /// Each exchange takes this long on this clock.
    latency: Rc<RefCell<Option<(FakeClock, Duration)>>>,
    /// The `within` of every exchange, token requests and API calls, in order.
    withins: Rc<RefCell<Vec<Duration>>>,
}

impl FakeTransport {
    /// Answers every request with `status` and `body` from now on.
    pub fn answer(&self, status: u16, body: &str) {
        self.script(vec![answer(status, body)]);
    }

    /// Answers the next requests in order, repeating the last one.
    pub fn script(&self, answers: Vec<Answer>) {
        *self.script.borrow_mut() = answers.into();
    }

    /// Token requests sent so far.
    pub fn sent(&self) -> u32 {
        self.sent.get()
    }

    /// Answers the next API calls in order, repeating the last one.
    pub fn api_script(&self, answers: Vec<ApiScript>) {
        *self.api_script.borrow_mut() = answers.into();
    }

    /// The API calls sent so far.
    pub fn calls(&self) -> Vec<SentCall> {
        self.calls.borrow().clone()
    }

    /// From now on every exchange takes `latency` on `clock` (at most its `within`, as a
    /// transport keeping to its deadline does).
    pub fn set_latency(&self, clock: &FakeClock, latency: Duration) {
        *self.latency.borrow_mut() = Some((clock.clone(), latency));
    }

    /// The `within` (what was left of the call's budget) of every exchange so far.
    pub fn withins(&self) -> Vec<Duration> {
        self.withins.borrow().clone()
    }

    /// Spends the latency of one exchange; `Err` when it would outlast `within`.
    fn take_time(&self, within: Duration) -> Result<(), TransportError> {
        self.withins.borrow_mut().push(within);
        let Some((clock, latency)) = self.latency.borrow().clone() else {
            return Ok(());
        };
        clock.advance(latency.min(within));
        match latency > within {
            true => Err(TransportError {
                kind: TransportKind::Timeout,
                detail: "the response head took longer than the component allows".into(),
            }),
            false => Ok(()),
        }
    }
}

impl Transport for FakeTransport {
    fn post_token(&self, request: &TokenRequest<'_>) -> Result<RawResponse, TransportError> {
        self.sent.set(self.sent.get() + 1);
        self.take_time(request.within)?;
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
        next.unwrap_or_else(|| {
            Err(TransportError {
                kind: TransportKind::Other,
                detail: "no scripted answer".into(),
            })
        })
    }

    fn send(&self, call: &ApiCall<'_>) -> Result<ApiAnswer, TransportError> {
        self.take_time(call.within)?;
        self.calls.borrow_mut().push(SentCall {
            method: call.method.to_owned(),
            path: call.path.to_owned(),
            headers: call.headers.to_vec(),
            body: call.body.map(<[u8]>::to_vec),
        });
        let mut script = self.api_script.borrow_mut();
        let next = if script.len() > 1 {
            script.pop_front()
        } else {
            script.front().cloned()
        };
        let (status, headers, mut body) = next.unwrap_or_else(|| {
            Err(TransportError {
                kind: TransportKind::Other,
                detail: "no scripted API answer".into(),
            })
        })?;
        let truncated = body.len() > call.body_cap;
        body.truncate(call.body_cap);
        Ok(ApiAnswer {
            status,
            headers,
            body,
            truncated,
        })
    }
}

/// Monotonic time from 0, wall time from 2027-01-15; both move only by `advance` and `sleep`.
#[derive(Clone, Default)]
pub struct FakeClock {
    now: Rc<Cell<Duration>>,
    slept: Rc<Cell<Duration>>,
    /// How far this clock's wall time is ahead of the others sharing its time.
    ahead: Duration,
}

impl FakeClock {
    /// The same time, on a host whose wall clock is `ahead`: another machine of the fleet.
    pub fn skewed(&self, ahead: Duration) -> FakeClock {
        FakeClock {
            ahead,
            ..self.clone()
        }
    }

    pub fn advance(&self, by: Duration) {
        self.now.set(self.now.get() + by);
    }

    /// Time slept so far.
    pub fn slept(&self) -> Duration {
        self.slept.get()
    }
}

impl Clock for FakeClock {
    fn monotonic(&self) -> Duration {
        self.now.get()
    }
    fn wall(&self) -> Duration {
        Duration::from_secs(1_800_000_000) + self.now.get() + self.ahead
    }
    fn sleep(&self, duration: Duration) {
        self.slept.set(self.slept.get() + duration);
        self.advance(duration);
    }
}

/// A key and value that appear in the store at the n-th `get`.
type Arrival = (u32, String, Vec<u8>);

/// An in-memory store shared by clients; it can be switched off to fail every call.
#[derive(Clone, Default)]
pub struct FakeStore {
    map: Rc<RefCell<HashMap<String, Vec<u8>>>>,
    down: Rc<Cell<bool>>,
    gets: Rc<Cell<u32>>,
    /// Put into the map at the n-th `get`: another instance publishing meanwhile.
    arrives: Rc<RefCell<Option<Arrival>>>,
    /// Operations that fail: (operation, key part, from the n-th call of that operation on).
    faults: Rc<RefCell<Vec<Fault>>>,
    counts: Rc<RefCell<HashMap<Op, u32>>>,
    /// Every write, in order: (key, value).
    writes: Rc<RefCell<Vec<Write>>>,
    /// While down, each call takes this long on this clock before it fails (a host waiting
    /// for its store).
    hang: Rc<RefCell<Option<(FakeClock, Duration)>>>,
}

/// A write to the store: (key, value).
type Write = (String, Vec<u8>);

/// A store operation that fails: which, on keys holding which part, from the n-th call on.
type Fault = (Op, String, u32);

/// A store operation, to make one fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Get,
    CompareAndSwap,
    Delete,
}

impl FakeStore {
    /// While down, every call fails with "connection refused".
    pub fn set_down(&self, down: bool) {
        self.down.set(down);
    }

    pub fn insert(&self, key: &str, value: &[u8]) {
        self.map.borrow_mut().insert(key.to_owned(), value.to_vec());
    }

    pub fn value(&self, key: &str) -> Option<Vec<u8>> {
        self.map.borrow().get(key).cloned()
    }

    pub fn keys(&self) -> Vec<String> {
        self.map.borrow().keys().cloned().collect()
    }

    /// Puts `value` at `key` at the `nth` `get` (counted from the store's creation), as if
    /// another instance published it meanwhile.
    pub fn arrive_at(&self, nth: u32, key: &str, value: Vec<u8>) {
        *self.arrives.borrow_mut() = Some((nth, key.to_owned(), value));
    }

    /// From the `nth` call of `op` on (counted from 1, on any key), `op` on a key containing
    /// `key_part` fails.
    pub fn fail(&self, op: Op, key_part: &str, nth: u32) {
        self.faults
            .borrow_mut()
            .push((op, key_part.to_owned(), nth));
    }

    /// Every successful write so far, in order: (key, value).
    pub fn writes(&self) -> Vec<(String, Vec<u8>)> {
        self.writes.borrow().clone()
    }

    /// While down, each call first takes `each` of `clock`'s time.
    pub fn hang_while_down(&self, clock: &FakeClock, each: Duration) {
        *self.hang.borrow_mut() = Some((clock.clone(), each));
    }

    fn check_up(&self) -> Result<(), StoreError> {
        if !self.down.get() {
            return Ok(());
        }
        if let Some((clock, each)) = self.hang.borrow().as_ref() {
            clock.advance(*each);
        }
        Err(StoreError("connection refused".into()))
    }

    fn check(&self, op: Op, key: &str) -> Result<(), StoreError> {
        self.check_up()?;
        let count = {
            let mut counts = self.counts.borrow_mut();
            let count = counts.entry(op).or_default();
            *count += 1;
            *count
        };
        let faults = self.faults.borrow();
        match faults
            .iter()
            .any(|(o, part, nth)| *o == op && key.contains(part.as_str()) && count >= *nth)
        {
            true => Err(StoreError(format!("{op:?} failed"))),
            false => Ok(()),
        }
    }
}

impl TokenStore for FakeStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check(Op::Get, key)?;
        self.gets.set(self.gets.get() + 1);
        let arrival = self.arrives.borrow().clone();
        if let Some((_, k, v)) = arrival.filter(|(at, ..)| *at == self.gets.get()) {
            self.map.borrow_mut().insert(k, v);
        }
        Ok(self.value(key))
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        _: Duration,
    ) -> Result<bool, StoreError> {
        self.check(Op::CompareAndSwap, key)?;
        let mut map = self.map.borrow_mut();
        if map.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        map.insert(key.to_owned(), value.to_vec());
        self.writes
            .borrow_mut()
            .push((key.to_owned(), value.to_vec()));
        Ok(true)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check(Op::Delete, key)?;
        self.map.borrow_mut().remove(key);
        Ok(())
    }
}

#[cfg(test)]
pub use clients::*;

/// A log sink that keeps every line.
#[derive(Clone, Default)]
pub struct FakeLog {
    lines: Rc<RefCell<Vec<String>>>,
}

impl FakeLog {
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }

    /// A logger at `level` into this sink.
    pub fn logger(&self, level: crate::log::Level) -> crate::log::Logger {
        crate::log::Logger::new(level, Rc::new(self.clone()))
    }
}

impl crate::log::Sink for FakeLog {
    fn write_line(&self, line: &str) {
        self.lines.borrow_mut().push(line.to_owned());
    }
}

/// Client builders that may panic, for tests only.
#[cfg(test)]
mod clients {
    use super::*;
    use crate::client::Client;

    pub fn client(
        transport: &FakeTransport,
        clock: &FakeClock,
    ) -> Client<FakeTransport, FakeClock> {
        Client::new(config(), transport.clone(), clock.clone()).expect("valid config")
    }

    pub fn shared_parts() -> (FakeTransport, FakeClock, FakeStore) {
        Default::default()
    }

    pub fn shared_client(
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

    /// The store keys of `config()`.
    pub fn keys() -> crate::shared::stored::Keys {
        let settings = crate::settings::Settings::new(config()).expect("valid config");
        crate::shared::stored::Keys::new(&settings)
    }
}
