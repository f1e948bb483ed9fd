//! The wasi:http adapter: one token request over `wasi:http/outgoing-handler`, with all three
//! request-option timeouts set and the body read up to `BODY_CAP`. The component also keeps deadlines of its own
//! (connect + first byte for the head, between-bytes for the whole body) on the host's real
//! timers, so a host that ignores the options, or a server that drips a byte at a time, cannot
//! hold a call forever.

use mangopay_auth::{RawResponse, TokenRequest, Transport, TransportError, TransportKind};
use std::time::Duration;
use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme, http_error_code,
};
use wasip2::io::poll::{self, Pollable};
use wasip2::io::streams::StreamError;

/// The most of a token-endpoint body the component reads (a token answer is ~100 bytes).
const BODY_CAP: usize = 64 * 1024;

pub(crate) struct WasiHttp;

impl Transport for WasiHttp {
    fn post_token(&self, request: &TokenRequest<'_>) -> Result<RawResponse, TransportError> {
        let response = send(request)?;
        let status = response.status();
        let body_deadline = deadline(request.timeouts.between_bytes);
        let retry_after = response
            .headers()
            .get(&"retry-after".to_owned())
            .first()
            .map(|value| String::from_utf8_lossy(value).into_owned());
        let (body, truncated) = read_body(response, &body_deadline)?;
        Ok(RawResponse {
            status,
            retry_after,
            body,
            truncated,
        })
    }
}

fn send(request: &TokenRequest<'_>) -> Result<IncomingResponse, TransportError> {
    let entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec()))
        .collect();
    let fields =
        Fields::from_list(&entries).map_err(|_| other("the host refused the request headers"))?;
    let outgoing = OutgoingRequest::new(fields);
    let scheme = if request.origin.is_secure() {
        Scheme::Https
    } else {
        Scheme::Http
    };
    outgoing
        .set_method(&Method::Post)
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
            // The body is 29 bytes, well under the 4096 bytes one blocking write may carry.
            stream
                .blocking_write_and_flush(request.body.as_bytes())
                .map_err(|e| from_stream_error(&e))
        });
    let _ = written.and_then(|()| OutgoingBody::finish(body, None).map_err(from_code));
    wait(
        &future,
        &deadline(request.timeouts.connect + request.timeouts.first_byte),
    )
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A pollable that becomes ready `after` from now, on the host's real timer.
fn deadline(after: Duration) -> Pollable {
    monotonic_clock::subscribe_duration(nanos(after))
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

/// Reads at most `BODY_CAP` bytes before `deadline`; the flag says whether more was there.
fn read_body(
    response: IncomingResponse,
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
        let want = (BODY_CAP + 1 - bytes.len()).min(16 * 1024) as u64;
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
        if bytes.len() > BODY_CAP {
            bytes.truncate(BODY_CAP);
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

fn from_code(code: ErrorCode) -> TransportError {
    use ErrorCode as E;
    let kind = match &code {
        E::DnsTimeout | E::DnsError(_) | E::DestinationNotFound => TransportKind::Dns,
        E::ConnectionRefused | E::DestinationUnavailable | E::DestinationIpUnroutable => {
            TransportKind::ConnectionRefused
        }
        E::ConnectionTimeout
        | E::ConnectionReadTimeout
        | E::ConnectionWriteTimeout
        | E::HttpResponseTimeout => TransportKind::Timeout,
        E::TlsProtocolError | E::TlsCertificateError | E::TlsAlertReceived(_) => TransportKind::Tls,
        // hyper reports a connection cut mid-answer as a protocol error.
        E::ConnectionTerminated
        | E::ConnectionLimitReached
        | E::HttpResponseIncomplete
        | E::HttpProtocolError => TransportKind::ConnectionLost,
        E::HttpRequestDenied | E::DestinationIpProhibited => TransportKind::Denied,
        _ => TransportKind::Other,
    };
    TransportError {
        kind,
        detail: format!("{code:?}"),
    }
}
