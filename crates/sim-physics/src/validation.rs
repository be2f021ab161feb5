//! Validation of the articulated-body simulator: MuJoCo reference trajectories, energy and
//! momentum conservation, resting contact, joint limits, and agreement between backends.

use std::path::Path;

use burn::backend::{Flex, NdArray};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use serde::Deserialize;

use super::robots::{QUADRUPED_STANDING_HEIGHT, free_box, quadruped, quadruped_standing_joint_pos};
use super::{
    Articulation, BaseKind, HeightField, MjcfOptions, Model, SimConfig, UrdfOptions, load_mjcf,
    parse_urdf,
};

type B = Flex;

fn host<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().expect("f32 tensor")
}

fn rows<Bk: Backend>(values: &[f64], n: usize) -> Tensor<Bk, 2> {
    let data: Vec<f32> = (0..n)
        .flat_map(|_| values.iter().map(|&v| v as f32))
        .collect();
    Tensor::from_data(
        TensorData::new(data, [n, values.len()]),
        &Default::default(),
    )
}

/// A MuJoCo trajectory written by `tools/mujoco/make_fixtures.py`: of a URDF file (fixed
/// base), or of an MJCF file, with a fixed base or a floating one (then the `base_*` fields
/// hold the base's initial state and trajectory, world frame, orientation `(w, x, y, z)`).
/// `q` and `qd` are the hinges and slides, in the order of `joint_names`.
#[derive(Deserialize)]
struct Fixture {
    urdf: Option<String>,
    mjcf: Option<String>,
    joint_names: Vec<String>,
    q0: Vec<f64>,
    qd0: Vec<f64>,
    t: Vec<f64>,
    q: Vec<Vec<f64>>,
    qd: Vec<Vec<f64>>,
    energy: Vec<f64>,
    base_pos0: Option<[f64; 3]>,
    base_quat0: Option<[f64; 4]>,
    base_lin_vel0: Option<[f64; 3]>,
    base_ang_vel0: Option<[f64; 3]>,
    #[serde(default)]
    base_pos: Vec<[f64; 3]>,
    #[serde(default)]
    base_quat: Vec<[f64; 4]>,
    #[serde(default)]
    base_lin_vel: Vec<[f64; 3]>,
    #[serde(default)]
    base_ang_vel: Vec<[f64; 3]>,
}

impl Fixture {
    fn floating(&self) -> bool {
        self.base_pos0.is_some()
    }
}

fn fixture(name: &str) -> Fixture {
    let path = format!(
        "{}/tests/fixtures/mujoco_{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("fixture file");
    serde_json::from_str(&text).expect("fixture JSON")
}

/// A path that a fixture gives relative to the workspace root.
fn workspace_path(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

fn fixed_model(urdf_path: &str) -> Model {
    let text = std::fs::read_to_string(workspace_path(urdf_path)).expect("URDF file");
    let options = UrdfOptions {
        base: BaseKind::Fixed,
        ..UrdfOptions::default()
    };
    parse_urdf(&text, urdf_path, &options).expect("valid URDF")
}

/// The model a fixture was made from: its URDF file with a fixed base, or its MJCF file with
/// the fixture's base, read without warnings (nothing approximated) and without contact.
fn fixture_model(f: &Fixture) -> Model {
    match (&f.urdf, &f.mjcf) {
        (Some(urdf), None) => fixed_model(urdf),
        (None, Some(mjcf)) => {
            let options = MjcfOptions {
                base: Some(if f.floating() {
                    BaseKind::Floating
                } else {
                    BaseKind::Fixed
                }),
                ..MjcfOptions::default()
            };
            let model = load_mjcf(Path::new(&workspace_path(mjcf)), &options)
                .expect("valid MJCF")
                .model;
            assert!(model.warnings.is_empty(), "{mjcf}: {:?}", model.warnings);
            assert!(model.contact_points().is_empty(), "{mjcf}: collides");
            model
        }
        _ => panic!("a fixture names one model file, `urdf` or `mjcf`"),
    }
}

/// Largest differences from a MuJoCo trajectory: joints (rad or m, and per second), energy
/// (J), and for a floating base its position (m), orientation (the angle between the two,
/// rad), and linear and angular velocity (world frame).
#[derive(Debug, Default, Clone, Copy)]
struct Errors {
    q: f64,
    qd: f64,
    energy: f64,
    base_pos: f64,
    base_angle: f64,
    base_lin_vel: f64,
    base_ang_vel: f64,
}

fn max_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - y).abs())
        .fold(0.0, f64::max)
}

