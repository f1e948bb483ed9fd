//! The client: one set of credentials and its token, behind the operations of the WIT `client`
//! resource, and the blocking driver of the renewal's steps: it owns the transport, the clock
//! and the store, which `lifecycle` (the rules) holds none of. Sharing is in `shared`, request
//! checks in `authorize`. Generic over the transport and the clock so that everything is
//! tested natively. Owns `Client` and `Token`, the token as handed to the caller.

use crate::authorize::{self, HttpRequest, Verdict};
use crate::config::ClientConfig;
use crate::error::Error;
use crate::lifecycle::{self, Action, Begin, Lifecycle, Ready};
use crate::log::Logger;
use crate::ports::{Clock, TokenStore, Transport};
use crate::retry::Deadline;
use crate::settings::Settings;
use crate::shared::Shared;
use crate::shared::sharing::{Sharing, Unshared};
use crate::token::{HeldToken, Status};
use std::time::Duration;

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

/// The blocking driver of the renewal's steps (`lifecycle`): it owns the transport, the
/// clock and the store, and runs one call at a time.
pub struct Client<T, C> {
    pub(crate) tokens: Lifecycle,
    pub(crate) transport: T,
    pub(crate) clock: C,
    pub(crate) store: Box<dyn Sharing<C>>,
}

impl<T: Transport, C: Clock + 'static> Client<T, C> {
    /// Validates the configuration; sends nothing.
    pub fn new(config: ClientConfig, transport: T, clock: C) -> Result<Self, Error> {
        let settings = Settings::new(config)?;
        Ok(Client {
            tokens: Lifecycle::new(settings),
            transport,
            clock,
            store: Box::new(Unshared),
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
        let store = Box::new(Shared::new(store, &settings));
        Ok(Client {
            tokens: Lifecycle::new(settings),
            transport,
            clock,
            store,
        })
    }

    /// The same client, logging its events through `log` (none by default).
    pub fn with_logger(mut self, log: Logger) -> Self {
        self.tokens.set_logger(log);
        self.store.set_logger(self.tokens.logger().clone());
        self
    }

    pub fn get_token(&self) -> Result<Token, Error> {
        self.with_token(None, |token, now| Token {
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
        let bearer = self.with_token(None, |token, _| token.bearer.expose().to_owned())?;
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
        let wall = self.clock.wall();
        let verdict = self
            .tokens
            .check_response(request, status, headers, body, wall);
        if let Some(sent) = lifecycle::refused_token(&verdict, request) {
            self.store.reject(&self.clock, sent);
        }
        verdict
    }

    /// What the client holds and has done; sends nothing.
    pub fn status(&self) -> Status {
        let now = self.clock.monotonic();
        self.tokens.status(now, self.store.health())
    }

    /// The base URL requests go to: scheme and authority, no trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.tokens.settings.base_url
    }

    /// A deadline for a call starting now (`retry.budget-ms`).
    pub(crate) fn deadline(&self) -> Deadline {
        Deadline::start(self.clock.monotonic(), self.tokens.settings.retry.budget)
    }

    /// Runs `f` on a usable token. The held one while it is before its refresh point (the
    /// cached path: one clock read, no allocation); otherwise see `renew`, within the call's
    /// `deadline` (made only when needed: the cached path does not read the clock twice).
    pub(crate) fn with_token<R>(
        &self,
        deadline: Option<&Deadline>,
        f: impl FnOnce(&HeldToken, Duration) -> R,
    ) -> Result<R, Error> {
        let now = self.clock.monotonic();
        let f = match self.tokens.with_usable(now, f) {
            Ok(result) => return Ok(result),
            Err(f) => f,
        };
        let own;
        let deadline = match deadline {
            Some(deadline) => deadline,
            None => {
                own = self.deadline();
                &own
            }
        };
        let ready = self.renew(now, deadline)?;
        Ok(f(&ready.token, ready.at))
    }

    /// Makes the held token one that may be sent, or says why there is none: `begin`, then
    /// the renewal's actions over the blocking transport, clock and store.
    fn renew(&self, now: Duration, deadline: &Deadline) -> Result<Ready, Error> {
        let mut renewal = match self.tokens.begin(now) {
            Begin::Ready(ready) => return Ok(ready),
            Begin::Failed(error) => return Err(error),
            Begin::Renew(renewal) => renewal,
        };
        let mut action = renewal.first();
        loop {
            match action {
                Action::Sleep(pause) => deadline.sleep(&self.clock, pause),
                Action::Look { held_alive, pause } => {
                    let acquired = self.store.acquire(&self.clock, held_alive, deadline, pause);
                    self.tokens.looked(&mut renewal, acquired);
                }
                Action::Send(request) => {
                    let response = self.transport.post_token(&request);
                    self.tokens.answered(&mut renewal, response);
                }
                Action::Publish(lead, outcome) => self.store.finish(&self.clock, lead, outcome),
                Action::Done(result) => return result,
            }
            action = self.tokens.next(&mut renewal, self.clock.now(), deadline);
        }
    }
}

#[cfg(test)]
mod tests;
