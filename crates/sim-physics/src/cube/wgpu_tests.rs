//! The kernel path against the tensor-op path (run on a software Vulkan device in CI:
//! `VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json`).

use burn::backend::{Flex, Wgpu};
use burn::tensor::{Tensor, TensorData, backend::Backend};

use crate::robots::{QUADRUPED_STANDING_HEIGHT, free_box, quadruped, quadruped_standing_joint_pos};
use crate::{Articulation, BaseKind, HeightField, Model, SimConfig, UrdfOptions, parse_urdf};

fn host<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32 data")
}

fn tensor<Bk: Backend>(values: Vec<f32>, rows: usize, device: &Bk::Device) -> Tensor<Bk, 2> {
    let cols = values.len() / rows;
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// A small deterministic stream of numbers in `[-1, 1)`, the same on every backend.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

/// Everything an [`Articulation`] exposes after a run, by name.
fn snapshot<Bk: Backend>(sim: &Articulation<Bk>) -> Vec<(&'static str, Vec<f32>)> {
    vec![
        ("root_pos", host(sim.root_pos())),
        ("root_quat", host(sim.root_quat())),
        ("root_lin_vel", host(sim.root_lin_vel_w())),
        ("root_ang_vel", host(sim.root_ang_vel_w())),
        ("joint_pos", host(sim.joint_pos())),
        ("joint_vel", host(sim.joint_vel())),
        ("applied_torque", host(sim.applied_torque())),
        ("contact_forces", host(sim.contact_forces())),
        ("contact_flags", host(sim.contact_flags().float())),
    ]
}

/// Runs `model` for `steps` steps from a perturbed standing start with random PD targets
/// (the standing pose plus up to `amplitude` rad, new every 4 steps), the same on every
/// backend; `kernel: false` forces the tensor path. On `terrain` the start is raised by the
/// field's height under it.
fn run<Bk: Backend>(
    model: &Model,
    config: SimConfig,
    terrain: Option<&HeightField>,
    num_envs: usize,
    steps: usize,
    kernel: bool,
    amplitude: f32,
) -> Articulation<Bk> {
    let device = Default::default();
    let nj = model.num_joints();
    let mut sim = Articulation::<Bk>::new(model.clone(), config, num_envs, &device).expect("sim");
    if !kernel {
        sim.kernel = None;
    }
    sim.set_terrain(terrain);
    let ground = |x: f32| terrain.map_or(0.0, |f| f.height_at(f64::from(x), 0.0) as f32);
    let mut rng = Stream(7);
    let ids: Vec<usize> = (0..num_envs).collect();
    let q0: Vec<f32> = quadruped_standing_joint_pos(model)
        .unwrap_or_else(|_| vec![0.0; nj])
        .iter()
        .map(|&q| q as f32)
        .collect();
    let rows = |v: &[f32]| v.repeat(num_envs);
    if nj > 0 {
        let q: Vec<f32> = rows(&q0)
            .iter()
            .zip(rng.vec(nj * num_envs, 0.1))
            .map(|(a, b)| a + b)
            .collect();
        sim.set_joint_state(
            &ids,
            tensor(q, num_envs, &device),
            tensor(rng.vec(nj * num_envs, 0.5), num_envs, &device),
        )
        .expect("joints");
        sim.set_drive_gains(
            tensor(rows(&vec![20.0; nj]), num_envs, &device),
            tensor(rows(&vec![0.5; nj]), num_envs, &device),
        )
        .expect("gains");
    }
    if model.base == BaseKind::Floating {
        let z = QUADRUPED_STANDING_HEIGHT as f32 + 0.03;
        let pos: Vec<f32> = (0..num_envs)
            .flat_map(|e| [0.1 * e as f32, 0.0, z + ground(0.1 * e as f32)])
            .collect();
        let quat: Vec<f32> = (0..num_envs)
            .flat_map(|_| {
                let (x, y) = (rng.next() * 0.05, rng.next() * 0.05);
                [1.0, x, y, 0.0]
            })
            .collect();
        sim.set_root_state(
            &ids,
            tensor(pos, num_envs, &device),
            tensor(quat, num_envs, &device),
            tensor(rng.vec(3 * num_envs, 0.3), num_envs, &device),
            tensor(rng.vec(3 * num_envs, 0.5), num_envs, &device),
        )
        .expect("root");
    }
    for step in 0..steps {
        if nj > 0 && step % 4 == 0 {
            let target: Vec<f32> = rows(&q0)
                .iter()
                .zip(rng.vec(nj * num_envs, amplitude))
                .map(|(a, b)| a + b)
                .collect();
            sim.set_joint_position_target(tensor(target, num_envs, &device))
                .expect("targets");
        }
        sim.step();
    }
    sim
}

/// The largest difference of each quantity relative to its largest magnitude (at least 1).
fn compare(
    a: &[(&'static str, Vec<f32>)],
    b: &[(&'static str, Vec<f32>)],
) -> Vec<(&'static str, f64)> {
    a.iter()
        .zip(b)
        .map(|((name, x), (_, y))| {
            assert_eq!(x.len(), y.len(), "{name}: lengths");
            let scale = x.iter().fold(1.0f64, |m, v| m.max(f64::from(v.abs())));
            let diff = x
                .iter()
                .zip(y)
                .fold(0.0f64, |m, (p, q)| m.max(f64::from((p - q).abs())));
            assert!(diff.is_finite(), "{name}: not finite");
            (*name, diff / scale)
        })
        .collect()
}

#[test]
fn the_quadruped_kernel_follows_the_tensor_path_for_1000_steps() {
    let model = quadruped().expect("quadruped");
    let config = SimConfig::default();
    let reference = run::<Flex>(&model, config.clone(), None, 8, 1000, false, 0.1);
    let kernel = run::<Wgpu>(&model, config, None, 8, 1000, true, 0.1);
    let errors = compare(&snapshot(&reference), &snapshot(&kernel));
    println!("quadruped, 1000 steps, kernel (wgpu) vs tensor path (flex): {errors:?}");
    // Flex and ndarray, both on the tensor path, differ by up to 9e-5 here (joint speeds);
    // with targets of 0.2 rad and more the robots fall, and any two float implementations
    // (flex and ndarray included) part by percents: the trajectory is chaotic.
    for (name, e) in errors {
        assert!(e < 1e-4, "{name}: relative difference {e:.2e}");
    }
}

#[test]
fn on_one_device_the_kernel_and_the_tensor_path_agree() {
    let model = quadruped().expect("quadruped");
    let config = SimConfig::default();
    let tensor_path = run::<Wgpu>(&model, config.clone(), None, 3, 10, false, 0.4);
    let kernel = run::<Wgpu>(&model, config, None, 3, 10, true, 0.4);
    let errors = compare(&snapshot(&tensor_path), &snapshot(&kernel));
    println!("quadruped, 10 steps on wgpu, kernel vs tensor path: {errors:?}");
    // Rounding: the kernel sums subtrees leaf to root, the tensor path by matrix products.
    for (name, e) in errors {
        assert!(e < 1e-4, "{name}: relative difference {e:.2e}");
    }
}

#[test]
fn fixed_bases_limits_substeps_and_boxes_agree() {
    let fixed = parse_urdf(
        crate::robots::QUADRUPED_URDF,
        "quadruped",
        &UrdfOptions {
            base: BaseKind::Fixed,
            ..UrdfOptions::default()
        },
    )
    .expect("quadruped");
    let mut lifted = SimConfig {
        substeps: 3,
        enforce_velocity_limits: true,
        ..SimConfig::default()
    };
    lifted.contact.ground_height = -0.2;
    let cases = [
        ("fixed quadruped", fixed, lifted),
        ("free box", free_box().expect("box"), SimConfig::default()),
    ];
    for (what, model, config) in cases {
        let reference = run::<Flex>(&model, config.clone(), None, 4, 300, false, 0.4);
        let kernel = run::<Wgpu>(&model, config, None, 4, 300, true, 0.4);
        let errors = compare(&snapshot(&reference), &snapshot(&kernel));
        println!("{what}, 300 steps, kernel vs tensor path: {errors:?}");
        for (name, e) in errors {
            let tol = if name == "contact_forces" { 1e-3 } else { 1e-4 };
            assert!(e < tol, "{what}: {name}: relative difference {e:.2e}");
        }
    }
}

/// A height field sampled from `h(x, y)` on `[x0, x1] x [y0, y1]` every `spacing` m.
fn field_from(h: impl Fn(f64, f64) -> f64, x: [f64; 2], y: [f64; 2], spacing: f64) -> HeightField {
    HeightField::from_fn(h, x, y, spacing).expect("valid field")
}

/// Bumps of 4 cm and a 6 cm step up at x = 0.3 m, on a grid that ends at x = 0.85 m.
fn bumpy_field() -> HeightField {
    let h = |x: f64, y: f64| {
        0.04 * (4.0 * x).sin() * (3.0 * y).cos() + if x > 0.3 { 0.06 } else { 0.0 }
    };
    field_from(h, [-1.0, 0.85], [-1.0, 1.0], 0.05)
}

/// [`free_box`] dropped onto `field` in `num_envs` environments, each from its own tilt,
/// spin and drift (one ends past the grid's end); returns what it exposes after each of
/// `checkpoints` steps.
fn drop_box<Bk: Backend>(
    field: &HeightField,
    num_envs: usize,
    checkpoints: &[usize],
    kernel: bool,
) -> Vec<Vec<(&'static str, Vec<f32>)>> {
    let device = Default::default();
    let model = free_box().expect("box");
    let mut sim =
        Articulation::<Bk>::new(model, SimConfig::default(), num_envs, &device).expect("sim");
    if !kernel {
        sim.kernel = None;
    }
    sim.set_terrain(Some(field));
    let mut rng = Stream(11);
    let ids: Vec<usize> = (0..num_envs).collect();
    let pos: Vec<f32> = (0..num_envs)
        .flat_map(|e| {
            let (x, y) = (-0.6 + 0.45 * e as f32, 0.2 * rng.next());
            [
                x,
                y,
                0.35 + field.height_at(f64::from(x), f64::from(y)) as f32,
            ]
        })
        .collect();
    // Tilted by up to about 0.6 rad about a random axis.
    let quat: Vec<f32> = (0..num_envs)
        .flat_map(|_| {
            let v = rng.vec(3, 0.3);
            let w = (1.0 - v.iter().map(|a| a * a).sum::<f32>()).sqrt();
            [w, v[0], v[1], v[2]]
        })
        .collect();
    let lin: Vec<f32> = (0..num_envs)
        .flat_map(|_| [0.6 + 0.4 * rng.next(), 0.3 * rng.next(), 0.0])
        .collect();
    sim.set_root_state(
        &ids,
        tensor(pos, num_envs, &device),
        tensor(quat, num_envs, &device),
        tensor(lin, num_envs, &device),
        tensor(rng.vec(3 * num_envs, 4.0), num_envs, &device),
    )
    .expect("root");
    let mut done = 0;
    checkpoints
        .iter()
        .map(|&steps| {
            for _ in done..steps {
                sim.step();
            }
            done = steps;
            snapshot(&sim)
        })
        .collect()
}

#[test]
fn a_box_dropped_spinning_on_a_height_field_agrees() {
    let field = bumpy_field();
    // Landing, tumbling, and at rest (one box beyond the grid).
    let checkpoints = [40, 100, 300];
    let reference = drop_box::<Flex>(&field, 4, &checkpoints, false);
    let kernel = drop_box::<Wgpu>(&field, 4, &checkpoints, true);
    for ((steps, a), b) in checkpoints.iter().zip(&reference).zip(&kernel) {
        let errors = compare(a, b);
        println!("box on a height field, {steps} steps, kernel vs tensor path: {errors:?}");
        for (name, e) in errors {
            assert!(
                e < 1e-4,
                "{steps} steps: {name}: relative difference {e:.2e}"
            );
        }
    }
}

/// A slope of 0.1 rising along x with bumps of 2 cm, legged_gym's 10 cm spacing.
fn sloped_field() -> HeightField {
    let h = |x: f64, y: f64| 0.1 * x + 0.02 * (5.0 * x).sin() * (4.0 * y + 1.0).sin();
    field_from(h, [-2.0, 3.0], [-1.5, 1.5], 0.1)
}

#[test]
fn the_quadruped_on_a_sloped_bumpy_field_agrees() {
    let model = quadruped().expect("quadruped");
    let config = SimConfig::default();
    let field = sloped_field();
    let reference = run::<Flex>(&model, config.clone(), Some(&field), 6, 100, false, 0.15);
    let kernel = run::<Wgpu>(&model, config, Some(&field), 6, 100, true, 0.15);
    let errors = compare(&snapshot(&reference), &snapshot(&kernel));
    println!("quadruped on a sloped height field, 100 steps, kernel vs tensor path: {errors:?}");
    // Note: ndarray and flex (both on the tensor path) part by as much (up to 4e-5 here);
    // after 300 steps one robot has tipped over and any two implementations differ by 5e-3.
    for (name, e) in errors {
        assert!(e < 1e-4, "{name}: relative difference {e:.2e}");
    }
}

#[test]
fn a_terrain_set_and_removed_between_steps_is_followed() {
    let model = quadruped().expect("quadruped");
    let config = SimConfig::default();
    // Ground 1 to 3 cm above the plane under the robots, rising along x and y.
    let field = field_from(
        |x, y| 0.01 + 0.02 * x + 0.01 * y,
        [-1.0, 2.0],
        [-1.0, 1.0],
        0.1,
    );
    let mut reference = run::<Flex>(&model, config.clone(), None, 4, 20, false, 0.1);
    let mut kernel = run::<Wgpu>(&model, config.clone(), None, 4, 20, true, 0.1);
    // The same robots left on the plane throughout.
    let mut plane = run::<Wgpu>(&model, config, None, 4, 20, true, 0.1);
    let mut on = |ground: Option<&HeightField>, steps: usize| {
        reference.set_terrain(ground);
        kernel.set_terrain(ground);
        for _ in 0..steps {
            reference.step();
            kernel.step();
            plane.step();
        }
    };
    on(Some(&field), 30);
    on(None, 30);
    let errors = compare(&snapshot(&reference), &snapshot(&kernel));
    println!("quadruped, field set then removed, kernel vs tensor path: {errors:?}");
    for (name, e) in errors {
        assert!(e < 1e-4, "{name}: relative difference {e:.2e}");
    }
    // The field did change the robots' course.
    let moved = compare(&snapshot(&plane), &snapshot(&kernel));
    println!("quadruped, field set then removed, against the plane throughout: {moved:?}");
    let root_pos = moved.iter().find(|(name, _)| *name == "root_pos");
    assert!(
        root_pos.is_some_and(|(_, e)| *e > 1e-3),
        "the field made no difference: {moved:?}"
    );
}
