//! Single flight within one instance, for a driver whose callers run concurrently (the WASI
//! 0.3 middleware's tasks): one caller's renewal at a time. Meanwhile the others send the
//! held token while it lives, or wait for that renewal and answer as it ended, so N callers
//! without a token cost one token request, and one failure reaches them all as one error.
//! The blocking driver needs none of this: it runs one call at a time.

use crate::error::Error;
use crate::lifecycle::{Begin, Lifecycle, Ready, Renewal};
use crate::secret::Secret;
use std::time::Duration;

/// The renewals of one instance.
pub struct Flight {
    /// The renewal under way: its number, and its deadline, after which a renewal its driver
    /// dropped unfinished stops holding callers.
    renewing: Option<(u64, Duration)>,
    /// The number of the latest renewal that ended, and how.
    ended: (u64, Result<(), Error>),
    /// Renewals begun.
    begun: u64,
}

/// What a caller without a usable token does.
pub enum Step {
    /// Send this `Bearer` value: the held token's.
    Ready(Secret),
    /// No token may be sent, and none may be requested yet.
    Failed(Error),
    /// Another caller renews and no token lives: once renewal `.0` ended (`Flight::ended`),
    /// answer its error or begin again.
    Wait(u64),
    /// Drive this renewal (number `.0`) to its end, then tell `Flight::end`.
    Renew(u64, Box<Renewal>),
}

/// Where the renewal a caller waits for stands (`Flight::ended`).
#[derive(Debug, PartialEq)]
pub enum Waited {
    /// Still under way: wait on.
    Running,
    /// Over with a token, or dropped unfinished: begin again.
    Again,
    /// Over with this error, which every caller that waited answers.
    Failed(Error),
}

impl Default for Flight {
    fn default() -> Self {
        Flight {
            renewing: None,
            ended: (0, Ok(())),
            begun: 0,
        }
    }
}

impl Flight {
    /// Where a caller without a usable token stands at `now` (see `Lifecycle::begin`).
    pub fn begin(&mut self, tokens: &Lifecycle, now: Duration) -> Step {
        if let Some((number, _)) = self.renewing.filter(|(_, until)| now < *until) {
            return match tokens.sendable(now) {
                Some(bearer) => Step::Ready(bearer),
                None => Step::Wait(number),
            };
        }
        match tokens.begin(now) {
            Begin::Ready(ready) => Step::Ready(ready.token.bearer.clone()),
            Begin::Failed(error) => Step::Failed(error),
            Begin::Renew(renewal) => {
                self.begun += 1;
                let until = now.saturating_add(tokens.settings.retry.budget);
                self.renewing = Some((self.begun, until));
                Step::Renew(self.begun, renewal)
            }
        }
    }

    /// Renewal `number` runs until `until` (monotonic): its deadline, which a store failure
    /// restarts (`Acquired::Direct`). A driver tells this after each step, or its callers
    /// would take a renewal whose store call the host held for the whole budget for one
    /// dropped, and begin another: a second token request from the instance.
    pub fn lasts_until(&mut self, number: u64, until: Duration) {
        if let Some((n, at)) = &mut self.renewing
            && *n == number
        {
            *at = until;
        }
    }

    /// Renewal `number` ended with `result`.
    pub fn end(&mut self, number: u64, result: &Result<Ready, Error>) {
        if self.renewing.is_some_and(|(n, _)| n == number) {
            self.renewing = None;
        }
        self.ended = (number, result.as_ref().map(|_| ()).map_err(Clone::clone));
    }

    /// Where renewal `number` stands at `now`: running (until it ends or its deadline
    /// passes), or over.
    pub fn ended(&self, number: u64, now: Duration) -> Waited {
        match self.renewing {
            Some((n, until)) if n == number && now < until => Waited::Running,
            _ if self.ended.0 == number => match &self.ended.1 {
                Ok(()) => Waited::Again,
                Err(error) => Waited::Failed(error.clone()),
            },
            // Dropped unfinished: begin again.
            _ => Waited::Again,
        }
    }
}

#[cfg(test)]
mod tests;
