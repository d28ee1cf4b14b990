//! The forecast actor's window of recent load, on the service's grid (`models.step_seconds`):
//! one `f32` slot per step, so a thousand services with two weeks of minutes each stay within
//! a few tens of megabytes. A sample lands in the slot of its step (the latest sample of a
//! step wins, so 15-second scrapes fold into minutes), a late sample takes its place in time,
//! and only slots older than the window's span behind the newest one are let go (ingest refuses
//! samples dated in the future, so the newest one cannot run ahead of the clock and evict the
//! present).

use std::collections::VecDeque;

/// Load on a regular grid, spanning at most `span_s` seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadWindow {
    step_s: i64,
    slots_max: usize,
    /// Grid index (time / step) of the first slot.
    first: i64,
    /// `NaN`: no sample in that step.
    values: VecDeque<f32>,
    /// The exact time of the newest sample (the forecast's origin).
    latest: Option<i64>,
}

impl LoadWindow {
    pub fn new(step_s: i64, span_s: i64) -> Self {
        let step_s = step_s.max(1);
        LoadWindow {
            step_s,
            slots_max: (span_s.max(step_s) / step_s) as usize + 1,
            first: 0,
            values: VecDeque::new(),
            latest: None,
        }
    }

    /// Adds a sample; returns false when it is older than the window (it is then only in the
    /// metric store).
    pub fn insert(&mut self, ts: i64, value: f64) -> bool {
        let idx = ts.div_euclid(self.step_s);
        if self.values.is_empty() {
            self.first = idx;
            self.values.push_back(value as f32);
            self.latest = Some(ts);
            return true;
        }
        let last = self.first + self.values.len() as i64 - 1;
        if idx < last - self.slots_max as i64 + 1 {
            return false;
        }
        self.latest = self.latest.max(Some(ts));
        while idx < self.first {
            self.values.push_front(f32::NAN);
            self.first -= 1;
        }
        while idx > self.first + self.values.len() as i64 - 1 {
            self.values.push_back(f32::NAN);
        }
        self.values[(idx - self.first) as usize] = value as f32;
        while self.values.len() > self.slots_max {
            self.values.pop_front();
            self.first += 1;
        }
        while self.values.front().is_some_and(|v| v.is_nan()) {
            self.values.pop_front();
            self.first += 1;
        }
        true
    }

    /// The exact time of the newest sample.
    pub fn newest(&self) -> Option<i64> {
        self.latest.filter(|_| !self.values.is_empty())
    }

    /// Steps with a sample.
    pub fn len(&self) -> usize {
        self.values.iter().filter(|v| !v.is_nan()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Times (the start of each step) and values in time order, as the forecasters take them.
    pub fn series(&self) -> (Vec<i64>, Vec<f64>) {
        self.values
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_nan())
            .map(|(i, v)| ((self.first + i as i64) * self.step_s, f64::from(*v)))
            .unzip()
    }

    pub fn clear(&mut self) {
        self.values.clear();
        self.latest = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_sample_takes_its_place_and_blocks_nothing() {
        let mut w = LoadWindow::new(60, 600);
        for t in [0, 60, 180] {
            assert!(w.insert(t, t as f64));
        }
        assert!(w.insert(120, 120.0), "late but inside the window");
        assert!(w.insert(240, 240.0), "later samples still come in");
        assert_eq!(w.series().0, vec![0, 60, 120, 180, 240]);
        assert_eq!(w.series().1, vec![0.0, 60.0, 120.0, 180.0, 240.0]);
    }

    #[test]
    fn only_steps_older_than_the_span_go_and_the_latest_sample_of_a_step_wins() {
        let mut w = LoadWindow::new(60, 120);
        for t in (0..=300).step_by(60) {
            w.insert(t, 1.0);
        }
        assert_eq!(w.series().0, vec![180, 240, 300]);
        assert!(!w.insert(100, 5.0), "older than the window");
        w.insert(315, 7.0);
        assert_eq!(w.series(), (vec![180, 240, 300], vec![1.0, 1.0, 7.0]));
        assert_eq!(w.newest(), Some(315), "the exact time of the newest sample");
    }

    #[test]
    fn gaps_stay_gaps() {
        let mut w = LoadWindow::new(60, 3600);
        w.insert(0, 1.0);
        w.insert(600, 2.0);
        assert_eq!(w.len(), 2);
        assert_eq!(w.series().0, vec![0, 600]);
    }
}