/// The angle (rad) of the rotation between two unit quaternions `(w, x, y, z)`.
fn angle_between(a: &[f32], b: &[f64; 4]) -> f64 {
    let a: Vec<f64> = a.iter().map(|x| f64::from(*x)).collect();
    // conj(a) * b
    let w = a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3];
    let x = a[0] * b[1] - a[1] * b[0] - a[2] * b[3] + a[3] * b[2];
    let y = a[0] * b[2] + a[1] * b[3] - a[2] * b[0] - a[3] * b[1];
    let z = a[0] * b[3] - a[1] * b[2] + a[2] * b[1] - a[3] * b[0];
    2.0 * (x * x + y * y + z * z).sqrt().atan2(w.abs())
}

/// Largest differences from the MuJoCo trajectory `name` up to `until` seconds, simulating
/// at `dt`. Joints are matched by name (MuJoCo orders them depth first, the model breadth
/// first).
fn mujoco_error(name: &str, dt: f64, until: f64) -> Errors {
    let f = fixture(name);
    let model = fixture_model(&f);
    let order: Vec<usize> = model
        .joints
        .iter()
        .map(|j| {
            f.joint_names
                .iter()
                .position(|n| *n == j.name)
                .unwrap_or_else(|| panic!("{name}: joint `{}` not in the fixture", j.name))
        })
        .collect();
    assert_eq!(order.len(), f.joint_names.len(), "{name}: joint count");
    let in_model_order = |v: &[f64]| order.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    // MuJoCo's kinetic energy is 1/2 v^T M v with the armature in M: the rotors' energy,
    // which `Articulation::energy` (the links' alone) leaves out.
    let armature: Vec<f64> = model.joints.iter().map(|j| j.armature).collect();
    let config = SimConfig {
        dt,
        ..SimConfig::default()
    };
    let mut sim = Articulation::<B>::new(model, config, 1, &Default::default()).expect("sim");
    sim.set_joint_state(
        &[0],
        rows(&in_model_order(&f.q0), 1),
        rows(&in_model_order(&f.qd0), 1),
    )
    .expect("state");
    if f.floating() {
        let base = |v: Option<&[f64]>| rows::<B>(v.expect("initial base state"), 1);
        sim.set_root_state(
            &[0],
            base(f.base_pos0.as_ref().map(|v| &v[..])),
            base(f.base_quat0.as_ref().map(|v| &v[..])),
            base(f.base_lin_vel0.as_ref().map(|v| &v[..])),
            base(f.base_ang_vel0.as_ref().map(|v| &v[..])),
        )
        .expect("root state");
    }
    let record_every = ((f.t[1] - f.t[0]) / dt).round() as usize;
    let mut err = Errors::default();
    for (i, t) in f.t.iter().enumerate().skip(1) {
        if *t > until + 1e-9 {
            break;
        }
        for _ in 0..record_every {
            sim.step();
        }
        let qd = host(sim.joint_vel());
        err.q = err
            .q
            .max(max_diff(&host(sim.joint_pos()), &in_model_order(&f.q[i])));
        err.qd = err.qd.max(max_diff(&qd, &in_model_order(&f.qd[i])));
        let (k, p) = sim.energy();
        let rotors: f64 = armature
            .iter()
            .zip(&qd)
            .map(|(a, v)| 0.5 * a * f64::from(*v).powi(2))
            .sum();
        let e = f64::from(host(k + p)[0]) + rotors;
        err.energy = err.energy.max((e - f.energy[i]).abs());
        if f.floating() {
            err.base_pos = err
                .base_pos
                .max(max_diff(&host(sim.root_pos()), &f.base_pos[i]));
            err.base_angle = err
                .base_angle
                .max(angle_between(&host(sim.root_quat()), &f.base_quat[i]));
            err.base_lin_vel = err
                .base_lin_vel
                .max(max_diff(&host(sim.root_lin_vel_w()), &f.base_lin_vel[i]));
            err.base_ang_vel = err
                .base_ang_vel
                .max(max_diff(&host(sim.root_ang_vel_w()), &f.base_ang_vel[i]));
        }
    }
    err
}

/// MuJoCo's default integrator is the same semi-implicit Euler (with joint damping
/// implicit), so at the same step the two trajectories differ only by rounding: this isolates
/// the dynamics (mass matrix, bias forces, damping) from the integration error.
#[test]
fn the_same_scheme_as_mujoco_euler_gives_the_same_trajectory() {
    // `mjcf_chain` is read from MJCF by both (tests/data/mjcf/chain.xml): the frames and
    // masses the MJCF reader builds (orientations in degrees, joints away from their body's
    // origin, `ref`, a merged body, default classes, armature) move as MuJoCo's.
    for (case, tol_q, tol_qd) in [
        ("double_pendulum", 1e-4, 1e-3),
        ("three_link_arm", 1e-4, 1e-3),
        ("double_pendulum_chaotic", 1e-3, 1e-2),
        ("mjcf_chain", 1e-4, 1e-3),
    ] {
        let Errors {
            q: eq,
            qd: eqd,
            energy: ee,
            ..
        } = mujoco_error(&format!("euler_{case}"), 1e-3, 1.0);
        println!(
            "{case} vs MuJoCo Euler, dt 1 ms, 1 s: max |dq| {eq:.2e} rad, |dqd| {eqd:.2e} rad/s, |dE| {ee:.2e} J"
        );
        assert!(
            eq < tol_q && eqd < tol_qd,
            "{case}: q error {eq}, qd error {eqd}"
        );
        assert!(ee < 1e-3, "{case}: energy error {ee} J");
    }
}

