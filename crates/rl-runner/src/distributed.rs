//! The runner's side of data-parallel training: each worker's seeds, the check that the
//! workers train the same thing from the same weights, and the per-iteration agreement on
//! episode statistics and stopping.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rl_core::{CollectiveError, Communicator};

use crate::Error;
use crate::config::TrainConfig;
use crate::stats::EpisodeStats;

/// The algorithm's random stream of worker `rank > 0` is stream `WORKER_STREAM + rank` of the
/// run's seed (stream 0 is rank 0's, so that a run of one worker is the usual run; stream 1
/// draws the initial weights, which every worker shares).
pub const WORKER_STREAM: u64 = 1000;

/// The seed of worker `rank`'s environments, from the environments' seed of the run: rank 0
/// keeps it (a run of one worker is the usual run), the others get seeds of their own.
pub fn worker_env_seed(env_seed: u64, rank: usize) -> u64 {
    if rank == 0 {
        return env_seed;
    }
    // SplitMix64's finaliser of the seed and the rank: well-spread, never another rank's.
    let mut z = env_seed ^ (rank as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The runner's error for a failed collective call.
pub(crate) fn collective_error(error: CollectiveError, last_checkpoint: Option<PathBuf>) -> Error {
    Error::Distributed {
        error,
        last_checkpoint,
    }
}

/// Checks that every worker trains the same config (but for `[logger]`, which only rank 0
/// uses) from the same state (`checksum`: [`rl_core::Algorithm::shared_state_checksum`]):
/// rank 0 compares, and every worker gets its verdict.
pub(crate) fn check_workers_agree(
    comm: &dyn Communicator,
    cfg: &TrainConfig,
    checksum: u64,
) -> Result<(), Error> {
    let mut shared = cfg.clone();
    shared.logger = Default::default();
    let fingerprint = format!("{}\n# policy checksum {checksum:016x}\n", shared.to_toml()?);
    let what = "comparing the workers' configs";
    let fail = |source| collective_error(source, None);
    let verdict = match comm.gather(fingerprint.into_bytes(), what).map_err(fail)? {
        Some(all) => disagreement(&all).map_or_else(Vec::new, |(rank, message)| {
            let mut v = (rank as u32).to_le_bytes().to_vec();
            v.extend_from_slice(message.as_bytes());
            v
        }),
        None => Vec::new(),
    };
    let verdict = comm.broadcast(verdict, what).map_err(fail)?;
    if verdict.len() >= 4 {
        let rank = u32::from_le_bytes([verdict[0], verdict[1], verdict[2], verdict[3]]) as usize;
        return Err(fail(CollectiveError::Mismatch {
            rank,
            message: String::from_utf8_lossy(&verdict[4..]).into_owned(),
        }));
    }
    Ok(())
}

/// The first worker whose fingerprint differs from rank 0's, and how.
fn disagreement(all: &[Vec<u8>]) -> Option<(usize, String)> {
    let root = String::from_utf8_lossy(&all[0]).into_owned();
    for (rank, theirs) in all.iter().enumerate().skip(1) {
        let theirs = String::from_utf8_lossy(theirs);
        if theirs == root {
            continue;
        }
        let differing = root
            .lines()
            .zip(theirs.lines())
            .find(|(a, b)| a != b)
            .map(|(a, b)| (a.to_string(), b.to_string()));
        let message = match differing {
            Some((ours, theirs)) if theirs.starts_with("# policy checksum") => format!(
                "its initial policy differs from rank 0's ({theirs} against {ours}): another \
                 build of cross-gym, or a different checkpoint"
            ),
            Some((ours, theirs)) => format!(
                "its config differs from rank 0's: `{theirs}` where rank 0 has `{ours}` \
                 (every worker must be started with the same config and flags)"
            ),
            None => "its config differs from rank 0's in length".into(),
        };
        return Some((rank, message));
    }
    None
}

/// What the workers agree on after each iteration: the episode window's sums (so that
/// `Train/mean_reward` and the stop threshold cover every worker's episodes) and the
/// per-episode terms of the iteration.
pub(crate) struct Agreed {
    /// Mean return over every worker's window.
    pub mean_return: Option<f64>,
    /// Mean length over every worker's window.
    pub mean_length: Option<f64>,
    /// Means of the iteration's per-episode terms over every worker's episodes.
    pub terms: BTreeMap<String, f64>,
}

/// Pools `episodes` (taking the iteration's terms) with the other workers' over `comm`.
pub(crate) fn agree_on_episodes(
    comm: &dyn Communicator,
    episodes: &mut EpisodeStats,
    term_names: &[String],
) -> Result<Agreed, CollectiveError> {
    let (return_sum, length_sum, count) = episodes.window_sums();
    let terms = episodes.take_iteration_term_sums();
    let mut values = vec![return_sum, length_sum, count as f64];
    for name in term_names {
        let (sum, n) = terms.get(name).copied().unwrap_or((0.0, 0));
        values.push(sum);
        values.push(n as f64);
    }
    comm.all_reduce_sum_f64(&mut values, "pooling the episode statistics")?;
    let count = values[2];
    let mut agreed_terms = BTreeMap::new();
    for (name, pair) in term_names.iter().zip(values[3..].chunks_exact(2)) {
        if pair[1] > 0.0 {
            agreed_terms.insert(name.clone(), pair[0] / pair[1]);
        }
    }
    Ok(Agreed {
        mean_return: (count > 0.0).then(|| values[0] / count),
        mean_length: (count > 0.0).then(|| values[1] / count),
        terms: agreed_terms,
    })
}

/// Whether any worker was asked to stop (every worker gets the same answer).
pub(crate) fn agree_on_stop(comm: &dyn Communicator, mine: bool) -> Result<bool, CollectiveError> {
    let mut flag = [f64::from(u8::from(mine))];
    comm.all_reduce_sum_f64(&mut flag, "agreeing on whether to stop")?;
    Ok(flag[0] > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_seeds_differ_and_rank_0_keeps_the_run_seed() {
        let seeds: Vec<u64> = (0..64).map(|r| worker_env_seed(7, r)).collect();
        assert_eq!(seeds[0], 7);
        let mut unique = seeds.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seeds.len());
        assert_ne!(worker_env_seed(8, 1), worker_env_seed(7, 1));
    }

    #[test]
    fn a_disagreement_names_the_worker_and_the_line() {
        let root = b"seed = 1\nnum_envs = 32\n# policy checksum 0000abcd\n".to_vec();
        let same = root.clone();
        let other_cfg = b"seed = 1\nnum_envs = 64\n# policy checksum 0000abcd\n".to_vec();
        let other_policy = b"seed = 1\nnum_envs = 32\n# policy checksum 0000ffff\n".to_vec();
        assert_eq!(disagreement(&[root.clone(), same.clone()]), None);
        let (rank, message) =
            disagreement(&[root.clone(), same, other_cfg]).expect("worker 2 differs");
        assert_eq!(rank, 2);
        assert!(
            message.contains("`num_envs = 64` where rank 0 has `num_envs = 32`"),
            "{message}"
        );
        let (rank, message) = disagreement(&[root, other_policy]).expect("differs");
        assert_eq!(rank, 1);
        assert!(message.contains("initial policy"), "{message}");
    }
}
