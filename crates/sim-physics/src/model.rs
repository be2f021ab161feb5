//! The robot model: a kinematic tree of rigid links joined by revolute or prismatic joints,
//! on a fixed or floating base, with collision shapes for ground contact.
//!
//! A [`Model`] lives on the host in `f64`; [`crate::Articulation`] turns it into
//! tensors once. Links are kept in breadth-first order (every parent before its children,
//! links of one depth side by side), and joint `k` is the joint of link `k + 1`, so joints
//! are breadth-first too (IsaacLab's order: every leg's hip, then every leg's thigh, ...).

use crate::{Error, Result};

/// A 3-vector.
pub type Vec3 = [f64; 3];
/// A 3x3 matrix, row-major.
pub type Mat3 = [[f64; 3]; 3];

/// A rigid transform: a rotation then a translation (`x_parent = rotation x_child + xyz`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// Translation.
    pub xyz: Vec3,
    /// Rotation matrix.
    pub rotation: Mat3,
}

impl Default for Pose {
    fn default() -> Self {
        Self {
            xyz: [0.0; 3],
            rotation: IDENTITY,
        }
    }
}

/// The 3x3 identity.
pub const IDENTITY: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

impl Pose {
    /// A pose from a translation and URDF roll-pitch-yaw angles (`R = Rz(yaw) Ry(pitch) Rx(roll)`).
    pub fn from_xyz_rpy(xyz: Vec3, rpy: Vec3) -> Self {
        let (sr, cr) = rpy[0].sin_cos();
        let (sp, cp) = rpy[1].sin_cos();
        let (sy, cy) = rpy[2].sin_cos();
        let rotation = [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ];
        Self { xyz, rotation }
    }

    /// `self * other`: the pose of `other`'s frame seen from `self`'s parent.
    pub fn compose(&self, other: &Pose) -> Pose {
        Pose {
            xyz: add(mat_vec(&self.rotation, other.xyz), self.xyz),
            rotation: mat_mul(&self.rotation, &other.rotation),
        }
    }

    /// Maps a point of the child frame into the parent frame.
    pub fn apply(&self, p: Vec3) -> Vec3 {
        add(mat_vec(&self.rotation, p), self.xyz)
    }
}

/// The kind of a moving joint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JointKind {
    /// Rotation about the axis by the joint angle (radians).
    Revolute,
    /// Translation along the axis by the joint displacement (metres).
    Prismatic,
}

/// How the root link is attached to the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseKind {
    /// The root link is welded to the world at the origin.
    Fixed,
    /// The root link moves freely: 6 degrees of freedom, orientation as a unit quaternion.
    Floating,
}

/// A collision shape, in its link's frame after the shape's own pose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// A sphere about the shape origin.
    Sphere {
        /// Radius (m).
        radius: f64,
    },
    /// A capsule along the shape's z axis: a cylinder of `length` with hemispherical caps.
    Capsule {
        /// Radius (m).
        radius: f64,
        /// Length of the cylindrical part (m), between the two cap centres.
        length: f64,
    },
    /// A box centred on the shape origin.
    Box {
        /// Full side lengths along x, y and z (m).
        size: Vec3,
    },
}

/// A collision shape placed on a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Collision {
    /// The shape.
    pub shape: Shape,
    /// Its pose in the link frame.
    pub origin: Pose,
}

/// A rigid link.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Name (from the URDF).
    pub name: String,
    /// Mass (kg).
    pub mass: f64,
    /// Centre of mass in the link frame (m).
    pub com: Vec3,
    /// Rotational inertia about the centre of mass, in the link frame's axes (kg m^2).
    pub inertia: Mat3,
    /// Collision shapes; their points touch the ground plane.
    pub collisions: Vec<Collision>,
}

