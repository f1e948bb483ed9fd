//! The WASI 0.2 calls every mangopay-auth component makes beside its world, through the one
//! bindings source (the `wasip2` crate): the host clock the core reads, and the operator log
//! on stderr. The WASI 0.2 worlds (`mangopay-auth-guest`) and the WASI 0.3 middleware share
//! them.
#![cfg(target_arch = "wasm32")]

mod clock;

pub use clock::HostClock;

use mangopay_auth::log::{LEVEL_VAR, Level, Logger, Sink};
use std::rc::Rc;

/// Operator lines go to stderr, which every platform captures.
struct Stderr;

impl Sink for Stderr {
    fn write_line(&self, line: &str) {
        // Straight to wasi:cli/stderr, in one write, so that lines of instances sharing a log
        // stay whole (std's buffered stderr costs more code). A line that cannot be written is
        // dropped: logging never fails a call.
        let _ = wasip2::cli::stderr::get_stderr()
            .blocking_write_and_flush(format!("{line}\n").as_bytes());
    }
}

/// The operator log at the level from `MANGOPAY_AUTH_LOG` (`warn` when unset or unknown).
pub fn logger() -> Logger {
    let level = std::env::var(LEVEL_VAR)
        .ok()
        .and_then(|value| Level::parse(&value))
        .unwrap_or(Level::DEFAULT);
    Logger::new(level, Rc::new(Stderr))
}

