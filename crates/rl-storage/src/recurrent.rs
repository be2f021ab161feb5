//! Recurrent mini-batches: each environment's rollout cut into trajectories where episodes
//! ended, padded to the longest, with a mask (rsl_rl's `split_and_pad_trajectories`).
//!
//! The cutting is planned on the host from the rollout's `dones` (one read per update), then
//! every tensor is gathered on the device with index tensors: the padded observations
//! `[T * K, D]` for the model's memory, the hidden state at each trajectory's first step
//! `[K, S]`, and the other fields of the real steps `[M]` in the order in which the model
//! returns them.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use rl_core::{HostRng, Sequences};

use crate::rollout::Gather;
use crate::{Error, MiniBatch, MiniBatchSchedule, Result, Rollout, Shuffle};

/// Where the trajectories of some environments of a rollout lie, as indices into the
/// rollout's flattened `T_rollout * N` axis (row `t * N + env`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrajectoryPlan {
    /// Steps of the longest trajectory (`T`).
    pub length: usize,
    /// Number of trajectories (`K`).
    pub count: usize,
    /// The padded layout, `T * K` rollout rows, time-major (entry `t * K + k` is step `t` of
    /// trajectory `k`); a padding entry repeats its trajectory's first row.
    pub padded: Vec<usize>,
    /// 1 for a real step, 0 for padding, `T * K`, time-major.
    pub mask: Vec<f32>,
    /// The rollout row of each trajectory's first step, `K`.
    pub first: Vec<usize>,
    /// The real steps, `M`: entries of the padded layout, trajectory by trajectory, each in
    /// time order.
    pub samples: Vec<usize>,
    /// The rollout row of each real step, `M`, in the order of `samples`.
    pub rows: Vec<usize>,
}

impl TrajectoryPlan {
    /// The trajectories of environments `envs` in a rollout of `num_steps` steps of
    /// `num_envs` environments whose `dones` (`num_steps * num_envs`, row-major `[T, N]`) are
    /// non-zero where an episode ended: a trajectory starts at step 0 and after every done,
    /// and ends at a done or at the rollout's end. Trajectories are listed environment by
    /// environment, in the order of `envs`.
    pub fn new(dones: &[f32], num_steps: usize, num_envs: usize, envs: &[usize]) -> Self {
        debug_assert_eq!(dones.len(), num_steps * num_envs);
        // (first rollout row, length) of every trajectory
        let mut spans = Vec::new();
        for &env in envs {
            let mut start = 0;
            for t in 0..num_steps {
                if dones[t * num_envs + env] != 0.0 || t + 1 == num_steps {
                    spans.push((start, t + 1 - start, env));
                    start = t + 1;
                }
            }
        }
        let count = spans.len();
        let length = spans.iter().map(|s| s.1).max().unwrap_or(0);
        let row = |t: usize, env: usize| t * num_envs + env;
        let mut padded = vec![0; length * count];
        let mut mask = vec![0.0; length * count];
        let mut first = Vec::with_capacity(count);
        let mut samples = Vec::with_capacity(num_steps * envs.len());
        let mut rows = Vec::with_capacity(num_steps * envs.len());
        for (k, &(start, len, env)) in spans.iter().enumerate() {
            first.push(row(start, env));
            for t in 0..length {
                let entry = t * count + k;
                if t < len {
                    padded[entry] = row(start + t, env);
                    mask[entry] = 1.0;
                    samples.push(entry);
                    rows.push(row(start + t, env));
                } else {
                    padded[entry] = row(start, env);
                }
            }
        }
        Self {
            length,
            count,
            padded,
            mask,
            first,
            samples,
            rows,
        }
    }
}

/// The environments of every mini-batch of a recurrent update: `num_envs` split into
/// `num_mini_batches` equal parts for each of `num_epochs` epochs, shuffled as `shuffle`
/// says (the same rule as [`MiniBatchSchedule`], over environments instead of samples).
pub fn env_schedule(
    num_envs: usize,
    num_mini_batches: usize,
    num_epochs: usize,
    shuffle: Shuffle,
    rng: &mut HostRng,
) -> Result<MiniBatchSchedule> {
    if num_mini_batches == 0 || !num_envs.is_multiple_of(num_mini_batches) {
        return Err(Error::EnvMiniBatches {
            num_envs,
            num_mini_batches,
        });
    }
    MiniBatchSchedule::new(num_envs, num_mini_batches, num_epochs, shuffle, rng)
}

/// Indices on the host as an index tensor `[len]` on `device`.
pub(crate) fn int_tensor<B: Backend>(values: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let ids: Vec<i64> = values.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(ids, [values.len()]), device)
}

