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
    /// A fault injected on purpose (supervision tests, chaos drills).
    #[error("injected fault")]
    Injected,
}