/// A floating robot read from MJCF (tests/data/mjcf/free.xml: a torso, a two-hinge arm and a
/// slide, damping and armature) falling and spinning freely for 0.5 s, against MuJoCo's Euler
/// at the same step from the same file: the free joint's conventions (base origin, world-frame
/// velocities, the orientation's update) and the joint order are MuJoCo's.
#[test]
fn a_floating_mjcf_robot_falls_and_spins_as_in_mujoco() {
    let e = mujoco_error("euler_mjcf_free", 1e-3, 0.5);
    println!(
        "mjcf_free vs MuJoCo Euler, dt 1 ms, 0.5 s: joints max |dq| {:.2e}, |dqd| {:.2e}; base position \
         {:.2e} m, orientation {:.2e} rad, velocity {:.2e} m/s, angular velocity {:.2e} rad/s; |dE| {:.2e} J",
        e.q, e.qd, e.base_pos, e.base_angle, e.base_lin_vel, e.base_ang_vel, e.energy
    );
    assert!(e.q < 1e-4 && e.qd < 1e-3, "joints: {e:?}");
    assert!(e.base_pos < 1e-4 && e.base_angle < 1e-4, "base pose: {e:?}");
    assert!(
        e.base_lin_vel < 1e-3 && e.base_ang_vel < 1e-3,
        "base velocity: {e:?}"
    );
    assert!(e.energy < 1e-3, "energy: {e:?}");
}

/// Against MuJoCo's RK4 at a fine step (the exact trajectory to 1e-11), the error falls in
/// proportion to the step: first-order convergence to the right motion.
#[test]
fn trajectories_converge_to_mujoco_rk4() {
    for case in ["double_pendulum", "three_link_arm"] {
        let coarse = mujoco_error(case, 1e-3, 1.0).q;
        let fine = mujoco_error(case, 2.5e-4, 1.0).q;
        println!(
            "{case} vs MuJoCo RK4 over 1 s: max |dq| {:.2e} at dt 1 ms, {:.2e} at dt 0.25 ms",
            coarse, fine
        );
        assert!(
            fine < coarse / 3.0,
            "{case}: no first-order convergence: {coarse} -> {fine}"
        );
        assert!(fine < 5e-2, "{case}: q error {fine} at dt 0.25 ms");
    }
}

/// Joint positions of the standing pose in the model's joint order.
fn standing(model: &Model) -> Vec<f64> {
    quadruped_standing_joint_pos(model).expect("every joint has a standing position")
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt()
}

fn diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x - y).abs())
        .fold(0.0, f64::max)
}

/// Largest |E - E0| over 2 s of the undamped double pendulum, and its largest kinetic energy.
fn energy_error(dt: f64) -> (f64, f64) {
    let model = fixed_model("crates/sim-physics/robots/double_pendulum.urdf");
    assert!(model.joints.iter().all(|j| j.damping == 0.0));
    let config = SimConfig {
        dt,
        ..SimConfig::default()
    };
    let mut sim = Articulation::<B>::new(model, config, 1, &Default::default()).expect("sim");
    sim.set_joint_state(&[0], rows(&[1.0, -0.5], 1), rows(&[0.0, 0.0], 1))
        .expect("state");
    let energy = |sim: &Articulation<B>| {
        let (k, p) = sim.energy();
        (f64::from(host(k.clone())[0]), f64::from(host(k + p)[0]))
    };
    let (_, e0) = energy(&sim);
    let (mut worst, mut max_kinetic) = (0.0f64, 0.0f64);
    for _ in 0..(2.0 / dt).round() as usize {
        sim.step();
        let (k, e) = energy(&sim);
        max_kinetic = max_kinetic.max(k);
        worst = worst.max((e - e0).abs());
    }
    (worst, max_kinetic)
}

