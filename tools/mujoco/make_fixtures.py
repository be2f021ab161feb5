"""MuJoCo reference trajectories for sim-physics's reduced-coordinate rigid-body dynamics.

Usage (from the repository root; CI does not run this, the JSON files are committed):

    python3 -m venv /tmp/mj-venv && /tmp/mj-venv/bin/pip install mujoco numpy
    /tmp/mj-venv/bin/python tools/mujoco/make_fixtures.py
    /tmp/mj-venv/bin/python tools/mujoco/make_fixtures.py mjcf     # the MJCF fixtures alone
    /tmp/mj-venv/bin/python tools/mujoco/make_fixtures.py compare FIXTURE.json TRACE.jsonl

Generate mode (no arguments) loads the URDF models of crates/sim-physics/robots/ with MuJoCo's
own URDF importer, checks that what MuJoCo compiled is exactly what the file says (masses,
centres of mass, full inertia tensors, joint frames, axes, damping, joint order, the zero
pose and the sign of the joint angles, against an independent forward-kinematics
transcription of the URDF written below), lets the models fall freely under gravity
(0, 0, -9.81) from given initial states with MuJoCo's RK4 integrator at a fine step, and
writes crates/sim-physics/tests/fixtures/mujoco_<case>.json per case. It also checks that the
fine step is converged (against a run at half the step) and that the mechanical energy is
conserved (or, with joint damping, that E(t) + the energy dissipated by damping is).

For the same cases it also writes crates/sim-physics/tests/fixtures/mujoco_euler_<case>.json:
MuJoCo's default integrator mjINT_EULER (semi-implicit Euler, joint damping implicit:
(M + h B) a = -c - B v, v' = v + h a, q' = q + h v') at h = 1e-3 s, recorded at every step
for 1 s, 9 significant digits. A simulator with this update should match these to float
precision, which separates the dynamics from the integration error. The script checks
that each MuJoCo step equals the same update written out in numpy (from M and qfrc_bias
only), over every step and as a whole rollout, and that the eulerdamp flag is left on.

MJCF fixtures (also written by ``mjcf`` mode alone): crates/sim-physics/tests/fixtures/
mujoco_euler_mjcf_<case>.json from the MJCF files of crates/sim-physics/tests/data/mjcf/ that
the simulator reads too (MJCF_CASES): chain.xml (fixed base, 1 s) and free.xml (a floating
robot falling and spinning without contact, 0.5 s), with MuJoCo's Euler at 1e-3 s as the files'
<option> sets it, and the same checks of the Euler update (the numpy step integrates the free
joint's quaternion as MuJoCo does). The files are asserted to hold no joint limits, springs,
friction loss, actuators, fluid forces or geoms that can collide. ``q``/``qd`` are the hinges
and slides in MuJoCo's order (``joint_names``); a floating case also has ``base_pos``,
``base_quat`` (w, x, y, z), ``base_lin_vel`` (of the base origin) and ``base_ang_vel``, all in
the world frame: MuJoCo's free joint keeps its angular velocity in the body frame, converted
here (and the initial ``base_ang_vel0``, world frame, converted to MuJoCo's qvel).

What is switched off in MuJoCo so that the reference is plain rigid-body dynamics:

* joint limits (``jnt_limited = 0``; the trajectories are also asserted to stay inside the
  URDF limits, so a simulator that keeps its limits is never pushed by them),
* contacts (``mjDSBL_CONTACT``; the models have no geoms anyway),
* no actuators, armature, friction loss or springs exist (asserted). The URDF ``effort``
  becomes MuJoCo's ``actuatorfrcrange``, which only clamps actuator forces: with no
  actuators it has no effect. The URDF ``velocity`` limit is ignored by MuJoCo.

Energy: ``energy`` = kinetic + potential, MuJoCo's ``mj_energyPos + mj_energyVel`` with
``mjENBL_ENERGY``. The potential energy is ``-sum_b m_b g . c_b`` over all bodies (centres of
mass ``c_b`` in world coordinates), so its zero is the plane z = 0 of the world frame; the
fixed base's centre of mass lies at the origin and contributes nothing.

Compare mode reads a trace of JSON lines ``{"t": .., "q": [..], "qd": [..]}`` (optionally
with ``"energy"``), as written by ``cargo xtask sim-trace``, matches every fixture record
time with a trace record whose ``t`` is within 1e-6, and prints the largest absolute q and
qd errors at t = 0.5, 1.0 and 2.0 s and over all matched records. It exits 1 when a fixture
time has no match in the trace (unless ``--partial``), or when ``--max-q-err`` /
``--max-qd-err`` are given and exceeded; 2 on malformed input.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
ROBOTS = "crates/sim-physics/robots"
FIXTURES = REPO / "crates/sim-physics/tests/fixtures"

GRAVITY = (0.0, 0.0, -9.81)
DT_INTEGRATE = 1e-4
DT_CHECK = 5e-5  # convergence check: the same run at half the step
DT_RECORD = 1e-3
DURATION = 2.0
SIG_DIGITS = 7
T_MATCH = 1e-6

# Euler fixtures: MuJoCo's default integrator (semi-implicit Euler, joint damping implicit) at
# the step our simulator uses, recorded at every step, so that a simulator with the same
# update matches them to float precision and the dynamics are compared without integration
# error. 9 significant digits: finer than float32 (about 7.2 digits).
EULER_DT = 1e-3
EULER_DT_CHECK = 5e-4  # the same run at half the step: the size of Euler's own error
EULER_DURATION = 1.0
EULER_SIG_DIGITS = 9
REPORT_TIMES = (0.5, 1.0, 2.0)

CASES = {
    "double_pendulum": {
        "urdf": f"{ROBOTS}/double_pendulum.urdf",
        "q0": [1.0, -0.5],
        "qd0": [0.0, 0.0],
    },
    "double_pendulum_chaotic": {
        "urdf": f"{ROBOTS}/double_pendulum.urdf",
        "q0": [2.5, 1.0],
        "qd0": [0.5, -1.0],
    },
    "three_link_arm": {
        "urdf": f"{ROBOTS}/three_link_arm.urdf",
        "q0": [0.3, 0.7, -0.4],
        "qd0": [1.0, -0.5, 2.0],
    },
}

# MJCF files loaded by MuJoCo and by the simulator alike, integrated with MuJoCo's Euler at
# EULER_DT (the files' own <option>): a fixed-base chain, and a floating robot in free fall.
# q0 and qd0 are the hinges and slides in MuJoCo's order; a floating case also gives its
# base's position, orientation (w, x, y, z, normalised here) and velocities, both in the
# world frame (MuJoCo's free joint keeps its angular velocity in the body frame: converted).
MJCF_DATA = "crates/sim-physics/tests/data/mjcf"
MJCF_CASES = {
    "mjcf_chain": {
        "mjcf": f"{MJCF_DATA}/chain.xml",
        "q0": [0.5, -0.3, 0.08, 0.4],
        "qd0": [1.0, -1.5, 0.2, 3.0],
        "duration": 1.0,
    },
    "mjcf_free": {
        "mjcf": f"{MJCF_DATA}/free.xml",
        "base_pos0": [0.0, 0.0, 2.0],
        "base_quat0": [0.9, 0.1, -0.3, 0.2],
        "base_lin_vel0": [0.5, -0.2, 1.5],
        "base_ang_vel0": [1.5, -2.0, 3.0],
        "q0": [0.6, -0.4, 0.05],
        "qd0": [2.0, -1.0, 0.3],
        "duration": 0.5,
    },
}

# Injected into <robot> so that MuJoCo keeps every link as a body (the default fuses the
# fixed base into the world) and takes masses and inertias from <inertial> as written.
MUJOCO_EXTENSION = (
    '<mujoco><compiler discardvisual="true" fusestatic="false" inertiafromgeom="false" '
    'balanceinertia="false" strippath="false"/></mujoco>'
)


# --------------------------------------------------------------------------------------
# An independent reading of the URDF (numpy only), to check what MuJoCo compiled.
# --------------------------------------------------------------------------------------


def rpy_matrix(rpy) -> np.ndarray:
    """URDF convention: R = Rz(yaw) Ry(pitch) Rx(roll) (fixed axes x, y, z)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def axis_angle_matrix(axis, angle) -> np.ndarray:
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def _floats(text: str | None, default):
    return [float(v) for v in text.split()] if text else list(default)


