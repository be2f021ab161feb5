//! `cargo xtask sim-trace` and `sim-bench`: the traces follow the physics (an undamped double
//! pendulum keeps its energy and matches MuJoCo, a free box falls like a free body and comes to
//! rest on the ground, a torque file drives the joints), and bad input exits nonzero with an
//! error naming the culprit, never a panic.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

const DOUBLE_PENDULUM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/sim-physics/robots/double_pendulum.urdf"
);
const BOX: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/sim-physics/robots/box.urdf"
);
const MUJOCO_EULER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/sim-physics/tests/fixtures/mujoco_euler_double_pendulum.json"
);

/// Gravity of the simulator (m/s^2, along -z).
const G: f64 = 9.81;

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("run xtask")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Checks a successful run and parses every line of its standard output as JSON.
fn json_lines(out: &Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        stderr(out)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A list of numbers of a JSON record (`null`, which serde writes for NaN, fails).
fn floats(record: &Value, key: &str) -> Vec<f64> {
    record[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is not a list in {record}"))
        .iter()
        .map(|v| {
            v.as_f64()
                .unwrap_or_else(|| panic!("`{key}` has a non-number in {record}"))
        })
        .collect()
}

fn float(record: &Value, key: &str) -> f64 {
    record[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {record}"))
}

/// Checks a failed run: nonzero exit, no panic, nothing on stdout, and an `error:` line that
/// contains every one of `needles`.
fn fails_with(args: &[&str], needles: &[&str]) {
    let out = xtask(args);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "{args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert!(
        out.stdout.is_empty(),
        "{args:?} printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{args:?}: no `error:` line in {err}"));
    for needle in needles {
        assert!(line.contains(needle), "{args:?}: `{needle}` not in {line}");
    }
}

/// A file under the system's temporary directory, removed on drop (`tempfile` is not a
/// dependency of xtask).
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("xtask-sim-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("write the temp file");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn double_pendulum_trace_keeps_energy_and_matches_mujoco_euler() {
    let records = json_lines(&xtask(&[
        "sim-trace",
        "--urdf",
        DOUBLE_PENDULUM,
        "--fixed-base",
        "--q0",
        "1.0,-0.5",
        "--dt",
        "0.001",
        "--steps",
        "50",
    ]));
    assert_eq!(records.len(), 51, "the initial state and one line per step");
    let first = &records[0];
    assert_eq!(floats(first, "q"), [1.0, -0.5]);
    assert_eq!(floats(first, "qd"), [0.0, 0.0]);
    let e0 = float(first, "energy");
    for (i, r) in records.iter().enumerate() {
        let t = float(r, "t");
        assert!((t - i as f64 * 0.001).abs() < 1e-12, "line {i}: t = {t}");
        assert_eq!(floats(r, "q").len(), 2, "line {i}: {r}");
        assert_eq!(floats(r, "qd").len(), 2, "line {i}: {r}");
        // undamped, no torques: only the integrator's error (MuJoCo's Euler drifts 3e-3 J
        // over these 50 ms)
        let e = float(r, "energy");
        assert!((e - e0).abs() < 1e-2, "line {i}: energy {e}, first {e0}");
        for key in ["root_pos", "root_quat", "root_lin_vel", "root_ang_vel"] {
            assert!(
                r.get(key).is_none(),
                "line {i}: `{key}` on a fixed base: {r}"
            );
        }
    }

    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(MUJOCO_EULER).expect("read the MuJoCo fixture"),
    )
    .expect("the fixture is JSON");
    // the fixture is the same experiment
    assert_eq!(floats(&fixture, "q0"), [1.0, -0.5]);
    assert_eq!(float(&fixture, "dt_integrate"), 0.001);
    let at = |key: &str, i: usize| -> Vec<f64> {
        fixture[key][i]
            .as_array()
            .unwrap_or_else(|| panic!("fixture `{key}`[{i}]"))
            .iter()
            .map(|v| v.as_f64().expect("a number"))
            .collect()
    };
    for i in 0..=50 {
        let r = &records[i];
        let t_ref = fixture["t"][i].as_f64().expect("fixture t");
        assert!((float(r, "t") - t_ref).abs() < 1e-12, "t at {i}");
        for (key, tol) in [("q", 1e-5), ("qd", 1e-4)] {
            let (ours, theirs) = (floats(r, key), at(key, i));
            assert_eq!(ours.len(), theirs.len(), "{key} at t = {t_ref}");
            for (a, b) in ours.iter().zip(&theirs) {
                assert!(
                    (a - b).abs() < tol,
                    "{key} at t = {t_ref}: ours {ours:?}, MuJoCo {theirs:?}"
                );
            }
        }
    }
    let last = &records[50];
    assert!((float(last, "t") - 0.05).abs() < 1e-12);
}