#[test]
fn undamped_chain_conserves_energy() {
    let (coarse, max_kinetic) = energy_error(1e-3);
    let (fine, _) = energy_error(2.5e-4);
    println!(
        "energy over 2 s: largest kinetic {max_kinetic:.3} J, largest |E - E0| {coarse:.2e} J at dt 1 ms, {fine:.2e} J at 0.25 ms"
    );
    assert!(max_kinetic > 1.0, "the pendulum should swing");
    // The error is the integrator's (MuJoCo's Euler at 1 ms shows the same 1.4e-2 J in its
    // first second) and falls in proportion to the step.
    assert!(
        coarse < 1e-2 * max_kinetic,
        "energy error {coarse} J at dt 1 ms"
    );
    assert!(
        fine < 3e-3 * max_kinetic,
        "energy error {fine} J at dt 0.25 ms"
    );
    assert!(
        fine < coarse / 3.0,
        "the energy error does not fall with the step"
    );
}

#[test]
fn free_fall_follows_gravity_and_keeps_angular_momentum() {
    let model = free_box().expect("box");
    let mass = model.total_mass();
    let h = 0.005;
    let config = SimConfig {
        dt: h,
        ..SimConfig::default()
    };
    let mut sim = Articulation::<B>::new(model, config, 1, &Default::default()).expect("sim");
    let (v0, w0) = ([1.0, -0.5, 3.0], [0.4, -2.0, 1.5]);
    sim.set_root_state(
        &[0],
        rows(&[0.0, 0.0, 20.0], 1),
        rows(&[0.9, 0.1, 0.3, 0.3], 1),
        rows(&v0, 1),
        rows(&w0, 1),
    )
    .expect("state");
    // About the centre of mass (the box's origin), angular momentum stays constant under
    // gravity: L_origin - c x p.
    let about_com = |sim: &Articulation<B>| {
        let (p, l) = sim.momentum();
        let (p, l, c) = (host(p), host(l), host(sim.root_pos()));
        let l_com = [
            l[0] - (c[1] * p[2] - c[2] * p[1]),
            l[1] - (c[2] * p[0] - c[0] * p[2]),
            l[2] - (c[0] * p[1] - c[1] * p[0]),
        ];
        (l_com, p, c)
    };
    let (l0, _, _) = about_com(&sim);
    let steps = 200;
    let mut worst_l = 0.0f64;
    for n in 1..=steps {
        sim.step();
        let (l_com, p, c) = about_com(&sim);
        worst_l = worst_l.max(diff(&l_com, &l0));
        if n == steps {
            // Semi-implicit Euler under constant g: z_n = z_0 + v_0 t - g h^2 n (n + 1) / 2.
            let t = n as f64 * h;
            let z = 20.0 + v0[2] * t - 9.81 * h * h * (n * (n + 1)) as f64 / 2.0;
            let expect = [v0[0] * t, v0[1] * t, z];
            let err = c
                .iter()
                .zip(expect)
                .map(|(a, b)| (f64::from(*a) - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-3, "centre of mass {c:?}, expected {expect:?}");
            let pz = f64::from(p[2]) / mass;
            assert!(
                (pz - (v0[2] - 9.81 * t)).abs() < 1e-3,
                "vertical momentum {pz}"
            );
            assert!(
                (f64::from(p[0]) / mass - v0[0]).abs() < 1e-4,
                "horizontal momentum {p:?}"
            );
        }
    }
    println!(
        "free box: largest change of the angular momentum about the centre of mass {worst_l:.2e} (|L0| = {:.3})",
        norm(&l0)
    );
    assert!(
        worst_l < 2e-2 * norm(&l0),
        "angular momentum changed by {worst_l}"
    );
}

/// Largest change of the linear and angular momentum of the quadruped flying without
/// gravity for 1 s, its joints swinging under PD drives (internal forces only).
fn momentum_change_in_flight(dt: f64) -> (f64, f64, f64, f64) {
    let model = quadruped().expect("quadruped");
    let nj = model.num_joints();
    let config = SimConfig {
        dt,
        gravity: [0.0; 3],
        ..SimConfig::default()
    };
    let mut sim =
        Articulation::<B>::new(model.clone(), config, 1, &Default::default()).expect("sim");
    let q0 = standing(&model);
    let qd0: Vec<f64> = (0..nj).map(|j| 3.0 * ((j as f64) * 1.7).sin()).collect();
    sim.set_joint_state(&[0], rows(&q0, 1), rows(&qd0, 1))
        .expect("joints");
    sim.set_root_state(
        &[0],
        rows(&[0.0, 0.0, 5.0], 1),
        rows(&[1.0, 0.0, 0.0, 0.0], 1),
        rows(&[0.3, 0.0, 0.1], 1),
        rows(&[0.0, 0.5, -0.2], 1),
    )
    .expect("root");
    sim.set_drive_gains(rows(&vec![20.0; nj], 1), rows(&vec![0.5; nj], 1))
        .expect("gains");
    sim.set_joint_position_target(rows(&q0, 1))
        .expect("targets");
    let (p0, l0) = sim.momentum();
    let (p0, l0) = (host(p0), host(l0));
    let (mut dp, mut dl) = (0.0f64, 0.0f64);
    for _ in 0..(1.0 / dt).round() as usize {
        sim.step();
        let (p, l) = sim.momentum();
        dp = dp.max(diff(&host(p), &p0));
        dl = dl.max(diff(&host(l), &l0));
    }
    (dp, norm(&p0), dl, norm(&l0))
}

#[test]
fn internal_forces_keep_the_momentum_of_a_floating_robot() {
    let (dp, p0, dl, l0) = momentum_change_in_flight(0.002);
    let (dp_fine, _, dl_fine, _) = momentum_change_in_flight(0.0005);
    println!(
        "quadruped in flight: |dP| {dp:.2e} (|P0| {p0:.3}), |dL| {dl:.2e} (|L0| {l0:.3}) at dt 2 ms; {dp_fine:.2e}, {dl_fine:.2e} at 0.5 ms"
    );
    // Semi-implicit Euler in joint coordinates keeps momentum to first order in dt.
    assert!(
        dp < 5e-3 * p0 && dl < 5e-3 * l0,
        "momentum changed: {dp}, {dl}"
    );
    assert!(
        dp_fine < dp / 2.0 && dl_fine < dl / 2.0,
        "the change does not fall with the step"
    );
}

#[test]
fn dropped_box_comes_to_rest_without_sinking_or_jitter() {
    let model = free_box().expect("box");
    let mass = model.total_mass();
    let mut sim =
        Articulation::<B>::new(model, SimConfig::default(), 1, &Default::default()).expect("sim");
    // Dropped from 0.5 m, tilted and spinning.
    sim.set_root_state(
        &[0],
        rows(&[0.0, 0.0, 0.5], 1),
        rows(&[0.95, 0.2, 0.15, 0.1], 1),
        rows(&[0.5, 0.0, 0.0], 1),
        rows(&[1.0, 2.0, 0.5], 1),
    )
    .expect("state");
    let mut heights = Vec::new();
    for step in 0..600 {
        sim.step();
        if step >= 500 {
            heights.push(host(sim.root_pos())[2]);
        }
    }
    let lowest = host(sim.contact_point_positions())
        .chunks(3)
        .map(|p| p[2])
        .fold(f32::INFINITY, f32::min);
    let (v, w) = (host(sim.root_lin_vel_w()), host(sim.root_ang_vel_w()));
    let jitter = heights.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b))
        - heights.iter().fold(f32::INFINITY, |a, b| a.min(*b));
    let force = host(sim.contact_forces());
    println!(
        "box at rest: lowest corner {lowest:.2e} m, |v| {:.1e}, |w| {:.1e}, height jitter {jitter:.1e} m, ground force {:?}",
        norm(&v),
        norm(&w),
        force
    );
    assert!(lowest > -2e-3, "sank to {lowest}");
    assert!(
        norm(&v) < 1e-3 && norm(&w) < 1e-2,
        "still moving: v {v:?}, w {w:?}"
    );
    assert!(jitter < 1e-4, "height varies by {jitter} m at rest");
    // The ground carries the weight, and the box lies flat (within 2 degrees).
    assert!(
        (f64::from(force[2]) - mass * 9.81).abs() < 1e-2 * mass * 9.81,
        "ground force {force:?}"
    );
    let up = host(sim.projected_gravity_b());
    assert!(
        up[0].abs().max(up[1].abs()).max(up[2].abs()) > 0.999,
        "not lying on a face: gravity in the body frame {up:?}"
    );
}

