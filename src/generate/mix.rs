//! Picking the next request by weight.
//!
//! The picks follow a fixed sequence built once with smooth weighted round-robin (as nginx
//! balances upstreams): weights 10 and 1 give ten of one and one of the other in every eleven
//! picks, spread out rather than bunched. So the mix is exact over any stretch of the run, the
//! same on every run, and a pick costs one atomic increment, with no random numbers to draw.

use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Mix {
    /// Request indices in pick order; its length is the sum of the weights.
    sequence: Box<[u32]>,
    next: AtomicUsize,
}

// === impl Mix ===

impl Mix {
    /// `weights[i]` is request i's weight, each at least 1.
    pub fn new(weights: &[u32]) -> Mix {
        let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
        let mut current = vec![0i64; weights.len()];
        let mut sequence = Vec::with_capacity(total as usize);
        for _ in 0..total {
            // Everyone gains its weight; the richest is picked and pays the total.
            let mut best = 0;
            for (i, &w) in weights.iter().enumerate() {
                current[i] += i64::from(w);
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            sequence.push(best as u32);
        }
        Mix {
            sequence: sequence.into_boxed_slice(),
            next: AtomicUsize::new(0),
        }
    }

    /// The index of the next request to send.
    pub fn pick(&self) -> usize {
        if self.sequence.len() == 1 {
            return 0;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.sequence[n % self.sequence.len()] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(weights: &[u32], n: usize) -> Vec<usize> {
        let mix = Mix::new(weights);
        (0..n).map(|_| mix.pick()).collect()
    }

    #[test]
    fn exact_shares_spread_out() {
        let p = picks(&[10, 1], 22);
        assert_eq!(p.iter().filter(|&&i| i == 1).count(), 2);
        // The rare one is not bunched at either end of a round.
        let first = p.iter().position(|&i| i == 1).unwrap();
        assert!((3..8).contains(&first), "{p:?}");
        let p = picks(&[2, 3, 5], 1000);
        let counts: Vec<usize> = (0..3)
            .map(|k| p.iter().filter(|&&i| i == k).count())
            .collect();
        assert_eq!(counts, [200, 300, 500]);
    }

    #[test]
    fn a_single_request_is_always_picked() {
        assert_eq!(picks(&[7], 5), [0; 5]);
    }
}
