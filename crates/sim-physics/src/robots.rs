//! The robots that ship with sim-physics.
//!
//! - [`quadruped`]: `cross_quad`, a 12-joint quadruped of the size and mass of a Unitree
//!   A1 / Go1 (12.52 kg; thigh and calf 0.21 m), designed for this project; the numbers and
//!   their reasons are in the comment at the top of `robots/quadruped.urdf`.
//! - [`free_box`]: a 0.4 x 0.3 x 0.2 m, 2 kg box on a floating base, for drop tests.

use super::{Model, UrdfOptions, parse_urdf};
use crate::{Error, Result};

/// The text of `robots/quadruped.urdf`.
pub const QUADRUPED_URDF: &str = include_str!("../robots/quadruped.urdf");

/// The text of `robots/box.urdf`.
pub const BOX_URDF: &str = include_str!("../robots/box.urdf");

/// The quadruped on a floating base, no armature.
///
/// 13 links (`base`, then every leg's hip, thigh and calf, legs in the order FL, FR, RL, RR;
/// each foot sphere is lumped into its calf) and 12 revolute joints in breadth-first order:
/// `FL_hip_joint, FR_hip_joint, RL_hip_joint, RR_hip_joint, FL_thigh_joint, ...,
/// RR_calf_joint`.
///
/// # Errors
/// None in practice: the file ships with the crate and a test reads it.
pub fn quadruped() -> Result<Model> {
    parse_urdf(
        QUADRUPED_URDF,
        "robots/quadruped.urdf",
        &UrdfOptions::default(),
    )
}

/// The quadruped's standing joint positions (rad) by joint name, in the model's joint
/// order: hips 0, thighs 0.8 (front) and 1.0 (rear), knees -1.5.
pub const QUADRUPED_STANDING_POSE: [(&str, f64); 12] = [
    ("FL_hip_joint", 0.0),
    ("FR_hip_joint", 0.0),
    ("RL_hip_joint", 0.0),
    ("RR_hip_joint", 0.0),
    ("FL_thigh_joint", 0.8),
    ("FR_thigh_joint", 0.8),
    ("RL_thigh_joint", 1.0),
    ("RR_thigh_joint", 1.0),
    ("FL_calf_joint", -1.5),
    ("FR_calf_joint", -1.5),
    ("RL_calf_joint", -1.5),
    ("RR_calf_joint", -1.5),
];

/// [`QUADRUPED_STANDING_POSE`] in `model`'s joint order.
///
/// # Errors
/// [`Error::Model`] naming the first joint of `model` that the pose does not list.
pub fn quadruped_standing_joint_pos(model: &Model) -> Result<Vec<f64>> {
    model
        .joints
        .iter()
        .map(|j| {
            QUADRUPED_STANDING_POSE
                .iter()
                .find(|(name, _)| *name == j.name)
                .map(|&(_, q)| q)
                .ok_or_else(|| Error::Model {
                    model: model.name.clone(),
                    what: format!("joint `{}` has no standing position", j.name),
                })
        })
        .collect()
}

/// Height (m) of the base frame, level, at which the front feet just touch the ground in
/// [`QUADRUPED_STANDING_POSE`]: `0.21 (cos 0.8 + cos 0.7) + 0.02` (thigh and calf of 0.21 m,
/// foot radius 0.02 m). The rear feet, with the thigh at 1.0, are then 9 mm above it.
pub const QUADRUPED_STANDING_HEIGHT: f64 = 0.32693;

