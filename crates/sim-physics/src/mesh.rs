//! Mesh collision geometry of published robot descriptions, reduced to the simulator's
//! contact shapes.
//!
//! - Where the file is: `package://NAME/rest` through `ROS_PACKAGE_PATH` (each entry `DIR`
//!   as `DIR/NAME/rest`, or `DIR/rest` when `DIR` itself is named `NAME`) and then the
//!   description's ancestor folders (one named `NAME`, or one holding a folder `NAME`), as a
//!   description unpacked from its package (`example-robot-data`, a ROS workspace) lays them
//!   out; `file://PATH` and plain paths, relative ones against the description's folder.
//! - What is read: the vertices of an STL (binary or ASCII, `stl_io`) or OBJ (`tobj`) file,
//!   scaled by the element's `scale`. COLLADA (`.dae`) is not read.
//! - What it becomes: the bounding box of the vertices in the collision frame, or a sphere
//!   when the box is nearly a cube (its sides within 25% of each other, as a foot is): the
//!   contact model pushes on points (a box's corners, a sphere's centre with its radius), so
//!   a coarse primitive through the mesh's extremes is what it can use. The caller reports
//!   the approximation as a warning.

use std::path::{Path, PathBuf};

use crate::model::{Shape, Vec3};

type Checked<T> = std::result::Result<T, String>;

/// Where `filename` (as a URDF's `<mesh filename>` gives it) is, for a description at
/// `description` (its file; `None` for text without a file). `package_path` is
/// `ROS_PACKAGE_PATH`'s value.
pub(crate) fn resolve(
    filename: &str,
    description: Option<&Path>,
    package_path: Option<&str>,
) -> Checked<PathBuf> {
    let folder = description
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    if let Some(rest) = filename.strip_prefix("package://") {
        let (name, rest) = rest.split_once('/').unwrap_or((rest, ""));
        let mut tried = Vec::new();
        let dirs = package_path
            .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
            .unwrap_or_default();
        let ancestors: Vec<PathBuf> = description
            .map(|d| {
                let d = d.canonicalize().unwrap_or_else(|_| d.to_path_buf());
                d.ancestors().skip(1).map(Path::to_path_buf).collect()
            })
            .unwrap_or_default();
        for dir in dirs.iter().chain(&ancestors) {
            let mut candidates = vec![dir.join(name).join(rest)];
            if dir.file_name().is_some_and(|n| n == name) {
                candidates.insert(0, dir.join(rest));
            }
            for candidate in candidates {
                if candidate.is_file() {
                    return Ok(candidate);
                }
                tried.push(candidate.display().to_string());
            }
        }
        return Err(format!(
            "mesh `{filename}`: package `{name}` not found through ROS_PACKAGE_PATH ({}) or the \
             description's folders; set ROS_PACKAGE_PATH to the folder that holds `{name}`",
            package_path.unwrap_or("unset")
        ));
    }
    let path = Path::new(filename.strip_prefix("file://").unwrap_or(filename));
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        folder.join(path)
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "mesh `{filename}`: no file at `{}`",
            path.display()
        ))
    }
}

/// The vertices of the mesh file at `path` (STL or OBJ by extension), scaled.
pub(crate) fn vertices(path: &Path, scale: Vec3) -> Checked<Vec<Vec3>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let shown = path.display();
    let raw: Vec<[f32; 3]> = match ext.as_str() {
        "stl" => {
            let mut file = std::fs::File::open(path)
                .map_err(|e| format!("mesh `{shown}`: cannot open: {e}"))?;
            let mesh = stl_io::read_stl(&mut file)
                .map_err(|e| format!("mesh `{shown}`: not a valid STL file: {e}"))?;
            mesh.vertices.into_iter().map(|v| v.0).collect()
        }
        "obj" => {
            let (models, _) = tobj::load_obj(path, &tobj::LoadOptions::default())
                .map_err(|e| format!("mesh `{shown}`: not a valid OBJ file: {e}"))?;
            models
                .iter()
                .flat_map(|m| m.mesh.positions.chunks_exact(3))
                .map(|p| [p[0], p[1], p[2]])
                .collect()
        }
        other => {
            return Err(format!(
                "mesh `{shown}`: `.{other}` meshes are not read (STL and OBJ are); convert it \
                 to STL, or set `ignore_mesh_collisions` to skip mesh collisions"
            ));
        }
    };
    let vertices: Vec<Vec3> = raw
        .into_iter()
        .map(|v| std::array::from_fn(|k| f64::from(v[k]) * scale[k]))
        .collect();
    if vertices.is_empty() {
        return Err(format!("mesh `{shown}` has no vertices"));
    }
    if vertices.iter().flatten().any(|v| !v.is_finite()) {
        return Err(format!("mesh `{shown}` has a non-finite vertex"));
    }
    Ok(vertices)
}

