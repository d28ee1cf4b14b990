//! The causal history extractors read: a bounded ring buffer for streaming, a slice view for batch.
//!
//! Both address observations by *time bucket* (`t.div_euclid(granularity)`),
//! never by index, so a lag or window over a gap in the series finds the gap
//! rather than an older point. Both present exactly the same observations in
//! the same order, which is what makes incremental and batch features equal.

/// Read access to the observations up to and including the current point.
pub(crate) trait History {
    /// Bucket of the current point.
    fn current(&self) -> i64;
    /// Bucket of the first observation ever accepted.
    fn first(&self) -> i64;
    /// The value observed in bucket `b`, if one was (and is still held).
    fn get(&self, b: i64) -> Option<f64>;
    /// Appends to `out` the observations with bucket in `[from, current]`, oldest first.
    fn window(&self, from: i64, out: &mut Vec<(i64, f64)>);
}

/// A ring of the last `cap` buckets; a missing bucket holds NaN (inputs are finite, so NaN is free).
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    vals: Vec<f64>,
    first: Option<i64>,
    last: i64,
}

impl Ring {
    /// A ring that remembers the buckets `(current - cap, current]`.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            vals: vec![f64::NAN; cap.max(1)],
            first: None,
            last: 0,
        }
    }

    /// Buckets held.
    pub(crate) fn capacity(&self) -> usize {
        self.vals.len()
    }

    fn cap(&self) -> i64 {
        self.vals.len() as i64
    }

    fn slot(&self, b: i64) -> usize {
        b.rem_euclid(self.cap()) as usize
    }

    /// Records `y` in bucket `b`, which must be later than the last one; the buckets
    /// skipped over are marked missing (at most `cap` writes, whatever the gap).
    pub(crate) fn push(&mut self, b: i64, y: f64) {
        if self.first.is_some() {
            let skipped = (b - self.last - 1).clamp(0, self.cap());
            for j in 1..=skipped {
                let s = self.slot(self.last + j);
                self.vals[s] = f64::NAN;
            }
        } else {
            self.first = Some(b);
        }
        let s = self.slot(b);
        self.vals[s] = y;
        self.last = b;
    }
}

impl History for Ring {
    fn current(&self) -> i64 {
        self.last
    }

    fn first(&self) -> i64 {
        self.first.unwrap_or(self.last)
    }

    fn get(&self, b: i64) -> Option<f64> {
        let first = self.first?;
        if b > self.last || b < first || b <= self.last - self.cap() {
            return None;
        }
        let v = self.vals[self.slot(b)];
        (!v.is_nan()).then_some(v)
    }

    fn window(&self, from: i64, out: &mut Vec<(i64, f64)>) {
        let Some(first) = self.first else { return };
        let lo = from.max(first).max(self.last - self.cap() + 1);
        for b in lo..=self.last {
            if let Some(v) = self.get(b) {
                out.push((b, v));
            }
        }
    }
}

/// The first `at + 1` points of a validated series (strictly increasing buckets).
pub(crate) struct SliceHistory<'a> {
    pub(crate) buckets: &'a [i64],
    pub(crate) y: &'a [f64],
    pub(crate) at: usize,
}

impl History for SliceHistory<'_> {
    fn current(&self) -> i64 {
        self.buckets[self.at]
    }

    fn first(&self) -> i64 {
        self.buckets[0]
    }

    fn get(&self, b: i64) -> Option<f64> {
        self.buckets[..=self.at].binary_search(&b).ok().map(|i| self.y[i])
    }

    fn window(&self, from: i64, out: &mut Vec<(i64, f64)>) {
        let start = self.buckets[..=self.at].partition_point(|&x| x < from);
        out.extend((start..=self.at).map(|i| (self.buckets[i], self.y[i])));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect<H: History>(h: &H, from: i64) -> Vec<(i64, f64)> {
        let mut v = Vec::new();
        h.window(from, &mut v);
        v
    }

    #[test]
    fn ring_forgets_beyond_capacity_and_marks_gaps_missing() {
        let mut r = Ring::new(4);
        r.push(10, 1.0);
        r.push(11, 2.0);
        r.push(13, 4.0); // bucket 12 missing
        assert_eq!(r.get(10), Some(1.0));
        assert_eq!(r.get(12), None);
        assert_eq!(r.get(9), None, "before the first point");
        r.push(14, 5.0);
        assert_eq!(r.get(10), None, "out of the 4 buckets (10, 14]");
        assert_eq!(r.get(11), Some(2.0));
        assert_eq!(collect(&r, 0), vec![(11, 2.0), (13, 4.0), (14, 5.0)]);
        // A gap longer than the ring clears everything but the new point.
        r.push(100, 9.0);
        assert_eq!(collect(&r, 0), vec![(100, 9.0)]);
        assert_eq!(r.get(97), None);
        // Slots reused after the big gap are not stale.
        r.push(101, 10.0);
        r.push(103, 12.0);
        assert_eq!(r.get(102), None);
        assert_eq!(collect(&r, 101), vec![(101, 10.0), (103, 12.0)]);
    }

    #[test]
    fn slice_and_ring_agree() {
        let buckets = [3_i64, 4, 7, 8, 9, 15, 16];
        let y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let mut r = Ring::new(6);
        for at in 0..buckets.len() {
            r.push(buckets[at], y[at]);
            let s = SliceHistory {
                buckets: &buckets,
                y: &y,
                at,
            };
            assert_eq!(r.current(), s.current());
            assert_eq!(r.first(), s.first());
            let cur = s.current();
            for b in cur - 5..=cur {
                assert_eq!(r.get(b), s.get(b), "at {at}, bucket {b}");
            }
            assert_eq!(collect(&r, cur - 5), collect(&s, cur - 5));
        }
    }
}
