//! The `swap` mode's schedule and accounting: swapping models while the server scores a
//! backlog at full rate, measured against the same server's steady rate in the same run.
//!
//! After a warm-up the run is cut into phases of `phase_s` seconds that alternate steady
//! (no model published) and swapping (a new model published at every whole second of the
//! phase). Interleaving the two in one server over one backlog is what makes the ratio
//! trustworthy on a shared machine: a slow stretch of the machine hits both kinds of phase,
//! where a steady run and a swap run one after the other would each see a different stretch.
//!
//! Only whole phase pairs that end before the backlog's tail count (see [`tally`]): once the
//! backlog runs dry the rate drops for reasons that are not the swaps.

/// A phase of the schedule, `start_s..end_s` on the results reader's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    pub start_s: f64,
    pub end_s: f64,
    pub swapping: bool,
}

/// Phase `k` of a schedule starting at `start_s`: even phases are steady, odd ones swap.
pub fn phase(start_s: f64, phase_s: f64, k: u64) -> Phase {
    let start = start_s + phase_s * k as f64;
    Phase {
        start_s: start,
        end_s: start + phase_s,
        swapping: k % 2 == 1,
    }
}

/// The records/s of each kind of phase over whole steady+swap pairs ending by `usable_until_s`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tally {
    /// Whole steady+swap phase pairs counted.
    pub pairs: u64,
    pub steady_records: u64,
    pub swap_records: u64,
    pub steady_s: f64,
    pub swap_s: f64,
}

impl Tally {
    pub fn steady_rate(&self) -> Option<f64> {
        (self.steady_s > 0.0).then(|| self.steady_records as f64 / self.steady_s)
    }

    pub fn swap_rate(&self) -> Option<f64> {
        (self.swap_s > 0.0).then(|| self.swap_records as f64 / self.swap_s)
    }

    /// Records/s during swaps over records/s in steady state (the target: >= 0.95).
    pub fn ratio(&self) -> Option<f64> {
        match (self.swap_rate(), self.steady_rate()) {
            (Some(s), Some(b)) if b > 0.0 => Some(s / b),
            _ => None,
        }
    }
}

/// Counts `arrivals_s` (non-decreasing, the reader's clock) into the phases of a schedule that
/// starts at `start_s`, over the whole phase pairs that end by `usable_until_s`.
pub fn tally(arrivals_s: &[f64], start_s: f64, phase_s: f64, usable_until_s: f64) -> Tally {
    let mut t = Tally::default();
    if phase_s.is_nan() || phase_s <= 0.0 || !start_s.is_finite() || !usable_until_s.is_finite() {
        return t;
    }
    let mut k = 0u64;
    loop {
        let (steady, swap) = (phase(start_s, phase_s, k), phase(start_s, phase_s, k + 1));
        if swap.end_s > usable_until_s {
            break;
        }
        for p in [steady, swap] {
            let n = count_between(arrivals_s, p.start_s, p.end_s);
            if p.swapping {
                t.swap_records += n;
                t.swap_s += phase_s;
            } else {
                t.steady_records += n;
                t.steady_s += phase_s;
            }
        }
        t.pairs += 1;
        k += 2;
    }
    t
}

/// Arrivals in `from..to` of a sorted slice.
fn count_between(sorted: &[f64], from: f64, to: f64) -> u64 {
    let lo = sorted.partition_point(|&x| x < from);
    let hi = sorted.partition_point(|&x| x < to);
    (hi - lo) as u64
}

/// When the backlog's tail begins: the arrival of the result at `1 - trim` of `arrivals_s`
/// (the last partitions to finish drain alone, slower); `None` without results.
pub fn tail_starts_at(arrivals_s: &[f64], trim: f64) -> Option<f64> {
    let n = arrivals_s.len();
    if n == 0 {
        return None;
    }
    let i = (((1.0 - trim) * n as f64).floor() as usize).min(n - 1);
    arrivals_s.get(i).copied()
}

/// The name a swap publishes its model under: the base name and the swap's number, so every
/// swap is a model the server has not seen (a rebuild and a real swap, never a no-op), and the
/// results show which swap scored them.
pub fn swap_name(base: &str, n: u64) -> String {
    format!("{base}-swap{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_alternate_steady_and_swapping() {
        assert_eq!(
            phase(1.0, 2.0, 0),
            Phase {
                start_s: 1.0,
                end_s: 3.0,
                swapping: false
            }
        );
        assert!(phase(1.0, 2.0, 1).swapping);
        assert_eq!(phase(1.0, 2.0, 3).start_s, 7.0);
    }

    #[test]
    fn a_uniform_stream_gives_a_ratio_of_one() {
        // 1000 arrivals/s for 20 s.
        let arrivals: Vec<f64> = (0..20_000).map(|i| i as f64 / 1000.0).collect();
        let t = tally(&arrivals, 1.0, 2.0, 18.5);
        // Pairs [1,5), [5,9), [9,13), [13,17); [17,21) ends past 18.5.
        assert_eq!(t.pairs, 4);
        assert_eq!(t.steady_records, 8000);
        assert_eq!(t.swap_records, 8000);
        assert!((t.ratio().unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_dip_in_the_swap_phases_shows_in_the_ratio() {
        // Steady phases at 1000/s, swap phases at 900/s.
        let mut arrivals = Vec::new();
        for k in 0..4u64 {
            let p = phase(0.0, 1.0, k);
            let rate = if p.swapping { 900 } else { 1000 };
            for i in 0..rate {
                arrivals.push(p.start_s + i as f64 / rate as f64);
            }
        }
        let t = tally(&arrivals, 0.0, 1.0, 4.0);
        assert_eq!(t.pairs, 2);
        assert!((t.ratio().unwrap() - 0.9).abs() < 1e-12);
    }

    #[test]
    fn too_short_a_run_counts_nothing() {
        let arrivals: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let t = tally(&arrivals, 0.5, 2.0, 1.0);
        assert_eq!(t.pairs, 0);
        assert_eq!(t.ratio(), None);
        assert_eq!(tally(&arrivals, 0.0, 0.0, 10.0).pairs, 0);
        assert_eq!(tally(&arrivals, 0.0, f64::NAN, 10.0).pairs, 0);
    }

    #[test]
    fn the_tail_is_the_last_tenth() {
        let arrivals: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(tail_starts_at(&arrivals, 0.1), Some(90.0));
        assert_eq!(tail_starts_at(&[], 0.1), None);
        assert_eq!(tail_starts_at(&[3.0], 0.0), Some(3.0));
    }

    #[test]
    fn every_swap_has_a_new_name() {
        assert_eq!(swap_name("tree", 3), "tree-swap3");
        assert_ne!(swap_name("tree", 1), swap_name("tree", 2));
    }
}