def _origin(elem):
    o = elem.find("origin") if elem is not None else None
    if o is None:
        return [0.0] * 3, [0.0] * 3
    return _floats(o.get("xyz"), [0.0] * 3), _floats(o.get("rpy"), [0.0] * 3)


def parse_urdf(path: Path) -> dict:
    root = ET.parse(path).getroot()
    links = {}
    for link in root.findall("link"):
        inertial = link.find("inertial")
        if inertial is None:
            links[link.get("name")] = None
            continue
        xyz, rpy = _origin(inertial)
        i = {k: float(inertial.find("inertia").get(k)) for k in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz")}
        tensor = np.array(
            [[i["ixx"], i["ixy"], i["ixz"]], [i["ixy"], i["iyy"], i["iyz"]], [i["ixz"], i["iyz"], i["izz"]]]
        )
        links[link.get("name")] = {
            "mass": float(inertial.find("mass").get("value")),
            "com": np.array(xyz),
            # the inertia about the centre of mass, in the link frame
            "inertia": rpy_matrix(rpy) @ tensor @ rpy_matrix(rpy).T,
        }
    joints = []
    for j in root.findall("joint"):
        xyz, rpy = _origin(j)
        axis = j.find("axis")
        limit = j.find("limit")
        dyn = j.find("dynamics")
        joints.append(
            {
                "name": j.get("name"),
                "type": j.get("type"),
                "parent": j.find("parent").get("link"),
                "child": j.find("child").get("link"),
                "xyz": np.array(xyz),
                "rot": rpy_matrix(rpy),
                "axis": np.array(_floats(axis.get("xyz") if axis is not None else None, [1.0, 0.0, 0.0])),
                "limits": (
                    (float(limit.get("lower", 0)), float(limit.get("upper", 0)))
                    if limit is not None and j.get("type") in ("revolute", "prismatic")
                    else None
                ),
                "damping": float(dyn.get("damping", 0)) if dyn is not None else 0.0,
                "friction": float(dyn.get("friction", 0)) if dyn is not None else 0.0,
            }
        )
    children = {j["child"] for j in joints}
    roots = [n for n in links if n not in children]
    assert len(roots) == 1, f"{path}: expected one root link, got {roots}"
    for j in joints:
        assert j["type"] in ("revolute", "continuous"), f"{path}: joint type {j['type']} not handled here"
    return {"links": links, "joints": joints, "root": roots[0]}


def urdf_forward_kinematics(urdf: dict, q) -> dict:
    """World pose (R, p) of every link for joint angles q in the URDF's joint order."""
    poses = {urdf["root"]: (np.eye(3), np.zeros(3))}
    qi = {j["name"]: q[k] for k, j in enumerate(urdf["joints"])}
    pending = list(urdf["joints"])
    while pending:
        for j in list(pending):
            if j["parent"] in poses:
                rp, pp = poses[j["parent"]]
                r = rp @ j["rot"] @ axis_angle_matrix(j["axis"], qi[j["name"]])
                poses[j["child"]] = (r, pp + rp @ j["xyz"])
                pending.remove(j)
    return poses


def urdf_potential_energy(urdf: dict, q) -> float:
    g = np.array(GRAVITY)
    poses = urdf_forward_kinematics(urdf, q)
    return -sum(
        l["mass"] * g @ (poses[n][0] @ l["com"] + poses[n][1]) for n, l in urdf["links"].items() if l is not None
    )


# --------------------------------------------------------------------------------------
# MuJoCo model
# --------------------------------------------------------------------------------------


def load_model(urdf_rel: str, integrator: str = "RK4"):
    import mujoco

    text = (REPO / urdf_rel).read_text()
    text, n = re.subn(r"(<robot\b[^>]*>)", r"\1" + MUJOCO_EXTENSION, text, count=1)
    assert n == 1, f"{urdf_rel}: no <robot> element"
    m = mujoco.MjModel.from_xml_string(text)
    m.opt.integrator = {"RK4": mujoco.mjtIntegrator.mjINT_RK4, "Euler": mujoco.mjtIntegrator.mjINT_EULER}[integrator]
    m.opt.gravity[:] = GRAVITY
    m.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
    m.opt.enableflags |= mujoco.mjtEnableBit.mjENBL_ENERGY
    m.jnt_limited[:] = 0
    return m


def quat_matrix(quat) -> np.ndarray:
    import mujoco

    r = np.zeros(9)
    mujoco.mju_quat2Mat(r, np.asarray(quat, dtype=float))
    return r.reshape(3, 3)


def check_model(m, urdf: dict, name: str, tol: float = 1e-9) -> list[str]:
    """Assert MuJoCo compiled the URDF as written; returns notes for the report."""
    import mujoco

    notes = []
    names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, i) for i in range(m.njnt)]
    urdf_names = [j["name"] for j in urdf["joints"]]
    assert names == urdf_names, f"{name}: MuJoCo joint order {names} != URDF order {urdf_names}"
    assert m.nq == m.nv == len(urdf_names), f"{name}: nq {m.nq}, nv {m.nv}"
    for k in range(m.njnt):
        assert m.jnt_type[k] == mujoco.mjtJoint.mjJNT_HINGE, f"{name}: joint {k} is not a hinge"
        assert m.jnt_qposadr[k] == k and m.jnt_dofadr[k] == k, f"{name}: joint {k} address"
    assert m.nu == 0 and m.ngeom == 0 and m.neq == 0 and m.ntendon == 0, f"{name}: unexpected elements"
    assert np.all(m.qpos0 == 0), f"{name}: qpos0 = {m.qpos0}"
    assert np.all(m.dof_armature == 0), f"{name}: armature {m.dof_armature}"
    assert np.all(m.dof_frictionloss == 0), f"{name}: frictionloss {m.dof_frictionloss}"
    assert np.all(m.jnt_stiffness == 0), f"{name}: stiffness {m.jnt_stiffness}"
    assert not np.any(m.jnt_limited), f"{name}: limits still enabled"
    assert tuple(m.opt.gravity) == GRAVITY

    body_names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, i) for i in range(m.nbody)]
    expected_bodies = ["world", urdf["root"]] + [j["child"] for j in urdf["joints"]]
    assert body_names == expected_bodies, f"{name}: bodies {body_names} != {expected_bodies}"
    for b, link in enumerate(body_names[1:], start=1):
        lk = urdf["links"][link]
        assert abs(m.body_mass[b] - lk["mass"]) < tol, f"{name}/{link}: mass {m.body_mass[b]}"
        assert np.allclose(m.body_ipos[b], lk["com"], atol=tol, rtol=0), f"{name}/{link}: com {m.body_ipos[b]}"
        ri = quat_matrix(m.body_iquat[b])
        inertia = ri @ np.diag(m.body_inertia[b]) @ ri.T
        err = np.abs(inertia - lk["inertia"]).max()
        assert err < 1e-12, f"{name}/{link}: inertia\n{inertia}\n!=\n{lk['inertia']}"
    for k, j in enumerate(urdf["joints"]):
        b = body_names.index(j["child"])
        assert m.jnt_bodyid[k] == b and body_names[m.body_parentid[b]] == j["parent"], f"{name}: tree"
        assert np.allclose(m.body_pos[b], j["xyz"], atol=tol, rtol=0), f"{name}/{j['name']}: origin xyz"
        assert np.abs(quat_matrix(m.body_quat[b]) - j["rot"]).max() < 1e-12, f"{name}/{j['name']}: origin rpy"
        assert np.allclose(m.jnt_pos[k], 0, atol=tol), f"{name}/{j['name']}: joint not at the body origin"
        axis = j["axis"] / np.linalg.norm(j["axis"])
        assert np.allclose(m.jnt_axis[k], axis, atol=tol, rtol=0), f"{name}/{j['name']}: axis {m.jnt_axis[k]}"
        assert abs(m.dof_damping[k] - j["damping"]) < tol, f"{name}/{j['name']}: damping {m.dof_damping[k]}"
        assert j["friction"] == 0

    # Zero pose and angle convention: world poses of all links, centres of mass and the
    # potential energy at q = 0 and at random q, against the URDF forward kinematics.
    d = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    for q in [np.zeros(m.nq)] + [rng.uniform(-3, 3, m.nq) for _ in range(5)]:
        d.qpos[:] = q
        d.qvel[:] = 0
        mujoco.mj_forward(m, d)
        poses = urdf_forward_kinematics(urdf, q)
        for b, link in enumerate(body_names[1:], start=1):
            r, p = poses[link]
            assert np.abs(d.xmat[b].reshape(3, 3) - r).max() < 1e-12, f"{name}/{link}: xmat at q={q}"
            assert np.abs(d.xpos[b] - p).max() < 1e-12, f"{name}/{link}: xpos at q={q}"
            c = r @ urdf["links"][link]["com"] + p
            assert np.abs(d.xipos[b] - c).max() < 1e-12, f"{name}/{link}: xipos at q={q}"
        pe = urdf_potential_energy(urdf, q)
        assert abs(d.energy[0] - pe) < 1e-12, f"{name}: potential energy {d.energy[0]} != {pe}"
    notes.append(
        f"{name}: bodies {body_names}, joints {names}; masses, coms, full inertias, joint frames, "
        f"axes, damping {list(m.dof_damping)} and FK at q=0 + 5 random q match the URDF"
    )
    return notes


