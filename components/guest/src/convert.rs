//! Every conversion between the WIT types and the core library's, as `From` impls.

use crate::bindings::exports::mangopay::auth::auth as wit;
use mangopay_auth as core;
use std::time::Duration;

/// Whole seconds, rounded up: "retry in 0 s" must not be said while the pause still runs.
fn seconds(d: Option<Duration>) -> Option<u64> {
    d.map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

impl From<wit::Environment> for core::Environment {
    fn from(e: wit::Environment) -> Self {
        match e {
            wit::Environment::Sandbox => core::Environment::Sandbox,
            wit::Environment::Production => core::Environment::Production,
            wit::Environment::SandboxMtls => core::Environment::SandboxMtls,
            wit::Environment::ProductionMtls => core::Environment::ProductionMtls,
        }
    }
}

impl From<wit::Timeouts> for core::TimeoutsConfig {
    fn from(t: wit::Timeouts) -> Self {
        core::TimeoutsConfig {
            connect_ms: t.connect_ms,
            first_byte_ms: t.first_byte_ms,
            between_bytes_ms: t.between_bytes_ms,
        }
    }
}

impl From<wit::RetryPolicy> for core::RetryConfig {
    fn from(r: wit::RetryPolicy) -> Self {
        core::RetryConfig {
            max_attempts: r.max_attempts,
            initial_backoff_ms: r.initial_backoff_ms,
            budget_ms: r.budget_ms,
        }
    }
}

impl From<wit::CoolDown> for core::CoolDownConfig {
    fn from(c: wit::CoolDown) -> Self {
        core::CoolDownConfig {
            initial_seconds: c.initial_seconds,
            max_seconds: c.max_seconds,
        }
    }
}

impl From<wit::Config> for core::ClientConfig {
    fn from(c: wit::Config) -> Self {
        core::ClientConfig {
            client_id: c.client_id,
            api_key: core::Secret::new(c.api_key),
            environment: c.environment.into(),
            base_url: c.base_url,
            refresh_margin_seconds: c.refresh_margin_seconds,
            timeouts: c.timeouts.map(Into::into),
            retry: c.retry.map(Into::into),
            cool_down: c.cool_down.map(Into::into),
            max_response_bytes: c.max_response_bytes,
        }
    }
}

impl From<wit::HttpRequest> for core::HttpRequest {
    fn from(r: wit::HttpRequest) -> Self {
        core::HttpRequest {
            method: r.method,
            url: r.url,
            headers: r.headers,
        }
    }
}

impl From<core::HttpRequest> for wit::HttpRequest {
    fn from(r: core::HttpRequest) -> Self {
        wit::HttpRequest {
            method: r.method,
            url: r.url,
            headers: r.headers,
        }
    }
}

impl From<wit::ApiRequest> for core::ApiRequest {
    fn from(r: wit::ApiRequest) -> Self {
        core::ApiRequest {
            method: r.method,
            path: r.path,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<core::ApiResponse> for wit::ApiResponse {
    fn from(r: core::ApiResponse) -> Self {
        wit::ApiResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
            verdict: r.verdict.into(),
        }
    }
}

impl From<core::Token> for wit::Token {
    fn from(t: core::Token) -> Self {
        wit::Token {
            access_token: t.access_token,
            token_type: t.token_type,
            expires_in_seconds: t.expires_in_seconds,
            expires_at_unix_seconds: t.expires_at_unix_seconds,
        }
    }
}

impl From<core::Source> for wit::TokenSource {
    fn from(s: core::Source) -> Self {
        match s {
            core::Source::InstanceCache => wit::TokenSource::InstanceCache,
            core::Source::SharedStore => wit::TokenSource::SharedStore,
            core::Source::FreshFetch => wit::TokenSource::FreshFetch,
        }
    }
}

impl From<core::StoreHealth> for wit::StoreHealth {
    fn from(s: core::StoreHealth) -> Self {
        match s {
            core::StoreHealth::NotConfigured => wit::StoreHealth::NotConfigured,
            core::StoreHealth::Ok => wit::StoreHealth::Ok,
            core::StoreHealth::Unavailable => wit::StoreHealth::Unavailable,
        }
    }
}

impl From<core::Status> for wit::AuthStatus {
    fn from(s: core::Status) -> Self {
        wit::AuthStatus {
            held: s.held,
            source: s.source.map(Into::into),
            expires_in_seconds: s.expires_in_seconds,
            token_requests: s.token_requests,
            cool_down_seconds: seconds(s.cool_down),
            store: s.store.into(),
            store_error: s.store_error,
        }
    }
}

impl From<core::Verdict> for wit::ResponseVerdict {
    fn from(v: core::Verdict) -> Self {
        match v {
            core::Verdict::Accepted => wit::ResponseVerdict::Accepted,
            core::Verdict::TokenRejected(api) => {
                wit::ResponseVerdict::TokenRejected(api.map(Into::into))
            }
            core::Verdict::ScaRequired(url) => wit::ResponseVerdict::ScaRequired(url),
        }
    }
}

impl From<core::ApiError> for wit::ApiError {
    fn from(e: core::ApiError) -> Self {
        wit::ApiError {
            status: e.status,
            message: e.message,
            error_type: e.error_type,
            id: e.id,
            date: e.date,
            retry_in_seconds: seconds(e.retry_in),
        }
    }
}

impl From<core::OAuthError> for wit::OauthError {
    fn from(e: core::OAuthError) -> Self {
        wit::OauthError {
            status: e.status,
            error: e.error,
            description: e.description,
            retry_in_seconds: seconds(e.retry_in),
        }
    }
}

impl From<core::TransportKind> for wit::TransportKind {
    fn from(k: core::TransportKind) -> Self {
        match k {
            core::TransportKind::Dns => wit::TransportKind::Dns,
            core::TransportKind::ConnectionRefused => wit::TransportKind::ConnectionRefused,
            core::TransportKind::Timeout => wit::TransportKind::Timeout,
            core::TransportKind::Tls => wit::TransportKind::Tls,
            core::TransportKind::ConnectionLost => wit::TransportKind::ConnectionLost,
            core::TransportKind::Denied => wit::TransportKind::Denied,
            core::TransportKind::Other => wit::TransportKind::Other,
        }
    }
}

impl From<core::TokenProblem> for wit::TokenResponseProblem {
    fn from(p: core::TokenProblem) -> Self {
        use core::TokenProblem as P;
        use wit::TokenResponseProblem as W;
        match p {
            P::NotJson => W::NotJson,
            P::MissingAccessToken => W::MissingAccessToken,
            P::InvalidAccessToken => W::InvalidAccessToken,
            P::UnsupportedTokenType => W::UnsupportedTokenType,
            P::InvalidExpiresIn => W::InvalidExpiresIn,
            P::BodyTooLarge => W::BodyTooLarge,
        }
    }
}

impl From<core::Error> for wit::Error {
    fn from(error: core::Error) -> Self {
        use core::Error as E;
        match error {
            E::InvalidCredentials(e) => wit::Error::InvalidCredentials(e.into()),
            E::LockedOut(e) => wit::Error::LockedOut(e.into()),
            E::OAuth(e) => wit::Error::Oauth(e.into()),
            E::InvalidConfig(why) => wit::Error::InvalidConfig(why),
            E::InsecureUrl(why) => wit::Error::InsecureUrl(why),
            E::ForeignHost(why) => wit::Error::ForeignHost(why),
            E::InvalidRequest(why) => wit::Error::InvalidRequest(why),
            E::Transport(e) => wit::Error::Transport(wit::TransportError {
                kind: e.kind.into(),
                detail: e.detail,
            }),
            E::MalformedTokenResponse(problem) => {
                wit::Error::MalformedTokenResponse(problem.into())
            }
            E::UnexpectedResponse(e) => wit::Error::UnexpectedResponse(wit::UnexpectedResponse {
                status: e.status,
                excerpt: e.excerpt,
                retry_in_seconds: seconds(e.retry_in),
            }),
            E::ResponseTooLarge(cap) => wit::Error::ResponseTooLarge(cap),
        }
    }
}