/// A moving joint between a parent link and its child.
#[derive(Debug, Clone, PartialEq)]
pub struct Joint {
    /// Name (from the URDF).
    pub name: String,
    /// Revolute or prismatic.
    pub kind: JointKind,
    /// Index of the parent link.
    pub parent: usize,
    /// Pose of the joint frame (and of the child link frame at zero position) in the parent
    /// link frame.
    pub origin: Pose,
    /// Unit axis in the joint frame.
    pub axis: Vec3,
    /// Position limits `(lower, upper)`, or `None` for an unlimited (continuous) joint.
    pub limits: Option<(f64, f64)>,
    /// Largest torque (or force) the actuator can apply; `f64::INFINITY` for none.
    pub effort_limit: f64,
    /// Largest joint speed; `f64::INFINITY` for none.
    pub velocity_limit: f64,
    /// Viscous damping (N m s / rad or N s / m).
    pub damping: f64,
    /// Reflected rotor inertia added to the joint's diagonal of the mass matrix (kg m^2).
    pub armature: f64,
}

/// A contact point of a collision shape: a sphere of `radius` about `position` (a box corner
/// has radius zero).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContactPoint {
    /// The link it belongs to.
    pub link: usize,
    /// Centre in the link frame (m).
    pub position: Vec3,
    /// Radius (m).
    pub radius: f64,
}

/// A kinematic tree of links: `links[0]` is the root; joint `k` moves link `k + 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Name of the robot.
    pub name: String,
    /// Fixed or floating root.
    pub base: BaseKind,
    /// Links, breadth-first from the root.
    pub links: Vec<Link>,
    /// One joint per link after the root: `joints[k]` moves `links[k + 1]`.
    pub joints: Vec<Joint>,
    /// What the loader approximated, one line per element, each naming the element and
    /// what was done instead (empty for a model built in code).
    pub warnings: Vec<String>,
}

