//! The legged task on the GPU path (the physics as one kernel, the task's work after it as
//! another, `crate::cube::legged`) against flex's tensor path, in CI on Mesa's lavapipe.

use burn::backend::{Flex, Wgpu};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use rl_core::StepOutput;

use crate::testing::floats;
use crate::{Purpose, make_env};

/// Actions in `[-1, 1)` from a fixed stream, the same on every backend.
fn actions(step: usize, n: usize, a: usize) -> Vec<f32> {
    (0..n * a)
        .map(|i| {
            let x = ((step * 7919 + i * 104_729) % 1000) as f32 / 500.0 - 1.0;
            0.8 * x
        })
        .collect()
}

/// Everything a step reports, by name.
fn flatten<Bk: Backend>(out: StepOutput<Bk>) -> Vec<(String, Vec<f32>)> {
    let mut all = Vec::new();
    for (name, t) in out.observations.iter() {
        all.push((format!("obs/{name}"), floats(t.clone())));
    }
    for (name, t) in out.final_observations.iter() {
        all.push((format!("final_obs/{name}"), floats(t.clone())));
    }
    all.push(("rewards".into(), floats(out.rewards)));
    all.push(("terminated".into(), floats(out.terminated.float())));
    all.push(("time_outs".into(), floats(out.time_outs.float())));
    all.push(("episode/returns".into(), floats(out.episode.returns)));
    all.push(("episode/lengths".into(), floats(out.episode.lengths)));
    for (name, t) in out.episode.terms {
        all.push((format!("episode/{name}"), floats(t)));
    }
    all
}

fn run<Bk: Backend>(steps: usize, settings: &toml::Table) -> Vec<Vec<(String, Vec<f32>)>> {
    let device = Default::default();
    let n = 6;
    let mut env = make_env::<Bk>("quadruped_flat", n, 3, settings, Purpose::Training, &device)
        .expect("quadruped_flat");
    env.reset();
    let a = env.spec().action_space.num_actions();
    (0..steps)
        .map(|step| {
            let act = Tensor::from_data(TensorData::new(actions(step, n, a), [n, a]), &device);
            flatten(env.step(act).expect("step"))
        })
        .collect()
}

/// `steps` steps of the task with `settings` on flex and on wgpu agree to 1e-3 of each
/// quantity's scale; returns the largest relative difference and the number of episodes
/// that ended.
fn compare(steps: usize, settings: &toml::Table) -> (f64, usize) {
    let reference = run::<Flex>(steps, settings);
    let gpu = run::<Wgpu>(steps, settings);
    let mut worst = 0.0f64;
    for (step, (a, b)) in reference.iter().zip(&gpu).enumerate() {
        assert_eq!(a.len(), b.len(), "step {step}: the outputs differ");
        for ((name, x), (other, y)) in a.iter().zip(b) {
            assert_eq!(name, other, "step {step}");
            assert_eq!(x.len(), y.len(), "{name}");
            let scale = x.iter().fold(1.0f64, |m, v| m.max(f64::from(v.abs())));
            let diff = x
                .iter()
                .zip(y)
                .fold(0.0f64, |m, (p, q)| m.max(f64::from((p - q).abs())));
            worst = worst.max(diff / scale);
            assert!(
                diff <= 1e-3 * scale,
                "step {step}: {name} differs by {diff:.2e} (scale {scale:.2e})"
            );
        }
    }
    let ended = reference
        .iter()
        .flatten()
        .filter(|(name, _)| name == "terminated" || name == "time_outs")
        .map(|(_, flags)| flags.iter().filter(|&&f| f > 0.5).count())
        .sum();
    (worst, ended)
}

#[test]
fn the_quadruped_task_steps_on_wgpu_like_on_flex() {
    let env = crate::legged::LeggedEnv::<Wgpu>::new(
        "quadruped_flat",
        crate::legged::LeggedConfig::default(),
        2,
        1,
        &Default::default(),
    )
    .expect("quadruped_flat");
    assert!(env.uses_step_kernel(), "the wgpu run takes the kernel path");
    let steps = 40;
    let (worst, _) = compare(steps, &toml::Table::new());
    println!(
        "quadruped_flat, {steps} steps, wgpu vs flex: largest relative difference {worst:.2e}"
    );
}