/// The quadruped standing on its PD drives (legged_gym's gains for this size of robot)
/// after being dropped from 3 cm, `steps` steps of `config`.
fn quadruped_standing<Bk: Backend>(
    config: SimConfig,
    steps: usize,
    num_envs: usize,
) -> Articulation<Bk> {
    let model = quadruped().expect("quadruped");
    let nj = model.num_joints();
    let mut sim =
        Articulation::<Bk>::new(model.clone(), config, num_envs, &Default::default()).expect("sim");
    let q0 = standing(&model);
    let ids: Vec<usize> = (0..num_envs).collect();
    sim.set_joint_state(&ids, rows(&q0, num_envs), rows(&vec![0.0; nj], num_envs))
        .expect("joints");
    let z = QUADRUPED_STANDING_HEIGHT + 0.03;
    sim.set_root_state(
        &ids,
        rows(&[0.0, 0.0, z], num_envs),
        rows(&[1.0, 0.0, 0.0, 0.0], num_envs),
        rows(&[0.0; 3], num_envs),
        rows(&[0.0; 3], num_envs),
    )
    .expect("root");
    sim.set_drive_gains(
        rows(&vec![20.0; nj], num_envs),
        rows(&vec![0.5; nj], num_envs),
    )
    .expect("gains");
    sim.set_joint_position_target(rows(&q0, num_envs))
        .expect("targets");
    for _ in 0..steps {
        sim.step();
    }
    sim
}

