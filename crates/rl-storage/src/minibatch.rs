//! Shuffled mini-batch schedules: every sample exactly once per epoch.

use rl_core::HostRng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How samples are shuffled across epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shuffle {
    /// One random permutation per update, reused by every epoch (rsl_rl 5.x).
    #[default]
    PerUpdate,
    /// A fresh permutation for every epoch.
    PerEpoch,
}

/// The sample indices of every mini-batch of one update, in training order.
#[derive(Debug, Clone)]
pub struct MiniBatchSchedule {
    /// `batches[e * num_mini_batches + b]` holds the indices of mini-batch `b` of epoch `e`.
    pub batches: Vec<Vec<usize>>,
    /// Number of epochs.
    pub num_epochs: usize,
    /// Mini-batches per epoch.
    pub num_mini_batches: usize,
}

impl MiniBatchSchedule {
    /// Splits `batch_size` samples into `num_mini_batches` equal parts for each of
    /// `num_epochs` epochs.
    ///
    /// `num_mini_batches` must divide `batch_size`, so that every sample is used exactly
    /// once per epoch and every mini-batch has the same size.
    pub fn new(
        batch_size: usize,
        num_mini_batches: usize,
        num_epochs: usize,
        shuffle: Shuffle,
        rng: &mut HostRng,
    ) -> Result<Self> {
        let err = |reason| Error::MiniBatches {
            batch_size,
            num_mini_batches,
            reason,
        };
        if num_mini_batches == 0 {
            return Err(err("num_mini_batches must be at least 1"));
        }
        if num_mini_batches > batch_size {
            return Err(err("more mini-batches than samples"));
        }
        if !batch_size.is_multiple_of(num_mini_batches) {
            return Err(err(
                "num_mini_batches must divide num_envs * num_steps_per_env",
            ));
        }
        let size = batch_size / num_mini_batches;
        let mut batches = Vec::with_capacity(num_epochs * num_mini_batches);
        let mut perm = rng.permutation(batch_size);
        for epoch in 0..num_epochs {
            if epoch > 0 && shuffle == Shuffle::PerEpoch {
                perm = rng.permutation(batch_size);
            }
            batches.extend(perm.chunks(size).map(<[usize]>::to_vec));
        }
        Ok(Self {
            batches,
            num_epochs,
            num_mini_batches,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_each_epoch_covers_all(s: &MiniBatchSchedule, n: usize) {
        for epoch in s.batches.chunks(s.num_mini_batches) {
            let mut all: Vec<usize> = epoch.iter().flatten().copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn every_sample_once_per_epoch_per_update_shuffle() {
        let mut rng = HostRng::new(0);
        let s = MiniBatchSchedule::new(96, 4, 3, Shuffle::PerUpdate, &mut rng).expect("valid");
        assert_eq!(s.batches.len(), 12);
        assert!(s.batches.iter().all(|b| b.len() == 24));
        assert_each_epoch_covers_all(&s, 96);
        // rsl_rl reuses one permutation in every epoch
        assert_eq!(s.batches[0], s.batches[4]);
        assert_ne!(
            s.batches[0],
            (0..24).collect::<Vec<_>>(),
            "must be shuffled"
        );
    }

    #[test]
    fn per_epoch_shuffle_draws_new_permutations() {
        let mut rng = HostRng::new(0);
        let s = MiniBatchSchedule::new(96, 4, 3, Shuffle::PerEpoch, &mut rng).expect("valid");
        assert_each_epoch_covers_all(&s, 96);
        assert_ne!(s.batches[0], s.batches[4]);
    }

    #[test]
    fn rejects_sizes_that_do_not_divide() {
        let mut rng = HostRng::new(0);
        assert!(MiniBatchSchedule::new(10, 3, 1, Shuffle::PerUpdate, &mut rng).is_err());
        assert!(MiniBatchSchedule::new(10, 0, 1, Shuffle::PerUpdate, &mut rng).is_err());
        assert!(MiniBatchSchedule::new(2, 4, 1, Shuffle::PerUpdate, &mut rng).is_err());
    }
}