impl Model {
    /// Checks the model and puts its links in breadth-first order (keeping the order of
    /// siblings). `joints[k]` must move `links[k + 1]` on input too.
    ///
    /// # Errors
    /// [`Error::Model`] naming the link or joint when the tree is malformed (a parent after
    /// its child is fine; a cycle or a missing parent is not) or a value is out of range
    /// (negative or non-finite mass, inertia not positive definite, zero axis, lower limit
    /// above the upper one, negative damping, armature or limits).
    pub fn new(name: &str, base: BaseKind, links: Vec<Link>, joints: Vec<Joint>) -> Result<Self> {
        let err = |what: String| Error::Model {
            model: name.to_owned(),
            what,
        };
        if links.is_empty() {
            return Err(err("the model has no links".into()));
        }
        if joints.len() + 1 != links.len() {
            return Err(err(format!(
                "{} links need {} joints, got {}",
                links.len(),
                links.len() - 1,
                joints.len()
            )));
        }
        for link in &links {
            check_link(link).map_err(|w| err(format!("link `{}`: {w}", link.name)))?;
        }
        for joint in &joints {
            check_joint(joint, links.len())
                .map_err(|w| err(format!("joint `{}`: {w}", joint.name)))?;
        }
        // Depth of every link; a parent chain that does not reach the root is a cycle.
        let parent_of = |i: usize| joints[i - 1].parent;
        let mut depth = vec![0usize; links.len()];
        for (i, d) in depth.iter_mut().enumerate().skip(1) {
            let mut at = i;
            while at != 0 {
                at = parent_of(at);
                *d += 1;
                if *d > links.len() {
                    return Err(err(format!(
                        "joint `{}`: the parent chain of link `{}` does not reach the root (a cycle)",
                        joints[i - 1].name,
                        links[i].name
                    )));
                }
            }
        }
        // Breadth-first order: by depth, siblings in their given order.
        let mut order: Vec<usize> = (0..links.len()).collect();
        order.sort_by_key(|&i| (depth[i], i));
        let mut new_index = vec![0usize; links.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        let mut old_links: Vec<Option<Link>> = links.into_iter().map(Some).collect();
        let mut old_joints: Vec<Option<Joint>> = joints.into_iter().map(Some).collect();
        let mut sorted_links = Vec::with_capacity(old_links.len());
        let mut sorted_joints = Vec::with_capacity(old_joints.len());
        for &old in &order {
            if let Some(link) = old_links[old].take() {
                sorted_links.push(link);
            }
            if old > 0
                && let Some(mut joint) = old_joints[old - 1].take()
            {
                joint.parent = new_index[joint.parent];
                sorted_joints.push(joint);
            }
        }
        Ok(Self {
            name: name.to_owned(),
            base,
            links: sorted_links,
            joints: sorted_joints,
            warnings: Vec::new(),
        })
    }

    /// Number of moving joints.
    pub fn num_joints(&self) -> usize {
        self.joints.len()
    }

    /// Degrees of freedom: the joints, plus 6 for a floating base.
    pub fn num_dofs(&self) -> usize {
        self.joints.len()
            + match self.base {
                BaseKind::Fixed => 0,
                BaseKind::Floating => 6,
            }
    }

    /// Parent link of link `i` (`None` for the root).
    pub fn parent(&self, i: usize) -> Option<usize> {
        (i > 0).then(|| self.joints[i - 1].parent)
    }

    /// Depth of every link (the root is 0).
    pub fn depths(&self) -> Vec<usize> {
        let mut depth = vec![0usize; self.links.len()];
        for i in 1..self.links.len() {
            depth[i] = depth[self.joints[i - 1].parent] + 1;
        }
        depth
    }

    /// `ancestors[i][k]` is true when joint `k` lies on the path from the root to link `i`
    /// (so it moves link `i`).
    pub fn joint_moves_link(&self) -> Vec<Vec<bool>> {
        let n = self.links.len();
        let mut moves = vec![vec![false; self.joints.len()]; n];
        for i in 1..n {
            let parent = self.joints[i - 1].parent;
            let mut row = moves[parent].clone();
            row[i - 1] = true;
            moves[i] = row;
        }
        moves
    }

    /// Index of the link called `name`.
    pub fn link_index(&self, name: &str) -> Option<usize> {
        self.links.iter().position(|l| l.name == name)
    }

    /// Index of the joint called `name`.
    pub fn joint_index(&self, name: &str) -> Option<usize> {
        self.joints.iter().position(|j| j.name == name)
    }

    /// Total mass (kg).
    pub fn total_mass(&self) -> f64 {
        self.links.iter().map(|l| l.mass).sum()
    }

    /// The contact points of every collision shape: a sphere's centre, a capsule's two cap
    /// centres (one when its straight part is zero), a box's eight corners.
    pub fn contact_points(&self) -> Vec<ContactPoint> {
        self.links
            .iter()
            .enumerate()
            .flat_map(|(link, l)| {
                l.collisions.iter().flat_map(move |c| {
                    c.points()
                        .into_iter()
                        .map(move |(position, radius)| ContactPoint {
                            link,
                            position,
                            radius,
                        })
                })
            })
            .collect()
    }
}

impl Shape {
    /// The shape's contact spheres `(centre, radius)` in its own frame.
    fn points(&self) -> Vec<(Vec3, f64)> {
        match *self {
            Shape::Sphere { radius } => vec![([0.0; 3], radius)],
            Shape::Capsule { radius, length } if length <= 0.0 => vec![([0.0; 3], radius)],
            Shape::Capsule { radius, length } => vec![
                ([0.0, 0.0, 0.5 * length], radius),
                ([0.0, 0.0, -0.5 * length], radius),
            ],
            Shape::Box { size } => (0..8)
                .map(|corner| {
                    let sign = |bit: usize| if corner >> bit & 1 == 1 { 0.5 } else { -0.5 };
                    (
                        [sign(0) * size[0], sign(1) * size[1], sign(2) * size[2]],
                        0.0,
                    )
                })
                .collect(),
        }
    }

    /// Whether the ball of `radius` about `p` (in the shape's frame) lies inside the shape.
    fn encloses(&self, p: Vec3, radius: f64) -> bool {
        const TOL: f64 = 1e-9;
        match *self {
            Shape::Sphere { radius: r } => norm(p) + radius <= r + TOL,
            Shape::Capsule { radius: r, length } => {
                let z = p[2].clamp(-0.5 * length.max(0.0), 0.5 * length.max(0.0));
                norm([p[0], p[1], p[2] - z]) + radius <= r + TOL
            }
            Shape::Box { size } => (0..3).all(|i| p[i].abs() + radius <= 0.5 * size[i] + TOL),
        }
    }
}

impl Collision {
    /// The shape's contact spheres `(centre, radius)` in the link frame.
    pub fn points(&self) -> Vec<(Vec3, f64)> {
        self.shape
            .points()
            .into_iter()
            .map(|(p, r)| (self.origin.apply(p), r))
            .collect()
    }