#[test]
fn quadruped_stands_on_its_feet() {
    let sim = quadruped_standing::<B>(SimConfig::default(), 1200, 1);
    let model = sim.model().clone();
    let pos = host(sim.root_pos());
    let (v, w) = (host(sim.root_lin_vel_w()), host(sim.root_ang_vel_w()));
    let flags: Vec<bool> = sim
        .contact_flags()
        .into_data()
        .to_vec::<bool>()
        .expect("bool");
    let touching: Vec<&str> = model
        .links
        .iter()
        .zip(&flags)
        .filter(|(_, f)| **f)
        .map(|(l, _)| l.name.as_str())
        .collect();
    let lowest = host(sim.contact_point_positions());
    let points = model.contact_points();
    let sink = points
        .iter()
        .zip(lowest.chunks(3))
        .map(|(p, x)| f64::from(x[2]) - p.radius)
        .fold(f64::INFINITY, f64::min);
    let force: f64 = host(sim.contact_forces())
        .chunks(3)
        .map(|f| f64::from(f[2]))
        .sum();
    println!(
        "quadruped after 6 s: base {pos:?}, |v| {:.1e}, |w| {:.1e}, touching {touching:?}, deepest point {sink:.2e} m, ground force {force:.2} N",
        norm(&v),
        norm(&w)
    );
    assert!(pos.iter().all(|x| x.is_finite()));
    assert!(pos[2] > 0.2 && pos[2] < 0.35, "base height {}", pos[2]);
    assert!(
        norm(&v) < 2e-3 && norm(&w) < 2e-3,
        "still moving: v {v:?}, w {w:?}"
    );
    assert_eq!(
        touching,
        ["FL_calf", "FR_calf", "RL_calf", "RR_calf"],
        "only the feet touch"
    );
    assert!(sink > -3e-3, "a foot sank {sink} m into the ground");
    let weight = model.total_mass() * 9.81;
    assert!(
        (force - weight).abs() < 1e-2 * weight,
        "ground force {force} N, weight {weight} N"
    );
}

#[test]
fn joint_limits_hold_against_full_torque() {
    let options = UrdfOptions {
        base: BaseKind::Fixed,
        ..UrdfOptions::default()
    };
    let model =
        parse_urdf(super::robots::QUADRUPED_URDF, "quadruped", &options).expect("quadruped");
    let nj = model.num_joints();
    // The base is welded at the origin; the ground is moved out of the way.
    let mut config = SimConfig::default();
    config.contact.ground_height = -10.0;
    // Env 0 pushes every joint up with its full torque, env 1 down, from the standing pose.
    let mut sim =
        Articulation::<B>::new(model.clone(), config, 2, &Default::default()).expect("sim");
    let q0 = standing(&model);
    sim.set_joint_state(&[0, 1], rows(&q0, 2), rows(&vec![0.0; nj], 2))
        .expect("joints");
    let effort: Vec<f32> = (0..2)
        .flat_map(|e| {
            model.joints.iter().map(move |j| {
                if e == 0 {
                    j.effort_limit as f32
                } else {
                    -j.effort_limit as f32
                }
            })
        })
        .collect();
    sim.set_joint_effort(Tensor::from_data(
        TensorData::new(effort, [2, nj]),
        &Default::default(),
    ))
    .expect("effort");
    let mut worst = 0.0f64;
    for _ in 0..400 {
        sim.step();
        let q = host(sim.joint_pos());
        for (i, q) in q.iter().enumerate() {
            let (lo, hi) = model.joints[i % nj].limits.expect("limited");
            worst = worst.max(f64::from(*q) - hi).max(lo - f64::from(*q));
        }
    }
    let q = host(sim.joint_pos());
    println!("joint limits: largest overshoot {worst:.2e} rad; final {q:?}");
    // A joint swung into its limit at full torque can end one step past it (the limit acts
    // from the step the crossing is predicted, ignoring the coupling between joints); then
    // the limit pushes it back within a few steps.
    assert!(worst < 0.15, "a joint went {worst} rad past its limit");
    // Held there by its full torque, a joint rests `torque / limit_stiffness` past the limit.
    let k = SimConfig::default().limit_stiffness;
    for (i, q) in q.iter().enumerate() {
        let joint = &model.joints[i % nj];
        let (lo, hi) = joint.limits.expect("limited");
        let (end, sign) = if i < nj { (hi, 1.0) } else { (lo, -1.0) };
        let expected = end + sign * joint.effort_limit / k;
        assert!(
            (f64::from(*q) - expected).abs() < 1e-3,
            "joint {} at {q}, expected {expected}",
            joint.name
        );
    }
}