/// The contact shape standing for `vertices` and its centre in their frame (see the module
/// documentation).
pub(crate) fn fit(vertices: &[Vec3]) -> (Shape, Vec3) {
    let mut low = [f64::INFINITY; 3];
    let mut high = [f64::NEG_INFINITY; 3];
    for v in vertices {
        for k in 0..3 {
            low[k] = low[k].min(v[k]);
            high[k] = high[k].max(v[k]);
        }
    }
    let size: Vec3 = std::array::from_fn(|k| high[k] - low[k]);
    let centre: Vec3 = std::array::from_fn(|k| 0.5 * (high[k] + low[k]));
    let (small, big) = size
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(s, b), &x| (s.min(x), b.max(x)));
    if small > 0.0 && big <= 1.25 * small {
        let radius = size.iter().sum::<f64>() / 6.0;
        (Shape::Sphere { radius }, centre)
    } else {
        (Shape::Box { size }, centre)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary STL of the triangles `tris` (12 bytes of normal, 36 of vertices, 2 spare).
    fn binary_stl(tris: &[[[f32; 3]; 3]]) -> Vec<u8> {
        let mut out = vec![0u8; 80];
        out.extend((tris.len() as u32).to_le_bytes());
        for t in tris {
            out.extend([0u8; 12]);
            for v in t {
                for x in v {
                    out.extend(x.to_le_bytes());
                }
            }
            out.extend([0u8; 2]);
        }
        out
    }

    #[test]
    fn package_paths_resolve_through_the_environment_and_the_ancestors() {
        let root = std::env::temp_dir().join(format!("cross-gym-mesh-{}", std::process::id()));
        let pkg = root.join("share").join("my-robot-data");
        let meshes = pkg.join("robots").join("dog").join("meshes");
        let urdf_dir = pkg.join("robots").join("dog").join("urdf");
        std::fs::create_dir_all(&meshes).expect("dirs");
        std::fs::create_dir_all(&urdf_dir).expect("dirs");
        let foot = meshes.join("foot.stl");
        std::fs::write(
            &foot,
            binary_stl(&[[[0.0; 3], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]),
        )
        .expect("stl");
        let urdf = urdf_dir.join("dog.urdf");
        let name = "package://my-robot-data/robots/dog/meshes/foot.stl";
        // An ancestor named like the package.
        let found = resolve(name, Some(&urdf), None).expect("through the ancestors");
        assert_eq!(found.canonicalize().ok(), foot.canonicalize().ok());
        // ROS_PACKAGE_PATH naming the folder that holds the package.
        let elsewhere = Path::new("/nonexistent/x.urdf");
        let share = root.join("share");
        let found = resolve(name, Some(elsewhere), share.to_str()).expect("through the path");
        assert_eq!(found, foot);
        // Not found: the error names the package and the fix.
        let msg = resolve("package://other/a.stl", Some(elsewhere), None).expect_err("missing");
        assert!(
            msg.contains("`other`") && msg.contains("ROS_PACKAGE_PATH"),
            "{msg}"
        );
        // Relative to the description.
        let found = resolve("../meshes/foot.stl", Some(&urdf), None).expect("relative");
        assert_eq!(found.canonicalize().ok(), foot.canonicalize().ok());
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn stl_and_obj_vertices_are_read_and_scaled_and_dae_is_refused() {
        let dir = std::env::temp_dir().join(format!("cross-gym-mesh-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let stl = dir.join("t.STL");
        std::fs::write(
            &stl,
            binary_stl(&[[[0.0; 3], [1.0, 0.0, 0.0], [0.0, 2.0, 3.0]]]),
        )
        .expect("stl");
        let v = vertices(&stl, [2.0, 1.0, 1.0]).expect("stl");
        assert_eq!(v.len(), 3);
        assert!(
            v.contains(&[2.0, 0.0, 0.0]) && v.contains(&[0.0, 2.0, 3.0]),
            "{v:?}"
        );
        let obj = dir.join("t.obj");
        std::fs::write(&obj, "v 0 0 0\nv 1 0 0\nv 0 1 0.5\nf 1 2 3\n").expect("obj");
        let v = vertices(&obj, [1.0, 1.0, 2.0]).expect("obj");
        assert!(v.contains(&[0.0, 1.0, 1.0]), "{v:?}");
        let dae = dir.join("t.dae");
        std::fs::write(&dae, "<COLLADA/>").expect("dae");
        let msg = vertices(&dae, [1.0; 3]).expect_err("dae");
        assert!(msg.contains(".dae") && msg.contains("STL"), "{msg}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_round_mesh_becomes_a_sphere_and_a_long_one_a_box() {
        // The 8 corners of a cube of side 0.04 centred at (0, 0, -0.2): a sphere.
        let cube: Vec<Vec3> = (0..8)
            .map(|i| {
                let s = |bit: usize| if i & bit == 0 { -0.02 } else { 0.02 };
                [s(1), s(2), -0.2 + s(4)]
            })
            .collect();
        let (shape, centre) = fit(&cube);
        let Shape::Sphere { radius } = shape else {
            panic!("expected a sphere, got {shape:?}");
        };
        assert!((radius - 0.02).abs() < 1e-12, "{radius}");
        assert!((centre[2] + 0.2).abs() < 1e-12, "{centre:?}");
        // A thigh-like rod along z: its bounding box.
        let rod = vec![[-0.02, -0.01, 0.0], [0.02, 0.01, -0.2]];
        let (shape, centre) = fit(&rod);
        let Shape::Box { size } = shape else {
            panic!("expected a box, got {shape:?}");
        };
        assert!((size[0] - 0.04).abs() < 1e-12 && (size[2] - 0.2).abs() < 1e-12);
        assert!((centre[2] + 0.1).abs() < 1e-12);
    }
}
