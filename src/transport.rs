//! The wasi:http adapter: one token request, sent through waki's wasi:http bindings.
//!
//! waki's request builder exposes only the connect timeout and reads bodies without a bound,
//! so this one call goes a level lower, to the same bindings waki uses, to set all three
//! timeouts and to stop reading at `BODY_CAP`.

use crate::client::{TokenRequest, Transport};
use crate::error::{RawResponse, TransportError, TransportKind};
use waki::bindings::wasi::http::outgoing_handler;
use waki::bindings::wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme, http_error_code,
};
use waki::bindings::wasi::io::streams::StreamError;

/// The most of a token-endpoint body the component reads (a token answer is ~100 bytes).
pub const BODY_CAP: usize = 64 * 1024;

pub struct WasiHttp;

impl Transport for WasiHttp {
    fn post_token(&self, request: &TokenRequest<'_>) -> Result<RawResponse, TransportError> {
        let response = send(request)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(&"retry-after".to_owned())
            .first()
            .map(|value| String::from_utf8_lossy(value).into_owned());
        let (body, truncated) = read_body(response)?;
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
    let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let _ = options.set_connect_timeout(Some(nanos(request.timeouts.connect)));
    let _ = options.set_first_byte_timeout(Some(nanos(request.timeouts.first_byte)));
    let _ = options.set_between_bytes_timeout(Some(nanos(request.timeouts.between_bytes)));

    let body = outgoing
        .body()
        .map_err(|()| other("the request body was already taken"))?;
    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(from_code)?;
    {
        let stream = body
            .write()
            .map_err(|()| other("the request body stream was already taken"))?;
        // The body is 29 bytes, well under the 4096 bytes one blocking write may carry.
        stream
            .blocking_write_and_flush(request.body.as_bytes())
            .map_err(|e| from_stream_error(&e))?;
    }
    OutgoingBody::finish(body, None).map_err(from_code)?;
    wait(&future)
}

fn wait(future: &FutureIncomingResponse) -> Result<IncomingResponse, TransportError> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(from_code(code)),
            Some(Err(())) => return Err(other("the response was already taken")),
            None => future.subscribe().block(),
        }
    }
}

/// Reads at most `BODY_CAP` bytes; the flag says whether more was there.
fn read_body(response: IncomingResponse) -> Result<(Vec<u8>, bool), TransportError> {
    let body = response
        .consume()
        .map_err(|()| other("the response body was already taken"))?;
    let stream = body
        .stream()
        .map_err(|()| other("the response body stream was already taken"))?;
    let mut bytes = Vec::new();
    let mut truncated = false;
    loop {
        let want = (BODY_CAP + 1 - bytes.len()).min(16 * 1024) as u64;
        match stream.blocking_read(want) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(from_stream_error(&e)),
        }
        if bytes.len() > BODY_CAP {
            bytes.truncate(BODY_CAP);
            truncated = true;
            break;
        }
    }
    // The stream is a child of the body and must go first.
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
        E::ConnectionTerminated | E::ConnectionLimitReached | E::HttpResponseIncomplete => {
            TransportKind::ConnectionLost
        }
        E::HttpRequestDenied | E::DestinationIpProhibited => TransportKind::Denied,
        _ => TransportKind::Other,
    };
    TransportError {
        kind,
        detail: format!("{code:?}"),
    }
}