/// `fn from_code(code: $code) -> TransportError`: a wasi:http `error-code` as the core's
/// transport error. WASI 0.2 and 0.3 declare the same variant, but each world's bindings make
/// a type of their own, so the one mapping is a macro expanded over each.
#[macro_export]
macro_rules! transport_error_from_code {
    ($code:ty) => {
        /// The error kind, and as detail the case's WIT name with its text payload if any
        /// (`dns-error: NXDOMAIN`), a stable text whatever the host; numeric payloads are left out.
        fn from_code(code: $code) -> ::mangopay_auth::TransportError {
            type E = $code;
            use ::mangopay_auth::TransportKind as K;
            let (kind, name, text) = match &code {
                E::DnsTimeout => (K::Dns, "dns-timeout", None),
                E::DnsError(p) => (K::Dns, "dns-error", p.rcode.as_deref()),
                E::DestinationNotFound => (K::Dns, "destination-not-found", None),
                E::DestinationUnavailable => {
                    (K::ConnectionRefused, "destination-unavailable", None)
                }
                E::DestinationIpProhibited => (K::Denied, "destination-ip-prohibited", None),
                E::DestinationIpUnroutable => {
                    (K::ConnectionRefused, "destination-ip-unroutable", None)
                }
                E::ConnectionRefused => (K::ConnectionRefused, "connection-refused", None),
                // hyper reports a connection cut mid-answer as a protocol error.
                E::ConnectionTerminated => (K::ConnectionLost, "connection-terminated", None),
                E::ConnectionTimeout => (K::Timeout, "connection-timeout", None),
                E::ConnectionReadTimeout => (K::Timeout, "connection-read-timeout", None),
                E::ConnectionWriteTimeout => (K::Timeout, "connection-write-timeout", None),
                E::ConnectionLimitReached => (K::ConnectionLost, "connection-limit-reached", None),
                E::TlsProtocolError => (K::Tls, "tls-protocol-error", None),
                E::TlsCertificateError => (K::Tls, "tls-certificate-error", None),
                E::TlsAlertReceived(p) => {
                    (K::Tls, "tls-alert-received", p.alert_message.as_deref())
                }
                E::HttpRequestDenied => (K::Denied, "http-request-denied", None),
                E::HttpRequestLengthRequired => (K::Other, "http-request-length-required", None),
                E::HttpRequestBodySize(_) => (K::Other, "http-request-body-size", None),
                E::HttpRequestMethodInvalid => (K::Other, "http-request-method-invalid", None),
                E::HttpRequestUriInvalid => (K::Other, "http-request-uri-invalid", None),
                E::HttpRequestUriTooLong => (K::Other, "http-request-uri-too-long", None),
                E::HttpRequestHeaderSectionSize(_) => {
                    (K::Other, "http-request-header-section-size", None)
                }
                E::HttpRequestHeaderSize(p) => (
                    K::Other,
                    "http-request-header-size",
                    p.as_ref().and_then(|p| p.field_name.as_deref()),
                ),
                E::HttpRequestTrailerSectionSize(_) => {
                    (K::Other, "http-request-trailer-section-size", None)
                }
                E::HttpRequestTrailerSize(p) => (
                    K::Other,
                    "http-request-trailer-size",
                    p.field_name.as_deref(),
                ),
                E::HttpResponseIncomplete => (K::ConnectionLost, "http-response-incomplete", None),
                E::HttpResponseHeaderSectionSize(_) => {
                    (K::Other, "http-response-header-section-size", None)
                }
                E::HttpResponseHeaderSize(p) => (
                    K::Other,
                    "http-response-header-size",
                    p.field_name.as_deref(),
                ),
                E::HttpResponseBodySize(_) => (K::Other, "http-response-body-size", None),
                E::HttpResponseTrailerSectionSize(_) => {
                    (K::Other, "http-response-trailer-section-size", None)
                }
                E::HttpResponseTrailerSize(p) => (
                    K::Other,
                    "http-response-trailer-size",
                    p.field_name.as_deref(),
                ),
                E::HttpResponseTransferCoding(t) => {
                    (K::Other, "http-response-transfer-coding", t.as_deref())
                }
                E::HttpResponseContentCoding(t) => {
                    (K::Other, "http-response-content-coding", t.as_deref())
                }
                E::HttpResponseTimeout => (K::Timeout, "http-response-timeout", None),
                E::HttpUpgradeFailed => (K::Other, "http-upgrade-failed", None),
                // Can also be a TLS 1.3 server refusing the client certificate after the
                // handshake (wasmtime's default send_request): on an mTLS base the core takes
                // a lost token request for a TLS fault.
                E::HttpProtocolError => (K::ConnectionLost, "http-protocol-error", None),
                E::LoopDetected => (K::Other, "loop-detected", None),
                E::ConfigurationError => (K::Other, "configuration-error", None),
                E::InternalError(t) => (K::Other, "internal-error", t.as_deref()),
            };
            let mut detail = name.to_owned();
            if let Some(text) = text {
                detail.push_str(": ");
                detail.push_str(text);
            }
            ::mangopay_auth::TransportError { kind, detail }
        }
    };
}

/// `struct HostStore`: the imported `mangopay:auth/token-store` (its bindings module given as
/// a path, e.g. `mangopay::auth::token_store`) as the core client's `TokenStore`. Each world's
/// bindings make a module of their own, so the one adapter is a macro expanded over each.
#[macro_export]
macro_rules! host_token_store {
    ($($module:ident)::+) => {
        /// The imported `token-store`, as the core client's store.
        pub(crate) struct HostStore;

        impl ::mangopay_auth::TokenStore for HostStore {
            fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ::mangopay_auth::StoreError> {
                $($module)::+::get(key).map_err(::mangopay_auth::StoreError)
            }

            fn compare_and_swap(
                &self,
                key: &str,
                expected: Option<&[u8]>,
                value: &[u8],
                ttl: ::std::time::Duration,
            ) -> Result<bool, ::mangopay_auth::StoreError> {
                let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
                $($module)::+::compare_and_swap(key, expected, value, ttl_ms)
                    .map_err(::mangopay_auth::StoreError)
            }

            fn delete(&self, key: &str) -> Result<(), ::mangopay_auth::StoreError> {
                $($module)::+::delete(key).map_err(::mangopay_auth::StoreError)
            }
        }
    };
}
