//! The floors the component is measured against: trivial components built in this workspace
//! (floor-auth, floor-const), the core library's client in-process, and native Rust clients
//! of the token endpoint.

use crate::setup::{API_KEY, CLIENT_ID, TOKEN};
use bytes::Bytes;
use host_test::artifact;
use host_test::host::Host;
use host_test::mock::{RecordedRequest, TOKEN_PATH};
use http_body_util::{BodyExt, Full};
use mangopay_auth::fakes::{FakeClock, FakeTransport, token_body};
use mangopay_auth::{Client, ClientConfig, Environment, Secret};
use wasmtime_wasi_http::io::TokioIo;

/// floor-auth: world `standalone`, every export answering constants (`authorize-request`
/// appends a constant header).
pub fn floor_auth() -> Result<Host, String> {
    Host::load(artifact::floor_auth_wasm()).map_err(|e| format!("loading floor-auth: {e}"))
}

/// The core library's client in-process, talking to `base_url`: its transport answers every
/// token request with a 20-minute token without a network, its clock stands still.
pub fn in_process_client(
    base_url: Option<String>,
) -> Result<Client<FakeTransport, FakeClock>, String> {
    let transport = FakeTransport::default();
    transport.answer(200, &token_body(TOKEN, 1200));
    let config = ClientConfig {
        base_url,
        ..ClientConfig::new(
            CLIENT_ID.into(),
            Secret::new(API_KEY.into()),
            Environment::Sandbox,
        )
    };
    Client::new(config, transport, FakeClock::default()).map_err(|e| format!("{e:?}"))
}

/// Native Rust clients for the token endpoint, sending the component's exact request: hyper 1
/// over tokio with one connection per request (as wasmtime-wasi-http's outgoing client does).
pub struct NativeClient {
    /// The plain client's runtime: everything on the calling thread.
    runtime: tokio::runtime::Runtime,
    /// Like wasmtime's: a multi-thread runtime, the request on a worker.
    multi_thread: tokio::runtime::Runtime,
    base_url: String,
    authority: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl NativeClient {
    pub fn new(base_url: &str, template: &RecordedRequest) -> Result<NativeClient, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let multi_thread = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let authority = base_url
            .strip_prefix("http://")
            .ok_or("the mock is served over http")?
            .to_owned();
        Ok(NativeClient {
            runtime,
            multi_thread,
            base_url: base_url.to_owned(),
            authority,
            headers: template.headers.clone(),
            body: Bytes::from(template.body.clone()),
        })
    }

    fn request<B>(&self, uri: &str, body: B) -> Result<http::Request<B>, String> {
        let mut request = http::Request::builder().method("POST").uri(uri);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request.body(body).map_err(|e| e.to_string())
    }

    /// A plain native client: sends the token request, returns the token of the JSON answer.
    pub fn fetch(&self) -> Result<String, String> {
        self.runtime.block_on(async {
            let stream = tokio::net::TcpStream::connect(&self.authority)
                .await
                .map_err(|e| e.to_string())?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            let driver = tokio::spawn(connection);
            let request = self.request(TOKEN_PATH, Full::new(self.body.clone()))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let body = ok_body(response.status().as_u16(), response.into_body()).await?;
            drop(sender);
            let _ = driver.await;
            access_token(&body)
        })
    }

    /// The same request through `wasmtime_wasi_http::default_send_request`, spawned on a
    /// multi-thread runtime and awaited from a blocked caller, as wasmtime does for a
    /// component: the network share of a component's cold token, without the component.
    pub fn fetch_like_wasmtime(&self) -> Result<String, String> {
        let url = format!("{}{TOKEN_PATH}", self.base_url);
        let body = Full::new(self.body.clone())
            .map_err(|never| match never {})
            .boxed_unsync();
        let request = self.request(&url, body)?;
        self.multi_thread.block_on(async {
            let sent = tokio::spawn(async move {
                let (response, io) = wasmtime_wasi_http::default_send_request(request, None)
                    .await
                    .map_err(|e| e.to_string())?;
                let driver = tokio::spawn(io);
                let body = ok_body(response.status().as_u16(), response.into_body()).await;
                driver.abort();
                body
            });
            let body = sent.await.map_err(|e| e.to_string())??;
            access_token(&body)
        })
    }
}

/// The whole body of a 200 answer.
async fn ok_body<B>(status: u16, body: B) -> Result<Bytes, String>
where
    B: hyper::body::Body,
    B::Error: std::fmt::Display,
{
    if status != 200 {
        return Err(format!("token endpoint answered {status}"));
    }
    Ok(body.collect().await.map_err(|e| e.to_string())?.to_bytes())
}

fn access_token(body: &[u8]) -> Result<String, String> {
    let answer: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no access_token".to_owned())
}