    /// Whether every contact sphere of `other` (both on the same link) lies inside this shape.
    fn encloses(&self, other: &Collision) -> bool {
        let inverse = transpose(&self.origin.rotation);
        other.points().into_iter().all(|(p, r)| {
            let local = mat_vec(&inverse, sub(p, self.origin.xyz));
            self.shape.encloses(local, r)
        })
    }
}

/// What stands for a cylinder of `radius` and overall `length` in the contact model, which
/// has no flat-ended shape: a capsule of the same radius and overall length (the caps take
/// `radius` off each end), or a sphere of its radius when it is shorter than its diameter.
pub(crate) fn cylinder_shape(radius: f64, length: f64) -> Shape {
    let straight = length - 2.0 * radius;
    if straight > 0.0 {
        Shape::Capsule {
            radius,
            length: straight,
        }
    } else {
        Shape::Sphere { radius }
    }
}

/// The words for [`cylinder_shape`]'s result in a warning.
pub(crate) fn cylinder_words(shape: &Shape) -> String {
    match shape {
        Shape::Capsule { length, .. } => {
            format!("a capsule of the same radius and overall length (straight part {length:.4})")
        }
        Shape::Sphere { .. } => {
            "a sphere of the same radius (the cylinder is shorter than its diameter)".to_owned()
        }
        other => format!("{other:?}"),
    }
}

/// Drops every collision shape that lies wholly inside another shape of the same link: such a
/// shape never touches the ground before the one around it does, so its contact points only
/// cost time (a published description's 1 mm IMU box inside the trunk, a fixed child's
/// shape inside its parent's). Of two shapes that enclose each other the first is kept.
/// Returns one line per dropped shape, naming the link and the shape.
pub(crate) fn drop_enclosed_collisions(links: &mut [Link]) -> Vec<String> {
    let mut notes = Vec::new();
    for link in links.iter_mut() {
        let shapes = &link.collisions;
        let keep: Vec<bool> = (0..shapes.len())
            .map(|i| {
                !(0..shapes.len()).any(|j| {
                    j != i
                        && shapes[j].encloses(&shapes[i])
                        && (j < i || !shapes[i].encloses(&shapes[j]))
                })
            })
            .collect();
        for (i, kept) in keep.iter().enumerate() {
            if !kept {
                notes.push(format!(
                    "link `{}`: collision {:?} at [{:.4}, {:.4}, {:.4}] dropped: it lies inside \
                     another collision shape of the link, which touches the ground first",
                    link.name,
                    shapes[i].shape,
                    shapes[i].origin.xyz[0],
                    shapes[i].origin.xyz[1],
                    shapes[i].origin.xyz[2],
                ));
            }
        }
        let mut flags = keep.into_iter();
        link.collisions.retain(|_| flags.next().unwrap_or(true));
    }
    notes
}

fn check_link(link: &Link) -> std::result::Result<(), String> {
    if !(link.mass.is_finite() && link.mass >= 0.0) {
        return Err(format!("mass must be finite and >= 0, got {}", link.mass));
    }
    if link
        .com
        .iter()
        .chain(link.inertia.iter().flatten())
        .any(|v| !v.is_finite())
    {
        return Err("centre of mass and inertia must be finite".into());
    }
    let i = &link.inertia;
    let sym = (i[0][1] - i[1][0]).abs() + (i[0][2] - i[2][0]).abs() + (i[1][2] - i[2][1]).abs();
    if sym > 1e-9 * (i[0][0].abs() + i[1][1].abs() + i[2][2].abs() + 1e-12) {
        return Err("inertia must be symmetric".into());
    }
    if link.mass > 0.0 {
        // Positive definite by the leading principal minors.
        let m1 = i[0][0];
        let m2 = i[0][0] * i[1][1] - i[0][1] * i[1][0];
        let m3 = det(i);
        if m1 <= 0.0 || m2 <= 0.0 || m3 <= 0.0 {
            return Err(format!(
                "inertia must be positive definite for a link with mass, got {:?}",
                link.inertia
            ));
        }
    }
    for c in &link.collisions {
        let ok = match c.shape {
            Shape::Sphere { radius } => radius.is_finite() && radius >= 0.0,
            Shape::Capsule { radius, length } => {
                radius.is_finite() && radius >= 0.0 && length.is_finite() && length >= 0.0
            }
            Shape::Box { size } => size.iter().all(|s| s.is_finite() && *s >= 0.0),
        };
        if !ok {
            return Err(format!(
                "collision shape {:?} has a negative or non-finite size",
                c.shape
            ));
        }
    }
    Ok(())
}

fn check_joint(joint: &Joint, num_links: usize) -> std::result::Result<(), String> {
    if joint.parent >= num_links {
        return Err(format!(
            "parent link index {} is out of range",
            joint.parent
        ));
    }
    let norm = joint.axis.iter().map(|a| a * a).sum::<f64>().sqrt();
    if !(norm.is_finite() && (norm - 1.0).abs() < 1e-6) {
        return Err(format!("axis must be a unit vector, got {:?}", joint.axis));
    }
    if let Some((lo, hi)) = joint.limits
        && !(lo.is_finite() && hi.is_finite() && lo <= hi)
    {
        return Err(format!(
            "limits must be finite with lower <= upper, got [{lo}, {hi}]"
        ));
    }
    for (field, v) in [
        ("effort limit", joint.effort_limit),
        ("velocity limit", joint.velocity_limit),
        ("damping", joint.damping),
        ("armature", joint.armature),
    ] {
        if v.is_nan() || v < 0.0 {
            return Err(format!("{field} must be >= 0, got {v}"));
        }
    }
    if !(joint.damping.is_finite() && joint.armature.is_finite()) {
        return Err("damping and armature must be finite".into());
    }
    Ok(())
}

/// `a + b`.
pub(crate) fn add(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// `m v`.
pub(crate) fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(crate) fn norm(v: Vec3) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

pub(crate) fn mat_vec(m: &Mat3, v: Vec3) -> Vec3 {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

/// `a b`.
/// The rotation by `angle` about the unit `axis` (Rodrigues' formula).
pub(crate) fn axis_angle(axis: Vec3, angle: f64) -> Mat3 {
    let (s, c) = angle.sin_cos();
    let [x, y, z] = axis;
    let t = 1.0 - c;
    [
        [c + x * x * t, x * y * t - z * s, x * z * t + y * s],
        [y * x * t + z * s, c + y * y * t, y * z * t - x * s],
        [z * x * t - y * s, z * y * t + x * s, c + z * z * t],
    ]
}

pub(crate) fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut out = [[0.0; 3]; 3];
    for (r, row) in out.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[r][k] * b[k][c]).sum();
        }
    }
    out
}