impl<B: Backend> Rollout<B> {
    /// The rollout's `dones` on the host, `T * N` row-major (one read).
    pub fn dones_host(&self) -> Result<Vec<f32>> {
        self.dones
            .clone()
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| Error::Readback(format!("{e:?}")))
    }

    /// The recurrent mini-batch of the trajectories in `plan`: the real steps' fields as a
    /// [`MiniBatch`] of `M` samples (without observations) and the padded trajectories
    /// with their first hidden states as [`Sequences`]; the model's output row
    /// `samples[i]` belongs to sample `i`.
    pub fn recurrent_mini_batch(
        &self,
        plan: &TrajectoryPlan,
    ) -> Result<(MiniBatch<B>, Sequences<B>)> {
        let memory = self.memory.as_ref().ok_or(Error::NoMemory)?;
        let device = self.dones.device();
        let batch = self.batch_size();
        let mini_batch = self.gather(int_tensor(&plan.rows, &device), false);
        let padded = Gather {
            indices: int_tensor(&plan.padded, &device),
            batch,
        };
        let first = Gather {
            indices: int_tensor(&plan.first, &device),
            batch,
        };
        let sequences = Sequences {
            observations: self.gather_observations(&padded), // [T * K, D] each
            memory: first.vector(memory),                    // [K, S]
            mask: Tensor::from_data(
                TensorData::new(plan.mask.clone(), [plan.length, plan.count]),
                &device,
            ), // [T, K]
            samples: int_tensor(&plan.samples, &device),     // [M]
            length: plan.length,
            count: plan.count,
        };
        Ok((mini_batch, sequences))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RolloutStorage, Transition};
    use burn::backend::NdArray;
    use rl_core::Observations;

    type B = NdArray;

    /// `[T, N]` = `[5, 3]`: environment 0 ends episodes at steps 1 and 4, environment 1
    /// never, environment 2 at step 0.
    const DONES: [[f32; 3]; 5] = [
        [0.0, 0.0, 1.0],
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
        [1.0, 0.0, 0.0],
    ];

    fn dones() -> Vec<f32> {
        DONES.iter().flatten().copied().collect()
    }

    #[test]
    fn trajectories_are_cut_at_dones_and_padded_time_major() {
        // Environments 2 and 0; rollout row = t * 3 + env. The trajectories, by hand:
        // k0: env 2, step 0 (row 2); k1: env 2, steps 1..5 (rows 5, 8, 11, 14);
        // k2: env 0, steps 0..2 (rows 0, 3); k3: env 0, steps 2..5 (rows 6, 9, 12).
        let plan = TrajectoryPlan::new(&dones(), 5, 3, &[2, 0]);
        assert_eq!((plan.length, plan.count), (4, 4));
        #[rustfmt::skip]
        let padded = vec![
            2, 5, 0, 6,
            2, 8, 3, 9,
            2, 11, 0, 12,
            2, 14, 0, 6,
        ];
        assert_eq!(plan.padded, padded);
        #[rustfmt::skip]
        let mask = vec![
            1.0, 1.0, 1.0, 1.0,
            0.0, 1.0, 1.0, 1.0,
            0.0, 1.0, 0.0, 1.0,
            0.0, 1.0, 0.0, 0.0,
        ];
        assert_eq!(plan.mask, mask);
        assert_eq!(plan.first, vec![2, 5, 0, 6]);
        assert_eq!(plan.samples, vec![0, 1, 5, 9, 13, 2, 6, 3, 7, 11]);
        assert_eq!(plan.rows, vec![2, 5, 8, 11, 14, 0, 3, 6, 9, 12]);
        // Every real step of the two environments once.
        let mut rows = plan.rows.clone();
        rows.sort_unstable();
        assert_eq!(rows, vec![0, 2, 3, 5, 6, 8, 9, 11, 12, 14]);
    }

    #[test]
    fn a_rollout_without_dones_is_one_trajectory_per_environment() {
        let plan = TrajectoryPlan::new(&[0.0; 8], 4, 2, &[1, 0]);
        assert_eq!((plan.length, plan.count), (4, 2));
        assert_eq!(plan.padded, vec![1, 0, 3, 2, 5, 4, 7, 6]);
        assert!(plan.mask.iter().all(|&m| m == 1.0));
        assert_eq!(plan.first, vec![1, 0]);
    }

    fn t1(v: Vec<f32>) -> Tensor<B, 1> {
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [n]), &Default::default())
    }

    fn t2(v: Vec<f32>, shape: [usize; 2]) -> Tensor<B, 2> {
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
        t.into_data().to_vec().expect("f32")
    }

    /// A rollout of 5 steps of 3 environments in which every field of step `t`, environment
    /// `e` tells where it came from.
    fn rollout(memory: bool) -> Rollout<B> {
        let (t_len, n) = (5, 3);
        let mut storage = RolloutStorage::<B>::new(n, t_len);
        for (t, dones) in DONES.iter().enumerate() {
            let per_env = |f: &dyn Fn(usize) -> f32| t1((0..n).map(f).collect());
            storage
                .add(Transition {
                    observations: Observations::new().with(
                        "policy",
                        t2(
                            (0..n)
                                .flat_map(|e| [(100 * t + e) as f32, -((100 * t + e) as f32)])
                                .collect(),
                            [n, 2],
                        ),
                    ),
                    actions: t2((0..n).map(|e| (t * 3 + e) as f32).collect(), [n, 1]),
                    values: per_env(&|e| (10 * t + e) as f32),
                    actions_log_prob: per_env(&|_| 0.0),
                    dist_params: t2(vec![0.0; n * 2], [n, 2]),
                    rewards: per_env(&|_| 1.0),
                    dones: t1(dones.to_vec()),
                    memory: memory.then(|| {
                        t2(
                            (0..n).flat_map(|e| [(1000 * t + e) as f32, 0.5]).collect(),
                            [n, 2],
                        )
                    }),
                })
                .expect("add");
        }
        storage
            .finish(t1(vec![0.0; n]), 0.99, 0.95)
            .expect("full rollout")
    }

    #[test]
    fn a_recurrent_mini_batch_gathers_the_plan_on_the_device() {
        let rollout = rollout(true);
        assert_eq!(rollout.dones_host().expect("read"), dones());
        let plan = TrajectoryPlan::new(&dones(), 5, 3, &[2, 0]);
        let (mb, seq) = rollout.recurrent_mini_batch(&plan).expect("batch");
        assert_eq!((seq.length, seq.count), (4, 4));
        // The padded observations are the rollout's rows in the plan's layout.
        let obs = values(seq.observations.get("policy").expect("group"));
        let want: Vec<f32> = plan
            .padded
            .iter()
            .flat_map(|&r| {
                let (t, e) = (r / 3, r % 3);
                [(100 * t + e) as f32, -((100 * t + e) as f32)]
            })
            .collect();
        assert_eq!(obs, want);
        assert_eq!(values(seq.mask), plan.mask);
        // The hidden state of each trajectory's first step.
        let memory = values(seq.memory);
        let want: Vec<f32> = plan
            .first
            .iter()
            .flat_map(|&r| [(1000 * (r / 3) + r % 3) as f32, 0.5])
            .collect();
        assert_eq!(memory, want);
        // The other fields of the real steps, in the order of `samples`.
        let sample_rows: Vec<usize> = plan.samples.iter().map(|&s| plan.padded[s]).collect();
        assert_eq!(sample_rows, plan.rows);
        let want: Vec<f32> = plan.rows.iter().map(|&r| r as f32).collect();
        assert_eq!(values(mb.actions), want);
        let want: Vec<f32> = plan
            .rows
            .iter()
            .map(|&r| (10 * (r / 3) + r % 3) as f32)
            .collect();
        assert_eq!(values(mb.values), want);
        let samples: Vec<i64> = seq.samples.into_data().to_vec().expect("i64");
        assert_eq!(
            samples,
            plan.samples.iter().map(|&s| s as i64).collect::<Vec<_>>()
        );
        assert!(mb.observations.iter().next().is_none());
    }

    #[test]
    fn a_rollout_without_memory_has_no_recurrent_mini_batch() {
        let rollout = rollout(false);
        assert!(rollout.memory.is_none());
        let plan = TrajectoryPlan::new(&dones(), 5, 3, &[0]);
        assert!(matches!(
            rollout.recurrent_mini_batch(&plan),
            Err(Error::NoMemory)
        ));
    }

    #[test]
    fn environments_are_split_into_equal_mini_batches() {
        let mut rng = HostRng::new(3);
        let s = env_schedule(8, 4, 2, Shuffle::PerUpdate, &mut rng).expect("valid");
        assert_eq!(s.batches.len(), 8);
        let mut first: Vec<usize> = s.batches[..4].iter().flatten().copied().collect();
        first.sort_unstable();
        assert_eq!(first, (0..8).collect::<Vec<_>>());
        let err = env_schedule(6, 4, 1, Shuffle::PerUpdate, &mut rng).expect_err("4 ∤ 6");
        assert!(err.to_string().contains("must divide num_envs"), "{err}");
    }
}