# --------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------


def simulate(m, q0, qd0, dt: float, dt_record: float = DT_RECORD, duration: float = DURATION):
    import mujoco

    m.opt.timestep = dt
    d = mujoco.MjData(m)
    d.qpos[:] = q0
    d.qvel[:] = qd0
    mujoco.mj_forward(m, d)
    per_record = round(dt_record / dt)
    assert abs(per_record * dt - dt_record) < 1e-15
    n_records = round(duration / dt_record)
    t, q, qd, energy = [0.0], [d.qpos.copy()], [d.qvel.copy()], [d.energy.sum()]
    for k in range(1, n_records + 1):
        for _ in range(per_record):
            mujoco.mj_step(m, d)
        mujoco.mj_forward(m, d)  # energy of the state reached (mj_step leaves the pre-step one)
        assert abs(d.time - k * dt_record) < 1e-9
        t.append(k * dt_record)
        q.append(d.qpos.copy())
        qd.append(d.qvel.copy())
        energy.append(d.energy.sum())
    return np.array(t), np.array(q), np.array(qd), np.array(energy)


# --------------------------------------------------------------------------------------
# Euler: what MuJoCo's mjINT_EULER does, and an independent transcription of it
# --------------------------------------------------------------------------------------


def check_euler_settings(m, name: str) -> None:
    """mjINT_EULER is semi-implicit Euler with joint damping implicit, unless switched off.

    MuJoCo's mj_Euler (engine_forward.c) solves (M + h diag(dof_damping)) qacc =
    qfrc_smooth + qfrc_constraint when some dof_damping > 0 and neither mjDSBL_EULERDAMP nor
    mjDSBL_DAMPER is set; otherwise it takes qacc from mj_forward (plain semi-implicit).
    Then qvel += h qacc, qpos += h qvel (new velocity). Sleeping (mjENBL_SLEEP) would skip
    dofs. Keep all of these at MuJoCo's defaults: damping implicit, everything awake.
    """
    import mujoco

    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_EULER, f"{name}: integrator {m.opt.integrator}"
    for flag in ("mjDSBL_EULERDAMP", "mjDSBL_DAMPER", "mjDSBL_SPRING", "mjDSBL_GRAVITY", "mjDSBL_ACTUATION"):
        bit = getattr(mujoco.mjtDisableBit, flag, None)
        assert bit is None or not m.opt.disableflags & bit, f"{name}: {flag} is set"
    for flag in ("mjENBL_SLEEP", "mjENBL_INVDISCRETE", "mjENBL_OVERRIDE"):
        bit = getattr(mujoco.mjtEnableBit, flag, None)
        assert bit is None or not m.opt.enableflags & bit, f"{name}: {flag} is set"


