//! `sim-trace`, `sim-bench` and `import-robot`: the articulated-body simulator on its own,
//! outside training.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::tensor::{Distribution, Tensor, TensorData, backend::Backend};
use rl_runner::LaunchCounter;
use sim_physics::robots::{QUADRUPED_STANDING_HEIGHT, quadruped, quadruped_standing_joint_pos};
use sim_physics::{
    ActuatorKind, Articulation, BaseKind, JointKind, MjcfOptions, SimConfig, TraceRequest,
    load_robot, to_urdf, trace,
};

/// A usage error naming the flag (exit status 2, like the other commands' usage errors).
fn usage(flag: &str, message: String) -> anyhow::Error {
    rl_runner::Error::Input {
        origin: flag.to_string(),
        message,
    }
    .into()
}

/// Parses a number that float32 can hold.
fn number(v: &str) -> Option<f64> {
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && (*x as f32).is_finite())
}

/// Parses a comma-separated list of numbers, naming the flag in the error.
pub fn parse_list(flag: &str, text: &str) -> anyhow::Result<Vec<f64>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|v| {
            let v = v.trim();
            number(v).ok_or_else(|| {
                usage(
                    flag,
                    format!(
                        "`{v}` is not a finite number within float32 range (expected comma-separated numbers, e.g. 0.1,-0.2)"
                    ),
                )
            })
        })
        .collect()
}

/// Parses a comma-separated list of positive integers, naming the flag in the error.
pub fn parse_sizes(flag: &str, text: &str) -> anyhow::Result<Vec<usize>> {
    text.split(',')
        .map(|v| match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(usage(
                flag,
                format!("`{}` is not a positive integer", v.trim()),
            )),
        })
        .collect()
}

/// Reads a torque file: one line per step, one number per joint separated by commas or
/// white space; blank lines and lines starting with `#` are skipped.
fn read_torques(path: &Path) -> anyhow::Result<Vec<Vec<f64>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the torque file {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let row = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|v| !v.is_empty())
            .map(|v| {
                number(v).ok_or_else(|| {
                    usage(
                        &format!("{}:{}", path.display(), i + 1),
                        format!("`{v}` is not a finite number within float32 range"),
                    )
                })
            })
            .collect::<anyhow::Result<Vec<f64>>>()?;
        rows.push(row);
    }
    Ok(rows)
}

/// Options of `sim-trace`.
pub struct TraceArgs<'a> {
    /// A URDF or MJCF file, by its extension.
    pub robot: &'a Path,
    pub fixed_base: bool,
    pub q0: &'a str,
    pub qd0: Option<&'a str>,
    pub root_pos: &'a str,
    pub root_quat: &'a str,
    pub dt: f64,
    pub substeps: usize,
    pub steps: usize,
    pub torques: Option<&'a Path>,
}

