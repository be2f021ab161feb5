//! Reads a robot [`Model`] from a URDF file, on the `urdf-rs` crate.
//!
//! What is read, and how:
//!
//! - The root link is the one link that is no joint's child; the URDF must be one tree.
//! - `revolute` joints become [`JointKind::Revolute`] with their `<limit lower upper>`,
//!   `continuous` joints unlimited revolute ones, `prismatic` joints [`JointKind::Prismatic`].
//!   `fixed` joints are merged away: the child's mass, centre of mass, inertia (by the
//!   parallel-axis theorem) and collision shapes are lumped into the parent, and the child's
//!   own children hang from the parent with composed origins. `floating`, `planar` and
//!   `spherical` joints and `<mimic>` are refused.
//! - What is approximated is loaded with a warning in [`Model::warnings`], naming the
//!   element and what is done instead:
//!   - `<dynamics friction>` (Coulomb friction, as on Go1) is not modelled and is ignored;
//!   - a revolute or prismatic joint without a range (no `<limit>`, or one with `effort`
//!     and `velocity` only: URDF readers, urdf-rs too, read both as `lower = upper = 0`) is
//!     simulated without position limits, as other simulators do; an explicit range of one
//!     nonzero value is a locked joint and is refused (make it `fixed`);
//!   - a singular inertia (positive semi-definite but not definite, as ANYmal C's `hatch`)
//!     is made isotropic with the same trace, as MuJoCo's `balanceinertia` does; a negative
//!     principal moment is refused.
//! - With URDF `version="1.2"`, `<limit>` without `lower` and `upper` means no limit, read as
//!   `None`; a limit on one side only is refused.
//! - `effort` and `velocity` of 0 or absent mean "no limit" (`f64::INFINITY`): URDF writers
//!   use 0 for "unset". Negative values are refused.
//! - Damping comes from `<dynamics damping>`; the armature, which URDF has no element for,
//!   from [`UrdfOptions::armature`].
//! - Collision geometry: `sphere`, `box` and `capsule` as they are; a `cylinder` becomes a
//!   [`Shape::Capsule`] of the same radius and the same overall length (a cylindrical part
//!   of `length - 2 radius` between two hemispherical caps; a cylinder shorter than its
//!   diameter becomes a sphere of its radius); a `mesh`
//!   (STL or OBJ, found through `package://`, `ROS_PACKAGE_PATH` and the description's
//!   folders: see `mesh.rs`) becomes its bounding box, or a sphere when that is nearly a
//!   cube, with a warning; [`UrdfOptions::ignore_mesh_collisions`] skips meshes instead.
//!   A shape that lies wholly inside another shape of its link (after merging) is dropped
//!   with a warning: it never touches the ground first.
//!   Visuals, materials, `<calibration>` and `<safety_controller>` are ignored.
//! - A link without `<inertial>` has no mass. The link a moving joint moves must end up,
//!   after lumping, with positive mass or the joint with positive armature, and the root of
//!   a floating base with positive mass: the mass matrix would be singular otherwise.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::model::{
    BaseKind, Collision, Joint, JointKind, Link, Mat3, Model, Pose, Shape, Vec3, add, det, mat_mul,
    principal_axes, transpose,
};
use crate::{Error, Result};

/// Options for reading a URDF.
#[derive(Debug, Clone, PartialEq)]
pub struct UrdfOptions {
    /// How the root link is attached to the world.
    pub base: BaseKind,
    /// Reflected rotor inertia added to every moving joint (kg m^2); URDF has no element
    /// for it.
    pub armature: f64,
    /// Skip `<mesh>` collision shapes instead of refusing the file.
    pub ignore_mesh_collisions: bool,
}

impl Default for UrdfOptions {
    /// A floating base, no armature, meshes refused.
    fn default() -> Self {
        Self {
            base: BaseKind::Floating,
            armature: 0.0,
            ignore_mesh_collisions: false,
        }
    }
}

/// Reads a [`Model`] from the URDF file at `path`.
///
/// # Errors
/// [`Error::Urdf`] naming the file when it cannot be read, is not a valid URDF, or holds
/// something the simulator cannot take (see the module documentation), naming the link or
/// joint; [`Error::Model`] when the resulting model fails [`Model::new`]'s checks.
pub fn load_urdf(path: &Path, options: &UrdfOptions) -> Result<Model> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::Urdf {
        path: source.clone(),
        what: format!("cannot read the file: {e}"),
    })?;
    parse_urdf(&text, &source, options)
}

/// Reads a [`Model`] from URDF text; `source` names it in errors (a file name, or
/// `<string>`).
///
/// # Errors
/// As [`load_urdf`].
pub fn parse_urdf(text: &str, source: &str, options: &UrdfOptions) -> Result<Model> {
    let err = |what: String| Error::Urdf {
        path: source.to_owned(),
        what,
    };
    let robot = urdf_rs::read_from_string(text).map_err(|e| err(format!("invalid URDF: {e}")))?;
    let mut warnings = Vec::new();
    let file = Path::new(source);
    let description = file.is_file().then_some(file);
    let (mut links, joints) = convert(&robot, options, description, &mut warnings).map_err(err)?;
    warnings.extend(crate::model::drop_enclosed_collisions(&mut links));
    // Name the file in the model's own checks too.
    let mut model = Model::new(&robot.name, options.base, links, joints).map_err(|e| match e {
        Error::Model { model, what } => err(format!("robot `{model}`: {what}")),
        other => other,
    })?;
    model.warnings = warnings
        .into_iter()
        .map(|w| format!("URDF `{source}`: {w}"))
        .collect();
    Ok(model)
}

/// A mass lumped into a link: mass, centre of mass and inertia about it, in the link frame.
pub(crate) struct MassPart {
    pub(crate) mass: f64,
    pub(crate) com: Vec3,
    pub(crate) inertia: Mat3,
}

/// What a moving joint of the file becomes, before its parent is known.
struct MovingJoint {
    kind: JointKind,
    axis: Vec3,
    limits: Option<(f64, f64)>,
    effort_limit: f64,
    velocity_limit: f64,
    damping: f64,
}

type Checked<T> = std::result::Result<T, String>;

