//! The wasi:http adapter: token requests and API calls over `wasi:http/outgoing-handler`, with
//! all three request-option timeouts set and the answer's body read up to a cap. The
//! component also keeps deadlines of its own on the host's real timers: the whole exchange
//! (body write included) ends within what is left of the call's budget, the head within
//! connect + first byte, the body within between-bytes. So a host that ignores the options,
//! a server that does not read, or one that drips a byte at a time, cannot hold a call
//! forever.

use mangopay_auth::origin::Origin;
use mangopay_auth::settings::Timeouts;
use mangopay_auth::{
    ApiAnswer, ApiCall, RawResponse, TokenRequest, Transport, TransportError, TransportKind,
};
use std::time::Duration;
use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme, http_error_code,
};
use wasip2::io::poll::{self, Pollable};
use wasip2::io::streams::{OutputStream, StreamError};

/// The most of a token-endpoint body the component reads (a token answer is ~100 bytes).
const TOKEN_BODY_CAP: usize = 64 * 1024;

pub(crate) struct WasiHttp;

impl Transport for WasiHttp {
    fn post_token(&self, request: &TokenRequest<'_>) -> Result<RawResponse, TransportError> {
        let headers = request
            .headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec()))
            .collect();
        let answer = exchange(&Exchange {
            origin: request.origin,
            method: Method::Post,
            path: request.path,
            headers,
            body: Some(request.body.as_bytes()),
            timeouts: request.timeouts,
            within: request.within,
            body_cap: TOKEN_BODY_CAP,
        })?;
        let retry_after = answer
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned());
        Ok(RawResponse {
            status: answer.status,
            retry_after,
            body: answer.body,
            truncated: answer.truncated,
        })
    }

    fn send(&self, call: &ApiCall<'_>) -> Result<ApiAnswer, TransportError> {
        let headers = call
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.as_bytes().to_vec()))
            .collect();
        let answer = exchange(&Exchange {
            origin: call.origin,
            method: method(call.method),
            path: call.path,
            headers,
            body: call.body,
            timeouts: call.timeouts,
            within: call.within,
            body_cap: call.body_cap,
        })?;
        Ok(ApiAnswer {
            status: answer.status,
            headers: answer
                .headers
                .into_iter()
                .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
                .collect(),
            body: answer.body,
            truncated: answer.truncated,
        })
    }
}

/// One request over wasi:http, token request or API call alike.
struct Exchange<'a> {
    origin: &'a Origin,
    method: Method,
    path: &'a str,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<&'a [u8]>,
    timeouts: Timeouts,
    /// The whole exchange ends within this.
    within: Duration,
    body_cap: usize,
}

/// An answer as read: at most `body_cap` bytes of body, and whether there was more.
struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    truncated: bool,
}

fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        _ => Method::Other(name.to_owned()),
    }
}

fn exchange(request: &Exchange<'_>) -> Result<Answer, TransportError> {
    let end = End::after(request.within);
    let response = start(request, &end)?;
    let status = response.status();
    let headers = response.headers().entries();
    let body_deadline = end.at_most(request.timeouts.between_bytes);
    let (body, truncated) = read_body(response, request.body_cap, &body_deadline)?;
    Ok(Answer {
        status,
        headers,
        body,
        truncated,
    })
}

/// Sends the request and waits for the answer's head.
fn start(request: &Exchange<'_>, end: &End) -> Result<IncomingResponse, TransportError> {
    let fields = Fields::from_list(&request.headers)
        .map_err(|_| other("the host refused the request headers"))?;
    let outgoing = OutgoingRequest::new(fields);
    let scheme = if request.origin.is_secure() {
        Scheme::Https
    } else {
        Scheme::Http
    };
    outgoing
        .set_method(&request.method)
        .and(outgoing.set_scheme(Some(&scheme)))
        .and(outgoing.set_authority(Some(&request.origin.authority())))
        .and(outgoing.set_path_with_query(Some(request.path)))
        .map_err(|()| other("the host refused the request line"))?;

    let options = RequestOptions::new();
    // A host that does not support a timeout refuses to set it; the request still goes out.
    let _ = options.set_connect_timeout(Some(nanos(request.timeouts.connect)));
    let _ = options.set_first_byte_timeout(Some(nanos(request.timeouts.first_byte)));
    let _ = options.set_between_bytes_timeout(Some(nanos(request.timeouts.between_bytes)));

    let body = outgoing
        .body()
        .map_err(|()| other("the request body was already taken"))?;
    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(from_code)?;
    // A server may answer (say, 401) without reading the body: a failed write is not the end,
    // the answer still decides.
    let written = body
        .write()
        .map_err(|()| other("the request body stream was already taken"))
        .and_then(|stream| {
            let written = write_body(&stream, request.body.unwrap_or_default(), end);
            // The stream is a child of the body: it goes first.
            drop(stream);
            written
        });
    match written {
        // A server that does not read the body within the budget: no answer will come in time.
        Err(e) if e.kind == TransportKind::Timeout => return Err(e),
        written => {
            let _ = written.and_then(|()| OutgoingBody::finish(body, None).map_err(from_code));
        }
    }
    wait(
        &future,
        &end.at_most(request.timeouts.connect + request.timeouts.first_byte),
    )
}