/// Every branch of the step kernel: short episodes (time-outs and resets with the reset
/// events), pushes, the heading controller, frequent command resampling, every reward,
/// termination and observation term, term and group clipping, noise on both groups.
#[test]
fn every_term_reset_push_and_heading_on_wgpu_like_on_flex() {
    let settings: toml::Table = toml::from_str(
        r#"
        episode_length_s = 0.3
        [commands]
        heading_command = true
        resampling_time_s = 0.1
        min_speed = 0.3
        [events.interval]
        push_interval_s = [0.04, 0.1]
        push_velocity = 0.8
        [rewards]
        only_positive = false
        [rewards.weights]
        tracking_lin_vel = 1.0
        tracking_ang_vel = 0.5
        lin_vel_z = -2.0
        ang_vel_xy = -0.05
        orientation = -5.0
        base_height = -1.0
        torques = -1e-5
        dof_vel = -1e-4
        dof_acc = -2.5e-7
        action_rate = -0.01
        collision = -1.0
        termination = -3.0
        dof_pos_limits = -10.0
        feet_air_time = 1.0
        stand_still = -0.2
        feet_contact_forces = -0.01
        [terminations]
        base_contact = 1.0
        bad_orientation = 0.5
        [observations.policy]
        noise = true
        clip = 5.0
        terms = [
          { name = "base_lin_vel", scale = 2.0, noise = 0.1 },
          { name = "base_ang_vel", scale = 0.25, noise = 0.2, clip = 2.0 },
          { name = "projected_gravity", noise = 0.05 },
          { name = "velocity_commands", scale = [2.0, 2.0, 0.25] },
          { name = "joint_pos_rel", noise = 0.01 },
          { name = "joint_vel_rel", scale = 0.05, noise = 1.5 },
          { name = "last_action" },
        ]
        [observations.critic]
        noise = true
        terms = [
          { name = "base_height", noise = 0.02 },
          { name = "friction" },
          { name = "added_mass" },
          { name = "feet_contact" },
          { name = "feet_contact_forces", scale = 0.01, clip = 50.0 },
          { name = "joint_vel_rel", scale = 0.05 },
        ]
        "#,
    )
    .expect("settings");
    let steps = 40;
    let (worst, ended) = compare(steps, &settings);
    assert!(
        ended >= 6,
        "only {ended} episodes ended: the resets are not exercised"
    );
    println!("quadruped_flat, every term, {steps} steps: largest relative difference {worst:.2e}");
}

/// A snapshot taken while the kernel carries the task state (packed on the device) holds
/// that state: a fresh environment that loads it continues exactly as the original does,
/// and the accessors read the current commands.
#[test]
fn a_snapshot_taken_in_kernel_mode_continues_exactly() {
    use rl_core::VecEnv;
    let device = Default::default();
    let n = 4;
    let new_env = || {
        crate::legged::LeggedEnv::<Wgpu>::new(
            "quadruped_flat",
            crate::legged::LeggedConfig::default(),
            n,
            5,
            &device,
        )
        .expect("quadruped_flat")
    };
    let mut env = new_env();
    let a = env.spec().action_space.num_actions();
    let act =
        |step: usize| Tensor::from_data(TensorData::new(actions(step, n, a), [n, a]), &device);
    for step in 0..5 {
        env.step(act(step)).expect("step");
    }
    let snapshot = env.save_state().expect("save");
    let commands = floats(env.commands());
    let mut resumed = new_env();
    resumed.load_state(&snapshot).expect("load");
    assert_eq!(floats(resumed.commands()), commands);
    for step in 5..10 {
        let x = flatten(env.step(act(step)).expect("step"));
        let y = flatten(resumed.step(act(step)).expect("step"));
        assert_eq!(x, y, "step {step}");
    }
}

/// A task with the policy group alone (no critic group) and without observation noise.
#[test]
fn one_observation_group_without_noise_on_wgpu_like_on_flex() {
    let settings: toml::Table = toml::from_str(
        r#"
        [observations.policy]
        noise = false
        terms = [
          { name = "projected_gravity" },
          { name = "joint_pos_rel", noise = 0.01 },
          { name = "feet_contact" },
        ]
        [observations.critic]
        terms = []
        "#,
    )
    .expect("settings");
    let (worst, _) = compare(20, &settings);
    println!("quadruped_flat, one group, 20 steps: largest relative difference {worst:.2e}");
}

/// Rough terrain on the GPU path: the physics kernel on the height field, the managers as
/// tensor ops (the curriculum, spawning on sub-terrains, the height scan's gathers), against
/// flex. Episodes of 0.3 s, so that robots respawn and move between levels.
#[test]
fn rough_terrain_with_the_height_scan_on_wgpu_like_on_flex() {
    let settings: toml::Table = toml::from_str(
        r#"
        episode_length_s = 0.3
        [terrain]
        type = "heightfield"
        terrain_length = 4.0
        terrain_width = 4.0
        num_rows = 4
        num_cols = 3
        border_size = 2.0
        platform_size = 2.0
        max_init_terrain_level = 3
        [observations.policy]
        terms = [
          { name = "base_lin_vel" },
          { name = "projected_gravity" },
          { name = "joint_pos_rel" },
          { name = "height_scan", clip = 1.0, scale = 5.0 },
        ]
        "#,
    )
    .expect("valid TOML");
    let cfg = crate::legged_config("quadruped_flat", &settings).expect("valid");
    let env =
        crate::legged::LeggedEnv::<Wgpu>::new("quadruped_flat", cfg, 2, 1, &Default::default())
            .expect("rough terrain");
    assert!(
        !env.uses_step_kernel(),
        "the task's kernel does not know the terrain"
    );
    let steps = 40;
    let (worst, ended) = compare(steps, &settings);
    println!(
        "rough terrain, {steps} steps, wgpu vs flex: largest relative difference {worst:.2e}, {ended} episodes ended"
    );
    assert!(
        ended > 0,
        "no episode ended: the curriculum was not exercised"
    );
}