/// Simulates one environment and prints one JSON line per step (the initial state first).
pub fn sim_trace<B: Backend>(args: &TraceArgs, device: &B::Device) -> anyhow::Result<()> {
    let model = load_robot(args.robot, &robot_options(args.fixed_base))?.model;
    for warning in &model.warnings {
        tracing::warn!("{warning}");
    }
    let root_pos = parse_list("--root-pos", args.root_pos)?;
    let root_quat = parse_list("--root-quat", args.root_quat)?;
    let Ok(root_pos) = <[f64; 3]>::try_from(root_pos.as_slice()) else {
        return Err(usage(
            "--root-pos",
            format!("takes 3 numbers x,y,z, got {}", root_pos.len()),
        ));
    };
    let Ok(root_quat) = <[f64; 4]>::try_from(root_quat.as_slice()) else {
        return Err(usage(
            "--root-quat",
            format!("takes 4 numbers w,x,y,z, got {}", root_quat.len()),
        ));
    };
    if root_quat.iter().map(|v| v * v).sum::<f64>().sqrt() < 1e-6 {
        return Err(usage(
            "--root-quat",
            "must be a nonzero quaternion w,x,y,z (it is normalised)".into(),
        ));
    }
    let request = TraceRequest {
        model,
        config: SimConfig {
            dt: args.dt,
            substeps: args.substeps,
            ..SimConfig::default()
        },
        q0: parse_list("--q0", args.q0)?,
        qd0: args.qd0.map(|t| parse_list("--qd0", t)).transpose()?,
        root_pos,
        root_quat,
        steps: args.steps,
        torques: args.torques.map(read_torques).transpose()?,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    trace::<B>(&request, device, |record| {
        // A NaN would print as `null`: stop with an error naming the time instead.
        let values = record
            .q
            .iter()
            .chain(&record.qd)
            .chain(std::iter::once(&record.energy));
        if values
            .chain(record.root_pos.iter().flatten())
            .any(|v| !v.is_finite())
        {
            return Err(std::io::Error::other(format!(
                "the state is not finite at t = {} s: the simulation diverged (try a smaller --dt)",
                record.t
            )));
        }
        let line = serde_json::to_string(record).map_err(std::io::Error::other)?;
        writeln!(out, "{line}")
    })?;
    out.flush().context("write to standard output")?;
    Ok(())
}

/// Physics steps over which `sim-bench` counts kernel launches.
const LAUNCH_STEPS: usize = 20;

/// Physics steps per second of the quadruped standing on PD drives whose targets move every
/// 4 steps (a 50 Hz policy at dt = 0.005 s), for each batch size; on the CubeCL backends also
/// the kernels one physics step launches (`Articulation::step` alone, counted over
/// `LAUNCH_STEPS` further steps).
pub fn sim_bench<B: Backend>(
    num_envs: &[usize],
    steps: usize,
    warmup: usize,
    backend: &str,
    device: &B::Device,
) -> anyhow::Result<()> {
    let model = quadruped()?;
    let nj = model.num_joints();
    let pose: Vec<f32> = quadruped_standing_joint_pos(&model)?
        .into_iter()
        .map(|q| q as f32)
        .collect();
    let mut results = Vec::new();
    for &n in num_envs {
        let mut sim = Articulation::<B>::new(model.clone(), SimConfig::default(), n, device)?;
        let ids: Vec<usize> = (0..n).collect();
        let tile = |values: &[f32]| -> Tensor<B, 2> {
            let data: Vec<f32> = (0..n).flat_map(|_| values.iter().copied()).collect();
            Tensor::from_data(TensorData::new(data, [n, values.len()]), device)
        };
        sim.set_joint_state(&ids, tile(&pose), tile(&vec![0.0; nj]))?;
        let height = QUADRUPED_STANDING_HEIGHT as f32 + 0.02;
        sim.set_root_state(
            &ids,
            tile(&[0.0, 0.0, height]),
            tile(&[1.0, 0.0, 0.0, 0.0]),
            tile(&[0.0; 3]),
            tile(&[0.0; 3]),
        )?;
        sim.set_drive_gains(tile(&vec![20.0; nj]), tile(&vec![0.5; nj]))?;
        let standing = tile(&pose);
        let run = |k: usize, sim: &mut Articulation<B>| -> anyhow::Result<()> {
            for step in 0..k {
                if step % 4 == 0 {
                    let noise =
                        Tensor::<B, 2>::random([n, nj], Distribution::Uniform(-0.3, 0.3), device);
                    sim.set_joint_position_target(standing.clone() + noise)?;
                }
                sim.step();
            }
            // Wait for the device: read one number back.
            let z = sim.root_pos().narrow(1, 2, 1).mean().into_data();
            let z = z
                .to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("read back: {e:?}"))?;
            if !z.iter().all(|v| v.is_finite()) {
                bail!("the simulation diverged (base height {z:?})");
            }
            Ok(())
        };
        run(warmup, &mut sim)?;
        let start = Instant::now();
        run(steps, &mut sim)?;
        let wall = start.elapsed().as_secs_f64();
        let rate = (n * steps) as f64 / wall;
        let launches_per_step = match LaunchCounter::<B>::new(device)? {
            Some(mut counter) => {
                counter.start()?;
                for _ in 0..LAUNCH_STEPS {
                    sim.step();
                }
                Some(counter.count()? as f64 / LAUNCH_STEPS as f64)
            }
            None => None,
        };
        let launches = launches_per_step
            .map(|l| format!(", {l:.1} kernel launches per step"))
            .unwrap_or_default();
        super::emit(format!(
            "quadruped on {backend}: {n:>6} envs x {steps} steps in {wall:.2} s: {:.2} ms per step, {rate:.0} env steps/s{launches}",
            1e3 * wall / steps as f64
        ))?;
        results.push(serde_json::json!({
            "num_envs": n, "steps": steps, "wall_s": wall,
            "ms_per_step": 1e3 * wall / steps as f64, "env_steps_per_s": rate.round(),
            "launches_per_step": launches_per_step,
        }));
    }
    super::emit(
        serde_json::json!({ "robot": "quadruped", "backend": backend, "dt": SimConfig::default().dt, "results": results }),
    )
}

/// How `--fixed-base` reads a robot: welded, or else as the file says (a URDF floats; an
/// MJCF floats with a free joint on its top-level body).
fn robot_options(fixed_base: bool) -> MjcfOptions {
    MjcfOptions {
        base: fixed_base.then_some(BaseKind::Fixed),
        ..MjcfOptions::default()
    }
}

