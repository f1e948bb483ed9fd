//! The middleware's own I/O over WASI 0.3: the token request through the imported
//! `wasi:http/client` (the same wire format as the WASI 0.2 worlds, built by the core), the
//! answer's body read up to a cap, waits on the monotonic clock, and a race of two futures
//! for the deadlines.

use crate::bindings::wasi::clocks::monotonic_clock;
use crate::bindings::wasi::http::client;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, Method, Request, RequestOptions, Response, Scheme,
};
use crate::bindings::{wit_future, wit_stream};
use mangopay_auth::{RawResponse, TokenRequest, TransportError, TransportKind};
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;
use wit_bindgen::StreamResult;

/// The most of a token-endpoint body the middleware reads (a token answer is ~100 bytes).
const TOKEN_BODY_CAP: usize = 64 * 1024;

mangopay_auth_wasi::transport_error_from_code!(ErrorCode);

/// Waits `duration` without holding the instance's other calls.
pub(crate) async fn sleep(duration: Duration) {
    monotonic_clock::wait_for(nanos(duration)).await;
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Which of two futures ended first.
pub(crate) enum First<A, B> {
    Left(A),
    Right(B),
}

/// Runs `a` and `b` until one ends; the other is dropped (cancelled).
pub(crate) async fn first<A: Future, B: Future>(a: A, b: B) -> First<A::Output, B::Output> {
    let (mut a, mut b) = (pin!(a), pin!(b));
    poll_fn(|cx| {
        if let Poll::Ready(value) = a.as_mut().poll(cx) {
            return Poll::Ready(First::Left(value));
        }
        if let Poll::Ready(value) = b.as_mut().poll(cx) {
            return Poll::Ready(First::Right(value));
        }
        Poll::Pending
    })
    .await
}

/// Sends the token request; the whole exchange ends within `request.within`.
pub(crate) async fn post_token(request: &TokenRequest<'_>) -> Result<RawResponse, TransportError> {
    match first(exchange(request), sleep(request.within)).await {
        First::Left(answer) => answer,
        First::Right(()) => Err(TransportError {
            kind: TransportKind::Timeout,
            detail: "the token request outlasted what was left of the call's budget".into(),
        }),
    }
}

async fn exchange(request: &TokenRequest<'_>) -> Result<RawResponse, TransportError> {
    let entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec()))
        .collect();
    let headers = Fields::from_list(&entries).map_err(|e| other(format!("headers: {e:?}")))?;
    let options = RequestOptions::new();
    // A host may not support a timeout option; the race in `post_token` still holds.
    let _ = options.set_connect_timeout(Some(nanos(request.timeouts.connect)));
    let _ = options.set_first_byte_timeout(Some(nanos(request.timeouts.first_byte)));
    let _ = options.set_between_bytes_timeout(Some(nanos(request.timeouts.between_bytes)));
    let (mut body, contents) = wit_stream::new::<u8>();
    let (trailers_tx, trailers) = wit_future::new::<Result<Option<Fields>, ErrorCode>>(|| Ok(None));
    drop(trailers_tx);
    let (outgoing, _transmitted) = Request::new(headers, Some(contents), trailers, Some(options));
    let scheme = match request.origin.is_secure() {
        true => Scheme::Https,
        false => Scheme::Http,
    };
    let invalid = |what: &str| other(format!("the host refused the request's {what}"));
    outgoing
        .set_method(&Method::Post)
        .map_err(|()| invalid("method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    outgoing
        .set_authority(Some(&request.origin.authority()))
        .map_err(|()| invalid("authority"))?;
    outgoing
        .set_path_with_query(Some(request.path))
        .map_err(|()| invalid("path"))?;
    let bytes = request.body.as_bytes().to_vec();
    // The body is written while the request is sent: a stream has no room of its own.
    wit_bindgen::spawn_local(async move {
        let _ = body.write_all(bytes).await;
    });
    let response = client::send(outgoing).await.map_err(from_code)?;
    let status = response.get_status_code();
    let retry_after = response
        .get_headers()
        .get("retry-after")
        .first()
        .map(|value| String::from_utf8_lossy(value).into_owned());
    let (body, truncated) = read_body(response, TOKEN_BODY_CAP).await?;
    Ok(RawResponse {
        status,
        retry_after,
        body,
        truncated,
    })
}

/// The body of `response`, up to `cap` bytes, and whether there was more.
async fn read_body(response: Response, cap: usize) -> Result<(Vec<u8>, bool), TransportError> {
    let (_done, done) = wit_future::new::<Result<(), ErrorCode>>(|| Ok(()));
    let (mut stream, trailers) = Response::consume_body(response, done);
    let mut body = Vec::new();
    loop {
        let room = (cap + 1).saturating_sub(body.len()).min(16 * 1024);
        if room == 0 {
            return Ok((body_to(cap, body), true));
        }
        let (result, chunk) = stream.read(Vec::with_capacity(room)).await;
        body.extend_from_slice(&chunk);
        match result {
            StreamResult::Complete(_) => {}
            StreamResult::Dropped | StreamResult::Cancelled => break,
        }
    }
    drop(stream);
    if body.len() > cap {
        return Ok((body_to(cap, body), true));
    }
    match trailers.await {
        Err(code) => Err(from_code(code)),
        Ok(_) => Ok((body, false)),
    }
}

fn body_to(cap: usize, mut body: Vec<u8>) -> Vec<u8> {
    body.truncate(cap);
    body
}

fn other(detail: String) -> TransportError {
    TransportError {
        kind: TransportKind::Other,
        detail,
    }
}
