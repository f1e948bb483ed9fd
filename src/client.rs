//! The client: one set of credentials and its token, behind the operations of the WIT `client`
//! resource. A short front: renewal is in `lifecycle`, sharing in `shared`, request checks in
//! `authorize`. Generic over the transport and the clock so that everything is tested natively.
//! Owns `Client` and `Token`, the token as handed to the caller (`Status` is in `token`).

use crate::authorize::{self, HttpRequest, Verdict};
use crate::config::ClientConfig;
use crate::error::Error;
use crate::lifecycle::Lifecycle;
use crate::log::Logger;
use crate::ports::{Clock, TokenStore, Transport};
use crate::settings::Settings;
use crate::shared::Shared;
// Moved below this module (`token`); kept here at its first path.
pub use crate::token::Status;

/// A token as handed to the caller. `Debug` does not show the token.
#[derive(PartialEq, Eq)]
pub struct Token {
    pub access_token: String,
    pub token_type: String,
    pub expires_in_seconds: u64,
    pub expires_at_unix_seconds: u64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in_seconds", &self.expires_in_seconds)
            .field("expires_at_unix_seconds", &self.expires_at_unix_seconds)
            .finish()
    }
}

pub struct Client<T, C> {
    pub(crate) tokens: Lifecycle<T, C>,
}

impl<T: Transport, C: Clock> Client<T, C> {
    /// Validates the configuration; sends nothing.
    pub fn new(config: ClientConfig, transport: T, clock: C) -> Result<Self, Error> {
        let settings = Settings::new(config)?;
        Ok(Client {
            tokens: Lifecycle::new(settings, transport, clock, None),
        })
    }

    /// A client that shares its token with other instances through `store`.
    pub fn with_store(
        config: ClientConfig,
        transport: T,
        clock: C,
        store: Box<dyn TokenStore>,
    ) -> Result<Self, Error> {
        let settings = Settings::new(config)?;
        let shared = Box::new(Shared::new(store, &settings));
        Ok(Client {
            tokens: Lifecycle::new(settings, transport, clock, Some(shared)),
        })
    }

    /// The same client, logging its events through `log` (none by default).
    pub fn with_logger(mut self, log: Logger) -> Self {
        self.tokens.set_logger(log);
        self
    }

    pub fn get_token(&self) -> Result<Token, Error> {
        self.tokens.with_token(None, |token, now| Token {
            access_token: token.access_token.expose().to_owned(),
            token_type: token.token_type.clone(),
            expires_in_seconds: token.seconds_left(now),
            expires_at_unix_seconds: token.expires_at_unix_seconds(),
        })
    }

    /// Adds exactly one `Authorization: Bearer` header. The request is checked before any
    /// token is fetched, so a refused request never costs a token request.
    pub fn authorize_request(&self, request: HttpRequest) -> Result<HttpRequest, Error> {
        authorize::check_request(&request, &self.tokens.settings)?;
        let bearer = self
            .tokens
            .with_token(None, |token, _| token.bearer.expose().to_owned())?;
        Ok(authorize::with_bearer(request, bearer))
    }

    /// Reads the answer to an API call this client authorized (see `authorize::check_response`).
    /// A rejection counts only against the Bearer token the request carried: that token is
    /// dropped if it is the held one (so the next call renews) and never adopted from the
    /// store again. A request without a Bearer token drops nothing.
    pub fn check_response(
        &self,
        request: &HttpRequest,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Verdict {
        self.tokens.check_response(request, status, headers, body)
    }

    /// What the client holds and has done; sends nothing.
    pub fn status(&self) -> Status {
        self.tokens.status()
    }

    /// The base URL requests go to: scheme and authority, no trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.tokens.settings.base_url
    }
}

#[cfg(test)]
mod tests;