/// `import-robot`: reads `file` (URDF or MJCF, by its extension) as the simulator does,
/// prints what it read (and every warning; an MJCF's keyframes and actuators too), and with
/// `out` writes the normalised description as URDF.
pub fn import_robot(file: &Path, out: Option<&Path>, fixed_base: bool) -> anyhow::Result<()> {
    let robot = load_robot(file, &robot_options(fixed_base))?;
    let model = &robot.model;
    let mut stdout = std::io::stdout().lock();
    let total: f64 = model.links.iter().map(|l| l.mass).sum();
    writeln!(
        stdout,
        "robot `{}`: {} links ({total:.3} kg), {} moving joints, {} contact points, {:?} base",
        model.name,
        model.links.len(),
        model.num_joints(),
        model.contact_points().len(),
        model.base
    )?;
    let points = model.contact_points();
    writeln!(stdout, "links (after merging the fixed ones):")?;
    for (k, link) in model.links.iter().enumerate() {
        let contacts = points.iter().filter(|p| p.link == k).count();
        writeln!(
            stdout,
            "  {k:2} {:<24} {:8.4} kg  com [{:.4}, {:.4}, {:.4}]  {} collision shapes, {contacts} contact points",
            link.name,
            link.mass,
            link.com[0],
            link.com[1],
            link.com[2],
            link.collisions.len()
        )?;
    }
    writeln!(stdout, "joints (the order of q, actions and observations):")?;
    for (k, joint) in model.joints.iter().enumerate() {
        let kind = match joint.kind {
            JointKind::Revolute => "revolute",
            JointKind::Prismatic => "prismatic",
        };
        let range = joint.limits.map_or("unlimited".to_string(), |(lo, hi)| {
            format!("[{lo:.4}, {hi:.4}]")
        });
        writeln!(
            stdout,
            "  {k:2} {:<24} {kind:<9} parent `{}`  range {range}  effort {}  velocity {}  damping {}",
            joint.name,
            model.links[joint.parent].name,
            joint.effort_limit,
            joint.velocity_limit,
            joint.damping
        )?;
    }
    if !robot.keyframes.is_empty() {
        writeln!(stdout, "keyframes (joint positions in the order above):")?;
    }
    for key in &robot.keyframes {
        let base = match (key.base_pos, key.base_quat) {
            (Some(p), Some(q)) => format!(
                "  base [{:.4}, {:.4}, {:.4}] quat [{:.4}, {:.4}, {:.4}, {:.4}]",
                p[0], p[1], p[2], q[0], q[1], q[2], q[3]
            ),
            _ => String::new(),
        };
        let q: Vec<String> = key.joint_pos.iter().map(|v| format!("{v:.4}")).collect();
        writeln!(stdout, "  {:<12} [{}]{base}", key.name, q.join(", "))?;
    }
    if !robot.actuators.is_empty() {
        writeln!(stdout, "actuators:")?;
    }
    for a in &robot.actuators {
        let kind = match a.kind {
            ActuatorKind::Position { kp, kv } => format!("position kp {kp} kv {kv}"),
            ActuatorKind::Motor => "motor".to_string(),
            ActuatorKind::Velocity { kv } => format!("velocity kv {kv}"),
        };
        let range =
            |r: Option<(f64, f64)>| r.map_or("-".to_string(), |(lo, hi)| format!("[{lo}, {hi}]"));
        writeln!(
            stdout,
            "  {:<16} joint `{}`  {kind}  gear {}  ctrlrange {}  forcerange {}",
            a.name,
            a.joint,
            a.gear,
            range(a.ctrlrange),
            range(a.forcerange)
        )?;
    }
    writeln!(stdout, "{} warnings:", model.warnings.len())?;
    for warning in &model.warnings {
        writeln!(stdout, "  {warning}")?;
    }
    if let Some(out) = out {
        let text = to_urdf(model)?;
        let note = format!(
            "<!-- Normalised by `cargo xtask import-robot` from {}: fixed links merged, meshes \
             reduced to primitives, approximations as listed by its warnings. -->\n",
            file.display()
        );
        let text = match text.split_once("?>") {
            Some((head, rest)) => format!("{head}?>\n{note}{}", rest.trim_start()),
            None => format!("{note}{text}"),
        };
        std::fs::write(out, text).with_context(|| format!("cannot write `{}`", out.display()))?;
        writeln!(stdout, "wrote {}", out.display())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_bad_values_name_the_flag() {
        assert_eq!(
            parse_list("--q0", "0.1, -2,3e-1").expect("valid"),
            [0.1, -2.0, 0.3]
        );
        assert!(parse_list("--q0", "").expect("empty").is_empty());
        let e = parse_list("--qd0", "1,x").expect_err("bad").to_string();
        assert!(e.contains("--qd0") && e.contains("`x`"), "{e}");
        let e = parse_list("--q0", "1,nan").expect_err("nan").to_string();
        assert!(e.contains("`nan`"), "{e}");
    }
}