def own_euler_step(m, d, q, v, h: float, implicit_damping: bool = True):
    """One semi-implicit Euler step written out in numpy; MuJoCo supplies only M(q) and
    c(q, v) = qfrc_bias (gravity + Coriolis/centrifugal) at the current state:

        (M + h B) a = -c - B v      (B = diag(dof_damping); B = 0 in the solve if explicit)
        v' = v + h a
        q' = q + h v'
    """
    import mujoco

    d.qpos[:] = q
    d.qvel[:] = v
    mujoco.mj_forward(m, d)
    nv = m.nv
    mass = np.zeros((nv, nv))
    mujoco.mj_fullM(m, d, mass)
    damping = np.array(m.dof_damping)
    force = -d.qfrc_bias - damping * v
    # MuJoCo's own passive force and unconstrained acceleration agree with this reading
    assert np.abs(d.qfrc_passive - (-damping * v)).max() < 1e-12, "passive force is not -B v"
    assert np.abs(d.qacc - np.linalg.solve(mass, force)).max() < 1e-9, "qacc != M^-1 (-c - B v)"
    lhs = mass + h * np.diag(damping) if implicit_damping else mass
    a = np.linalg.solve(lhs, force)
    v1 = np.asarray(v, dtype=float) + h * a
    return own_integrate_pos(m, q, v1, h), v1