#[test]
fn flex_and_ndarray_agree() {
    let a = quadruped_standing::<Flex>(SimConfig::default(), 200, 2);
    let b = quadruped_standing::<NdArray>(SimConfig::default(), 200, 2);
    let dq = diff(&host(a.joint_pos()), &host(b.joint_pos()));
    let dp = diff(&host(a.root_pos()), &host(b.root_pos()));
    let dv = diff(&host(a.joint_vel()), &host(b.joint_vel()));
    println!("flex vs ndarray after 200 steps: |dq| {dq:.1e}, |dqd| {dv:.1e}, |d root| {dp:.1e}");
    assert!(
        dq < 1e-4 && dp < 1e-4 && dv < 1e-3,
        "backends differ: q {dq}, qd {dv}, root {dp}"
    );
}

/// The quadruped standing on PD drives at a step `dt`: base height and speed after 3 s.
fn stand_at(dt: f64) -> (f32, f64) {
    let config = SimConfig {
        dt,
        ..SimConfig::default()
    };
    let sim = quadruped_standing::<B>(config, (3.0 / dt).round() as usize, 1);
    (host(sim.root_pos())[2], norm(&host(sim.root_lin_vel_w())))
}

#[test]
fn the_quadruped_stands_stably_at_steps_up_to_20_ms() {
    // 0.005 s is the recommended step (legged_gym's); the implicit drives and contacts keep
    // it standing at four times that.
    for dt in [0.005, 0.01, 0.02] {
        let (z, v) = stand_at(dt);
        println!("dt {dt}: base height {z:.4} m, speed {v:.1e} m/s after 3 s");
        assert!(z.is_finite() && z > 0.2 && z < 0.35, "dt {dt}: base at {z}");
        assert!(v < 0.05, "dt {dt}: still moving at {v} m/s");
    }
}

/// A height field sampled from `h(x, y)` on `[x0, x1] x [y0, y1]` every `spacing` m.
fn field_from(h: impl Fn(f64, f64) -> f64, x: [f64; 2], y: [f64; 2], spacing: f64) -> HeightField {
    HeightField::from_fn(h, x, y, spacing).expect("valid field")
}

/// The box of [`free_box`] laid on a plane sloping up along x at `angle`, its bottom face on
/// the slope; returns its centre's displacement along the slope (m) and speed (m/s) after
/// `seconds`, with friction coefficient `mu`, from a speed `v0` (m/s) up the slope.
fn box_on_slope(angle: f64, mu: f64, seconds: f64, v0: f64) -> (f64, f64) {
    let model = free_box().expect("box");
    let mut config = SimConfig::default();
    config.contact.friction = mu;
    let mut sim = Articulation::<B>::new(model, config, 1, &Default::default()).expect("sim");
    let field = field_from(|x, _| x * angle.tan(), [-4.0, 4.0], [-2.0, 2.0], 0.25);
    sim.set_terrain(Some(&field));
    // Rotated about y by -angle: the box's x runs up the slope, its z along the normal.
    let normal = [-angle.sin(), 0.0, angle.cos()];
    let half = 0.1 - 2e-4;
    let start = normal.map(|n| n * half);
    let along = [angle.cos(), 0.0, angle.sin()];
    sim.set_root_state(
        &[0],
        rows(&start, 1),
        rows(&[(angle / 2.0).cos(), 0.0, (-angle / 2.0).sin(), 0.0], 1),
        rows(&along.map(|a| a * v0), 1),
        rows(&[0.0; 3], 1),
    )
    .expect("state");
    let steps = (seconds / sim.config().dt).round() as usize;
    for _ in 0..steps {
        sim.step();
    }
    let p = host(sim.root_pos());
    let v = host(sim.root_lin_vel_w());
    let moved: f64 = (0..3)
        .map(|k| (f64::from(p[k]) - start[k]) * along[k])
        .sum();
    (moved, norm(&v))
}

#[test]
fn a_box_on_a_slope_holds_above_the_friction_angle_and_slides_below_it() {
    let angle = 20f64.to_radians(); // tan = 0.364
    // mu 0.5 > tan: it stays (the regularised friction lets it creep below 1 mm/s).
    let (moved, speed) = box_on_slope(angle, 0.5, 2.0, 0.0);
    println!("mu 0.5 on 20 deg: moved {moved:.2e} m, speed {speed:.1e} m/s");
    assert!(
        moved.abs() < 2e-3 && speed < 1e-3,
        "slid {moved} m at {speed} m/s"
    );
    // mu 0.2 < tan: sliding down at 1 m/s, it speeds up at a = g (sin - mu cos). (From rest
    // it lags: the friction coefficient is lagged one step, which brakes the first
    // millimetres of a slide; see docs/physics.md.)
    let (t, v0) = (1.0, -1.0);
    let a = -9.81 * (angle.sin() - 0.2 * angle.cos());
    let (moved, speed) = box_on_slope(angle, 0.2, t, v0);
    let (s, v) = (v0 * t + a * t * t / 2.0, (v0 + a * t).abs());
    println!(
        "mu 0.2 on 20 deg: moved {moved:.4} m (analytic {s:.4}), speed {speed:.4} (analytic {v:.4})"
    );
    assert!(
        (moved - s).abs() < 0.01 * s.abs(),
        "moved {moved} m, not {s}"
    );
    assert!((speed - v).abs() < 0.01 * v, "speed {speed} m/s, not {v}");
    // mu 0.5 sliding down at 1 m/s: it stops.
    let (_, speed) = box_on_slope(angle, 0.5, 2.0, v0);
    assert!(speed < 1e-3, "still sliding at {speed} m/s");
}

