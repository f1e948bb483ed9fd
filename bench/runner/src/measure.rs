//! Timing: variants run in rounds of short interleaved batches, and phases of one variant
//! timed batch by batch.

use crate::stats::Stats;
use std::time::{Duration, Instant};

/// One timed operation of a comparison.
pub struct Variant<'a> {
    run: Box<dyn FnMut() -> Result<(), String> + 'a>,
}

impl<'a> Variant<'a> {
    pub fn new(run: impl FnMut() -> Result<(), String> + 'a) -> Variant<'a> {
        Variant { run: Box::new(run) }
    }
}

/// Runs every variant for `rounds` rounds of `per_batch` iterations each: in every round one
/// batch of each variant, back to back, in alternating order, after one unrecorded warm-up
/// round. Drift and bursts of load on the machine thus hit every variant alike. Returns the
/// per-iteration time of each variant, round by round.
pub fn measure(
    rounds: usize,
    per_batch: usize,
    variants: &mut [Variant<'_>],
) -> Result<Vec<Stats>, String> {
    let mut samples = vec![Vec::with_capacity(rounds); variants.len()];
    let n = u32::try_from(per_batch).unwrap_or(1);
    for round in 0..=rounds {
        let mut order: Vec<usize> = (0..variants.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for index in order {
            let variant = &mut variants[index];
            let started = Instant::now();
            for _ in 0..per_batch {
                (variant.run)()?;
            }
            if round > 0 {
                samples[index].push(started.elapsed() / n);
            }
        }
    }
    Ok(samples.into_iter().map(Stats::of).collect())
}

/// Per-iteration times of the phases of one variant, batch by batch.
pub struct Phases<const N: usize> {
    sums: [Duration; N],
    count: usize,
    batches: Vec<[Duration; N]>,
}

impl<const N: usize> Phases<N> {
    pub fn new() -> Self {
        Phases {
            sums: [Duration::ZERO; N],
            count: 0,
            batches: Vec::new(),
        }
    }

    pub fn add(&mut self, phases: [Duration; N], per_batch: usize) {
        for (sum, phase) in self.sums.iter_mut().zip(phases) {
            *sum += phase;
        }
        self.count += 1;
        if self.count == per_batch {
            let n = u32::try_from(per_batch).unwrap_or(1);
            self.batches.push(self.sums.map(|sum| sum / n));
            (self.sums, self.count) = ([Duration::ZERO; N], 0);
        }
    }

    /// Statistics of each phase, the warm-up batch left out as `measure` does.
    pub fn stats(&self) -> [Stats; N] {
        std::array::from_fn(|phase| {
            Stats::of(self.batches.iter().skip(1).map(|b| b[phase]).collect())
        })
    }
}