/// Writes `bytes` without blocking past `end`: as much as the stream permits at a time, then
/// a flush, waiting for each on the stream's pollable or the deadline, whichever comes first.
fn write_body(stream: &OutputStream, bytes: &[u8], end: &End) -> Result<(), TransportError> {
    let ready = stream.subscribe();
    let deadline = end.at_most(Duration::MAX);
    let permit = || {
        let permit = stream.check_write().map_err(|e| from_stream_error(&e))?;
        if permit == 0 && !wait_for(&ready, &deadline) {
            return Err(timed_out("writing the request body"));
        }
        Ok(usize::try_from(permit).unwrap_or(usize::MAX))
    };
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = permit()?.min(rest.len());
        if n > 0 {
            let (chunk, after) = rest.split_at_checked(n).unwrap_or((rest, &[]));
            stream.write(chunk).map_err(|e| from_stream_error(&e))?;
            rest = after;
        }
    }
    stream.flush().map_err(|e| from_stream_error(&e))?;
    // The flush is done once the stream permits a write again.
    while permit()? == 0 {}
    Ok(())
}

/// The end of an exchange on the monotonic clock, in nanoseconds.
struct End(u64);

impl End {
    fn after(within: Duration) -> End {
        End(monotonic_clock::now().saturating_add(nanos(within)))
    }

    /// A pollable ready `after` from now, or at the end, whichever comes first.
    fn at_most(&self, after: Duration) -> Pollable {
        let at = monotonic_clock::now().saturating_add(nanos(after));
        monotonic_clock::subscribe_instant(at.min(self.0))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn timed_out(what: &str) -> TransportError {
    TransportError {
        kind: TransportKind::Timeout,
        detail: format!("{what} took longer than the component allows"),
    }
}

/// Waits until `ready` or `deadline`; `false` when the deadline came first.
fn wait_for(ready: &Pollable, deadline: &Pollable) -> bool {
    let woken = poll::poll(&[ready, deadline]);
    woken.contains(&0) || !woken.contains(&1)
}

fn wait(
    future: &FutureIncomingResponse,
    deadline: &Pollable,
) -> Result<IncomingResponse, TransportError> {
    let ready = future.subscribe();
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(from_code(code)),
            Some(Err(())) => return Err(other("the response was already taken")),
            None if wait_for(&ready, deadline) => {}
            None => return Err(timed_out("the response head")),
        }
    }
}

/// Reads at most `cap` bytes before `deadline`; the flag says whether more was there.
fn read_body(
    response: IncomingResponse,
    cap: usize,
    deadline: &Pollable,
) -> Result<(Vec<u8>, bool), TransportError> {
    let body = response
        .consume()
        .map_err(|()| other("the response body was already taken"))?;
    let stream = body
        .stream()
        .map_err(|()| other("the response body stream was already taken"))?;
    let readable = stream.subscribe();
    let mut bytes = Vec::new();
    let mut truncated = false;
    loop {
        let want = (cap.saturating_add(1) - bytes.len()).min(64 * 1024) as u64;
        match stream.read(want) {
            Ok(chunk) if chunk.is_empty() => {
                if !wait_for(&readable, deadline) {
                    return Err(timed_out("the response body"));
                }
            }
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            // Whatever the host calls it (hyper reports a cut chunked body as a protocol
            // error), a body that breaks off is a lost connection, and worth a retry.
            Err(e) => {
                let error = from_stream_error(&e);
                return Err(match error.kind {
                    TransportKind::Timeout => error,
                    _ => TransportError {
                        kind: TransportKind::ConnectionLost,
                        ..error
                    },
                });
            }
        }
        if bytes.len() > cap {
            bytes.truncate(cap);
            truncated = true;
            break;
        }
    }
    // Children go before their parents: the pollable, then the stream, then the body.
    drop(readable);
    drop(stream);
    let _trailers = IncomingBody::finish(body);
    Ok((bytes, truncated))
}

fn other(detail: &str) -> TransportError {
    TransportError {
        kind: TransportKind::Other,
        detail: detail.to_owned(),
    }
}

fn from_stream_error(error: &StreamError) -> TransportError {
    match error {
        StreamError::Closed => TransportError {
            kind: TransportKind::ConnectionLost,
            detail: "the connection closed early".into(),
        },
        StreamError::LastOperationFailed(e) => match http_error_code(e) {
            Some(code) => from_code(code),
            None => TransportError {
                kind: TransportKind::ConnectionLost,
                detail: e.to_debug_string(),
            },
        },
    }
}

mangopay_auth_wasi::transport_error_from_code!(ErrorCode);