/// A ball of radius 0.05 m dropped from 0.3 m with its centre at `x` over a step that rises
/// by 0.1 m between x = 0 and x = 0.02; returns its centre after 2 s.
fn ball_on_step(x: f64) -> Vec<f32> {
    let urdf = r#"<robot name="ball"><link name="ball">
        <inertial><mass value="0.5"/><inertia ixx="5e-4" iyy="5e-4" izz="5e-4" ixy="0" ixz="0" iyz="0"/></inertial>
        <collision><geometry><sphere radius="0.05"/></geometry></collision></link></robot>"#;
    let model = parse_urdf(urdf, "ball.urdf", &UrdfOptions::default()).expect("ball");
    let mut sim =
        Articulation::<B>::new(model, SimConfig::default(), 1, &Default::default()).expect("sim");
    let step = |x: f64, _| (x / 0.02).clamp(0.0, 1.0) * 0.1;
    sim.set_terrain(Some(&field_from(step, [-1.0, 1.0], [-0.5, 0.5], 0.02)));
    sim.set_root_state(
        &[0],
        rows(&[x, 0.0, 0.3], 1),
        rows(&[1.0, 0.0, 0.0, 0.0], 1),
        rows(&[0.0; 3], 1),
        rows(&[0.0; 3], 1),
    )
    .expect("state");
    for _ in 0..400 {
        sim.step();
    }
    host(sim.root_pos())
}

#[test]
fn a_ball_dropped_on_a_step_edge_rests_on_the_level_it_is_pushed_to() {
    // Over either flat, it rests there at its radius.
    let low = ball_on_step(-0.2);
    let high = ball_on_step(0.2);
    assert!(
        (low[2] - 0.05).abs() < 2e-3 && (low[0] + 0.2).abs() < 1e-3,
        "{low:?}"
    );
    assert!(
        (high[2] - 0.15).abs() < 2e-3 && (high[0] - 0.2).abs() < 1e-3,
        "{high:?}"
    );
    // On the riser (slope 5, normal tilted towards -x), it is pushed off the step to the
    // lower side and ends on the lower level.
    let edge = ball_on_step(0.01);
    println!("ball dropped on the step's riser ends at {edge:?}");
    assert!(edge[0] < 0.0, "not pushed off the step: {edge:?}");
    assert!(
        (edge[2] - 0.05).abs() < 2e-3,
        "not on the lower level: {edge:?}"
    );
}

#[test]
fn a_flat_height_field_is_the_plane() {
    // The box sliding under tilted gravity (20 degrees, mu 0.2), on the plane and on a flat
    // field: the field's contact is the plane's, term for term.
    let angle = 20f64.to_radians();
    let run = |field: Option<HeightField>| {
        let mut config = SimConfig::default();
        config.contact.friction = 0.2;
        config.gravity = [-9.81 * angle.sin(), 0.0, -9.81 * angle.cos()];
        let mut sim =
            Articulation::<B>::new(free_box().expect("box"), config, 1, &Default::default())
                .expect("sim");
        sim.set_terrain(field.as_ref());
        sim.set_root_state(
            &[0],
            rows(&[0.0, 0.0, 0.0998], 1),
            rows(&[0.99, 0.1, 0.05, 0.02], 1),
            rows(&[0.0; 3], 1),
            rows(&[0.3, -0.2, 0.1], 1),
        )
        .expect("state");
        for _ in 0..200 {
            sim.step();
        }
        (
            host(sim.root_pos()),
            host(sim.root_lin_vel_w()),
            host(sim.contact_forces()),
        )
    };
    let plane = run(None);
    let flat = run(Some(field_from(|_, _| 0.0, [-4.0, 4.0], [-2.0, 2.0], 0.25)));
    assert!(
        diff(&plane.0, &flat.0) < 1e-6,
        "{:?} vs {:?}",
        plane.0,
        flat.0
    );
    assert!(diff(&plane.1, &flat.1) < 1e-5);
    assert!(diff(&plane.2, &flat.2) < 1e-3);
    assert!(plane.0[0] < -0.3, "the box did not slide: {:?}", plane.0);
}