/// The 0.4 x 0.3 x 0.2 m, 2 kg box on a floating base: one link, no joints.
///
/// # Errors
/// None in practice: the file ships with the crate and a test reads it.
pub fn free_box() -> Result<Model> {
    parse_urdf(BOX_URDF, "robots/box.urdf", &UrdfOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BaseKind, JointKind, Pose, Shape, Vec3};

    use crate::model::axis_angle as rotation;

    /// World pose of every link for a level base at `base` and revolute joint angles `q`.
    fn forward_kinematics(model: &Model, base: Vec3, q: &[f64]) -> Vec<Pose> {
        let mut poses = vec![Pose {
            xyz: base,
            rotation: crate::IDENTITY,
        }];
        for (k, joint) in model.joints.iter().enumerate() {
            assert_eq!(joint.kind, JointKind::Revolute);
            let motion = Pose {
                xyz: [0.0; 3],
                rotation: rotation(joint.axis, q[k]),
            };
            let pose = poses[joint.parent].compose(&joint.origin).compose(&motion);
            poses.push(pose);
        }
        poses
    }

    fn standing_angles(model: &Model) -> Vec<f64> {
        quadruped_standing_joint_pos(model).expect("every joint has a standing angle")
    }

    #[test]
    fn the_quadruped_loads_breadth_first() {
        let m = quadruped().expect("the shipped quadruped loads");
        assert_eq!(m.name, "cross_quad");
        assert_eq!(m.base, BaseKind::Floating);
        assert_eq!((m.links.len(), m.joints.len(), m.num_dofs()), (13, 12, 18));
        let legs = ["FL", "FR", "RL", "RR"];
        let mut want_links = vec!["base".to_owned()];
        let mut want_joints = Vec::new();
        for part in ["hip", "thigh", "calf"] {
            for leg in legs {
                want_links.push(format!("{leg}_{part}"));
                want_joints.push(format!("{leg}_{part}_joint"));
            }
        }
        let links: Vec<_> = m.links.iter().map(|l| l.name.clone()).collect();
        let joints: Vec<_> = m.joints.iter().map(|j| j.name.clone()).collect();
        assert_eq!(links, want_links);
        assert_eq!(joints, want_joints);
        let pose_names: Vec<_> = QUADRUPED_STANDING_POSE
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(pose_names, want_joints, "the pose is in the model's order");
        // Hips hang from the base, thighs from hips, calves from thighs.
        for (k, joint) in m.joints.iter().enumerate() {
            let want_parent = if k < 4 { 0 } else { k - 3 };
            assert_eq!(joint.parent, want_parent, "{}", joint.name);
        }

        let total = m.total_mass();
        assert!((10.0..15.0).contains(&total), "total mass {total}");
        assert!((total - 12.52).abs() < 1e-9, "total mass {total}");
        // The foot (0.05 kg) is lumped into the calf, with its sphere 0.21 m below the knee.
        let calf = &m.links[m.link_index("FL_calf").expect("FL_calf")];
        assert!((calf.mass - 0.23).abs() < 1e-12);
        let foot = calf
            .collisions
            .iter()
            .find(|c| c.shape == Shape::Sphere { radius: 0.02 })
            .expect("a foot sphere on the calf");
        assert_eq!(foot.origin.xyz, [0.0, 0.0, -0.21]);
    }

    #[test]
    fn every_joint_is_limited_and_the_standing_pose_is_inside() {
        let m = quadruped().expect("the shipped quadruped loads");
        let q = standing_angles(&m);
        for (joint, &angle) in m.joints.iter().zip(&q) {
            let (lo, hi) = joint
                .limits
                .unwrap_or_else(|| panic!("{} has no limits", joint.name));
            assert!(lo < angle && angle < hi, "{} at {angle}", joint.name);
            assert!(joint.effort_limit.is_finite() && joint.effort_limit > 0.0);
            assert!(joint.velocity_limit.is_finite() && joint.velocity_limit > 0.0);
            assert!(joint.damping > 0.0 && joint.damping < 0.1);
        }
        let effort = |name: &str| m.joints[m.joint_index(name).expect(name)].effort_limit;
        assert_eq!(
            (
                effort("RR_hip_joint"),
                effort("FL_thigh_joint"),
                effort("RL_calf_joint")
            ),
            (25.0, 25.0, 35.0)
        );
    }

    #[test]
    fn the_feet_touch_the_ground_at_the_standing_height() {
        let m = quadruped().expect("the shipped quadruped loads");
        let q = standing_angles(&m);
        let poses = forward_kinematics(&m, [0.0, 0.0, QUADRUPED_STANDING_HEIGHT], &q);
        let lowest = m
            .contact_points()
            .iter()
            .map(|p| poses[p.link].apply(p.position)[2] - p.radius)
            .fold(f64::INFINITY, f64::min);
        assert!(lowest.abs() < 1e-3, "lowest contact point at {lowest} m");

        for leg in ["FL", "FR", "RL", "RR"] {
            let hip = poses[m.link_index(&format!("{leg}_hip")).expect("hip")].xyz;
            let calf = poses[m.link_index(&format!("{leg}_calf")).expect("calf")];
            let foot = calf.apply([0.0, 0.0, -0.21]);
            // Roughly below the hip: within 8 cm forward or back (the rear thigh leans more),
            // 8 cm outboard (the thigh's offset), on the same side.
            assert!(
                (foot[0] - hip[0]).abs() < 0.08,
                "{leg}: foot {foot:?} hip {hip:?}"
            );
            assert!(
                (foot[1] - hip[1]).abs() < 0.085,
                "{leg}: foot {foot:?} hip {hip:?}"
            );
            assert!(foot[1] * hip[1] > 0.0, "{leg}: foot {foot:?} hip {hip:?}");
            // Resting on the ground: front feet touching, rear ones within 1 cm above.
            let clearance = foot[2] - 0.02;
            assert!((-1e-3..0.01).contains(&clearance), "{leg}: {clearance}");
            if leg.starts_with('F') {
                assert!(clearance.abs() < 1e-3, "{leg}: {clearance}");
            }
        }
        // The base (0.11 m tall) clears the ground by a wide margin.
        let base_bottom = m
            .contact_points()
            .iter()
            .filter(|p| p.link == 0)
            .map(|p| poses[0].apply(p.position)[2])
            .fold(f64::INFINITY, f64::min);
        assert!(base_bottom > 0.25, "base bottom at {base_bottom} m");
    }

    #[test]
    fn the_free_box_loads() {
        let m = free_box().expect("the shipped box loads");
        assert_eq!((m.name.as_str(), m.base), ("box", BaseKind::Floating));
        assert_eq!((m.links.len(), m.joints.len(), m.num_dofs()), (1, 0, 6));
        let b = &m.links[0];
        assert_eq!(b.mass, 2.0);
        let want = [2.0 / 12.0 * 0.13, 2.0 / 12.0 * 0.2, 2.0 / 12.0 * 0.25];
        for (k, want) in want.iter().enumerate() {
            assert!((b.inertia[k][k] - want).abs() < 1e-12, "{:?}", b.inertia);
        }
        assert_eq!(
            b.collisions[0].shape,
            Shape::Box {
                size: [0.4, 0.3, 0.2]
            }
        );
        assert_eq!(m.contact_points().len(), 8);
    }
}
