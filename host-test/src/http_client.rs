//! The host's own HTTP calls (the API request a component authorized), sent with the same
//! client wasmtime-wasi-http uses for the component, so http and https both work.

use crate::host::HttpRequest;
use std::sync::OnceLock;

/// Status and body of an answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Sends a body-less request and reads the whole answer.
pub fn send(request: &HttpRequest) -> Result<Answer, String> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| crate::net::runtime(1));
    let mut builder = http::Request::builder()
        .method(request.method.as_str())
        .uri(request.url.as_str());
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    // wasi:http adds Host for the component; the host's own calls must add it themselves.
    if !request
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("host"))
    {
        let uri: http::Uri = request.url.parse().map_err(|e| format!("{e}"))?;
        if let Some(authority) = uri.authority() {
            builder = builder.header("host", authority.as_str());
        }
    }
    let outgoing = builder.body(()).map_err(|e| e.to_string())?;
    let answer = runtime.block_on(crate::net::fetch(outgoing))?;
    Ok(Answer {
        status: answer.status,
        body: String::from_utf8_lossy(&answer.body).into_owned(),
    })
}