def quat_mul(a, b) -> np.ndarray:
    """Hamilton product of quaternions (w, x, y, z)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ])


def own_integrate_pos(m, q, v, h: float) -> np.ndarray:
    """q' = q + h v for hinges and slides; a free joint's position moves by h times its
    linear velocity (world frame) and its quaternion turns by the exponential of h times its
    angular velocity, which MuJoCo keeps in the body frame: quat' = quat * exp(h w_body / 2),
    normalised (mju_quatIntegrate). A model without free joints gets q + h v exactly."""
    import mujoco

    q1 = np.asarray(q, dtype=float).copy()
    free = [k for k in range(m.njnt) if m.jnt_type[k] == mujoco.mjtJoint.mjJNT_FREE]
    if not free:
        return q1 + h * np.asarray(v, dtype=float)
    for k in range(m.njnt):
        qa, va = m.jnt_qposadr[k], m.jnt_dofadr[k]
        if m.jnt_type[k] == mujoco.mjtJoint.mjJNT_FREE:
            q1[qa : qa + 3] += h * v[va : va + 3]
            w = np.asarray(v[va + 3 : va + 6], dtype=float)
            angle = np.linalg.norm(w) * h
            turn = np.array([1.0, 0, 0, 0]) if angle == 0 else np.concatenate(
                [[math.cos(angle / 2)], math.sin(angle / 2) * w / np.linalg.norm(w)]
            )
            quat = quat_mul(q1[qa + 3 : qa + 7], turn)
            q1[qa + 3 : qa + 7] = quat / np.linalg.norm(quat)
        else:
            assert int(m.jnt_type[k]) in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)
            q1[qa] += h * v[va]
    return q1


def euler_self_check(m, spec: dict, q: np.ndarray, qd: np.ndarray) -> dict:
    """Compare MuJoCo's Euler trajectory (qpos, qvel at every step, MuJoCo's full vectors;
    the initial state is spec's "qpos0" and "qvel0" when given, else "q0" and "qd0") with
    own_euler_step."""
    import mujoco

    qpos0 = spec.get("qpos0", spec["q0"])
    qvel0 = spec.get("qvel0", spec["qd0"])
    h = m.opt.timestep
    d = mujoco.MjData(m)
    # 1. every step of the trajectory, one step at a time from MuJoCo's own state
    step_q = step_qd = 0.0
    for k in range(len(q) - 1):
        q1, v1 = own_euler_step(m, d, q[k], qd[k], h)
        step_q = max(step_q, np.abs(q1 - q[k + 1]).max())
        step_qd = max(step_qd, np.abs(v1 - qd[k + 1]).max())
    # 2. a whole rollout by own_euler_step alone, from q0, qd0
    qq, vv = np.array(qpos0, dtype=float), np.array(qvel0, dtype=float)
    roll_q = roll_qd = 0.0
    for k in range(len(q) - 1):
        qq, vv = own_euler_step(m, d, qq, vv, h)
        roll_q = max(roll_q, np.abs(qq - q[k + 1]).max())
        roll_qd = max(roll_qd, np.abs(vv - qd[k + 1]).max())
    # 3. the eulerdamp flag: with it set MuJoCo drops to explicit damping; how much that
    #    changes one step from the initial state (zero when the model has no damping)
    def mj_one_step(disable_eulerdamp: bool):
        saved = m.opt.disableflags
        if disable_eulerdamp:
            m.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_EULERDAMP
        dd = mujoco.MjData(m)
        dd.qpos[:] = qpos0
        dd.qvel[:] = qvel0
        mujoco.mj_step(m, dd)
        m.opt.disableflags = saved
        return dd.qpos.copy(), dd.qvel.copy()

    (qa, va), (qb, vb) = mj_one_step(False), mj_one_step(True)
    qe, ve = own_euler_step(m, d, qpos0, qvel0, h, implicit_damping=False)
    check_euler_settings(m, "after the eulerdamp probe")
    return {
        "one_step": (step_q, step_qd),
        "rollout": (roll_q, roll_qd),
        "eulerdamp_effect": max(np.abs(qa - qb).max(), np.abs(va - vb).max()),
        "explicit_vs_own": max(np.abs(qb - qe).max(), np.abs(vb - ve).max()),
    }


def round_sig(x: float, digits: int = SIG_DIGITS) -> float:
    return float(f"{x:.{digits - 1}e}")


def write_fixture(path: Path, data: dict) -> None:
    """One key per line, one record per line: small, diffable, plain JSON."""
    lines = []
    for k, v in data.items():
        if k in ("q", "qd", "base_pos", "base_quat", "base_lin_vel", "base_ang_vel"):
            body = ",\n    ".join(json.dumps(row, separators=(",", ":")) for row in v)
            lines.append(f'  "{k}": [\n    {body}\n  ]')
        else:
            lines.append(f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}")
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")


def generate() -> None:
    import mujoco

    FIXTURES.mkdir(parents=True, exist_ok=True)
    print(f"MuJoCo {mujoco.__version__} (library {mujoco.mj_versionString()})")
    for case, spec in CASES.items():
        urdf = parse_urdf(REPO / spec["urdf"])
        m = load_model(spec["urdf"])
        for note in check_model(m, urdf, case):
            print(note)
        t, q, qd, e = simulate(m, spec["q0"], spec["qd0"], DT_INTEGRATE)
        _, q2, qd2, e2 = simulate(m, spec["q0"], spec["qd0"], DT_CHECK)
        dq, dqd, de = np.abs(q - q2).max(), np.abs(qd - qd2).max(), np.abs(e - e2).max()
        print(
            f"{case}: step {DT_INTEGRATE:g} vs {DT_CHECK:g}: max |dq| {dq:.2e}, max |dqd| {dqd:.2e}, "
            f"max |dE| {de:.2e}"
        )
        assert dq < 1e-8 and dqd < 1e-8, f"{case}: not converged"

        # Energy balance: E(t) + integral of the power dissipated by damping = E(0).
        damping = np.array(m.dof_damping)
        power = (damping * qd2**2).sum(axis=1)  # the half-step run, integrated by trapezoid
        dissipated = np.concatenate([[0.0], np.cumsum((power[1:] + power[:-1]) / 2 * DT_RECORD)])
        balance = np.abs(e2 + dissipated - e2[0]).max()
        print(
            f"{case}: E(0) {e[0]:.6f} J, E(2 s) {e[-1]:.6f} J, dissipated {dissipated[-1]:.6f} J, "
            f"max |E(t) + dissipated(t) - E(0)| {balance:.2e} J (trapezoid on the 1 ms grid)"
        )
        assert balance < 1e-5, f"{case}: energy balance off"

        # The URDF limits are switched off in MuJoCo; make sure they would not have acted.
        for k, j in enumerate(urdf["joints"]):
            lo_hi = j["limits"]
            print(f"{case}: {j['name']} range over the run [{q[:, k].min():.3f}, {q[:, k].max():.3f}]"
                  + (f" (URDF limits {lo_hi})" if lo_hi else " (continuous)"))
            if lo_hi:
                assert lo_hi[0] < q[:, k].min() and q[:, k].max() < lo_hi[1], f"{case}: leaves the limits"

        names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, i) for i in range(m.njnt)]
        data = fixture_data(spec, names, "RK4", DT_INTEGRATE, DT_RECORD, dq, dqd, t, e, q, qd, SIG_DIGITS)
        path = FIXTURES / f"mujoco_{case}.json"
        write_fixture(path, data)
        print(f"{case}: wrote {path.relative_to(REPO)} ({len(t)} records, {path.stat().st_size} bytes)")

        generate_euler(case, spec, urdf, names, t, q)


def load_mjcf_model(rel: str):
    """An MJCF file as MuJoCo compiles it, checked to hold plain rigid-body dynamics only:
    MuJoCo's Euler at EULER_DT from the file's <option>, gravity GRAVITY, no joint limits,
    springs, friction loss, actuators, tendons, equalities or fluid forces, no geom that can
    collide (so no contact, with no floor either), nothing on the free joint."""
    import mujoco

    m = mujoco.MjModel.from_xml_path(str(REPO / rel))
    m.opt.enableflags |= mujoco.mjtEnableBit.mjENBL_ENERGY
    check_euler_settings(m, rel)
    assert m.opt.timestep == EULER_DT, f"{rel}: timestep {m.opt.timestep}"
    assert np.all(m.opt.gravity == GRAVITY), f"{rel}: gravity {m.opt.gravity}"
    assert m.opt.density == 0 and m.opt.viscosity == 0 and not np.any(m.opt.wind), f"{rel}: fluid forces"
    assert m.nu == 0 and m.neq == 0 and m.ntendon == 0, f"{rel}: actuators, equalities or tendons"
    assert not np.any(m.jnt_limited), f"{rel}: limited joints"
    assert not np.any(m.jnt_stiffness) and not np.any(m.dof_frictionloss), f"{rel}: springs or friction loss"
    assert not np.any(m.geom_contype) and not np.any(m.geom_conaffinity), f"{rel}: a geom can collide"
    for k in range(m.njnt):
        if m.jnt_type[k] == mujoco.mjtJoint.mjJNT_FREE:
            assert k == 0, f"{rel}: a free joint below the top"
            dofs = slice(m.jnt_dofadr[k], m.jnt_dofadr[k] + 6)
            assert not np.any(m.dof_damping[dofs]) and not np.any(m.dof_armature[dofs]), f"{rel}: free joint"
        else:
            assert int(m.jnt_type[k]) in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)
    return m


def quat_rotation(quat) -> np.ndarray:
    """The rotation matrix of a quaternion (w, x, y, z), in numpy."""
    w, x, y, z = np.asarray(quat, dtype=float) / np.linalg.norm(quat)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def generate_mjcf() -> None:
    """MuJoCo's Euler trajectories of the MJCF_CASES, loaded from the very files that the
    simulator reads; the same checks of the Euler update as generate_euler."""
    import mujoco

    print(f"MuJoCo {mujoco.__version__} (library {mujoco.mj_versionString()})")
    for case, spec in MJCF_CASES.items():
        m = load_mjcf_model(spec["mjcf"])
        floating = m.njnt > 0 and m.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE
        first = 1 if floating else 0
        names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, i) for i in range(first, m.njnt)]
        nb = 7 if floating else 0  # free joint qpos; 6 dofs
        assert m.nq == nb + len(names) and m.nv == (6 if floating else 0) + len(names), f"{case}: nq, nv"
        print(
            f"{case}: {m.nbody - 1} bodies, joints {names}, qpos0 (ref) {np.round(m.qpos0[nb:], 6).tolist()}, "
            f"damping {m.dof_damping.tolist()}, armature {m.dof_armature.tolist()}, "
            f"masses {np.round(m.body_mass[1:], 6).tolist()}"
        )
        run = dict(spec)
        if floating:
            quat0 = np.array(spec["base_quat0"], dtype=float)
            quat0 /= np.linalg.norm(quat0)
            run["base_quat0"] = quat0.tolist()
            w_body0 = quat_rotation(quat0).T @ np.array(spec["base_ang_vel0"], dtype=float)
            run["qpos0"] = list(spec["base_pos0"]) + quat0.tolist() + list(spec["q0"])
            run["qvel0"] = list(spec["base_lin_vel0"]) + w_body0.tolist() + list(spec["qd0"])
        else:
            run["qpos0"], run["qvel0"] = list(spec["q0"]), list(spec["qd0"])
        duration = spec["duration"]
        t, q, qd, e = simulate(m, run["qpos0"], run["qvel0"], EULER_DT, EULER_DT, duration)
        _, q2, qd2, _ = simulate(m, run["qpos0"], run["qvel0"], EULER_DT_CHECK, EULER_DT, duration)
        m.opt.timestep = EULER_DT
        dq, dqd = np.abs(q - q2).max(), np.abs(qd - qd2).max()
        d = mujoco.MjData(m)
        for qpos, qvel in zip(q, qd):  # no contact anywhere along the way
            d.qpos[:], d.qvel[:] = qpos, qvel
            mujoco.mj_forward(m, d)
            assert d.ncon == 0 and d.nefc == 0, f"{case}: constraints at qpos {qpos}"

        chk = euler_self_check(m, run, q, qd)
        print(
            f"{case} [Euler {EULER_DT:g}]: own numpy step vs mj_step, max over {len(t) - 1} steps: "
            f"|dq| {chk['one_step'][0]:.2e}, |dqd| {chk['one_step'][1]:.2e}; own rollout over {duration:g} s: "
            f"|dq| {chk['rollout'][0]:.2e}, |dqd| {chk['rollout'][1]:.2e}; mjDSBL_EULERDAMP would change the "
            f"first step by {chk['eulerdamp_effect']:.2e}; vs half step |dq| {dq:.2e} |dqd| {dqd:.2e}"
        )
        assert max(chk["one_step"]) < 1e-12, f"{case}: MuJoCo's Euler is not the semi-implicit update"
        assert chk["explicit_vs_own"] < 1e-12, f"{case}: MuJoCo's explicit-damping Euler is not what we think"
        assert chk["eulerdamp_effect"] > 0, f"{case}: the implicit damping is not visible"

        damping = np.array(m.dof_damping)
        dissipated = np.concatenate([[0.0], np.cumsum(EULER_DT * (damping * qd[1:] ** 2).sum(axis=1))])
        print(
            f"{case} [Euler]: E(0) {e[0]:.6f} J, E({duration:g} s) {e[-1]:.6f} J, dissipated {dissipated[-1]:.6f} J, "
            f"max |E(t) + dissipated(t) - E(0)| {np.abs(e + dissipated - e[0]).max():.3e} J; joints over the run "
            f"from {np.round(q[:, nb:].min(axis=0), 3).tolist()} to {np.round(q[:, nb:].max(axis=0), 3).tolist()}"
        )

        g = lambda x: round_sig(x, EULER_SIG_DIGITS)  # noqa: E731
        rows = lambda a: [[g(x) for x in r] for r in a]  # noqa: E731
        data = {
            "mjcf": spec["mjcf"],
            "base": "floating" if floating else "fixed",
            "mujoco_version": mujoco.__version__,
            "integrator": "Euler",
            "dt_integrate": EULER_DT,
            "dt_record": EULER_DT,
            "gravity": list(GRAVITY),
            "joint_names": names,
            "q0": spec["q0"],
            "qd0": spec["qd0"],
        }
        if floating:
            nj = 6
            rot = np.array([quat_rotation(r[3:7]) for r in q])
            data.update({
                "base_pos0": spec["base_pos0"],
                "base_quat0": run["base_quat0"],
                "base_lin_vel0": spec["base_lin_vel0"],
                "base_ang_vel0": spec["base_ang_vel0"],
            })
        else:
            nj = 0
        data.update({
            "convergence_vs_half_step": {"q": round_sig(dq, 3), "qd": round_sig(dqd, 3)},
            "t": [round(x, 9) for x in t],
            "energy": [g(x) for x in e],
            "q": rows(q[:, nb:]),
            "qd": rows(qd[:, nj:]),
        })
        if floating:
            data.update({
                "base_pos": rows(q[:, :3]),
                "base_quat": rows(q[:, 3:7]),
                "base_lin_vel": rows(qd[:, :3]),
                # MuJoCo's body-frame angular velocity, turned into the world frame
                "base_ang_vel": rows(np.einsum("kij,kj->ki", rot, qd[:, 3:6])),
            })
            print(
                f"{case} [Euler]: base from {np.round(q[0, :3], 3).tolist()} to {np.round(q[-1, :3], 3).tolist()}, "
                f"turned by {2 * math.degrees(math.acos(min(1.0, abs(float(q[0, 3:7] @ q[-1, 3:7]))))):.1f} deg"
            )
        path = FIXTURES / f"mujoco_euler_{case}.json"
        write_fixture(path, data)
        print(f"{case} [Euler]: wrote {path.relative_to(REPO)} ({len(t)} records, {path.stat().st_size} bytes)")


def fixture_data(spec, names, integrator, dt_integrate, dt_record, dq, dqd, t, e, q, qd, digits) -> dict:
    """The JSON object of one fixture: the case, the integration, and the rounded records."""
    import mujoco

    return {
        "urdf": spec["urdf"],
        "mujoco_version": mujoco.__version__,
        "integrator": integrator,
        "dt_integrate": dt_integrate,
        "dt_record": dt_record,
        "gravity": list(GRAVITY),
        "joint_names": names,
        "q0": spec["q0"],
        "qd0": spec["qd0"],
        "convergence_vs_half_step": {"q": round_sig(dq, 3), "qd": round_sig(dqd, 3)},
        "t": [round(x, 9) for x in t],
        "energy": [round_sig(x, digits) for x in e],
        "q": [[round_sig(x, digits) for x in row] for row in q],
        "qd": [[round_sig(x, digits) for x in row] for row in qd],
    }


def generate_euler(case: str, spec: dict, urdf: dict, names: list, t_rk4: np.ndarray, q_rk4: np.ndarray) -> None:
    """MuJoCo's Euler integrator at EULER_DT, recorded at every step for EULER_DURATION."""
    m = load_model(spec["urdf"], integrator="Euler")
    check_model(m, urdf, case)
    check_euler_settings(m, case)
    t, q, qd, e = simulate(m, spec["q0"], spec["qd0"], EULER_DT, EULER_DT, EULER_DURATION)
    _, q2, qd2, _ = simulate(m, spec["q0"], spec["qd0"], EULER_DT_CHECK, EULER_DT, EULER_DURATION)
    m.opt.timestep = EULER_DT
    dq, dqd = np.abs(q - q2).max(), np.abs(qd - qd2).max()

    chk = euler_self_check(m, spec, q, qd)
    print(
        f"{case} [Euler {EULER_DT:g}]: own numpy semi-implicit step (M, qfrc_bias from mj_forward) vs mj_step, "
        f"max over {len(t) - 1} steps: |dq| {chk['one_step'][0]:.2e}, |dqd| {chk['one_step'][1]:.2e}; "
        f"own rollout vs MuJoCo over {EULER_DURATION:g} s: |dq| {chk['rollout'][0]:.2e}, |dqd| {chk['rollout'][1]:.2e}"
    )
    print(
        f"{case} [Euler]: setting mjDSBL_EULERDAMP would change the first step by {chk['eulerdamp_effect']:.2e} "
        f"(explicit-damping MuJoCo vs own explicit update {chk['explicit_vs_own']:.2e}); the fixture keeps it implicit"
    )
    assert max(chk["one_step"]) < 1e-12, f"{case}: MuJoCo's Euler is not the semi-implicit update"
    assert chk["explicit_vs_own"] < 1e-12, f"{case}: MuJoCo's explicit-damping Euler is not what we think"

    # Energy: E(t) plus the work done against damping, sum h B v_{k+1}^2 (the damping force
    # -B v_{k+1} is applied over the displacement h v_{k+1}), against E(0).
    damping = np.array(m.dof_damping)
    dissipated = np.concatenate([[0.0], np.cumsum(EULER_DT * (damping * qd[1:] ** 2).sum(axis=1))])
    drift = np.abs(e - e[0]).max()
    balance = np.abs(e + dissipated - e[0]).max()
    for k, j in enumerate(urdf["joints"]):
        if j["limits"]:
            lo, hi = j["limits"]
            assert lo < q[:, k].min() and q[:, k].max() < hi, f"{case} [Euler]: leaves the limits"
    n_rk4 = len(t)
    assert np.allclose(t_rk4[:n_rk4], t, atol=1e-12, rtol=0)
    vs_rk4 = np.abs(q - q_rk4[:n_rk4]).max()
    print(
        f"{case} [Euler]: E(0) {e[0]:.9f} J, E({EULER_DURATION:g} s) {e[-1]:.9f} J (change {e[-1] - e[0]:+.3e} J), "
        f"max |E(t) - E(0)| {drift:.3e} J, dissipated {dissipated[-1]:.6f} J, "
        f"max |E(t) + dissipated(t) - E(0)| {balance:.3e} J; "
        f"vs half step |dq| {dq:.2e} |dqd| {dqd:.2e}; vs the RK4 reference max |dq| {vs_rk4:.2e}"
    )

    data = fixture_data(spec, names, "Euler", EULER_DT, EULER_DT, dq, dqd, t, e, q, qd, EULER_SIG_DIGITS)
    path = FIXTURES / f"mujoco_euler_{case}.json"
    write_fixture(path, data)
    print(f"{case} [Euler]: wrote {path.relative_to(REPO)} ({len(t)} records, {path.stat().st_size} bytes)")


