//! Errors of the actors.

/// What can fail inside an actor's handler.
#[derive(Debug, thiserror::Error)]
pub enum ActorError {
    /// The event or metric store failed.
    #[error("store: {0}")]
    Store(#[from] events::StoreError),
    /// The forecaster refused the history.
    #[error("forecast: {0}")]
    Forecast(#[from] crate::forecast::ForecastError),
    /// A message could not be delivered to another actor.
    #[error("mailbox: {0}")]
    Mailbox(#[from] actix::MailboxError),
    /// The scale target (cluster, cloud group) refused or failed.
    #[error("scale target: {0}")]
    Target(String),
    /// A request named something that does not exist or is in the wrong state.
    #[error("{0}")]
    Rejected(String),
    /// Input refused because one field is out of bounds; the message names it.
    #[error("`{field}`: {message}")]
    Invalid {
        /// The offending field (`timestamp`, `value`, ...).
        field: &'static str,
        message: String,
    },
    /// A request was valid when made but the state moved on (a stale approval).
    #[error("{0}")]
    Conflict(String),
    /// The actor cannot serve yet (its state was not rebuilt from the log).
    #[error("not ready: {0}")]
    NotReady(String),
    /// A model ran past its time limit.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A fault injected on purpose (supervision tests, chaos drills).
    #[error("injected fault")]
    Injected,
}