#[test]
fn floating_box_falls_freely_then_rests_on_the_ground() {
    // `--q0 ""` (an empty value) is accepted by clap and parsed as no joint values; so is
    // `--q0=`. Leaving `--q0` out fails: it is required even for a model without joints.
    let h = 0.005;
    let records = json_lines(&xtask(&[
        "sim-trace",
        "--urdf",
        BOX,
        "--q0",
        "",
        "--root-pos",
        "0,0,1",
        "--steps",
        "100",
        "--dt",
        "0.005",
    ]));
    assert_eq!(records.len(), 101);
    let half_height = 0.1;
    let mut touched = false;
    let mut lowest = f64::INFINITY;
    for (n, r) in records.iter().enumerate() {
        assert!(
            floats(r, "q").is_empty() && floats(r, "qd").is_empty(),
            "{r}"
        );
        let pos = floats(r, "root_pos");
        let quat = floats(r, "root_quat");
        let vel = floats(r, "root_lin_vel");
        let ang = floats(r, "root_ang_vel");
        assert_eq!(
            (pos.len(), quat.len(), vel.len(), ang.len()),
            (3, 4, 3, 3),
            "{r}"
        );
        // dropped flat and straight: no sideways motion, no rotation
        assert!(pos[0].abs() < 1e-6 && pos[1].abs() < 1e-6, "step {n}: {r}");
        for (a, b) in quat.iter().zip([1.0, 0.0, 0.0, 0.0]) {
            assert!((a - b).abs() < 1e-6, "step {n}: quat {quat:?}");
        }
        assert!(ang.iter().all(|w| w.abs() < 1e-6), "step {n}: {ang:?}");
        let z = pos[2];
        lowest = lowest.min(z);
        let nf = n as f64;
        // semi-implicit Euler from rest: v_n = -g h n, z_n = 1 - g h^2 n (n + 1) / 2
        let free_z = 1.0 - G * h * h * nf * (nf + 1.0) / 2.0;
        if free_z >= half_height {
            assert!(
                (z - free_z).abs() < 1e-5,
                "step {n}: z = {z}, free fall {free_z}"
            );
            assert!(
                (vel[2] + G * h * nf).abs() < 1e-4,
                "step {n}: vz = {}",
                vel[2]
            );
        } else {
            touched = true;
        }
    }
    assert!(touched, "the box never reached the ground");
    // The step that crosses z = 0.1 (step 86, at 4.2 m/s) sinks about v h = 2 cm before the
    // contact pushes back; it must not tunnel through.
    assert!(lowest > 0.05, "the box sank to z = {lowest}");
    let last = &records[100];
    let z = floats(last, "root_pos")[2];
    assert!((z - half_height).abs() < 5e-3, "after 0.5 s: z = {z}");
    let vz = floats(last, "root_lin_vel")[2];
    assert!(vz.abs() < 0.1, "after 0.5 s: vz = {vz}");
}

#[test]
fn torque_file_drives_the_joints_and_must_cover_every_step() {
    let ten = TempFile::new("torques10.txt", &"2.0, 0.0\n".repeat(10));
    let args = |file: &TempFile| -> Vec<String> {
        [
            "sim-trace",
            "--urdf",
            DOUBLE_PENDULUM,
            "--fixed-base",
            "--q0",
            "0,0",
            "--steps",
            "10",
            "--dt",
            "0.01",
            "--torques",
            file.path(),
        ]
        .map(String::from)
        .to_vec()
    };
    let a = args(&ten);
    let records = json_lines(&xtask(&a.iter().map(String::as_str).collect::<Vec<_>>()));
    assert_eq!(records.len(), 11);
    assert_eq!(floats(&records[0], "qd"), [0.0, 0.0]);
    // from rest at the bottom, only the torque moves it
    let qd1 = floats(&records[1], "qd")[0];
    assert!(qd1 > 0.0, "joint1 after one step: qd = {qd1}");
    let last = &records[10];
    let qd = floats(last, "qd");
    let q = floats(last, "q");
    assert!(qd[0] > 0.0 && q[0] > 0.0, "joint1 at the end: {last}");
    // the energy gained is the torque's work, 2 N m times joint1's angle (to the
    // integrator's error)
    let gained = float(last, "energy") - float(&records[0], "energy");
    let work = 2.0 * q[0];
    assert!(
        (gained - work).abs() < 0.1 * work,
        "energy gained {gained}, work {work}"
    );

    let five = TempFile::new("torques5.txt", &"2.0, 0.0\n".repeat(5));
    let a = args(&five);
    fails_with(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &["5 rows", "10 steps"],
    );
}

#[test]
fn bad_sim_trace_input_fails_clearly() {
    let missing = concat!(env!("CARGO_MANIFEST_DIR"), "/no/such/robot.urdf");
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["--urdf", DOUBLE_PENDULUM, "--fixed-base", "--q0", "1"],
            &["q0", "1 values", "2 joints", "joint1", "joint2"],
        ),
        (
            &["--urdf", DOUBLE_PENDULUM, "--fixed-base", "--q0", "1,x"],
            &["--q0", "`x`"],
        ),
        (&["--urdf", missing, "--q0", "0,0"], &[missing]),
        (
            &["--urdf", BOX, "--q0", "", "--root-quat", "1,0,0"],
            &["--root-quat", "4 numbers", "got 3"],
        ),
    ];
    for (args, needles) in cases {
        let mut all = vec!["sim-trace", "--steps", "2"];
        all.extend_from_slice(args);
        fails_with(&all, needles);
    }
}