# --------------------------------------------------------------------------------------
# Compare mode
# --------------------------------------------------------------------------------------


def compare(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="make_fixtures.py compare")
    p.add_argument("fixture")
    p.add_argument("trace")
    p.add_argument("--partial", action="store_true", help="do not fail when fixture times are missing")
    p.add_argument("--max-q-err", type=float, help="exit 1 if the overall max |q error| exceeds this")
    p.add_argument("--max-qd-err", type=float, help="exit 1 if the overall max |qd error| exceeds this")
    a = p.parse_args(argv)

    try:
        fx = json.loads(Path(a.fixture).read_text())
        ft, fq, fqd = np.array(fx["t"]), np.array(fx["q"]), np.array(fx["qd"])
        fe = np.array(fx["energy"]) if "energy" in fx else None
        recs = []
        for n, line in enumerate(Path(a.trace).read_text().splitlines(), start=1):
            if line.strip():
                r = json.loads(line)
                recs.append((float(r["t"]), r["q"], r["qd"], r.get("energy")))
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"error reading input: {err}", file=sys.stderr)
        return 2
    if not recs:
        print("error: empty trace", file=sys.stderr)
        return 2
    recs.sort(key=lambda r: r[0])
    tt = np.array([r[0] for r in recs])
    ndof = fq.shape[1]
    for r in recs:
        if len(r[1]) != ndof or len(r[2]) != ndof:
            print(f"error: trace record at t={r[0]} has {len(r[1])}/{len(r[2])} q/qd values, fixture {ndof}",
                  file=sys.stderr)
            return 2

    # match each fixture time with the nearest trace time
    idx = np.clip(np.searchsorted(tt, ft), 1, len(tt) - 1) if len(tt) > 1 else np.zeros(len(ft), int)
    if len(tt) > 1:
        left = idx - 1
        idx = np.where(np.abs(tt[left] - ft) <= np.abs(tt[idx] - ft), left, idx)
    matched = np.abs(tt[idx] - ft) <= T_MATCH
    n_match = int(matched.sum())
    print(f"fixture {a.fixture}: {len(ft)} records, joints {fx.get('joint_names')}")
    print(f"trace   {a.trace}: {len(recs)} records, t in [{tt[0]:g}, {tt[-1]:g}]; {n_match} fixture times matched")
    if n_match == 0:
        print("error: no fixture time is present in the trace", file=sys.stderr)
        return 1

    fi = np.nonzero(matched)[0]
    ti = idx[matched]
    tq = np.array([recs[i][1] for i in ti], dtype=float)
    tqd = np.array([recs[i][2] for i in ti], dtype=float)
    eq = np.abs(tq - fq[fi])
    eqd = np.abs(tqd - fqd[fi])
    have_e = fe is not None and all(recs[i][3] is not None for i in ti)
    ee = np.abs(np.array([recs[i][3] for i in ti], dtype=float) - fe[fi]) if have_e else None

    def row(label, sel):
        s = f"{label:>10}  max|q err| {eq[sel].max():.3e}  max|qd err| {eqd[sel].max():.3e}"
        s += f"  (per joint q: {', '.join(f'{v:.2e}' for v in eq[sel].max(axis=0))})"
        if ee is not None:
            s += f"  |E err| {ee[sel].max():.3e}"
        return s

    for t_rep in REPORT_TIMES:
        sel = np.abs(ft[fi] - t_rep) <= T_MATCH
        where = "trace" if np.any(np.abs(ft - t_rep) <= T_MATCH) else "fixture"
        print(row(f"t={t_rep:g}", sel) if sel.any() else f"{f't={t_rep:g}':>10}  not in the {where}")
    print(row("overall", np.ones(len(fi), bool)))

    status = 0
    if n_match < len(ft):
        missing = ft[~matched]
        msg = f"{len(missing)} of {len(ft)} fixture times not in the trace (first: {missing[:5].tolist()})"
        if a.partial:
            print(f"note: {msg}")
        else:
            print(f"FAIL: {msg}")
            status = 1
    if a.max_q_err is not None and eq.max() > a.max_q_err:
        print(f"FAIL: max |q err| {eq.max():.3e} > {a.max_q_err:g}")
        status = 1
    if a.max_qd_err is not None and eqd.max() > a.max_qd_err:
        print(f"FAIL: max |qd err| {eqd.max():.3e} > {a.max_qd_err:g}")
        status = 1
    return status


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "compare":
        return compare(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "mjcf":
        generate_mjcf()
        return 0
    if len(sys.argv) > 1:
        print(__doc__)
        return 2
    generate()
    generate_mjcf()
    return 0


if __name__ == "__main__":
    sys.exit(main())
