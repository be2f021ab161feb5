//! A [`Model`] written back as URDF: the normalised description of a robot as the simulator
//! sees it (fixed links merged, meshes reduced to primitives, inertias repaired), written
//! with `urdf-rs` so that [`crate::parse_urdf`] reads it back to the same model.

use crate::model::{JointKind, Mat3, Model, Pose, Shape, Vec3};
use crate::{Error, Result};

/// URDF roll-pitch-yaw angles of a rotation matrix (`R = Rz(yaw) Ry(pitch) Rx(roll)`, as
/// [`Pose::from_xyz_rpy`] builds it).
pub(crate) fn rpy(r: &Mat3) -> Vec3 {
    let pitch = (-r[2][0]).clamp(-1.0, 1.0).asin();
    if r[2][0].abs() < 1.0 - 1e-12 {
        [r[2][1].atan2(r[2][2]), pitch, r[1][0].atan2(r[0][0])]
    } else {
        // Gimbal lock: roll and yaw turn about the same axis; put it all in yaw.
        [0.0, pitch, (-r[0][1]).atan2(r[1][1])]
    }
}

fn pose(p: &Pose) -> urdf_rs::Pose {
    urdf_rs::Pose {
        xyz: urdf_rs::Vec3(p.xyz),
        rpy: urdf_rs::Vec3(rpy(&p.rotation)),
    }
}

/// 0 stands for "no limit" in URDF's `effort` and `velocity`.
fn unset_if_infinite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// The URDF text of `model`. Armature has no URDF element and is not written
/// ([`crate::UrdfOptions::armature`] sets it on loading); the base kind is the loader's
/// choice too.
///
/// # Errors
/// [`Error::Model`] when `urdf-rs` cannot write the description.
pub fn to_urdf(model: &Model) -> Result<String> {
    let links = model
        .links
        .iter()
        .map(|link| {
            let i = &link.inertia;
            urdf_rs::Link {
                name: link.name.clone(),
                inertial: urdf_rs::Inertial {
                    origin: urdf_rs::Pose {
                        xyz: urdf_rs::Vec3(link.com),
                        rpy: urdf_rs::Vec3([0.0; 3]),
                    },
                    mass: urdf_rs::Mass { value: link.mass },
                    inertia: urdf_rs::Inertia {
                        ixx: i[0][0],
                        ixy: i[0][1],
                        ixz: i[0][2],
                        iyy: i[1][1],
                        iyz: i[1][2],
                        izz: i[2][2],
                    },
                },
                visual: Vec::new(),
                collision: link
                    .collisions
                    .iter()
                    .map(|c| urdf_rs::Collision {
                        name: None,
                        origin: pose(&c.origin),
                        geometry: match c.shape {
                            Shape::Sphere { radius } => urdf_rs::Geometry::Sphere { radius },
                            Shape::Box { size } => urdf_rs::Geometry::Box {
                                size: urdf_rs::Vec3(size),
                            },
                            Shape::Capsule { radius, length } => {
                                urdf_rs::Geometry::Capsule { radius, length }
                            }
                        },
                    })
                    .collect(),
            }
        })
        .collect();
    let joints = model
        .joints
        .iter()
        .enumerate()
        .map(|(k, joint)| {
            let joint_type = match (joint.kind, joint.limits) {
                (JointKind::Revolute, None) => urdf_rs::JointType::Continuous,
                (JointKind::Revolute, Some(_)) => urdf_rs::JointType::Revolute,
                (JointKind::Prismatic, _) => urdf_rs::JointType::Prismatic,
            };
            let (lower, upper) = joint.limits.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
            urdf_rs::Joint {
                name: joint.name.clone(),
                joint_type,
                origin: pose(&joint.origin),
                parent: urdf_rs::LinkName {
                    link: model.links[joint.parent].name.clone(),
                },
                child: urdf_rs::LinkName {
                    link: model.links[k + 1].name.clone(),
                },
                axis: urdf_rs::Axis {
                    xyz: urdf_rs::Vec3(joint.axis),
                },
                limit: urdf_rs::JointLimit {
                    lower,
                    upper,
                    effort: unset_if_infinite(joint.effort_limit),
                    velocity: unset_if_infinite(joint.velocity_limit),
                    ..Default::default()
                },
                calibration: None,
                dynamics: (joint.damping > 0.0).then_some(urdf_rs::Dynamics {
                    damping: joint.damping,
                    friction: 0.0,
                }),
                mimic: None,
                safety_controller: None,
            }
        })
        .collect();
    let robot = urdf_rs::Robot {
        name: model.name.clone(),
        version: None,
        links,
        joints,
        materials: Vec::new(),
    };
    urdf_rs::write_to_string(&robot).map_err(|e| Error::Model {
        model: model.name.clone(),
        what: format!("cannot write it as URDF: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BaseKind, UrdfOptions, parse_urdf, robots};

    #[test]
    fn rpy_inverts_from_xyz_rpy() {
        for angles in [
            [0.1, -0.4, 2.5],
            [-3.0, 1.2, -0.3],
            [0.0, 0.0, 0.0],
            [0.3, std::f64::consts::FRAC_PI_2, 0.2],
        ] {
            let r = Pose::from_xyz_rpy([0.0; 3], angles).rotation;
            let back = Pose::from_xyz_rpy([0.0; 3], rpy(&r)).rotation;
            for (a, b) in r.iter().flatten().zip(back.iter().flatten()) {
                assert!((a - b).abs() < 1e-9, "{angles:?}: {r:?} vs {back:?}");
            }
        }
    }

    /// The shipped quadruped written out and read back is the same model (to rounding).
    #[test]
    fn a_written_model_reads_back_the_same() {
        let model = robots::quadruped().expect("quadruped");
        let text = to_urdf(&model).expect("writes");
        let options = UrdfOptions {
            base: BaseKind::Floating,
            ..UrdfOptions::default()
        };
        let back = parse_urdf(&text, "<written>", &options).expect("reads back");
        assert!(back.warnings.is_empty(), "{:?}", back.warnings);
        assert_eq!(back.links.len(), model.links.len());
        assert_eq!(back.contact_points().len(), model.contact_points().len());
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs());
        for (a, b) in model.links.iter().zip(&back.links) {
            assert_eq!(a.name, b.name);
            assert!(close(a.mass, b.mass), "{}", a.name);
            for (x, y) in a.inertia.iter().flatten().zip(b.inertia.iter().flatten()) {
                assert!(
                    close(*x, *y),
                    "{}: {:?} vs {:?}",
                    a.name,
                    a.inertia,
                    b.inertia
                );
            }
            for (x, y) in a.com.iter().zip(&b.com) {
                assert!(close(*x, *y), "{}", a.name);
            }
            assert_eq!(a.collisions.len(), b.collisions.len(), "{}", a.name);
        }
        for (a, b) in model.joints.iter().zip(&back.joints) {
            assert_eq!((&a.name, a.kind, a.parent), (&b.name, b.kind, b.parent));
            assert_eq!(a.limits, b.limits, "{}", a.name);
            assert_eq!(
                (a.effort_limit, a.velocity_limit, a.damping),
                (b.effort_limit, b.velocity_limit, b.damping),
                "{}",
                a.name
            );
            for (x, y) in a.origin.xyz.iter().zip(&b.origin.xyz) {
                assert!(close(*x, *y), "{}", a.name);
            }
        }
    }
}
