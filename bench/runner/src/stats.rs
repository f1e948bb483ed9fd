//! Statistics of a variant's batches: median, range, ratios; and how the table shows them.

use std::time::Duration;

/// Per-iteration times of one variant, one per round (batch), in round order; and their
/// median, lowest and highest.
#[derive(Clone)]
pub struct Stats {
    rounds: Vec<Duration>,
    pub median: Duration,
    pub min: Duration,
    pub max: Duration,
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

impl Stats {
    pub fn of(rounds: Vec<Duration>) -> Stats {
        let secs = rounds.iter().map(Duration::as_secs_f64).collect::<Vec<_>>();
        Stats {
            median: Duration::from_secs_f64(median(secs)),
            min: rounds.iter().min().copied().unwrap_or_default(),
            max: rounds.iter().max().copied().unwrap_or_default(),
            rounds,
        }
    }

    /// How many times slower than `floor`: the median of the per-round ratios when both were
    /// measured in the same rounds (each pair ran back to back, so a busy moment of the
    /// machine hits both), else the ratio of the medians.
    pub fn ratio(&self, floor: &Stats) -> f64 {
        if self.rounds.len() != floor.rounds.len() || self.rounds.is_empty() {
            return self.median.as_secs_f64() / floor.median.as_secs_f64();
        }
        median(
            self.rounds
                .iter()
                .zip(&floor.rounds)
                .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
                .collect(),
        )
    }
}

/// Durations the way the table shows them.
pub fn show(d: Duration) -> String {
    let nanos = d.as_secs_f64() * 1e9;
    if nanos < 10_000.0 {
        format!("{:.2} µs", nanos / 1e3)
    } else if nanos < 10_000_000.0 {
        format!("{:.1} µs", nanos / 1e3)
    } else {
        format!("{:.1} ms", nanos / 1e6)
    }
}

/// The range of the batches: fastest – slowest.
pub fn spread(s: &Stats) -> String {
    format!("{} – {}", show(s.min), show(s.max))
}
