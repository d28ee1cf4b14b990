//! The forecast actor's state folded from the log: the latest forecast it appended.

use events::Metadata;
use events::vocabulary::Event;
use serde::{Deserialize, Serialize};

use crate::messages::ForecastReady;

/// What the forecast actor knows of its service from the log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ForecastState {
    /// The latest `ForecastMade` of the service, with its metadata.
    pub latest: Option<(events::vocabulary::ForecastMade, Metadata)>,
    /// Position of the last event applied.
    pub position: u64,
}

impl ForecastState {
    /// Applies one event of the service.
    pub fn apply(&mut self, event: &Event, meta: &Metadata, position: u64) {
        if let Event::ForecastMade(f) = event
            && self.latest.as_ref().is_none_or(|(l, _)| f.origin >= l.origin)
        {
            self.latest = Some((f.clone(), meta.clone()));
        }
        self.position = self.position.max(position);
    }

    /// The latest forecast as the decision actor takes it.
    pub fn ready(&self) -> Option<ForecastReady> {
        self.latest.as_ref().map(|(f, m)| ForecastReady {
            forecast: f.clone(),
            metadata: m.clone(),
        })
    }
}

impl crate::history::Fold for ForecastState {
    fn apply(&mut self, event: &Event, meta: &Metadata, position: u64) {
        ForecastState::apply(self, event, meta, position)
    }
    fn position(&self) -> u64 {
        self.position
    }
}
