"""MuJoCo's reading of the MJCF test files, for the tests of sim-physics's MJCF reader.

Usage (from the repository root; CI does not run this, the JSON file is committed):

    python3 -m venv /tmp/mj-venv && /tmp/mj-venv/bin/pip install mujoco numpy
    /tmp/mj-venv/bin/python tools/mujoco/mjcf_reference.py

For each file of crates/sim-physics/tests/data/mjcf/ (Menagerie's A1, Go1 and ANYmal C, and
synthetic.xml) MuJoCo compiles the model with `fusestatic` on (bodies without joints merged
into their parents, as sim-physics merges them), puts it in its first keyframe (or qpos0)
and records, in world coordinates so that the comparison does not depend on where a body's
frame is put: every body's mass, centre of mass (`xipos`) and inertia about it
(`ximat diag(body_inertia) ximat^T`), every joint's anchor and axis, range and
`actfrcrange`, every actuator's gains, gear and ranges, the key's qpos and ctrl, and the
total mass. The Menagerie files are loaded without their mesh and texture files, which are
not kept in the repository: mesh geoms are visual there and every body has an `<inertial>`,
so they change nothing that is recorded (the script asserts both).

Writes crates/sim-physics/tests/fixtures/mujoco_mjcf.json.
"""

from __future__ import annotations

import json
import pathlib
import xml.etree.ElementTree as ET

import mujoco
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "crates/sim-physics/tests/data/mjcf"
OUT = ROOT / "crates/sim-physics/tests/fixtures/mujoco_mjcf.json"
FILES = {
    "unitree_a1": DATA / "unitree_a1/a1.xml",
    "unitree_go1": DATA / "unitree_go1/go1.xml",
    "anybotics_anymal_c": DATA / "anybotics_anymal_c/anymal_c.xml",
    "synthetic": DATA / "synthetic.xml",
}


def without_assets(path: pathlib.Path) -> str:
    """The file with fusestatic on and without mesh and texture files."""
    root = ET.parse(path).getroot()
    compiler = root.find("compiler")
    if compiler is None:
        compiler = ET.SubElement(root, "compiler")
    compiler.set("fusestatic", "true")
    for asset in root.iter("asset"):
        for child in list(asset):
            if child.tag in ("mesh", "texture"):
                asset.remove(child)
            child.attrib.pop("texture", None)
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag == "geom" and "mesh" in child.attrib:
                # Only visual meshes may go: they must not collide nor give mass.
                assert parent.find("inertial") is not None, path
                parent.remove(child)
    return ET.tostring(root, encoding="unicode")


def record(name: str, path: pathlib.Path) -> dict:
    m = mujoco.MjModel.from_xml_string(without_assets(path))
    d = mujoco.MjData(m)
    if m.nkey > 0:
        mujoco.mj_resetDataKeyframe(m, d, 0)
    mujoco.mj_kinematics(m, d)
    bodies = []
    for b in range(1, m.nbody):
        r = d.ximat[b].reshape(3, 3)
        bodies.append(
            {
                "name": mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, b),
                "mass": float(m.body_mass[b]),
                "com_world": d.xipos[b].tolist(),
                "inertia_world": (r @ np.diag(m.body_inertia[b]) @ r.T).tolist(),
            }
        )
    joints = []
    for j in range(m.njnt):
        joints.append(
            {
                "name": mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j),
                "type": ["free", "ball", "slide", "hinge"][m.jnt_type[j]],
                "range": m.jnt_range[j].tolist() if m.jnt_limited[j] else None,
                "actfrcrange": m.jnt_actfrcrange[j].tolist() if m.jnt_actfrclimited[j] else None,
                "damping": float(m.dof_damping[m.jnt_dofadr[j]]),
                "armature": float(m.dof_armature[m.jnt_dofadr[j]]),
                "anchor_world": d.xanchor[j].tolist(),
                "axis_world": d.xaxis[j].tolist(),
            }
        )
    actuators = []
    for a in range(m.nu):
        actuators.append(
            {
                "name": mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, a),
                "joint": mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, m.actuator_trnid[a, 0]),
                "gain": float(m.actuator_gainprm[a, 0]),
                "bias": m.actuator_biasprm[a, :3].tolist(),
                "gear": float(m.actuator_gear[a, 0]),
                "ctrlrange": m.actuator_ctrlrange[a].tolist() if m.actuator_ctrllimited[a] else None,
                "forcerange": m.actuator_forcerange[a].tolist()
                if m.actuator_forcelimited[a]
                else None,
            }
        )
    return {
        "model": name,
        "mujoco": mujoco.__version__,
        "total_mass": float(mujoco.mj_getTotalmass(m)),
        "qpos": d.qpos.tolist(),
        "ctrl": d.ctrl.tolist(),
        "bodies": bodies,
        "joints": joints,
        "actuators": actuators,
    }


def main() -> None:
    out = {name: record(name, path) for name, path in FILES.items()}
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    for name, r in out.items():
        print(f"{name}: {len(r['bodies'])} bodies, {len(r['joints'])} joints, total mass {r['total_mass']:.6f} kg")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
