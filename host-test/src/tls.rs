//! Real TLS, as production runs it: a test PKI made at run time ([`TestPki`]: a CA, a server
//! certificate for `localhost` and 127.0.0.1, client certificates; nothing committed that
//! expires) for the TLS mock Mangopay ([`crate::mock::MockMangopay::start_tls`]), and
//! [`TlsHooks`], the wasi:http `send_request` hook an embedder installs to reach Mangopay's
//! mutual-TLS hosts: it trusts the roots it is given (the webpki roots in production, the test
//! CA here) and presents the client certificate to one origin only, the Mangopay mTLS host,
//! and to nothing else the component reaches.
//!
//! A component cannot present a client certificate (wasi:http has no API for it): the host
//! does. Production use, with the certificate and key from the Mangopay Dashboard:
//!
//! ```ignore
//! let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
//! let hooks = TlsHooks::new(roots)
//!     .with_client_certificate("https://api-mtls.mangopay.com", chain, key)?;
//! // WasiHttpView::http(): WasiHttpCtxView { hooks: &mut hooks, .. }
//! ```

use crate::inject::Sent;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The crypto provider of every TLS config here: ring, which wasmtime-wasi-http's client
/// already builds.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its private key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
    /// The same, PEM-encoded: what a platform's configuration file takes (Spin's
    /// `[[client_tls]]`).
    pub chain_pem: String,
    key_pem: String,
}

impl Identity {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }

    /// The private key as PEM, to write to a file for a platform.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl std::fmt::Debug for Identity {
    // Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// A CA made at run time, and what it signs.
pub struct TestPki {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca: CertificateDer<'static>,
    ca_pem: String,
}

impl TestPki {
    /// A fresh CA named `name`.
    pub fn new(name: &str) -> TestPki {
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).expect("a self-signed CA");
        TestPki {
            ca: cert.der().clone(),
            ca_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// The CA certificate.
    pub fn ca(&self) -> CertificateDer<'static> {
        self.ca.clone()
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Roots holding this CA alone.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca()).expect("a valid CA certificate");
        roots
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self) -> Identity {
        self.sign(
            "localhost",
            vec!["localhost".into(), "127.0.0.1".into()],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate whose subject's common name is `name`.
    pub fn client(&self, name: &str) -> Identity {
        self.sign(name, Vec::new(), rcgen::ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn sign(
        &self,
        name: &str,
        sans: Vec<String>,
        usage: rcgen::ExtendedKeyUsagePurpose,
    ) -> Identity {
        let key = rcgen::KeyPair::generate().expect("a key");
        let mut params = rcgen::CertificateParams::new(sans).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a signed certificate");
        Identity {
            chain: vec![cert.der().clone()],
            chain_pem: cert.pem(),
            key: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// wasi:http's outgoing requests over real TLS: `roots` trusted, and a client certificate
/// presented to one origin only. Plain `http://` requests go out as they are.
#[derive(Clone)]
pub struct TlsHooks {
    roots: Arc<RootCertStore>,
    plain: Arc<ClientConfig>,
    /// The origin's authority (`host:port`) and the config that presents the certificate.
    mutual: Option<(String, Arc<ClientConfig>)>,
}

impl TlsHooks {
    pub fn new(roots: RootCertStore) -> TlsHooks {
        let roots = Arc::new(roots);
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the provider's protocol versions")
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        TlsHooks {
            roots,
            plain: Arc::new(config),
            mutual: None,
        }
    }

    /// Presents `chain` (proving the key `key`) to `origin` (`https://host[:port]`) and to no
    /// other origin.
    pub fn with_client_certificate(
        mut self,
        origin: &str,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<TlsHooks, String> {
        let authority = origin
            .strip_prefix("https://")
            .ok_or_else(|| format!("{origin}: a client certificate goes to an https:// origin"))?
            .trim_end_matches('/');
        let authority = match authority.rsplit_once(':') {
            Some((_, port)) if port.chars().all(|c| c.is_ascii_digit()) => authority.to_owned(),
            _ => format!("{authority}:443"),
        };
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("client certificate: {e}"))?;
        self.mutual = Some((authority, Arc::new(config)));
        Ok(self)
    }

    /// The TLS config for `authority` (`host:port`): the client certificate's for the mTLS
    /// origin alone.
    fn config_for(&self, authority: &str) -> Arc<ClientConfig> {
        match &self.mutual {
            Some((origin, config)) if origin.eq_ignore_ascii_case(authority) => config.clone(),
            _ => self.plain.clone(),
        }
    }

    pub fn boxed(&self) -> Box<dyn WasiHttpHooks> {
        Box::new(self.clone())
    }
}

impl WasiHttpHooks for TlsHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Sent,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, Sent), Error>> + Send> {
        let hooks = self.clone();
        Box::new(async move { hooks.send(request, options).await })
    }
}

impl TlsHooks {
    async fn send(
        &self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, Sent), Error> {
        let uri = request.uri().clone();
        let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        // Compared with the mTLS origin's authority as written there (IPv6 in brackets).
        let address = format!("{}:{port}", authority.host());
        let connect = options
            .and_then(|o| o.connect_timeout)
            .unwrap_or(Duration::from_secs(600));
        let first_byte = options
            .and_then(|o| o.first_byte_timeout)
            .unwrap_or(Duration::from_secs(600));
        let tcp = tokio::time::timeout(connect, TcpStream::connect((host, port)))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Connect)?;
        // Only the path goes on the wire.
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
        if tls {
            let name =
                ServerName::try_from(host.to_owned()).map_err(|_| Error::HttpRequestUriInvalid)?;
            let connector = tokio_rustls::TlsConnector::from(self.config_for(&address));
            let stream = tokio::time::timeout(connect, connector.connect(name, tcp))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(|e| tls_error(&e).unwrap_or(Error::TlsProtocolError))?;
            exchange(TokioIo::new(stream), request, first_byte).await
        } else {
            exchange(TokioIo::new(tcp), request, first_byte).await
        }
    }
}

/// One HTTP/1.1 exchange on `io`.
async fn exchange<I>(
    io: I,
    request: http::Request<WasiBody>,
    first_byte: Duration,
) -> Result<(http::Response<WasiBody>, Sent), Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| hyper_error(&e))?;
    let driver = tokio::spawn(connection);
    let response = tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)?
        .map_err(|e| hyper_error(&e))?;
    let response = response.map(|body: Incoming| body.map_err(|e| hyper_error(&e)).boxed_unsync());
    let sent: Sent = Box::new(async move {
        match driver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(hyper_error(&e)),
            Err(_) => Err(Error::ConnectionTerminated),
        }
    });
    Ok((response, sent))
}