/// Turns the parsed URDF into links and joints, `joints[k]` moving `links[k + 1]`: the root
/// first, then the child of each moving joint in the file's order.
fn convert(
    robot: &urdf_rs::Robot,
    options: &UrdfOptions,
    description: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Checked<(Vec<Link>, Vec<Joint>)> {
    let n = robot.links.len();
    if n == 0 {
        return Err("the robot has no links".into());
    }
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(n);
    for (i, link) in robot.links.iter().enumerate() {
        if index.insert(link.name.as_str(), i).is_some() {
            return Err(format!("link `{}` is defined twice", link.name));
        }
    }

    // The tree: each link's parent joint and each link's child joints, in file order.
    let mut parent_joint: Vec<Option<usize>> = vec![None; n];
    let mut child_joints: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut ends = Vec::with_capacity(robot.joints.len());
    let mut joint_names = HashSet::with_capacity(robot.joints.len());
    for (k, joint) in robot.joints.iter().enumerate() {
        if !joint_names.insert(joint.name.as_str()) {
            return Err(format!("joint `{}` is defined twice", joint.name));
        }
        let find = |name: &str, role: &str| {
            index.get(name).copied().ok_or_else(|| {
                format!(
                    "joint `{}`: its {role} link `{name}` is not defined",
                    joint.name
                )
            })
        };
        let parent = find(&joint.parent.link, "parent")?;
        let child = find(&joint.child.link, "child")?;
        if parent == child {
            return Err(format!(
                "joint `{}` joins link `{}` to itself",
                joint.name, joint.child.link
            ));
        }
        if let Some(other) = parent_joint[child] {
            return Err(format!(
                "link `{}` is the child of two joints, `{}` and `{}`",
                joint.child.link, robot.joints[other].name, joint.name
            ));
        }
        parent_joint[child] = Some(k);
        child_joints[parent].push(k);
        ends.push((parent, child));
    }
    let roots: Vec<usize> = (0..n).filter(|&i| parent_joint[i].is_none()).collect();
    let root = match roots.as_slice() {
        [root] => *root,
        [] => {
            return Err(
                "no root link: every link is some joint's child, so the joints form a cycle".into(),
            );
        }
        several => {
            let names: Vec<String> = several
                .iter()
                .map(|&i| format!("`{}`", robot.links[i].name))
                .collect();
            return Err(format!(
                "several root links (links that are no joint's child): {}; a URDF must be one tree",
                names.join(", ")
            ));
        }
    };

    // Every joint on its own, in file order, so errors come in a stable order.
    let mut moving: Vec<Option<MovingJoint>> = Vec::with_capacity(robot.joints.len());
    let mut origins = Vec::with_capacity(robot.joints.len());
    for joint in &robot.joints {
        origins
            .push(pose(&joint.origin).map_err(|w| format!("joint `{}`: origin {w}", joint.name))?);
        moving.push(moving_joint(joint, warnings)?);
    }

    // Walk the tree from the root: each link's body (the moving link it is lumped into) and
    // its pose in that body's frame.
    let mut placed: Vec<Option<(usize, Pose)>> = vec![None; n];
    placed[root] = Some((root, Pose::default()));
    let mut joint_parent: Vec<Option<(usize, Pose)>> = vec![None; robot.joints.len()];
    let mut stack = vec![root];
    while let Some(link) = stack.pop() {
        let Some((body, at)) = placed[link] else {
            continue;
        };
        for &k in &child_joints[link] {
            let child = ends[k].1;
            let origin = at.compose(&origins[k]);
            if moving[k].is_some() {
                joint_parent[k] = Some((body, origin));
                placed[child] = Some((child, Pose::default()));
            } else {
                placed[child] = Some((body, origin));
            }
            stack.push(child);
        }
    }
    let unreached: Vec<String> = (0..n)
        .filter(|&i| placed[i].is_none())
        .map(|i| format!("`{}`", robot.links[i].name))
        .collect();
    if !unreached.is_empty() {
        return Err(format!(
            "links {} cannot be reached from the root link `{}`: their joints form a cycle",
            unreached.join(", "),
            robot.links[root].name
        ));
    }

    // Lump every link's mass and collisions into its body.
    let mut parts: Vec<Vec<MassPart>> = (0..n).map(|_| Vec::new()).collect();
    let mut collisions: Vec<Vec<Collision>> = vec![Vec::new(); n];
    for (i, link) in robot.links.iter().enumerate() {
        let Some((body, at)) = placed[i] else {
            continue;
        };
        let name = &link.name;
        if let Some(part) = mass_part(&link.inertial, &at, name, warnings)
            .map_err(|w| format!("link `{name}`: {w}"))?
        {
            parts[body].push(part);
        }
        for c in &link.collision {
            let origin =
                pose(&c.origin).map_err(|w| format!("link `{name}`: collision origin {w}"))?;
            let fitted = shape(&c.geometry, options, description)
                .map_err(|w| format!("link `{name}`: {w}"))?;
            if let Some((shape, centre)) = fitted {
                if let Some(w) = &shape_note(&c.geometry, &shape, centre) {
                    warnings.push(format!("link `{name}`: {w}"));
                }
                let centre = Pose {
                    xyz: centre,
                    ..Pose::default()
                };
                collisions[body].push(Collision {
                    shape,
                    origin: at.compose(&origin).compose(&centre),
                });
            }
        }
    }

    // The bodies: the root, then the child of each moving joint in file order.
    let bodies: Vec<usize> = std::iter::once(root)
        .chain(
            (0..robot.joints.len())
                .filter(|&k| moving[k].is_some())
                .map(|k| ends[k].1),
        )
        .collect();
    let mut out_index = vec![usize::MAX; n];
    for (out, &i) in bodies.iter().enumerate() {
        out_index[i] = out;
    }
    let links: Vec<Link> = bodies
        .iter()
        .map(|&i| {
            let (mass, com, inertia) = combine(&parts[i]);
            Link {
                name: robot.links[i].name.clone(),
                mass,
                com,
                inertia,
                collisions: std::mem::take(&mut collisions[i]),
            }
        })
        .collect();
    if options.base == BaseKind::Floating && links[0].mass <= 0.0 {
        return Err(format!(
            "the root link `{}` of a floating base has no mass (after lumping the links fixed to it): \
             the mass matrix would be singular",
            links[0].name
        ));
    }
    let mut joints = Vec::with_capacity(bodies.len() - 1);
    for (k, joint) in robot.joints.iter().enumerate() {
        let (Some(m), Some((parent, origin))) = (&moving[k], joint_parent[k]) else {
            continue;
        };
        let child = &links[out_index[ends[k].1]];
        let has_armature = options.armature > 0.0;
        if child.mass <= 0.0 && !has_armature {
            return Err(format!(
                "joint `{}` moves link `{}`, which has no mass (after lumping the links fixed to \
                 it), and the joint has no armature: the mass matrix would be singular; give the \
                 link an <inertial> or set an armature",
                joint.name, child.name
            ));
        }
        joints.push(Joint {
            name: joint.name.clone(),
            kind: m.kind,
            parent: out_index[parent],
            origin,
            axis: m.axis,
            limits: m.limits,
            effort_limit: m.effort_limit,
            velocity_limit: m.velocity_limit,
            damping: m.damping,
            armature: options.armature,
        });
    }
    Ok((links, joints))
}

/// The moving joint a URDF joint becomes, or `None` for a fixed joint.
fn moving_joint(
    joint: &urdf_rs::Joint,
    warnings: &mut Vec<String>,
) -> Checked<Option<MovingJoint>> {
    use urdf_rs::JointType;
    let name = &joint.name;
    let kind = match joint.joint_type {
        JointType::Revolute | JointType::Continuous => JointKind::Revolute,
        JointType::Prismatic => JointKind::Prismatic,
        JointType::Fixed => return Ok(None),
        JointType::Floating | JointType::Planar | JointType::Spherical => {
            let kind = match joint.joint_type {
                JointType::Floating => "floating",
                JointType::Planar => "planar",
                _ => "spherical",
            };
            return Err(format!(
                "joint `{name}` is of type {kind}: only revolute, continuous, prismatic and \
                 fixed joints are supported"
            ));
        }
    };
    if joint.mimic.is_some() {
        return Err(format!(
            "joint `{name}`: <mimic> (a joint coupled to another) is not supported: every moving \
             joint is a degree of freedom; remove the <mimic> element to simulate it as an \
             independent joint, or make the joint fixed"
        ));
    }
    let (damping, friction) = joint
        .dynamics
        .as_ref()
        .map_or((0.0, 0.0), |d| (d.damping, d.friction));
    if !(friction.is_finite() && friction >= 0.0) {
        return Err(format!(
            "joint `{name}`: <dynamics friction=\"{friction}\"> must be a number >= 0"
        ));
    }
    if friction > 0.0 {
        warnings.push(format!(
            "joint `{name}`: <dynamics friction=\"{friction}\"> (Coulomb friction, MuJoCo's \
             frictionloss) is not modelled: ignored; the joint keeps its damping {damping}"
        ));
    }
    let raw = *joint.axis.xyz;
    let norm = raw.iter().map(|a| a * a).sum::<f64>().sqrt();
    if !(norm.is_finite() && norm > 1e-12) {
        return Err(format!(
            "joint `{name}`: axis {raw:?} must be a finite nonzero vector"
        ));
    }
    let axis = raw.map(|a| a / norm);
    let limit = &joint.limit;
    let limits = if joint.joint_type == JointType::Continuous {
        None
    } else {
        let (lower, upper) = (limit.lower, limit.upper);
        if lower.is_nan() || upper.is_nan() {
            return Err(format!(
                "joint `{name}`: limits must be numbers, got [{lower}, {upper}]"
            ));
        }
        if lower == f64::NEG_INFINITY && upper == f64::INFINITY {
            None
        } else if !(lower.is_finite() && upper.is_finite()) {
            return Err(format!(
                "joint `{name}`: a limit on one side only ([{lower}, {upper}]) is not supported"
            ));
        } else if lower > upper {
            return Err(format!(
                "joint `{name}`: lower limit {lower} is above the upper limit {upper}"
            ));
        } else if lower == upper && lower == 0.0 {
            // What a <limit> without `lower` and `upper` reads as (URDF's defaults); other
            // simulators take such a joint as unlimited rather than locked.
            warnings.push(format!(
                "joint `{name}`: {kind} joint without a range (<limit> gives no lower and \
                 upper, or both 0): simulated without position limits",
                kind = if kind == JointKind::Revolute {
                    "revolute"
                } else {
                    "prismatic"
                }
            ));
            None
        } else if lower == upper {
            return Err(format!(
                "joint `{name}`: lower and upper limits are both {lower}, a locked joint: give \
                 <limit lower upper> with lower < upper, or make the joint fixed"
            ));
        } else {
            Some((lower, upper))
        }
    };
    let unset_is_infinite = |what: &str, v: f64| {
        if v.is_nan() || v < 0.0 {
            Err(format!(
                "joint `{name}`: {what} limit must be >= 0, got {v}"
            ))
        } else if v == 0.0 {
            Ok(f64::INFINITY)
        } else {
            Ok(v)
        }
    };
    Ok(Some(MovingJoint {
        kind,
        axis,
        limits,
        effort_limit: unset_is_infinite("effort", limit.effort)?,
        velocity_limit: unset_is_infinite("velocity", limit.velocity)?,
        damping,
    }))
}

/// A URDF `<origin>` as a [`Pose`]; refuses non-finite numbers.
fn pose(origin: &urdf_rs::Pose) -> Checked<Pose> {
    let (xyz, rpy) = (*origin.xyz, *origin.rpy);
    if xyz.iter().chain(&rpy).any(|v| !v.is_finite()) {
        return Err(format!("xyz {xyz:?} rpy {rpy:?} must be finite"));
    }
    Ok(Pose::from_xyz_rpy(xyz, rpy))
}

/// A link's `<inertial>` placed by `at` into its body's frame, or `None` without mass (see
/// [`placed_mass`]).
fn mass_part(
    inertial: &urdf_rs::Inertial,
    at: &Pose,
    link: &str,
    warnings: &mut Vec<String>,
) -> Checked<Option<MassPart>> {
    let mass = inertial.mass.value;
    if !(mass.is_finite() && mass >= 0.0) {
        return Err(format!("mass must be finite and >= 0, got {mass}"));
    }
    let i = &inertial.inertia;
    let inertia = [
        [i.ixx, i.ixy, i.ixz],
        [i.ixy, i.iyy, i.iyz],
        [i.ixz, i.iyz, i.izz],
    ];
    if inertia.iter().flatten().any(|v| !v.is_finite()) {
        return Err("inertia must be finite".into());
    }
    let origin = pose(&inertial.origin).map_err(|w| format!("inertial origin {w}"))?;
    if mass == 0.0 {
        return Ok(None);
    }
    placed_mass(
        mass,
        inertia,
        &at.compose(&origin),
        &format!("link `{link}`"),
        warnings,
    )
    .map(Some)
}

/// A mass of `inertia` about its centre in the frame `frame` (the inertial frame seen from
/// the link frame), as a part of the link. A singular inertia (positive semi-definite, not
/// definite) is replaced as MuJoCo's `balanceinertia` does, by the mean of its principal
/// moments about every axis, with a warning that names `owner`; a negative principal moment
/// is an error.
pub(crate) fn placed_mass(
    mass: f64,
    inertia: Mat3,
    frame: &Pose,
    owner: &str,
    warnings: &mut Vec<String>,
) -> Checked<MassPart> {
    let inertia = if positive_definite(&inertia) {
        inertia
    } else {
        let (moments, _) = principal_axes(&inertia);
        let largest = moments.iter().fold(0.0f64, |m, &v| m.max(v.abs()));
        if moments.iter().any(|&m| m < -1e-9 * largest) {
            return Err(format!(
                "inertia must be positive definite for a link with mass, got {inertia:?} \
                 (principal moments {moments:?})"
            ));
        }
        // Singular (a rod, a point, or a matrix given with equal entries everywhere, as
        // ANYmal C's `hatch`): made isotropic with the same trace.
        let mean = moments.iter().sum::<f64>() / 3.0;
        warnings.push(format!(
            "{owner}: inertia {inertia:?} is not positive definite (principal moments \
             {moments:?}): replaced by {mean:.3e} about every axis, the mean of its principal \
             moments (MuJoCo's balanceinertia)"
        ));
        [[mean, 0.0, 0.0], [0.0, mean, 0.0], [0.0, 0.0, mean]]
    };
    let r = frame.rotation;
    Ok(MassPart {
        mass,
        com: frame.xyz,
        inertia: mat_mul(&mat_mul(&r, &inertia), &transpose(&r)),
    })
}

/// Whether a symmetric 3x3 matrix is positive definite (Sylvester's criterion).
fn positive_definite(inertia: &Mat3) -> bool {
    let minor2 = inertia[0][0] * inertia[1][1] - inertia[0][1] * inertia[1][0];
    inertia[0][0] > 0.0 && minor2 > 0.0 && det(inertia) > 0.0
}

/// Total mass, centre of mass and inertia about it of lumped parts (parallel-axis theorem).
pub(crate) fn combine(parts: &[MassPart]) -> (f64, Vec3, Mat3) {
    let mass: f64 = parts.iter().map(|p| p.mass).sum();
    if mass <= 0.0 {
        return (0.0, [0.0; 3], [[0.0; 3]; 3]);
    }
    let moment = parts
        .iter()
        .fold([0.0; 3], |acc, p| add(acc, p.com.map(|c| c * p.mass)));
    let com = moment.map(|m| m / mass);
    let mut inertia = [[0.0; 3]; 3];
    for p in parts {
        let d = [p.com[0] - com[0], p.com[1] - com[1], p.com[2] - com[2]];
        let d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        for r in 0..3 {
            for c in 0..3 {
                let shift = p.mass * (if r == c { d2 } else { 0.0 } - d[r] * d[c]);
                inertia[r][c] += p.inertia[r][c] + shift;
            }
        }
    }
    (mass, com, inertia)
}

/// A collision geometry as a [`Shape`], or `None` for a skipped mesh.
fn shape(
    geometry: &urdf_rs::Geometry,
    options: &UrdfOptions,
    description: Option<&Path>,
) -> Checked<Option<(Shape, Vec3)>> {
    use urdf_rs::Geometry;
    let sizes_ok = |v: &[f64]| v.iter().all(|s| s.is_finite() && *s >= 0.0);
    let shape = match geometry {
        Geometry::Sphere { radius } => Shape::Sphere { radius: *radius },
        Geometry::Box { size } => Shape::Box { size: **size },
        Geometry::Capsule { radius, length } => Shape::Capsule {
            radius: *radius,
            length: *length,
        },
        Geometry::Cylinder { radius, length } => {
            if !sizes_ok(&[*radius, *length]) {
                return Err(format!(
                    "collision cylinder radius {radius} and length {length} must be finite and >= 0"
                ));
            }
            crate::model::cylinder_shape(*radius, *length)
        }
        Geometry::Mesh { filename, scale } => {
            if options.ignore_mesh_collisions {
                return Ok(None);
            }
            let package_path = std::env::var("ROS_PACKAGE_PATH").ok();
            let path = crate::mesh::resolve(filename, description, package_path.as_deref())?;
            let scale = scale.as_ref().map_or([1.0; 3], |s| **s);
            if !sizes_ok(&scale) {
                return Err(format!(
                    "mesh `{filename}`: scale {scale:?} must be finite and >= 0"
                ));
            }
            let vertices = crate::mesh::vertices(&path, scale)?;
            return Ok(Some(crate::mesh::fit(&vertices)));
        }
    };
    let ok = match shape {
        Shape::Sphere { radius } => sizes_ok(&[radius]),
        Shape::Capsule { radius, length } => sizes_ok(&[radius, length]),
        Shape::Box { size } => sizes_ok(&size),
    };
    if !ok {
        return Err(format!(
            "collision shape {shape:?} has a negative or non-finite size"
        ));
    }
    Ok(Some((shape, [0.0; 3])))
}

/// The warning for a collision element that was approximated (a mesh, a cylinder), naming
/// it and what stands for it.
fn shape_note(geometry: &urdf_rs::Geometry, shape: &Shape, centre: Vec3) -> Option<String> {
    let filename = match geometry {
        urdf_rs::Geometry::Mesh { filename, .. } => filename,
        urdf_rs::Geometry::Cylinder { radius, length } => {
            return Some(format!(
                "collision cylinder (radius {radius}, length {length}) approximated by {}: the \
                 contact model has no flat-ended shape",
                crate::model::cylinder_words(shape)
            ));
        }
        _ => return None,
    };
    Some(format!(
        "collision mesh `{filename}` approximated by {} centred at [{:.4}, {:.4}, {:.4}] of \
         the collision frame (contacts are points: a mesh is reduced to a primitive through \
         its extremes)",
        fitted_shape(shape),
        centre[0],
        centre[1],
        centre[2]
    ))
}

/// What a shape fitted to a mesh (or another body) is, in words: "its bounding box [..]", "a
/// sphere of radius ..".
pub(crate) fn fitted_shape(shape: &Shape) -> String {
    match shape {
        Shape::Sphere { radius } => format!("a sphere of radius {radius:.4}"),
        Shape::Box { size } => format!(
            "its bounding box [{:.4}, {:.4}, {:.4}]",
            size[0], size[1], size[2]
        ),
        Shape::Capsule { radius, length } => {
            format!("a capsule of radius {radius:.4} and length {length:.4}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::mat_vec;

    const INERTIA_1: &str = r#"<inertia ixx="1" ixy="0" ixz="0" iyy="1" iyz="0" izz="1"/>"#;

    fn parse(text: &str) -> Result<Model> {
        parse_urdf(text, "test.urdf", &UrdfOptions::default())
    }

    /// The message of an [`Error::Urdf`] for `test.urdf`.
    fn urdf_error(text: &str, options: &UrdfOptions) -> String {
        match parse_urdf(text, "test.urdf", options) {
            Err(Error::Urdf { path, what }) => {
                assert_eq!(path, "test.urdf");
                what
            }
            other => panic!("expected a URDF error, got {other:?}"),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn assert_mat(got: &Mat3, want: &Mat3) {
        for r in 0..3 {
            for c in 0..3 {
                assert!(close(got[r][c], want[r][c]), "{got:?} != {want:?}");
            }
        }
    }

    fn assert_vec(got: Vec3, want: Vec3) {
        for k in 0..3 {
            assert!(close(got[k], want[k]), "{got:?} != {want:?}");
        }
    }

    /// A robot: `base` (mass 1) plus one link per `(joint name, type, parent, child,
    /// extra joint elements)`, each child of mass 1.
    fn chain(joints: &[(&str, &str, &str, &str, &str)]) -> String {
        let mut s = String::from(r#"<robot name="t">"#);
        let mut names = vec!["base"];
        names.extend(joints.iter().map(|j| j.3));
        for name in names {
            s += &format!(
                r#"<link name="{name}"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>"#
            );
        }
        for (name, ty, parent, child, extra) in joints {
            s += &format!(
                r#"<joint name="{name}" type="{ty}"><parent link="{parent}"/><child link="{child}"/>{extra}</joint>"#
            );
        }
        s + "</robot>"
    }

    const LIMIT: &str = r#"<limit lower="-1" upper="1" effort="1" velocity="1"/>"#;

    #[test]
    fn a_two_link_model_is_read() {
        // The child link comes first in the file; the root must still be links[0].
        let text = format!(
            r#"<?xml version="1.0"?>
            <robot name="arm">
              <link name="upper">
                <inertial>
                  <origin xyz="0 0 -0.2" rpy="0 0 0.7853981633974483"/>
                  <mass value="0.5"/>
                  <inertia ixx="0.01" ixy="0" ixz="0" iyy="0.02" iyz="0" izz="0.03"/>
                </inertial>
                <visual><geometry><mesh filename="upper.stl"/></geometry></visual>
                <collision><origin xyz="0 0 -0.1"/><geometry><capsule radius="0.03" length="0.2"/></geometry></collision>
              </link>
              <link name="base">
                <inertial><mass value="3"/>{INERTIA_1}</inertial>
                <collision><origin xyz="0 0 0.1"/><geometry><box size="0.2 0.3 0.4"/></geometry></collision>
              </link>
              <joint name="shoulder" type="revolute">
                <parent link="base"/><child link="upper"/>
                <origin xyz="0 0 0.5" rpy="0 0 0"/>
                <axis xyz="0 2 0"/>
                <limit lower="-1" upper="1.5" effort="10" velocity="5"/>
                <dynamics damping="0.3"/>
                <safety_controller k_velocity="1"/>
              </joint>
            </robot>"#
        );
        let options = UrdfOptions {
            base: BaseKind::Fixed,
            armature: 0.02,
            ignore_mesh_collisions: false,
        };
        let m = parse_urdf(&text, "arm.urdf", &options).expect("a valid URDF");
        assert_eq!(m.name, "arm");
        assert_eq!(m.base, BaseKind::Fixed);
        let names: Vec<_> = m.links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["base", "upper"]);
        let (base, upper) = (&m.links[0], &m.links[1]);
        assert!(close(base.mass, 3.0) && close(upper.mass, 0.5));
        assert_vec(upper.com, [0.0, 0.0, -0.2]);
        // diag(0.01, 0.02, 0.03) yawed by 45 degrees: R I R^T.
        assert_mat(
            &upper.inertia,
            &[[0.015, -0.005, 0.0], [-0.005, 0.015, 0.0], [0.0, 0.0, 0.03]],
        );
        assert_eq!(
            upper.collisions[0].shape,
            Shape::Capsule {
                radius: 0.03,
                length: 0.2
            }
        );
        assert_vec(upper.collisions[0].origin.xyz, [0.0, 0.0, -0.1]);
        assert_eq!(
            base.collisions[0].shape,
            Shape::Box {
                size: [0.2, 0.3, 0.4]
            }
        );
        assert_eq!(m.joints.len(), 1);
        let j = &m.joints[0];
        assert_eq!(j.name, "shoulder");
        assert_eq!((j.kind, j.parent), (JointKind::Revolute, 0));
        assert_vec(j.origin.xyz, [0.0, 0.0, 0.5]);
        assert_mat(&j.origin.rotation, &super::super::IDENTITY);
        assert_vec(j.axis, [0.0, 1.0, 0.0]);
        assert_eq!(j.limits, Some((-1.0, 1.5)));
        assert_eq!((j.effort_limit, j.velocity_limit), (10.0, 5.0));
        assert_eq!((j.damping, j.armature), (0.3, 0.02));
    }

    #[test]
    fn joints_come_out_breadth_first_with_their_kinds_and_defaults() {
        // Depth-first in the file: base -> a -> b, base -> c, a -> d.
        let text = format!(
            r#"<robot name="tree" version="1.2">
              <link name="base"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <link name="a"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <link name="b"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <link name="c"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <link name="d"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <joint name="ja" type="continuous"><parent link="base"/><child link="a"/>
                <limit lower="-1" upper="1" effort="0" velocity="0"/></joint>
              <joint name="jb" type="prismatic"><parent link="a"/><child link="b"/>
                <axis xyz="0 0 1"/><limit lower="-0.1" upper="0.2"/></joint>
              <joint name="jc" type="revolute"><parent link="base"/><child link="c"/>
                <limit effort="3"/></joint>
              <joint name="jd" type="revolute"><parent link="a"/><child link="d"/>
                <limit lower="0" upper="1" velocity="2"/></joint>
            </robot>"#
        );
        let m = parse(&text).expect("a valid URDF");
        let links: Vec<_> = m.links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(links, ["base", "a", "c", "b", "d"]);
        let joints: Vec<_> = m
            .joints
            .iter()
            .map(|j| (j.name.as_str(), j.parent, j.kind))
            .collect();
        use JointKind::{Prismatic, Revolute};
        assert_eq!(
            joints,
            [
                ("ja", 0, Revolute),
                ("jc", 0, Revolute),
                ("jb", 1, Prismatic),
                ("jd", 1, Revolute)
            ]
        );
        let inf = f64::INFINITY;
        // Continuous: no limits whatever <limit> says; 0 effort and velocity mean none.
        let ja = &m.joints[0];
        assert_eq!(
            (ja.limits, ja.effort_limit, ja.velocity_limit),
            (None, inf, inf)
        );
        // Default axis is x; version 1.2 `<limit>` without lower/upper is unlimited.
        let jc = &m.joints[1];
        assert_eq!(jc.axis, [1.0, 0.0, 0.0]);
        assert_eq!(
            (jc.limits, jc.effort_limit, jc.velocity_limit),
            (None, 3.0, inf)
        );
        let jb = &m.joints[2];
        assert_eq!((jb.limits, jb.axis), (Some((-0.1, 0.2)), [0.0, 0.0, 1.0]));
        assert_eq!(
            (m.joints[3].limits, m.joints[3].velocity_limit),
            (Some((0.0, 1.0)), 2.0)
        );
        assert_eq!(m.base, BaseKind::Floating);
    }

    #[test]
    fn fixed_joints_are_lumped_into_the_parent() {
        // base --fixed, yawed 90 deg--> sensor --fixed--> tip; sensor --revolute--> hand.
        let text = r#"<robot name="lump">
          <link name="base">
            <inertial><mass value="2"/><inertia ixx="0.1" ixy="0" ixz="0" iyy="0.1" iyz="0" izz="0.1"/></inertial>
          </link>
          <link name="sensor">
            <inertial><origin xyz="0.1 0 0"/><mass value="1"/>
              <inertia ixx="0.01" ixy="0" ixz="0" iyy="0.02" iyz="0" izz="0.03"/></inertial>
            <collision><origin xyz="0.1 0 0"/><geometry><sphere radius="0.05"/></geometry></collision>
          </link>
          <link name="tip">
            <inertial><mass value="1"/>
              <inertia ixx="0.001" ixy="0" ixz="0" iyy="0.002" iyz="0" izz="0.003"/></inertial>
          </link>
          <link name="hand">
            <inertial><mass value="0.5"/>
              <inertia ixx="0.001" ixy="0" ixz="0" iyy="0.001" iyz="0" izz="0.001"/></inertial>
          </link>
          <joint name="mount" type="fixed"><parent link="base"/><child link="sensor"/>
            <origin xyz="0.5 0 0" rpy="0 0 1.5707963267948966"/></joint>
          <joint name="tip_mount" type="fixed"><parent link="sensor"/><child link="tip"/>
            <origin xyz="0 0 0.2"/></joint>
          <joint name="wrist" type="revolute"><parent link="sensor"/><child link="hand"/>
            <origin xyz="0 0.3 0"/><axis xyz="0 0 1"/>
            <limit lower="-1" upper="1" effort="1" velocity="1"/></joint>
        </robot>"#;
        let m = parse(text).expect("a valid URDF");
        let names: Vec<_> = m.links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["base", "hand"]);
        let base = &m.links[0];
        // By hand: sensor com (0.5, 0.1, 0) with inertia diag(0.02, 0.01, 0.03) in base axes,
        // tip com (0.5, 0, 0.2) with diag(0.002, 0.001, 0.003); total com
        // (0 * 2 + (0.5, 0.1, 0) + (0.5, 0, 0.2)) / 4 = (0.25, 0.025, 0.05). Offsets d from
        // it: base (-0.25, -0.025, -0.05), sensor (0.25, 0.075, -0.05), tip (0.25, -0.025,
        // 0.15); I = sum I_i + m_i (|d|^2 E - d d^T).
        assert!(close(base.mass, 4.0));
        assert_vec(base.com, [0.25, 0.025, 0.05]);
        assert_mat(
            &base.inertia,
            &[
                [0.1595, -0.025, -0.05],
                [-0.025, 0.391, 0.005],
                [-0.05, 0.005, 0.3905],
            ],
        );
        assert!(close(m.total_mass(), 4.5));
        // The sensor's sphere moves into the base frame with the composed pose.
        assert_eq!(base.collisions.len(), 1);
        assert_eq!(base.collisions[0].shape, Shape::Sphere { radius: 0.05 });
        assert_vec(base.collisions[0].origin.xyz, [0.5, 0.1, 0.0]);
        assert_vec(
            mat_vec(&base.collisions[0].origin.rotation, [1.0, 0.0, 0.0]),
            [0.0, 1.0, 0.0],
        );
        // The hand hangs from the base: origin = mount * wrist origin.
        let wrist = &m.joints[0];
        assert_eq!((wrist.name.as_str(), wrist.parent), ("wrist", 0));
        assert_vec(wrist.origin.xyz, [0.2, 0.0, 0.0]);
        assert_vec(
            mat_vec(&wrist.origin.rotation, [0.0, 1.0, 0.0]),
            [-1.0, 0.0, 0.0],
        );
    }

    #[test]
    fn a_cylinder_becomes_a_capsule_of_the_same_overall_length_or_a_sphere() {
        let text = format!(
            r#"<robot name="c"><link name="a"><inertial><mass value="1"/>{INERTIA_1}</inertial>
              <collision><geometry><cylinder radius="0.05" length="0.3"/></geometry></collision>
              <collision><origin xyz="1 2 3"/><geometry><cylinder radius="0.1" length="0.1"/></geometry></collision>
            </link></robot>"#
        );
        let m = parse(&text).expect("a valid URDF");
        // Each cylinder is an approximation the warnings name.
        assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
        assert!(
            m.warnings[0].contains("link `a`") && m.warnings[0].contains("cylinder"),
            "{:?}",
            m.warnings
        );
        let c = &m.links[0].collisions;
        assert_eq!(c.len(), 2);
        match c[0].shape {
            Shape::Capsule { radius, length } => {
                assert!(
                    close(radius, 0.05) && close(length, 0.2),
                    "{:?}",
                    c[0].shape
                )
            }
            other => panic!("expected a capsule, got {other:?}"),
        }
        // Shorter than its diameter: a sphere of the same radius.
        assert_eq!(c[1].shape, Shape::Sphere { radius: 0.1 });
        assert_vec(c[1].origin.xyz, [1.0, 2.0, 3.0]);
    }

    #[test]
    fn unsupported_joint_types_are_refused_by_name() {
        for ty in ["floating", "planar", "spherical"] {
            let text = chain(&[("free_joint", ty, "base", "a", "")]);
            let msg = urdf_error(&text, &UrdfOptions::default());
            assert!(
                msg.contains("joint `free_joint`")
                    && msg.contains(ty)
                    && msg.contains("only revolute, continuous, prismatic and fixed"),
                "{msg}"
            );
        }
        // A type URDF does not know is a parse error from urdf-rs.
        let msg = urdf_error(
            &chain(&[("j", "ball", "base", "a", "")]),
            &UrdfOptions::default(),
        );
        assert!(
            msg.contains("invalid URDF") && msg.contains("ball"),
            "{msg}"
        );
    }

    /// Go2's and Solo12's collision meshes: an STL found through `package://` from the
    /// description's folders becomes a primitive through its extremes, with a warning, and
    /// sits where the mesh was (scale and collision origin applied).
    #[test]
    fn mesh_collisions_through_package_paths_become_primitives_with_a_warning() {
        let root = std::env::temp_dir().join(format!("cross-gym-urdf-mesh-{}", std::process::id()));
        let pkg = root.join("dog-data");
        std::fs::create_dir_all(pkg.join("meshes")).expect("dirs");
        std::fs::create_dir_all(pkg.join("urdf")).expect("dirs");
        // A binary STL with one triangle spanning x in [0, 1], y in [0, 2], z in [0, 0.5].
        let mut stl = vec![0u8; 80];
        stl.extend(1u32.to_le_bytes());
        stl.extend([0u8; 12]);
        for v in [[0.0f32, 0.0, 0.0], [1.0, 0.0, 0.5], [0.0, 2.0, 0.0]] {
            for x in v {
                stl.extend(x.to_le_bytes());
            }
        }
        stl.extend([0u8; 2]);
        std::fs::write(pkg.join("meshes").join("leg.stl"), stl).expect("stl");
        let text = format!(
            r#"<robot name="m"><link name="body"><inertial><mass value="1"/>{INERTIA_1}</inertial>
              <collision><origin xyz="0 0 1"/><geometry>
                <mesh filename="package://dog-data/meshes/leg.stl" scale="0.1 0.1 0.1"/>
              </geometry></collision>
            </link></robot>"#
        );
        let file = pkg.join("urdf").join("m.urdf");
        std::fs::write(&file, &text).expect("urdf");
        let m = load_urdf(&file, &UrdfOptions::default()).expect("loads");
        std::fs::remove_dir_all(&root).ok();
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
        assert!(
            m.warnings[0].contains("link `body`")
                && m.warnings[0].contains("leg.stl")
                && m.warnings[0].contains("bounding box"),
            "{:?}",
            m.warnings
        );
        let c = &m.links[0].collisions[0];
        let Shape::Box { size } = c.shape else {
            panic!("expected a box, got {:?}", c.shape);
        };
        for (got, want) in size.iter().zip([0.1, 0.2, 0.05]) {
            assert!((got - want).abs() < 1e-6, "{size:?}");
        }
        for (got, want) in c.origin.xyz.iter().zip([0.05, 0.1, 1.025]) {
            assert!((got - want).abs() < 1e-6, "{:?}", c.origin.xyz);
        }
    }

    #[test]
    fn meshes_that_cannot_be_found_are_refused_unless_ignored() {
        let text = format!(
            r#"<robot name="m"><link name="body"><inertial><mass value="1"/>{INERTIA_1}</inertial>
              <collision><geometry><mesh filename="package://robot/body.stl"/></geometry></collision>
              <collision><geometry><sphere radius="0.1"/></geometry></collision>
            </link></robot>"#
        );
        let msg = urdf_error(&text, &UrdfOptions::default());
        assert!(
            msg.contains("link `body`") && msg.contains("package://robot/body.stl"),
            "{msg}"
        );
        let options = UrdfOptions {
            ignore_mesh_collisions: true,
            ..UrdfOptions::default()
        };
        let m = parse_urdf(&text, "m.urdf", &options).expect("meshes skipped");
        assert_eq!(m.links[0].collisions.len(), 1);
        assert_eq!(
            m.links[0].collisions[0].shape,
            Shape::Sphere { radius: 0.1 }
        );
    }

    #[test]
    fn joint_friction_is_a_warning_and_mimic_is_refused_by_name() {
        // Go1's joints carry <dynamics friction="0.2">: loaded, the friction ignored with a
        // warning that names the joint, the damping kept.
        let friction = format!(r#"{LIMIT}<dynamics damping="0.1" friction="0.5"/>"#);
        let m = parse(&chain(&[("knee", "revolute", "base", "a", &friction)])).expect("loads");
        assert_eq!(m.joints[0].damping, 0.1);
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
        let w = &m.warnings[0];
        assert!(
            w.contains("test.urdf") && w.contains("joint `knee`") && w.contains("friction=\"0.5\""),
            "{w}"
        );
        // Zero friction is no approximation: no warning.
        let zero = format!(r#"{LIMIT}<dynamics damping="0.1" friction="0"/>"#);
        let m = parse(&chain(&[("knee", "revolute", "base", "a", &zero)])).expect("no friction");
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        let negative = format!(r#"{LIMIT}<dynamics friction="-1"/>"#);
        let msg = urdf_error(
            &chain(&[("knee", "revolute", "base", "a", &negative)]),
            &UrdfOptions::default(),
        );
        assert!(
            msg.contains("joint `knee`") && msg.contains(">= 0"),
            "{msg}"
        );

        let mimic = format!(r#"{LIMIT}<mimic joint="knee"/>"#);
        let text = chain(&[
            ("knee", "revolute", "base", "a", LIMIT),
            ("finger", "revolute", "a", "b", &mimic),
        ]);
        let msg = urdf_error(&text, &UrdfOptions::default());
        assert!(
            msg.contains("joint `finger`") && msg.contains("mimic"),
            "{msg}"
        );
    }

    #[test]
    fn a_urdf_that_is_not_one_tree_is_refused() {
        // Every link a child: a cycle, no root.
        let text = format!(
            r#"<robot name="t">
              <link name="base"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <link name="a"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <joint name="j1" type="fixed"><parent link="base"/><child link="a"/></joint>
              <joint name="j2" type="fixed"><parent link="a"/><child link="base"/></joint>
            </robot>"#
        );
        let msg = urdf_error(&text, &UrdfOptions::default());
        assert!(
            msg.contains("no root link") && msg.contains("cycle"),
            "{msg}"
        );

        // One root, but a cycle beside it.
        let text = format!(
            r#"<robot name="t">
              <link name="base"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <link name="a"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <link name="b"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <joint name="j1" type="fixed"><parent link="a"/><child link="b"/></joint>
              <joint name="j2" type="fixed"><parent link="b"/><child link="a"/></joint>
            </robot>"#
        );
        let msg = urdf_error(&text, &UrdfOptions::default());
        assert!(
            msg.contains("`a`") && msg.contains("`b`") && msg.contains("cycle"),
            "{msg}"
        );

        // Two roots, both named.
        let text = format!(
            r#"<robot name="t">
              <link name="left"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <link name="right"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <link name="a"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <joint name="j1" type="fixed"><parent link="left"/><child link="a"/></joint>
            </robot>"#
        );
        let msg = urdf_error(&text, &UrdfOptions::default());
        assert!(
            msg.contains("several root links") && msg.contains("`left`") && msg.contains("`right`"),
            "{msg}"
        );

        // A link with two parents, and a joint to a link that does not exist.
        let text = format!(
            r#"<robot name="t">
              <link name="base"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <link name="a"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <joint name="j1" type="fixed"><parent link="base"/><child link="a"/></joint>
              <joint name="j2" type="fixed"><parent link="base"/><child link="a"/></joint>
            </robot>"#
        );
        let msg = urdf_error(&text, &UrdfOptions::default());
        assert!(
            msg.contains("link `a`") && msg.contains("`j1`") && msg.contains("`j2`"),
            "{msg}"
        );
        let text = chain(&[("j1", "fixed", "base", "a", "")])
            .replace(r#"child link="a""#, r#"child link="nowhere""#);
        let msg = urdf_error(&text, &UrdfOptions::default());
        assert!(
            msg.contains("joint `j1`") && msg.contains("`nowhere`"),
            "{msg}"
        );
    }

    #[test]
    fn bad_axes_limits_and_efforts_are_refused_by_name() {
        let zero_axis = format!(r#"<axis xyz="0 0 0"/>{LIMIT}"#);
        let msg = urdf_error(
            &chain(&[("hip", "revolute", "base", "a", &zero_axis)]),
            &UrdfOptions::default(),
        );
        assert!(msg.contains("joint `hip`") && msg.contains("axis"), "{msg}");

        // No range on a revolute joint (no <limit>, or one with effort and velocity only,
        // which URDF reads as lower = upper = 0): unlimited, with a warning.
        for limit in ["", r#"<limit effort="20" velocity="10"/>"#] {
            let m = parse(&chain(&[("hip", "revolute", "base", "a", limit)])).expect("loads");
            assert_eq!(m.joints[0].limits, None);
            assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
            assert!(
                m.warnings[0].contains("joint `hip`")
                    && m.warnings[0].contains("without position limits"),
                "{:?}",
                m.warnings
            );
        }
        // An explicit range of one value is a locked joint: refused.
        let msg = urdf_error(
            &chain(&[(
                "hip",
                "revolute",
                "base",
                "a",
                r#"<limit lower="0.5" upper="0.5" velocity="1"/>"#,
            )]),
            &UrdfOptions::default(),
        );
        assert!(
            msg.contains("joint `hip`") && msg.contains("locked"),
            "{msg}"
        );
        let msg = urdf_error(
            &chain(&[(
                "slide",
                "prismatic",
                "base",
                "a",
                r#"<limit lower="1" upper="0" velocity="1"/>"#,
            )]),
            &UrdfOptions::default(),
        );
        assert!(
            msg.contains("joint `slide`") && msg.contains("above"),
            "{msg}"
        );
        let msg = urdf_error(
            &chain(&[(
                "hip",
                "revolute",
                "base",
                "a",
                r#"<limit lower="-1" upper="1" effort="-2" velocity="1"/>"#,
            )]),
            &UrdfOptions::default(),
        );
        assert!(
            msg.contains("joint `hip`") && msg.contains("effort"),
            "{msg}"
        );
        let msg = urdf_error(
            &chain(&[(
                "hip",
                "revolute",
                "base",
                "a",
                r#"<limit lower="nan" upper="1" velocity="1"/>"#,
            )]),
            &UrdfOptions::default(),
        );
        assert!(
            msg.contains("joint `hip`") && msg.contains("limits"),
            "{msg}"
        );
    }

    #[test]
    fn a_massless_moved_link_needs_armature() {
        let text = format!(
            r#"<robot name="t">
              <link name="base"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <link name="ghost"/>
              <joint name="spin" type="continuous"><parent link="base"/><child link="ghost"/></joint>
            </robot>"#
        );
        let msg = urdf_error(&text, &UrdfOptions::default());
        assert!(
            msg.contains("joint `spin`") && msg.contains("`ghost`") && msg.contains("no mass"),
            "{msg}"
        );
        let options = UrdfOptions {
            armature: 0.01,
            ..UrdfOptions::default()
        };
        let m = parse_urdf(&text, "t.urdf", &options).expect("armature makes it regular");
        assert_eq!((m.links[1].mass, m.joints[0].armature), (0.0, 0.01));

        // A massless link with a massive link fixed to it is fine.
        let text = text.replace(
            "</robot>",
            &format!(
                r#"<link name="weight"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
                <joint name="glue" type="fixed"><parent link="ghost"/><child link="weight"/></joint></robot>"#
            ),
        );
        let m = parse(&text).expect("the lumped link has mass");
        assert_eq!(m.links[1].mass, 1.0);

        // A massless floating root is refused too.
        let text = format!(
            r#"<robot name="t"><link name="base"/><link name="a"><inertial><mass value="1"/>{INERTIA_1}</inertial></link>
              <joint name="j" type="continuous"><parent link="base"/><child link="a"/></joint></robot>"#
        );
        let msg = urdf_error(&text, &UrdfOptions::default());
        assert!(
            msg.contains("root link `base`") && msg.contains("no mass"),
            "{msg}"
        );
        let fixed = UrdfOptions {
            base: BaseKind::Fixed,
            ..UrdfOptions::default()
        };
        parse_urdf(&text, "t.urdf", &fixed).expect("a fixed base may be massless");
    }

    /// ANYmal C's `hatch`: every entry 0.001, a singular matrix (principal moments 0.003,
    /// 0, 0), on a link fixed to the base: loaded, made isotropic with the same trace, with a
    /// warning; the base takes it in by the parallel-axis theorem as usual.
    #[test]
    fn a_singular_inertia_is_balanced_with_a_warning() {
        let text = r#"<robot name="x">
          <link name="base"><inertial><mass value="10"/>
            <inertia ixx="1" ixy="0" ixz="0" iyy="1" iyz="0" izz="1"/></inertial></link>
          <link name="hatch"><inertial><mass value="0.1"/>
            <inertia ixx="0.001" ixy="0.001" ixz="0.001" iyy="0.001" iyz="0.001" izz="0.001"/>
          </inertial></link>
          <joint name="base_hatch" type="fixed"><parent link="base"/><child link="hatch"/></joint>
        </robot>"#;
        let m = parse(text).expect("loads");
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
        assert!(
            m.warnings[0].contains("link `hatch`") && m.warnings[0].contains("balanceinertia"),
            "{:?}",
            m.warnings
        );
        // Base 1 + hatch 0.001 (the mean of 0.003, 0, 0) about every axis, both at the origin.
        for k in 0..3 {
            assert!(
                (m.links[0].inertia[k][k] - 1.001).abs() < 1e-9,
                "{:?}",
                m.links[0]
            );
        }
    }

    #[test]
    fn malformed_files_are_urdf_errors_naming_the_source() {
        let msg = urdf_error(
            r#"<robot name="x"><link name="a"></robot>"#,
            &UrdfOptions::default(),
        );
        assert!(msg.contains("invalid URDF"), "{msg}");
        let msg = urdf_error("", &UrdfOptions::default());
        assert!(msg.contains("invalid URDF"), "{msg}");
        let msg = urdf_error(r#"<robot name="x"></robot>"#, &UrdfOptions::default());
        assert!(msg.contains("no links"), "{msg}");
        let err = parse_urdf("<robot", "broken.urdf", &UrdfOptions::default())
            .expect_err("bad XML")
            .to_string();
        assert!(err.contains("broken.urdf"), "{err}");
        let text = r#"<robot name="x"><link name="a"><inertial><mass value="1"/>
              <inertia ixx="1" ixy="0" ixz="0" iyy="-1" iyz="0" izz="1"/></inertial></link></robot>"#;
        let msg = urdf_error(text, &UrdfOptions::default());
        assert!(
            msg.contains("link `a`") && msg.contains("positive definite"),
            "{msg}"
        );

        let path = Path::new("/nonexistent/robot.urdf");
        let err = load_urdf(path, &UrdfOptions::default())
            .expect_err("no such file")
            .to_string();
        assert!(err.contains("/nonexistent/robot.urdf"), "{err}");
    }

    #[test]
    fn load_urdf_reads_a_file() {
        let dir = std::env::temp_dir().join(format!("sim-gpu-urdf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("one.urdf");
        std::fs::write(&path, chain(&[("j", "revolute", "base", "a", LIMIT)])).expect("write");
        let m = load_urdf(&path, &UrdfOptions::default()).expect("a valid file");
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!((m.links.len(), m.joints[0].name.as_str()), (2, "j"));
    }
}