#[test]
fn sim_bench_reports_json_and_rejects_zero_envs() {
    let out = xtask(&[
        "sim-bench",
        "--num-envs",
        "4",
        "--steps",
        "2",
        "--warmup",
        "1",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", stderr(&out));
    let last = stdout.lines().last().expect("a JSON line");
    let report: Value = serde_json::from_str(last).expect("JSON on the last line");
    assert_eq!(report["robot"], "quadruped", "{last}");
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{last}");
    assert_eq!(results[0]["num_envs"], 4, "{last}");
    assert_eq!(results[0]["steps"], 2, "{last}");
    assert!(float(&results[0], "env_steps_per_s") > 0.0, "{last}");
    // Kernel launches are counted on the CubeCL backends only
    assert!(results[0]["launches_per_step"].is_null(), "{last}");

    fails_with(&["sim-bench", "--num-envs", "0"], &["--num-envs", "`0`"]);
    fails_with(&["sim-bench", "--num-envs", "4,x"], &["--num-envs", "`x`"]);
}

// Bugs found while writing these tests, fixed since.

#[test]
fn zero_root_quaternion_is_rejected() {
    fails_with(
        &[
            "sim-trace",
            "--urdf",
            BOX,
            "--q0",
            "",
            "--root-quat",
            "0,0,0,0",
            "--steps",
            "1",
        ],
        &["--root-quat"],
    );
}

#[test]
fn values_beyond_f32_are_rejected() {
    fails_with(
        &[
            "sim-trace",
            "--urdf",
            DOUBLE_PENDULUM,
            "--fixed-base",
            "--q0",
            "1e39,0",
            "--steps",
            "1",
        ],
        &["--q0"],
    );
}

#[test]
fn sim_bench_rejects_zero_steps() {
    fails_with(
        &["sim-bench", "--num-envs", "4", "--steps", "0"],
        &["--steps"],
    );
}

/// `import-robot` prints the joints in the simulator's order and every warning, and its
/// normalised URDF loads again as the same robot, without warnings (what was approximated
/// is now what the file says); `sim-trace --robot` reads it.
#[test]
fn import_robot_prints_the_model_and_writes_a_description_that_loads_again() {
    let dir = std::env::temp_dir().join(format!("cross-gym-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let urdf = dir.join("arm.urdf");
    std::fs::write(
        &urdf,
        r#"<robot name="arm">
          <link name="base"><inertial><mass value="2"/>
            <inertia ixx="0.1" ixy="0" ixz="0" iyy="0.1" iyz="0" izz="0.1"/></inertial>
            <collision><geometry><box size="0.2 0.2 0.1"/></geometry></collision></link>
          <link name="cover"><inertial><mass value="0.1"/>
            <inertia ixx="0.001" ixy="0.001" ixz="0.001" iyy="0.001" iyz="0.001" izz="0.001"/>
          </inertial></link>
          <link name="upper"><inertial><origin xyz="0 0 -0.1"/><mass value="1"/>
            <inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.001"/></inertial>
            <collision><origin xyz="0 0 -0.2"/><geometry><sphere radius="0.02"/></geometry></collision>
          </link>
          <joint name="cover_fix" type="fixed"><parent link="base"/><child link="cover"/></joint>
          <joint name="shoulder" type="revolute"><parent link="base"/><child link="upper"/>
            <axis xyz="0 1 0"/><limit effort="10" velocity="5"/>
            <dynamics damping="0.05" friction="0.1"/></joint>
        </robot>"#,
    )
    .expect("urdf");
    let out_file = dir.join("arm_normalised.urdf");
    let out = xtask(&[
        "import-robot",
        urdf.to_str().expect("utf-8"),
        "--out",
        out_file.to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}\n{stdout}", stderr(&out));
    for expected in [
        "robot `arm`: 2 links",
        "shoulder",
        "unlimited",
        "3 warnings:",
        "link `cover`",
        "friction",
        "without position limits",
    ] {
        assert!(stdout.contains(expected), "`{expected}` missing:\n{stdout}");
    }
    let again = xtask(&["import-robot", out_file.to_str().expect("utf-8")]);
    let again_out = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        again_out.contains("robot `arm`: 2 links (3.100 kg)") && again_out.contains("0 warnings:"),
        "{again_out}"
    );
    let trace = xtask(&[
        "sim-trace",
        "--robot",
        out_file.to_str().expect("utf-8"),
        "--fixed-base",
        "--q0",
        "0.3",
        "--steps",
        "3",
    ]);
    // The initial state, then one line per step.
    assert_eq!(json_lines(&trace).len(), 4);
    std::fs::remove_dir_all(&dir).ok();
}