/// A TLS failure as wasi:http names it: the alert the server sent (TLS 1.3 servers reject a
/// missing or unknown client certificate with an alert after the handshake, which surfaces on
/// the first read), a certificate this side refused, or the protocol; `None` when `error`
/// holds no TLS failure.
fn tls_error(error: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut next = Some(error);
    while let Some(e) = next {
        // io::Error's `source` skips the error it wraps: look inside it first.
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(tls) = e.downcast_ref::<rustls::Error>().or(inner) {
            return Some(match tls {
                rustls::Error::AlertReceived(alert) => Error::TlsAlertReceived {
                    alert_id: Some(u8::from(*alert)),
                    alert_message: Some(format!("{alert:?}")),
                },
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                    Error::TlsCertificateError
                }
                _ => Error::TlsProtocolError,
            });
        }
        next = e.source();
    }
    None
}

/// hyper's error, or the TLS failure inside it.
fn hyper_error(error: &hyper::Error) -> Error {
    if let Some(tls) = tls_error(error) {
        return tls;
    }
    if error.is_timeout() {
        return Error::HttpResponseTimeout;
    }
    if error.is_incomplete_message() || error.is_canceled() || error.is_closed() {
        return Error::ConnectionTerminated;
    }
    Error::HttpProtocolError
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The certificate goes to the mTLS origin's exact authority (default port filled in,
    /// IPv6 in brackets), and nowhere else.
    #[test]
    fn the_client_certificate_is_for_one_authority() {
        let pki = TestPki::new("unit CA");
        let id = pki.client("unit");
        for (origin, same, others) in [
            (
                "https://api-mtls.mangopay.com",
                "api-mtls.mangopay.com:443",
                &["api.mangopay.com:443", "api-mtls.mangopay.com:8443"][..],
            ),
            (
                "https://localhost:8443/",
                "localhost:8443",
                &["localhost:443", "127.0.0.1:8443"][..],
            ),
            ("https://[::1]:8443", "[::1]:8443", &["[::1]:443"][..]),
        ] {
            let hooks = TlsHooks::new(pki.roots())
                .with_client_certificate(origin, id.chain.clone(), id.key())
                .expect("a client certificate");
            let mutual = hooks.mutual.as_ref().expect("set").1.clone();
            assert!(Arc::ptr_eq(&hooks.config_for(same), &mutual), "{origin}");
            for other in others {
                assert!(
                    Arc::ptr_eq(&hooks.config_for(other), &hooks.plain),
                    "{other}"
                );
            }
        }
        assert!(
            TlsHooks::new(pki.roots())
                .with_client_certificate("http://localhost", id.chain.clone(), id.key())
                .is_err()
        );
    }
}