/// `m^T`.
pub(crate) fn transpose(m: &Mat3) -> Mat3 {
    let mut out = [[0.0; 3]; 3];
    for (r, row) in out.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = m[c][r];
        }
    }
    out
}

/// The determinant of `m`.
pub(crate) fn det(m: &Mat3) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str) -> Link {
        Link {
            name: name.into(),
            mass: 1.0,
            com: [0.0; 3],
            inertia: [[0.1, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]],
            collisions: vec![],
        }
    }

    fn joint(name: &str, parent: usize) -> Joint {
        Joint {
            name: name.into(),
            kind: JointKind::Revolute,
            parent,
            origin: Pose::default(),
            axis: [0.0, 1.0, 0.0],
            limits: None,
            effort_limit: f64::INFINITY,
            velocity_limit: f64::INFINITY,
            damping: 0.0,
            armature: 0.0,
        }
    }

    #[test]
    fn links_are_sorted_breadth_first() {
        // root -> a -> b, root -> c: given depth-first, stored breadth-first.
        let links = vec![link("root"), link("a"), link("b"), link("c")];
        let joints = vec![joint("ja", 0), joint("jb", 1), joint("jc", 0)];
        let m = Model::new("t", BaseKind::Fixed, links, joints).expect("valid model");
        let names: Vec<_> = m.links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["root", "a", "c", "b"]);
        let joints: Vec<_> = m
            .joints
            .iter()
            .map(|j| (j.name.as_str(), j.parent))
            .collect();
        assert_eq!(joints, [("ja", 0), ("jc", 0), ("jb", 1)]);
        assert_eq!(m.depths(), [0, 1, 1, 2]);
        let moves = m.joint_moves_link();
        assert_eq!(moves[3], [true, false, true]);
        assert_eq!(moves[2], [false, true, false]);
    }

    #[test]
    fn malformed_models_are_refused_with_the_culprit_named() {
        let cycle = Model::new(
            "t",
            BaseKind::Fixed,
            vec![link("root"), link("a"), link("b")],
            vec![joint("ja", 2), joint("jb", 1)],
        );
        let msg = cycle.expect_err("a cycle").to_string();
        assert!(msg.contains("cycle"), "{msg}");

        let mut bad = joint("ja", 0);
        bad.axis = [0.0, 0.0, 0.0];
        let msg = Model::new(
            "t",
            BaseKind::Fixed,
            vec![link("root"), link("a")],
            vec![bad],
        )
        .expect_err("zero axis")
        .to_string();
        assert!(msg.contains("joint `ja`") && msg.contains("axis"), "{msg}");

        let mut heavy = link("a");
        heavy.inertia[2][2] = -1.0;
        let msg = Model::new(
            "t",
            BaseKind::Fixed,
            vec![link("root"), heavy],
            vec![joint("ja", 0)],
        )
        .expect_err("negative inertia")
        .to_string();
        assert!(
            msg.contains("link `a`") && msg.contains("positive definite"),
            "{msg}"
        );
    }

    #[test]
    fn rpy_matches_the_urdf_convention() {
        // Yaw of 90 degrees maps x to y.
        let p = Pose::from_xyz_rpy([0.0; 3], [0.0, 0.0, std::f64::consts::FRAC_PI_2]);
        let v = mat_vec(&p.rotation, [1.0, 0.0, 0.0]);
        assert!((v[0]).abs() < 1e-12 && (v[1] - 1.0).abs() < 1e-12);
        // Roll then pitch: Ry(pi/2) Rx(pi/2) maps y to z... then x: check orthonormality.
        let p = Pose::from_xyz_rpy([0.0; 3], [0.3, -0.7, 1.1]);
        let rrt = mat_mul(&p.rotation, &transpose(&p.rotation));
        for (r, row) in rrt.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                assert!((v - if r == c { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn shapes_give_their_contact_points() {
        let mut l = link("root");
        l.collisions = vec![
            Collision {
                shape: Shape::Capsule {
                    radius: 0.02,
                    length: 0.2,
                },
                origin: Pose {
                    xyz: [0.0, 0.0, -0.1],
                    rotation: IDENTITY,
                },
            },
            Collision {
                shape: Shape::Box {
                    size: [0.2, 0.1, 0.05],
                },
                origin: Pose::default(),
            },
        ];
        let m = Model::new("t", BaseKind::Floating, vec![l], vec![]).expect("valid");
        let pts = m.contact_points();
        assert_eq!(pts.len(), 10);
        assert_eq!(pts[0].position, [0.0, 0.0, 0.0]);
        assert_eq!(pts[1].position, [0.0, 0.0, -0.2]);
        assert_eq!(pts[2].position, [-0.1, -0.05, -0.025]);
        assert_eq!(pts[9].position, [0.1, 0.05, 0.025]);
        assert_eq!(m.num_dofs(), 6);
    }

    #[test]
    fn shapes_inside_another_shape_of_their_link_are_dropped() {
        let at = |xyz: Vec3, shape: Shape| Collision {
            shape,
            origin: Pose {
                xyz,
                rotation: IDENTITY,
            },
        };
        let trunk = Shape::Box {
            size: [0.4, 0.2, 0.1],
        };
        let mut l = link("root");
        l.collisions = vec![
            // A 1 mm IMU box inside the trunk.
            at(
                [0.01, 0.0, 0.0],
                Shape::Box {
                    size: [0.001, 0.001, 0.001],
                },
            ),
            at([0.0; 3], trunk),
            // A sphere whose ball pokes out of the trunk by 5 mm: kept.
            at([0.19, 0.0, 0.0], Shape::Sphere { radius: 0.015 }),
            // A sphere just inside: dropped.
            at([0.18, 0.0, 0.0], Shape::Sphere { radius: 0.02 }),
            // The trunk again: of two that enclose each other the first stays.
            at([0.0; 3], trunk),
        ];
        let mut other = link("other");
        // A shape of another link is never compared with the root's.
        other.collisions = vec![at([0.0; 3], Shape::Sphere { radius: 0.001 })];
        let mut links = vec![l, other];
        let notes = drop_enclosed_collisions(&mut links);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes.iter().all(|n| n.contains("link `root`")), "{notes:?}");
        let kept: Vec<Vec3> = links[0].collisions.iter().map(|c| c.origin.xyz).collect();
        assert_eq!(kept, vec![[0.0; 3], [0.19, 0.0, 0.0]]);
        assert_eq!(links[0].collisions[0].shape, trunk);
        assert_eq!(links[1].collisions.len(), 1);
        // A rotated box: the ball must fit along the rotated axes.
        let turned = Collision {
            shape: Shape::Box {
                size: [0.4, 0.02, 0.02],
            },
            origin: Pose::from_xyz_rpy([0.0; 3], [0.0, 0.0, std::f64::consts::FRAC_PI_2]),
        };
        assert!(turned.encloses(&at([0.0, 0.15, 0.0], Shape::Sphere { radius: 0.005 })));
        assert!(!turned.encloses(&at([0.15, 0.0, 0.0], Shape::Sphere { radius: 0.005 })));
        // A capsule of zero length is one contact sphere.
        assert_eq!(
            Shape::Capsule {
                radius: 0.1,
                length: 0.0
            }
            .points()
            .len(),
            1
        );
    }
}

/// Principal moments `d` and axes `q` (columns) of a symmetric 3x3 inertia: `i = q diag(d)
/// q^T`, by Jacobi rotations.
pub(crate) fn principal_axes(i: &Mat3) -> (Vec3, Mat3) {
    let mut a = *i;
    let mut q = IDENTITY;
    for _ in 0..50 {
        // The largest off-diagonal entry.
        let (mut p, mut r, mut big) = (0, 1, a[0][1].abs());
        for (pp, rr) in [(0, 2), (1, 2)] {
            if a[pp][rr].abs() > big {
                (p, r, big) = (pp, rr, a[pp][rr].abs());
            }
        }
        let scale = a[0][0].abs() + a[1][1].abs() + a[2][2].abs();
        if big <= 1e-15 * scale.max(1e-300) {
            break;
        }
        // Rotation in the (p, r) plane that zeroes a[p][r].
        let theta = 0.5 * (2.0 * a[p][r]).atan2(a[r][r] - a[p][p]);
        let (s, c) = theta.sin_cos();
        let mut g = IDENTITY;
        g[p][p] = c;
        g[r][r] = c;
        g[p][r] = s;
        g[r][p] = -s;
        a = mat_mul(&transpose(&g), &mat_mul(&a, &g));
        q = mat_mul(&q, &g);
    }
    ([a[0][0], a[1][1], a[2][2]], q)
}

#[cfg(test)]
mod principal_tests {
    use super::*;

    #[test]
    fn principal_axes_rebuild_the_inertia() {
        let i = [[0.3, 0.05, -0.02], [0.05, 0.2, 0.01], [-0.02, 0.01, 0.1]];
        let (d, q) = principal_axes(&i);
        let dq = [[d[0], 0.0, 0.0], [0.0, d[1], 0.0], [0.0, 0.0, d[2]]];
        let back = mat_mul(&q, &mat_mul(&dq, &transpose(&q)));
        for r in 0..3 {
            for c in 0..3 {
                assert!((back[r][c] - i[r][c]).abs() < 1e-12, "{back:?}");
            }
        }
        let qtq = mat_mul(&transpose(&q), &q);
        assert!((qtq[0][0] - 1.0).abs() < 1e-12 && qtq[0][1].abs() < 1e-12);
    }
}
