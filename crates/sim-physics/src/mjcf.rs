//! Reads a robot from an MJCF file (MuJoCo's XML format), on the `roxmltree` crate: a
//! [`Model`], plus what a model has no place for, the keyframes and actuators ([`Robot`]).
//!
//! What is read, and how (as MuJoCo's compiler reads it):
//!
//! - `<include file>` is replaced by the children of the included file's `<mujoco>`; the
//!   file is found relative to the main file's folder, as MuJoCo does (so Menagerie's
//!   `scene.xml` reads its robot). `<compiler>`: `angle` (MJCF's default is `degree`: hinge
//!   ranges and `ref`, `euler` and `axisangle`), `eulerseq`, `meshdir` / `assetdir`,
//!   `inertiafromgeom`, `inertiagrouprange`, `autolimits` (default true: a `range` makes a
//!   joint limited), `discardvisual`.
//! - `<default>` classes, nested, for `joint`, `geom`, `mesh` and the actuators: an element
//!   takes the attributes of its `class`, else of the `childclass` of the nearest body
//!   above it, else of `main`, and overrides them with its own.
//! - The robot is the one `<body>` of `<worldbody>`; the world's own geoms (the floor),
//!   sites, cameras and lights are ignored. The base is floating with a `<freejoint/>` (or a
//!   `<joint type="free">`) on that body and fixed otherwise (welded where the file puts
//!   it), unless [`MjcfOptions::base`] says otherwise; a top-level body with a hinge or slide
//!   joint hangs from a massless fixed root link named `world`.
//! - A body with one `hinge` or `slide` joint becomes a link moved by a revolute or
//!   prismatic joint. A body without joints is merged into its parent (mass, centre of
//!   mass, inertia by the parallel-axis theorem, collision shapes), as MuJoCo's
//!   `fusestatic` does. A joint `pos` away from the body origin is exact: the link frame is
//!   put at the joint (the body's contents shifted by `-pos`); so is `ref`: the joint origin
//!   is turned by `-ref`, so that joint positions are MuJoCo's `qpos`. `damping` and
//!   `armature` are read, `range` and `limited` as MuJoCo reads them. Unnamed bodies and
//!   joints are named `body{id}` and `joint{id}` with MuJoCo's ids.
//! - Mass: a body's `<inertial>` (`mass`, `pos`, orientation, `diaginertia` or
//!   `fullinertia`); with `inertiafromgeom="true"`, or `auto` (the default) on a body
//!   without `<inertial>`, its geoms instead, every geom of the group range (visual ones
//!   too, as MuJoCo counts them), with MuJoCo's formulas: density 1000 unless the geom's
//!   `density` or `mass` says otherwise; spheres, capsules (a cylinder and two
//!   hemispheres), cylinders, ellipsoids and boxes. A singular inertia is balanced with a
//!   warning, as in `urdf.rs`.
//! - Contact: every geom that can collide (not `contype="0" conaffinity="0"`): spheres,
//!   capsules and boxes as they are (`fromto` read); a cylinder as the capsule of the same
//!   radius and overall length (a sphere when shorter than its diameter), an ellipsoid as its bounding box (a sphere when nearly
//!   round), a mesh (`<asset><mesh file scale>` through `meshdir`, STL or OBJ) as its
//!   bounding box or a sphere, each with a warning; [`MjcfOptions::ignore_mesh_collisions`]
//!   skips meshes. A shape wholly inside another of its link is dropped with a warning.
//! - `<actuator>`: `motor`, `position`, `velocity`, and `general` in one of those three
//!   forms, on a joint, as [`Actuator`]s (with `ctrlrange`, `forcerange`, `gear`, and
//!   `inheritrange` of a position actuator). A joint's effort limit is its
//!   `actuatorfrcrange`, else its actuator's `forcerange` times `gear`, else for a motor its
//!   `ctrlrange` times `gear`, else none.
//! - `<keyframe><key>`: `qpos` (7 numbers for the free joint, then one per hinge or slide, in
//!   the file's order) becomes a [`Keyframe`] in the model's joint order, and `ctrl` follows
//!   [`Robot::actuators`]; a key without `qpos` is MuJoCo's `qpos0`.
//! - Loaded with a warning in [`Model::warnings`] that names the element and its line:
//!   joint `frictionloss` and `stiffness` (not modelled), damping, armature or friction on
//!   a free joint, an asymmetric force range (the larger magnitude is used), several
//!   actuators on one joint (the first sets the limit), the shape approximations above,
//!   `<equality>` and `<tendon>` (not modelled), other actuators or transmissions
//!   (skipped), compiler `settotalmass`, `boundmass`, `boundinertia` (not applied).
//! - Refused with [`Error::Mjcf`] naming the file, the element and its line: several
//!   top-level bodies, a body with several joints, a `ball` joint, a free joint below the
//!   top, planes and height fields on a body, `<frame>` and generated bodies (`<composite>`,
//!   `<replicate>`, ...), a primitive fitted to a mesh, a mesh that cannot be read (or one
//!   whose mass would come from its volume), malformed numbers, unknown classes and
//!   duplicate names.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::model::{
    BaseKind, Collision, IDENTITY, Joint, JointKind, Link, Mat3, Model, Pose, Shape, Vec3,
    axis_angle, mat_mul,
};
use super::urdf::{MassPart, combine, fitted_shape, placed_mass};
use crate::{Error, Result};

/// Options for reading an MJCF file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MjcfOptions {
    /// How the root body is attached to the world; `None` takes the file's choice (floating
    /// with a free joint on the top-level body, fixed without).
    pub base: Option<BaseKind>,
    /// Skip mesh collision geoms instead of reading their files.
    pub ignore_mesh_collisions: bool,
}

/// A robot read from a description file: the model, and the keyframes and actuators of the
/// file (MJCF has them; [`load_robot`] gives none for a URDF).
#[derive(Debug, Clone, PartialEq)]
pub struct Robot {
    /// The robot; its warnings list what was approximated.
    pub model: Model,
    /// The `<keyframe>` keys, in file order.
    pub keyframes: Vec<Keyframe>,
    /// The actuators on the model's joints, in file order (others are skipped with a
    /// warning).
    pub actuators: Vec<Actuator>,
}

/// A `<key>`: a named state of the robot.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyframe {
    /// Its name (`key{i}` when the file gives none).
    pub name: String,
    /// One position per joint of the model, in the model's (breadth-first) joint order.
    pub joint_pos: Vec<f64>,
    /// Position of the root link in the world (m), for a floating base.
    pub base_pos: Option<Vec3>,
    /// Orientation of the root link, a quaternion `(w, x, y, z)`, for a floating base.
    pub base_quat: Option<[f64; 4]>,
    /// Controls, one per entry of [`Robot::actuators`] (zero when the key gives none).
    pub ctrl: Vec<f64>,
}

/// An actuator on a joint.
#[derive(Debug, Clone, PartialEq)]
pub struct Actuator {
    /// Its name (`actuator{i}` when the file gives none).
    pub name: String,
    /// The joint it drives.
    pub joint: String,
    /// What the control means.
    pub kind: ActuatorKind,
    /// The joint torque (or force) per unit of actuator force; every MuJoCo actuator has one.
    pub gear: f64,
    /// Range of the control, if limited.
    pub ctrlrange: Option<(f64, f64)>,
    /// Range of the actuator force, if limited.
    pub forcerange: Option<(f64, f64)>,
}

/// What an actuator's control is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ActuatorKind {
    /// A PD servo: force `kp (ctrl - q) - kv qd`.
    Position {
        /// Position gain.
        kp: f64,
        /// Velocity gain (damping).
        kv: f64,
    },
    /// A torque: force `ctrl`.
    Motor,
    /// A velocity servo: force `kv (ctrl - qd)`.
    Velocity {
        /// Velocity gain.
        kv: f64,
    },
}

/// Reads a robot from the MJCF file at `path`.
///
/// # Errors
/// [`Error::Mjcf`] naming the file when it (or a file it includes) cannot be read, is not
/// valid MJCF, or holds something the simulator cannot take (see the module documentation),
/// naming the element and its line; [`Error::Mjcf`] too when the resulting model fails
/// [`Model::new`]'s checks.
pub fn load_mjcf(path: &Path, options: &MjcfOptions) -> Result<Robot> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::Mjcf {
        path: source.clone(),
        what: format!("cannot read the file: {e}"),
    })?;
    parse_mjcf(&text, &source, options)
}

/// Reads a robot from MJCF text; `source` names it in errors and, when it is a file, is
/// where includes and meshes are looked for (from its folder).
///
/// # Errors
/// As [`load_mjcf`].
pub fn parse_mjcf(text: &str, source: &str, options: &MjcfOptions) -> Result<Robot> {
    let err = |what: String| Error::Mjcf {
        path: source.to_owned(),
        what,
    };
    let dir = Path::new(source)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let root = read_tree(text, None, &dir, &mut Vec::new()).map_err(err)?;
    let mut reader = Reader::new(&root, dir, options).map_err(err)?;
    let (base, mut links, joints) = reader.robot(&root).map_err(err)?;
    let dropped = crate::model::drop_enclosed_collisions(&mut links);
    reader.warnings.extend(dropped);
    let name = root.attr("model").map_or_else(
        || {
            Path::new(source)
                .file_stem()
                .map_or("robot".into(), |s| s.to_string_lossy().into_owned())
        },
        str::to_owned,
    );
    let mut model = Model::new(&name, base, links, joints).map_err(|e| match e {
        Error::Model { model, what } => err(format!("robot `{model}`: {what}")),
        other => other,
    })?;
    let keyframes = reader.keyframes(&root, &model).map_err(err)?;
    model.warnings = std::mem::take(&mut reader.warnings)
        .into_iter()
        .map(|w| format!("MJCF `{source}`: {w}"))
        .collect();
    Ok(Robot {
        model,
        keyframes,
        actuators: reader.actuators,
    })
}

/// Reads a robot description by its extension: `.urdf` with [`crate::load_urdf`] (a floating
/// base unless `options.base` says otherwise, no armature; no keyframes or actuators), `.xml`
/// or `.mjcf` with [`load_mjcf`].
///
/// # Errors
/// Those of the reader, and [`Error::Mjcf`] for another extension.
pub fn load_robot(path: &Path, options: &MjcfOptions) -> Result<Robot> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "urdf" => {
            let urdf = crate::UrdfOptions {
                base: options.base.unwrap_or(BaseKind::Floating),
                ignore_mesh_collisions: options.ignore_mesh_collisions,
                ..crate::UrdfOptions::default()
            };
            Ok(Robot {
                model: crate::load_urdf(path, &urdf)?,
                keyframes: Vec::new(),
                actuators: Vec::new(),
            })
        }
        "xml" | "mjcf" => load_mjcf(path, options),
        _ => Err(Error::Mjcf {
            path: path.display().to_string(),
            what: "not a robot description by its extension: `.urdf` is read as URDF, `.xml` \
                   and `.mjcf` as MJCF"
                .into(),
        }),
    }
}

type Checked<T> = std::result::Result<T, String>;

/// An XML element with its includes resolved.
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
    /// Where it is: `line 12`, or ``line 12 of `robot.xml` `` in an included file.
    at: String,
}

impl Element {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// `<joint name="knee"> (line 12)`, for messages.
    fn label(&self) -> String {
        match self.attr("name") {
            Some(name) => format!("<{} name=\"{name}\"> ({})", self.name, self.at),
            None => format!("<{}> ({})", self.name, self.at),
        }
    }
}

/// Reads `text` into an element tree, each `<include file>` replaced by the children of the
/// included file's root. `file` names an included text in `Element::at`; includes are found
/// in `dir`, the main file's folder; `stack` holds the files being included.
fn read_tree(
    text: &str,
    file: Option<&str>,
    dir: &Path,
    stack: &mut Vec<PathBuf>,
) -> Checked<Element> {
    let within = file.map(|f| format!(" (in `{f}`)")).unwrap_or_default();
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("invalid XML{within}: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "mujoco" {
        return Err(format!(
            "the root element{within} is <{}>: an MJCF file is a <mujoco> element",
            root.tag_name().name()
        ));
    }
    element(&doc, root, file, dir, stack)
}

fn element(
    doc: &roxmltree::Document,
    node: roxmltree::Node,
    file: Option<&str>,
    dir: &Path,
    stack: &mut Vec<PathBuf>,
) -> Checked<Element> {
    let line = doc.text_pos_at(node.range().start).row;
    let at = match file {
        Some(f) => format!("line {line} of `{f}`"),
        None => format!("line {line}"),
    };
    let mut children = Vec::new();
    for child in node.children().filter(roxmltree::Node::is_element) {
        if child.tag_name().name() != "include" {
            children.push(element(doc, child, file, dir, stack)?);
            continue;
        }
        let here = format!(
            "<include> ({})",
            match file {
                Some(f) => format!("line {} of `{f}`", doc.text_pos_at(child.range().start).row),
                None => format!("line {}", doc.text_pos_at(child.range().start).row),
            }
        );
        let name = child
            .attribute("file")
            .ok_or_else(|| format!("{here}: no `file`"))?;
        let path = dir.join(name);
        if stack.contains(&path) {
            return Err(format!("{here}: `{name}` includes itself"));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{here}: cannot read `{}`: {e}", path.display()))?;
        stack.push(path);
        let included = read_tree(&text, Some(name), dir, stack)?;
        stack.pop();
        children.extend(included.children);
    }
    Ok(Element {
        name: node.tag_name().name().to_owned(),
        attrs: node
            .attributes()
            .map(|a| (a.name().to_owned(), a.value().to_owned()))
            .collect(),
        children,
        at,
    })
}

/// Attributes set by a default class, by attribute name.
type Attrs = HashMap<String, String>;

/// A `<default>` class: the attributes it gives each kind of element.
#[derive(Debug, Clone, Default)]
struct Class {
    joint: Attrs,
    geom: Attrs,
    mesh: Attrs,
    /// One set for every actuator element, as MuJoCo keeps one default actuator per class.
    actuator: Attrs,
}

/// The kinds of element a class gives defaults to.
#[derive(Clone, Copy)]
enum Kind {
    Joint,
    Geom,
    Mesh,
    Actuator,
}

/// The actuator elements of MJCF.
const ACTUATORS: [&str; 9] = [
    "motor",
    "position",
    "velocity",
    "general",
    "intvelocity",
    "damper",
    "cylinder",
    "muscle",
    "adhesion",
];

/// An element seen through its default class: its own attributes first, then the class's.
#[derive(Clone, Copy)]
struct View<'a> {
    el: &'a Element,
    class: Option<&'a Attrs>,
}

impl<'a> View<'a> {
    /// An element that takes no defaults (a body, an inertial).
    fn plain(el: &'a Element) -> Self {
        Self { el, class: None }
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.el
            .attr(key)
            .or_else(|| self.class.and_then(|c| c.get(key)).map(String::as_str))
    }

    /// The finite numbers of attribute `key`, if set.
    fn numbers(&self, key: &str) -> Checked<Option<Vec<f64>>> {
        let Some(text) = self.get(key) else {
            return Ok(None);
        };
        text.split_whitespace()
            .map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite()))
            .collect::<Option<Vec<f64>>>()
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "{}: `{key}=\"{text}\"` is not a list of finite numbers",
                    self.el.label()
                )
            })
    }

    /// Attribute `key` as exactly `N` numbers, if set.
    fn array<const N: usize>(&self, key: &str) -> Checked<Option<[f64; N]>> {
        match self.numbers(key)? {
            None => Ok(None),
            Some(v) => <[f64; N]>::try_from(v.as_slice()).map(Some).map_err(|_| {
                format!(
                    "{}: `{key}` takes {N} numbers, got {}",
                    self.el.label(),
                    v.len()
                )
            }),
        }
    }

    fn number(&self, key: &str, default: f64) -> Checked<f64> {
        Ok(self.array::<1>(key)?.map_or(default, |[v]| v))
    }

    /// A boolean attribute (`true` / `false`).
    fn flag(&self, key: &str, default: bool) -> Checked<bool> {
        match self.get(key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(format!(
                "{}: `{key}=\"{other}\"` must be true or false",
                self.el.label()
            )),
        }
    }
}

/// `<compiler inertiafromgeom>`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum FromGeom {
    False,
    True,
    Auto,
}

/// The `<compiler>` settings that change what is read.
struct Compiler {
    degree: bool,
    eulerseq: [u8; 3],
    meshdir: PathBuf,
    from_geom: FromGeom,
    groups: (f64, f64),
    autolimits: bool,
    discard_visual: bool,
}

/// A `<mesh>` asset.
struct MeshAsset {
    file: PathBuf,
    scale: Vec3,
}

/// A link being built: its name and what is lumped into it.
struct LinkParts {
    name: String,
    parts: Vec<MassPart>,
    collisions: Vec<Collision>,
}

/// A joint of the file, for the `qpos` of keyframes.
struct FileJoint {
    name: String,
    /// Its `qpos0`: the body pose (7 numbers) for the free joint, `ref` for the others.
    qpos0: Vec<f64>,
}

/// The solid of a geom, with MuJoCo's sizes (radii and half-lengths).
enum Solid {
    Sphere(f64),
    Capsule(f64, f64),
    Cylinder(f64, f64),
    Ellipsoid(Vec3),
    Box(Vec3),
    Mesh(String),
}

struct Reader<'a> {
    options: &'a MjcfOptions,
    compiler: Compiler,
    classes: HashMap<String, Class>,
    meshes: HashMap<String, MeshAsset>,
    warnings: Vec<String>,
    links: Vec<LinkParts>,
    joints: Vec<Joint>,
    file_joints: Vec<FileJoint>,
    /// Bodies read so far (MuJoCo's body id of the next one, the world being 0).
    bodies: usize,
    /// The top-level body's pose in the world.
    root_pose: Pose,
    actuators: Vec<Actuator>,
    /// For each actuator element of the file, its index in `actuators` if kept.
    kept: Vec<Option<usize>>,
}

impl<'a> Reader<'a> {
    /// Reads the compiler settings, the default classes and the mesh assets.
    fn new(root: &Element, dir: PathBuf, options: &'a MjcfOptions) -> Checked<Self> {
        let mut reader = Self {
            options,
            compiler: Compiler {
                degree: true,
                eulerseq: *b"xyz",
                meshdir: dir.clone(),
                from_geom: FromGeom::Auto,
                groups: (0.0, 5.0),
                autolimits: true,
                discard_visual: false,
            },
            classes: HashMap::from([("main".to_owned(), Class::default())]),
            meshes: HashMap::new(),
            warnings: Vec::new(),
            links: Vec::new(),
            joints: Vec::new(),
            file_joints: Vec::new(),
            bodies: 1,
            root_pose: Pose::default(),
            actuators: Vec::new(),
            kept: Vec::new(),
        };
        for el in root.children("compiler") {
            reader.read_compiler(el, &dir)?;
        }
        for el in root.children("default") {
            let main = reader.classes["main"].clone();
            reader.read_default(el, &main, true)?;
        }
        for el in root.children("asset").flat_map(|a| a.children("mesh")) {
            let v = view(&reader.classes, el, Kind::Mesh, "main")?;
            let file = v
                .get("file")
                .ok_or_else(|| format!("{}: a mesh without `file` is not read", el.label()))?;
            let name = v.get("name").map_or_else(
                || {
                    Path::new(file)
                        .file_stem()
                        .map_or(String::new(), |s| s.to_string_lossy().into_owned())
                },
                str::to_owned,
            );
            let scale = v.array::<3>("scale")?.unwrap_or([1.0; 3]);
            let file = reader.compiler.meshdir.join(file);
            reader.meshes.insert(name, MeshAsset { file, scale });
        }
        for name in ["equality", "tendon"] {
            for el in root.children(name).flat_map(|e| &e.children) {
                reader.warnings.push(format!(
                    "{}: <{name}> constraints are not modelled: ignored",
                    el.label()
                ));
            }
        }
        Ok(reader)
    }

    fn read_compiler(&mut self, el: &Element, dir: &Path) -> Checked<()> {
        let v = View::plain(el);
        let bad = |key: &str, value: &str, want: &str| {
            format!("{}: `{key}=\"{value}\"` must be {want}", el.label())
        };
        let c = &mut self.compiler;
        match v.get("angle") {
            None => {}
            Some("degree") => c.degree = true,
            Some("radian") => c.degree = false,
            Some(other) => return Err(bad("angle", other, "degree or radian")),
        }
        if let Some(seq) = v.get("eulerseq") {
            c.eulerseq = <[u8; 3]>::try_from(seq.as_bytes())
                .ok()
                .filter(|s| s.iter().all(|b| b"xyzXYZ".contains(b)))
                .ok_or_else(|| bad("eulerseq", seq, "three of x, y, z, X, Y, Z"))?;
        }
        if let Some(d) = v.get("meshdir").or_else(|| v.get("assetdir")) {
            c.meshdir = dir.join(d);
        }
        match v.get("inertiafromgeom") {
            None => {}
            Some("false") => c.from_geom = FromGeom::False,
            Some("true") => c.from_geom = FromGeom::True,
            Some("auto") => c.from_geom = FromGeom::Auto,
            Some(other) => return Err(bad("inertiafromgeom", other, "true, false or auto")),
        }
        if let Some([lo, hi]) = v.array::<2>("inertiagrouprange")? {
            c.groups = (lo, hi);
        }
        c.autolimits = v.flag("autolimits", c.autolimits)?;
        c.discard_visual = v.flag("discardvisual", c.discard_visual)?;
        if let Some(coordinate @ "global") = v.get("coordinate") {
            return Err(bad(
                "coordinate",
                coordinate,
                "local (global coordinates were removed from MuJoCo)",
            ));
        }
        for key in ["settotalmass", "boundmass", "boundinertia"] {
            if v.number(key, 0.0)? > 0.0 {
                self.warnings.push(format!(
                    "{}: `{key}` is not applied: masses and inertias are read as given",
                    el.label()
                ));
            }
        }
        Ok(())
    }

    /// Reads a `<default>` element into the class it names (`main` at the top), starting
    /// from `parent`'s attributes, then its nested classes.
    fn read_default(&mut self, el: &Element, parent: &Class, top: bool) -> Checked<()> {
        let name = match (el.attr("class"), top) {
            (Some(name), _) => name,
            (None, true) => "main",
            (None, false) => {
                return Err(format!(
                    "{}: a nested <default> needs a `class`",
                    el.label()
                ));
            }
        };
        let mut class = parent.clone();
        for child in &el.children {
            let attrs = match child.name.as_str() {
                "joint" => &mut class.joint,
                "geom" => &mut class.geom,
                "mesh" => &mut class.mesh,
                a if ACTUATORS.contains(&a) => &mut class.actuator,
                _ => continue,
            };
            attrs.extend(child.attrs.iter().filter(|(k, _)| k != "class").cloned());
        }
        if self
            .classes
            .insert(name.to_owned(), class.clone())
            .is_some()
            && !top
        {
            return Err(format!("{}: class `{name}` is defined twice", el.label()));
        }
        for child in el.children("default") {
            self.read_default(child, &class, false)?;
        }
        Ok(())
    }

    /// The class a body's elements take: its `childclass`, else `inherited`.
    fn childclass<'e>(&self, body: &'e Element, inherited: &'e str) -> Checked<&'e str> {
        match body.attr("childclass") {
            Some(name) if !self.classes.contains_key(name) => Err(format!(
                "{}: childclass `{name}` is not defined in <default>",
                body.label()
            )),
            Some(name) => Ok(name),
            None => Ok(inherited),
        }
    }

    fn angle(&self, v: f64) -> f64 {
        if self.compiler.degree {
            v.to_radians()
        } else {
            v
        }
    }

    /// An element's `pos` and orientation (`quat`, `axisangle`, `euler`, `xyaxes` or
    /// `zaxis`).
    fn pose(&self, v: View) -> Checked<Pose> {
        Ok(Pose {
            xyz: v.array::<3>("pos")?.unwrap_or([0.0; 3]),
            rotation: self.rotation(v)?,
        })
    }

    fn rotation(&self, v: View) -> Checked<Mat3> {
        let alternatives: Vec<&str> = ["axisangle", "euler", "xyaxes", "zaxis"]
            .into_iter()
            .filter(|k| v.get(k).is_some())
            .collect();
        let unit_of = |x: Vec3, what: &str| {
            unit(x).ok_or_else(|| format!("{}: `{what}` must be a nonzero vector", v.el.label()))
        };
        Ok(match alternatives.as_slice() {
            [] => match v.array::<4>("quat")? {
                None => IDENTITY,
                Some(q) => quat_to_mat(q).ok_or_else(|| {
                    format!("{}: `quat` must be a nonzero quaternion", v.el.label())
                })?,
            },
            ["axisangle"] => {
                let [x, y, z, a] = v.array::<4>("axisangle")?.unwrap_or_default();
                axis_angle(unit_of([x, y, z], "axisangle")?, self.angle(a))
            }
            ["euler"] => {
                let e = v.array::<3>("euler")?.unwrap_or_default();
                let mut r = IDENTITY;
                for (k, &axis) in self.compiler.eulerseq.iter().enumerate() {
                    let mut a = [0.0; 3];
                    a[usize::from(axis.to_ascii_lowercase() - b'x')] = 1.0;
                    let turn = axis_angle(a, self.angle(e[k]));
                    // Lower case: axes that move with the frame; upper case: fixed axes.
                    r = if axis.is_ascii_lowercase() {
                        mat_mul(&r, &turn)
                    } else {
                        mat_mul(&turn, &r)
                    };
                }
                r
            }
            ["xyaxes"] => {
                let a = v.array::<6>("xyaxes")?.unwrap_or_default();
                let x = unit_of([a[0], a[1], a[2]], "xyaxes")?;
                let y = [a[3], a[4], a[5]];
                let d = dot(x, y);
                let y = unit_of(
                    [y[0] - d * x[0], y[1] - d * x[1], y[2] - d * x[2]],
                    "xyaxes",
                )?;
                let z = cross(x, y);
                [[x[0], y[0], z[0]], [x[1], y[1], z[1]], [x[2], y[2], z[2]]]
            }
            ["zaxis"] => z_to(unit_of(
                v.array::<3>("zaxis")?.unwrap_or_default(),
                "zaxis",
            )?),
            several => {
                return Err(format!(
                    "{}: orientation given twice ({}): give one",
                    v.el.label(),
                    several.join(", ")
                ));
            }
        })
    }

    /// `limited` and `range` (or `ctrllimited` and `ctrlrange`, ...) as MuJoCo reads them:
    /// with `autolimits`, a range given means limited unless `limited="false"`.
    fn range(&self, v: View, flag: &str, key: &str) -> Checked<Option<(f64, f64)>> {
        let range = v.array::<2>(key)?;
        let limited = match v.get(flag).unwrap_or("auto") {
            "true" => true,
            "false" => false,
            "auto" if self.compiler.autolimits => range.is_some(),
            "auto" if range.is_some() => {
                return Err(format!(
                    "{}: `{key}` without `{flag}` while the compiler's autolimits is false: \
                     set {flag}=\"true\"",
                    v.el.label()
                ));
            }
            "auto" => false,
            other => {
                return Err(format!(
                    "{}: `{flag}=\"{other}\"` must be true, false or auto",
                    v.el.label()
                ));
            }
        };
        match (limited, range) {
            (false, _) => Ok(None),
            (true, Some([lo, hi])) if lo < hi => Ok(Some((lo, hi))),
            (true, r) => Err(format!(
                "{}: {flag} with `{key}` {r:?}: needs lower < upper",
                v.el.label()
            )),
        }
    }

    /// The robot: the top-level body and everything below it; links and joints with
    /// `joints[k]` moving `links[k + 1]`.
    fn robot(&mut self, root: &Element) -> Checked<(BaseKind, Vec<Link>, Vec<Joint>)> {
        let worlds: Vec<&Element> = root.children("worldbody").collect();
        let mut tops = Vec::new();
        for el in worlds.iter().flat_map(|w| &w.children) {
            match el.name.as_str() {
                "body" => tops.push(el),
                "geom" | "site" | "camera" | "light" | "plugin" => {}
                _ => return Err(unsupported(el, "in <worldbody>")),
            }
        }
        let top = match tops.as_slice() {
            [top] => *top,
            [] => return Err("<worldbody> holds no <body>: there is no robot".into()),
            several => {
                let names: Vec<String> = several.iter().map(|b| b.label()).collect();
                return Err(format!(
                    "<worldbody> holds several bodies, {}: the simulator takes one robot, a \
                     single body tree; keep one",
                    names.join(", ")
                ));
            }
        };
        let childclass = self.childclass(top, "main")?;
        self.root_pose = self.pose(View::plain(top))?;
        let joints: Vec<&Element> = joint_elements(top).collect();
        let free = match joints.as_slice() {
            [j] => self.is_free(j, childclass)?,
            _ => false,
        };
        let base = if free || joints.is_empty() {
            let name = self.body_name(top);
            let base = self.options.base.unwrap_or(if free {
                BaseKind::Floating
            } else {
                BaseKind::Fixed
            });
            if let [j] = joints.as_slice() {
                self.free_joint(j, childclass)?;
            }
            // A fixed root link is the world's frame, the body welded where the file puts it.
            let frame = match base {
                BaseKind::Floating => Pose::default(),
                BaseKind::Fixed => self.root_pose,
            };
            self.links.push(LinkParts::new(name.clone()));
            self.contents(top, &name, 0, &frame, childclass)?;
            base
        } else {
            if self.options.base == Some(BaseKind::Floating) {
                return Err(format!(
                    "{}: the top-level body has a joint to the world, so it cannot float: \
                     a floating base needs a top-level body with a free joint or none",
                    top.label()
                ));
            }
            self.links.push(LinkParts::new("world".into()));
            self.body(top, 0, &Pose::default(), "main")?;
            BaseKind::Fixed
        };
        self.read_actuators(root)?;

        let links: Vec<Link> = self
            .links
            .drain(..)
            .map(|l| {
                let (mass, com, inertia) = combine(&l.parts);
                Link {
                    name: l.name,
                    mass,
                    com,
                    inertia,
                    collisions: l.collisions,
                }
            })
            .collect();
        let mut names = HashSet::new();
        if let Some(l) = links.iter().find(|l| !names.insert(l.name.as_str())) {
            return Err(format!("body `{}` is defined twice", l.name));
        }
        let mut names = HashSet::new();
        if let Some(j) = self
            .file_joints
            .iter()
            .find(|j| !names.insert(j.name.as_str()))
        {
            return Err(format!("joint `{}` is defined twice", j.name));
        }
        if base == BaseKind::Floating && links[0].mass <= 0.0 {
            return Err(format!(
                "{}: the root of a floating base has no mass (with the bodies welded to it): \
                 the mass matrix would be singular",
                top.label()
            ));
        }
        for (k, joint) in self.joints.iter().enumerate() {
            if links[k + 1].mass <= 0.0 && joint.armature <= 0.0 {
                return Err(format!(
                    "joint `{}` moves body `{}`, which has no mass (with the bodies welded to \
                     it), and the joint has no armature: the mass matrix would be singular; \
                     give the body an <inertial> or the joint an armature",
                    joint.name,
                    links[k + 1].name
                ));
            }
        }
        Ok((base, links, std::mem::take(&mut self.joints)))
    }

    fn body_name(&mut self, body: &Element) -> String {
        let id = self.bodies;
        self.bodies += 1;
        body.attr("name")
            .map_or_else(|| format!("body{id}"), str::to_owned)
    }

    fn is_free(&self, joint: &Element, childclass: &str) -> Checked<bool> {
        Ok(joint.name == "freejoint"
            || view(&self.classes, joint, Kind::Joint, childclass)?.get("type") == Some("free"))
    }

    /// Records the free joint of the top-level body; what it carries that is not modelled
    /// is a warning.
    fn free_joint(&mut self, el: &Element, childclass: &str) -> Checked<()> {
        let id = self.file_joints.len();
        let name = el
            .attr("name")
            .map_or_else(|| format!("joint{id}"), str::to_owned);
        if el.name == "joint" {
            let v = view(&self.classes, el, Kind::Joint, childclass)?;
            for key in ["damping", "armature", "frictionloss", "stiffness"] {
                let value = v.number(key, 0.0)?;
                if value != 0.0 {
                    self.warnings.push(format!(
                        "{}: {key} {value} on the free joint is not modelled for the base: \
                         ignored",
                        el.label()
                    ));
                }
            }
        }
        let p = self.root_pose;
        let q = mat_to_quat(&p.rotation);
        self.file_joints.push(FileJoint {
            name,
            qpos0: vec![p.xyz[0], p.xyz[1], p.xyz[2], q[0], q[1], q[2], q[3]],
        });
        Ok(())
    }

    /// Reads a body below the top: `parent` is its parent body's frame in the frame of link
    /// `link`.
    fn body(&mut self, el: &Element, link: usize, parent: &Pose, childclass: &str) -> Checked<()> {
        let childclass = self.childclass(el, childclass)?;
        let at = parent.compose(&self.pose(View::plain(el))?);
        let name = self.body_name(el);
        let joints: Vec<&Element> = joint_elements(el).collect();
        match joints.as_slice() {
            [] => self.contents(el, &name, link, &at, childclass),
            [joint] => {
                let (link, frame) = self.moving_joint(joint, &name, link, &at, childclass)?;
                self.contents(el, &name, link, &frame, childclass)
            }
            several => Err(format!(
                "{}: {} joints on one body; the simulator takes one joint per body (a chain of \
                 links): split the body into a chain of bodies, one joint each (each with mass, \
                 or its joint with armature)",
                el.label(),
                several.len()
            )),
        }
    }

    /// Makes the link that `joint` moves, for the body at `at` in the frame of link
    /// `parent`; returns the link and the body's frame in it.
    fn moving_joint(
        &mut self,
        el: &Element,
        body: &str,
        parent: usize,
        at: &Pose,
        childclass: &str,
    ) -> Checked<(usize, Pose)> {
        let v = view(&self.classes, el, Kind::Joint, childclass)?;
        let kind = match (el.name.as_str(), v.get("type").unwrap_or("hinge")) {
            ("freejoint", _) | (_, "free") => {
                return Err(format!(
                    "{}: a free joint on body `{body}`, below the top: only the top-level body \
                     may float",
                    el.label()
                ));
            }
            (_, "hinge") => JointKind::Revolute,
            (_, "slide") => JointKind::Prismatic,
            (_, "ball") => {
                return Err(format!(
                    "{}: ball joints are not supported (the simulator has revolute and \
                     prismatic joints): replace it by three hinges on a chain of bodies",
                    el.label()
                ));
            }
            (_, other) => {
                return Err(format!(
                    "{}: joint type `{other}` is none of hinge, slide, ball, free",
                    el.label()
                ));
            }
        };
        let id = self.file_joints.len();
        let name = el
            .attr("name")
            .map_or_else(|| format!("joint{id}"), str::to_owned);
        let axis = unit(v.array::<3>("axis")?.unwrap_or([0.0, 0.0, 1.0]))
            .ok_or_else(|| format!("{}: `axis` must be a nonzero vector", el.label()))?;
        let pos = v.array::<3>("pos")?.unwrap_or([0.0; 3]);
        let hinge = kind == JointKind::Revolute;
        let angle = |x: f64| if hinge { self.angle(x) } else { x };
        let limits = self
            .range(v, "limited", "range")?
            .map(|(lo, hi)| (angle(lo), angle(hi)));
        let reference = angle(v.number("ref", 0.0)?);
        let effort_limit = match self.range(v, "actuatorfrclimited", "actuatorfrcrange")? {
            Some(range) => magnitude(&mut self.warnings, el, "actuatorfrcrange", range),
            None => f64::INFINITY,
        };
        let (damping, armature) = (v.number("damping", 0.0)?, v.number("armature", 0.0)?);
        if damping < 0.0 || armature < 0.0 {
            return Err(format!(
                "{}: damping {damping} and armature {armature} must be >= 0",
                el.label()
            ));
        }
        let friction = v.number("frictionloss", 0.0)?;
        if friction != 0.0 {
            self.warnings.push(format!(
                "{}: frictionloss {friction} (Coulomb friction) is not modelled: ignored; the \
                 joint keeps its damping {damping}",
                el.label()
            ));
        }
        let stiffness = v.number("stiffness", 0.0)?;
        if stiffness != 0.0 {
            self.warnings.push(format!(
                "{}: stiffness {stiffness} (a spring to springref) is not modelled: ignored",
                el.label()
            ));
        }
        // The link frame sits at the joint, turned back by `ref`: MuJoCo's body is where the
        // file puts it at q = ref.
        let turn = match kind {
            JointKind::Revolute => Pose {
                xyz: [0.0; 3],
                rotation: axis_angle(axis, -reference),
            },
            JointKind::Prismatic => Pose {
                xyz: axis.map(|a| -a * reference),
                rotation: IDENTITY,
            },
        };
        let origin = at.compose(&translation(pos)).compose(&turn);
        self.file_joints.push(FileJoint {
            name: name.clone(),
            qpos0: vec![reference],
        });
        self.links.push(LinkParts::new(body.to_owned()));
        self.joints.push(Joint {
            name,
            kind,
            parent,
            origin,
            axis,
            limits,
            effort_limit,
            velocity_limit: f64::INFINITY,
            damping,
            armature,
        });
        Ok((self.links.len() - 1, translation(pos.map(|p| -p))))
    }

    /// A body's mass, geoms and child bodies, into link `link` whose frame holds the body's
    /// frame at `frame`.
    fn contents(
        &mut self,
        el: &Element,
        body: &str,
        link: usize,
        frame: &Pose,
        childclass: &str,
    ) -> Checked<()> {
        for child in &el.children {
            match child.name.as_str() {
                "joint" | "freejoint" | "geom" | "inertial" | "body" => {}
                "site" | "camera" | "light" | "plugin" => {}
                _ => return Err(unsupported(child, &format!("in body `{body}`"))),
            }
        }
        let inertial = el.children("inertial").next();
        let from_geoms = match self.compiler.from_geom {
            FromGeom::True => true,
            FromGeom::False => false,
            FromGeom::Auto => inertial.is_none(),
        };
        if let (Some(i), false) = (inertial, from_geoms) {
            let v = View::plain(i);
            let mass = v.number("mass", 0.0)?;
            let inertia = match (v.array::<3>("diaginertia")?, v.array::<6>("fullinertia")?) {
                (Some(d), None) => [[d[0], 0.0, 0.0], [0.0, d[1], 0.0], [0.0, 0.0, d[2]]],
                (None, Some(f)) => [[f[0], f[3], f[4]], [f[3], f[1], f[5]], [f[4], f[5], f[2]]],
                _ => {
                    return Err(format!(
                        "{}: give one of `diaginertia` and `fullinertia`",
                        i.label()
                    ));
                }
            };
            if mass < 0.0 {
                return Err(format!("{}: mass {mass} must be >= 0", i.label()));
            }
            if mass > 0.0 {
                let at = frame.compose(&self.pose(v)?);
                let owner = format!("body `{body}`");
                let part = placed_mass(mass, inertia, &at, &owner, &mut self.warnings)
                    .map_err(|w| format!("{}: {w}", i.label()))?;
                self.links[link].parts.push(part);
            }
        }
        for geom in el.children("geom") {
            self.geom(geom, body, link, frame, childclass, from_geoms)?;
        }
        for child in el.children("body") {
            self.body(child, link, frame, childclass)?;
        }
        Ok(())
    }

    /// A geom of `body`: its mass when `with_mass`, its contact shape when it can collide.
    fn geom(
        &mut self,
        el: &Element,
        body: &str,
        link: usize,
        frame: &Pose,
        childclass: &str,
        with_mass: bool,
    ) -> Checked<()> {
        let v = view(&self.classes, el, Kind::Geom, childclass)?;
        let label = || format!("{} of body `{body}`", el.label());
        let visual = v.number("contype", 1.0)? == 0.0 && v.number("conaffinity", 1.0)? == 0.0;
        if visual && self.compiler.discard_visual {
            return Ok(());
        }
        let kind = v.get("type").unwrap_or("sphere");
        if kind != "mesh" && v.get("mesh").is_some() {
            return Err(format!(
                "{}: a {kind} fitted to a mesh is not supported: give its size, or make it a \
                 mesh geom",
                label()
            ));
        }
        let size = v.numbers("size")?.unwrap_or_default();
        let fromto = v.array::<6>("fromto")?;
        let (pose, solid) = if let Some(f) = fromto {
            let d = [f[0] - f[3], f[1] - f[4], f[2] - f[5]];
            let half = 0.5 * dot(d, d).sqrt();
            let (Some(dir), Some(&r)) = (unit(d), size.first()) else {
                return Err(format!(
                    "{}: `fromto` needs two distinct points and `size` its radius",
                    label()
                ));
            };
            if v.array::<3>("pos")?.is_some_and(|p| p != [0.0; 3]) {
                return Err(format!("{}: both `pos` and `fromto` are given", label()));
            }
            let solid = match kind {
                "capsule" => Solid::Capsule(r, half),
                "cylinder" => Solid::Cylinder(r, half),
                "box" => Solid::Box([r, r, half]),
                "ellipsoid" => Solid::Ellipsoid([r, r, half]),
                _ => {
                    return Err(format!(
                        "{}: `fromto` takes a capsule, cylinder, box or ellipsoid, not a {kind}",
                        label()
                    ));
                }
            };
            let mid = [
                0.5 * (f[0] + f[3]),
                0.5 * (f[1] + f[4]),
                0.5 * (f[2] + f[5]),
            ];
            (
                Pose {
                    xyz: mid,
                    rotation: z_to(dir),
                },
                solid,
            )
        } else {
            let need = |n: usize| {
                if size.len() >= n {
                    Ok(&size[..n])
                } else {
                    Err(format!(
                        "{}: a {kind} needs {n} numbers in `size`, got {size:?}",
                        label()
                    ))
                }
            };
            let solid = match kind {
                "sphere" => Solid::Sphere(need(1)?[0]),
                "capsule" => Solid::Capsule(need(2)?[0], size[1]),
                "cylinder" => Solid::Cylinder(need(2)?[0], size[1]),
                "box" => Solid::Box([need(3)?[0], size[1], size[2]]),
                "ellipsoid" => Solid::Ellipsoid([need(3)?[0], size[1], size[2]]),
                "mesh" => Solid::Mesh(
                    v.get("mesh")
                        .ok_or_else(|| format!("{}: a mesh geom without `mesh`", label()))?
                        .to_owned(),
                ),
                "plane" | "hfield" | "sdf" => {
                    return Err(format!(
                        "{}: a {kind} on a body is not supported (the ground is the simulator's \
                         plane); a {kind} may only be a geom of <worldbody>",
                        label()
                    ));
                }
                other => return Err(format!("{}: unknown geom type `{other}`", label())),
            };
            (self.pose(v)?, solid)
        };
        let dims = match &solid {
            Solid::Sphere(r) => vec![*r],
            Solid::Capsule(r, h) | Solid::Cylinder(r, h) => vec![*r, *h],
            Solid::Ellipsoid(e) | Solid::Box(e) => e.to_vec(),
            Solid::Mesh(_) => Vec::new(),
        };
        if dims.iter().any(|&d| d <= 0.0) {
            return Err(format!("{}: sizes {dims:?} must be > 0", label()));
        }
        let at = frame.compose(&pose);

        let group = v.number("group", 0.0)?;
        if with_mass && (self.compiler.groups.0..=self.compiler.groups.1).contains(&group) {
            let explicit = v.get("mass").map(|_| v.number("mass", 0.0)).transpose()?;
            let density = v.number("density", 1000.0)?;
            if explicit.unwrap_or(density) != 0.0 {
                let (volume, per_mass) = mass_properties(&solid).ok_or_else(|| {
                    format!(
                        "{}: body `{body}` takes its mass from its geoms, and MuJoCo computes a \
                         mesh's from its volume, which is not read: give the body an <inertial>",
                        label()
                    )
                })?;
                let mass = explicit.unwrap_or(density * volume);
                if mass < 0.0 {
                    return Err(format!("{}: mass {mass} must be >= 0", label()));
                }
                let inertia = [
                    [mass * per_mass[0], 0.0, 0.0],
                    [0.0, mass * per_mass[1], 0.0],
                    [0.0, 0.0, mass * per_mass[2]],
                ];
                let owner = format!("body `{body}`");
                let part = placed_mass(mass, inertia, &at, &owner, &mut self.warnings)
                    .map_err(|w| format!("{}: {w}", label()))?;
                self.links[link].parts.push(part);
            }
        }

        if visual {
            return Ok(());
        }
        let (shape, centre, note) = match solid {
            Solid::Sphere(r) => (Shape::Sphere { radius: r }, [0.0; 3], None),
            Solid::Capsule(r, h) => (
                Shape::Capsule {
                    radius: r,
                    length: 2.0 * h,
                },
                [0.0; 3],
                None,
            ),
            Solid::Box(h) => (
                Shape::Box {
                    size: h.map(|x| 2.0 * x),
                },
                [0.0; 3],
                None,
            ),
            Solid::Cylinder(r, h) => {
                let shape = crate::model::cylinder_shape(r, 2.0 * h);
                let note = format!(
                    "cylinder (radius {r}, half-length {h}) approximated by {}: the contact model \
                     has no flat-ended shape",
                    crate::model::cylinder_words(&shape)
                );
                (shape, [0.0; 3], Some(note))
            }
            Solid::Ellipsoid(e) => {
                let corners: Vec<Vec3> = (0..8)
                    .map(|c| std::array::from_fn(|k| if c >> k & 1 == 1 { e[k] } else { -e[k] }))
                    .collect();
                let (shape, centre) = crate::mesh::fit(&corners);
                let note = format!(
                    "ellipsoid {e:?} approximated by {}: the contact model has no ellipsoid",
                    fitted_shape(&shape)
                );
                (shape, centre, Some(note))
            }
            Solid::Mesh(name) => {
                if self.options.ignore_mesh_collisions {
                    return Ok(());
                }
                let mesh = self.meshes.get(&name).ok_or_else(|| {
                    format!("{}: mesh `{name}` is not an <asset> <mesh>", label())
                })?;
                let vertices = crate::mesh::vertices(&mesh.file, mesh.scale)
                    .map_err(|w| format!("{}: {w}", label()))?;
                let (shape, centre) = crate::mesh::fit(&vertices);
                let note = format!(
                    "collision mesh `{name}` approximated by {} centred at [{:.4}, {:.4}, {:.4}] \
                     of the geom frame (contacts are points: a mesh is reduced to a primitive \
                     through its extremes)",
                    fitted_shape(&shape),
                    centre[0],
                    centre[1],
                    centre[2]
                );
                (shape, centre, Some(note))
            }
        };
        if let Some(note) = note {
            self.warnings.push(format!("{}: {note}", label()));
        }
        self.links[link].collisions.push(Collision {
            shape,
            origin: at.compose(&translation(centre)),
        });
        Ok(())
    }

    /// The `<actuator>` elements, and the effort limits they give their joints.
    fn read_actuators(&mut self, root: &Element) -> Checked<()> {
        let elements: Vec<&Element> = root
            .children("actuator")
            .flat_map(|a| &a.children)
            .collect();
        let mut driven = HashSet::new();
        for (i, el) in elements.into_iter().enumerate() {
            self.kept.push(None);
            let v = view(&self.classes, el, Kind::Actuator, "main")?;
            let name = v
                .get("name")
                .map_or_else(|| format!("actuator{i}"), str::to_owned);
            let Some(target) = v.get("joint").or_else(|| v.get("jointinparent")) else {
                self.warnings.push(format!(
                    "{}: an actuator on a tendon, site or body is not read: skipped",
                    el.label()
                ));
                continue;
            };
            let Some(k) = self.joints.iter().position(|j| j.name == target) else {
                if self.file_joints.iter().any(|j| j.name == target) {
                    self.warnings.push(format!(
                        "{}: an actuator on the free joint `{target}` is not read: skipped",
                        el.label()
                    ));
                    continue;
                }
                return Err(format!("{}: joint `{target}` is not defined", el.label()));
            };
            let kind = match el.name.as_str() {
                "motor" => ActuatorKind::Motor,
                "position" => ActuatorKind::Position {
                    kp: v.number("kp", 1.0)?,
                    kv: v.number("kv", 0.0)?,
                },
                "velocity" => ActuatorKind::Velocity {
                    kv: v.number("kv", 1.0)?,
                },
                "general" => match general(v)? {
                    Some(kind) => kind,
                    None => {
                        self.warnings.push(format!(
                            "{}: a general actuator other than a motor, position or velocity \
                             servo (fixed gain, no dynamics, an affine bias of that form) is not \
                             read: skipped",
                            el.label()
                        ));
                        continue;
                    }
                },
                other => {
                    self.warnings.push(format!(
                        "{}: <{other}> actuators are not read: skipped",
                        el.label()
                    ));
                    continue;
                }
            };
            if el.name == "position" && v.get("dampratio").is_some() {
                self.warnings.push(format!(
                    "{}: `dampratio` is not resolved (it needs the mass matrix): kv is {}",
                    el.label(),
                    v.number("kv", 0.0)?
                ));
            }
            let gear = v
                .numbers("gear")?
                .and_then(|g| g.first().copied())
                .unwrap_or(1.0);
            let mut ctrlrange = self.range(v, "ctrllimited", "ctrlrange")?;
            let inherit = v.number("inheritrange", 0.0)?;
            if el.name == "position" && inherit > 0.0 {
                let joint = &self.joints[k];
                let (lo, hi) = joint.limits.ok_or_else(|| {
                    format!(
                        "{}: `inheritrange` on joint `{}`, which has no range",
                        el.label(),
                        joint.name
                    )
                })?;
                let (mid, half) = (0.5 * (lo + hi), 0.5 * (hi - lo) * inherit);
                ctrlrange = Some((mid - half, mid + half));
            }
            let forcerange = self.range(v, "forcelimited", "forcerange")?;
            if !driven.insert(k) {
                self.warnings.push(format!(
                    "{}: joint `{target}` has several actuators: its effort limit comes from the \
                     first",
                    el.label()
                ));
            } else if self.joints[k].effort_limit.is_infinite() {
                let limit = match (forcerange, ctrlrange, kind) {
                    (Some(range), ..) => {
                        gear.abs() * magnitude(&mut self.warnings, el, "forcerange", range)
                    }
                    (None, Some(range), ActuatorKind::Motor) => {
                        gear.abs() * magnitude(&mut self.warnings, el, "ctrlrange", range)
                    }
                    _ => f64::INFINITY,
                };
                self.joints[k].effort_limit = limit;
            }
            if let Some(last) = self.kept.last_mut() {
                *last = Some(self.actuators.len());
            }
            self.actuators.push(Actuator {
                name,
                joint: target.to_owned(),
                kind,
                gear,
                ctrlrange,
                forcerange,
            });
        }
        Ok(())
    }

    /// The `<key>` elements, in the order of `model`'s joints.
    fn keyframes(&self, root: &Element, model: &Model) -> Checked<Vec<Keyframe>> {
        let qpos0: Vec<f64> = self
            .file_joints
            .iter()
            .flat_map(|j| j.qpos0.iter().copied())
            .collect();
        let mut keys = Vec::new();
        for (i, el) in root
            .children("keyframe")
            .flat_map(|k| k.children("key"))
            .enumerate()
        {
            let v = View::plain(el);
            let qpos = v.numbers("qpos")?.unwrap_or_else(|| qpos0.clone());
            if qpos.len() != qpos0.len() {
                return Err(format!(
                    "{}: `qpos` has {} numbers; the model's qpos has {} (7 for the free joint, \
                     then one per hinge or slide)",
                    el.label(),
                    qpos.len(),
                    qpos0.len()
                ));
            }
            let mut joint_pos = vec![0.0; model.num_joints()];
            let mut base = None;
            let mut adr = 0;
            for j in &self.file_joints {
                let values = &qpos[adr..adr + j.qpos0.len()];
                adr += j.qpos0.len();
                match (model.joint_index(&j.name), values) {
                    (Some(k), [q]) => joint_pos[k] = *q,
                    (_, &[x, y, z, qw, qx, qy, qz]) => base = Some(([x, y, z], [qw, qx, qy, qz])),
                    _ => {}
                }
            }
            let base = match model.base {
                BaseKind::Fixed => None,
                BaseKind::Floating => base.or_else(|| {
                    let p = self.root_pose;
                    Some((p.xyz, mat_to_quat(&p.rotation)))
                }),
            };
            let ctrl_in = v.numbers("ctrl")?;
            if let Some(c) = &ctrl_in
                && c.len() != self.kept.len()
            {
                return Err(format!(
                    "{}: `ctrl` has {} numbers for {} actuators",
                    el.label(),
                    c.len(),
                    self.kept.len()
                ));
            }
            let mut ctrl = vec![0.0; self.actuators.len()];
            for (file_index, kept) in self.kept.iter().enumerate() {
                if let (Some(k), Some(c)) = (kept, &ctrl_in) {
                    ctrl[*k] = c[file_index];
                }
            }
            keys.push(Keyframe {
                name: v
                    .get("name")
                    .map_or_else(|| format!("key{i}"), str::to_owned),
                joint_pos,
                base_pos: base.map(|b| b.0),
                base_quat: base.map(|b| b.1),
                ctrl,
            });
        }
        Ok(keys)
    }
}

impl LinkParts {
    fn new(name: String) -> Self {
        Self {
            name,
            parts: Vec::new(),
            collisions: Vec::new(),
        }
    }
}

/// `el` seen through its class (its `class`, else `childclass`).
fn view<'e>(
    classes: &'e HashMap<String, Class>,
    el: &'e Element,
    kind: Kind,
    childclass: &str,
) -> Checked<View<'e>> {
    let name = el.attr("class").unwrap_or(childclass);
    let class = classes
        .get(name)
        .ok_or_else(|| format!("{}: class `{name}` is not defined in <default>", el.label()))?;
    Ok(View {
        el,
        class: Some(match kind {
            Kind::Joint => &class.joint,
            Kind::Geom => &class.geom,
            Kind::Mesh => &class.mesh,
            Kind::Actuator => &class.actuator,
        }),
    })
}

/// The largest magnitude of a force range, with a warning when it is not symmetric.
fn magnitude(warnings: &mut Vec<String>, el: &Element, key: &str, (lo, hi): (f64, f64)) -> f64 {
    let m = lo.abs().max(hi.abs());
    if lo.abs() != hi.abs() {
        warnings.push(format!(
            "{}: `{key}` [{lo}, {hi}] is not symmetric: the effort limit is {m}, the larger \
             magnitude",
            el.label()
        ));
    }
    m
}

/// The joints of a body (`<joint>` and `<freejoint>`).
fn joint_elements(body: &Element) -> impl Iterator<Item = &Element> {
    body.children
        .iter()
        .filter(|c| c.name == "joint" || c.name == "freejoint")
}

fn unsupported(el: &Element, place: &str) -> String {
    format!(
        "{} {place} is not supported (bodies, joints, geoms and inertials are read; sites, \
         cameras and lights ignored)",
        el.label()
    )
}

/// A `<general>` actuator as a motor, position or velocity servo, or `None` when it is
/// none of them. Force = `gain ctrl + bias`, gain `gainprm[0]`, bias `biasprm[0] +
/// biasprm[1] q + biasprm[2] qd`.
fn general(v: View) -> Checked<Option<ActuatorKind>> {
    let gain_fixed = v.get("gaintype").unwrap_or("fixed") == "fixed";
    let no_dynamics = v.get("dyntype").unwrap_or("none") == "none";
    let g = v.numbers("gainprm")?.unwrap_or_default();
    let b = v.numbers("biasprm")?.unwrap_or_default();
    let at = |p: &[f64], k: usize| p.get(k).copied().unwrap_or(0.0);
    let gain = if g.is_empty() { 1.0 } else { g[0] };
    let (b0, b1, b2) = (at(&b, 0), at(&b, 1), at(&b, 2));
    if !(gain_fixed && no_dynamics && b0 == 0.0) {
        return Ok(None);
    }
    Ok(match v.get("biastype").unwrap_or("none") {
        "none" if gain == 1.0 => Some(ActuatorKind::Motor),
        "affine" if b1 == -gain => Some(ActuatorKind::Position { kp: gain, kv: -b2 }),
        "affine" if b1 == 0.0 && b2 == -gain => Some(ActuatorKind::Velocity { kv: gain }),
        _ => None,
    })
}

/// Volume and the diagonal inertia per unit mass in the geom frame, by MuJoCo's formulas
/// (`mjCGeom::GetVolume` and `SetInertia`); `None` for a mesh.
fn mass_properties(solid: &Solid) -> Option<(f64, Vec3)> {
    use std::f64::consts::PI;
    Some(match *solid {
        Solid::Sphere(r) => (4.0 / 3.0 * PI * r.powi(3), [0.4 * r * r; 3]),
        Solid::Capsule(r, h) => {
            // A cylinder of height 2h and two hemispheres, each moved to its end.
            let height = 2.0 * h;
            let sphere = 4.0 * r / (4.0 * r + 3.0 * height);
            let cylinder = 1.0 - sphere;
            let side = cylinder * (3.0 * r * r + height * height) / 12.0
                + 0.4 * sphere * r * r
                + sphere * height * (3.0 * r + 2.0 * height) / 8.0;
            let axial = cylinder * r * r / 2.0 + 0.4 * sphere * r * r;
            (PI * r * r * (height + 4.0 / 3.0 * r), [side, side, axial])
        }
        Solid::Cylinder(r, h) => {
            let side = (3.0 * r * r + 4.0 * h * h) / 12.0;
            (PI * r * r * 2.0 * h, [side, side, r * r / 2.0])
        }
        Solid::Ellipsoid([a, b, c]) => (
            4.0 / 3.0 * PI * a * b * c,
            [
                (b * b + c * c) / 5.0,
                (a * a + c * c) / 5.0,
                (a * a + b * b) / 5.0,
            ],
        ),
        Solid::Box([a, b, c]) => (
            8.0 * a * b * c,
            [
                (b * b + c * c) / 3.0,
                (a * a + c * c) / 3.0,
                (a * a + b * b) / 3.0,
            ],
        ),
        Solid::Mesh(_) => return None,
    })
}

fn translation(xyz: Vec3) -> Pose {
    Pose {
        xyz,
        rotation: IDENTITY,
    }
}

fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// `v / |v|`, or `None` for a (nearly) zero vector.
fn unit(v: Vec3) -> Option<Vec3> {
    let n = dot(v, v).sqrt();
    (n > 1e-12).then(|| v.map(|x| x / n))
}

/// The smallest rotation that takes the z axis to the unit vector `v` (MuJoCo's
/// `mjuu_z2quat`).
fn z_to(v: Vec3) -> Mat3 {
    let axis = [-v[1], v[0], 0.0];
    let s = dot(axis, axis).sqrt();
    if s < 1e-12 {
        return if v[2] > 0.0 {
            IDENTITY
        } else {
            [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]
        };
    }
    axis_angle(axis.map(|a| a / s), s.atan2(v[2]))
}

/// The rotation of a quaternion `(w, x, y, z)` (normalised), or `None` for zero.
fn quat_to_mat(q: [f64; 4]) -> Option<Mat3> {
    let n = q.iter().map(|x| x * x).sum::<f64>().sqrt();
    if n < 1e-12 {
        return None;
    }
    let [w, x, y, z] = q.map(|v| v / n);
    Some([
        [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y - w * z),
            2.0 * (x * z + w * y),
        ],
        [
            2.0 * (x * y + w * z),
            1.0 - 2.0 * (x * x + z * z),
            2.0 * (y * z - w * x),
        ],
        [
            2.0 * (x * z - w * y),
            2.0 * (y * z + w * x),
            1.0 - 2.0 * (x * x + y * y),
        ],
    ])
}

/// The unit quaternion `(w, x, y, z)` of a rotation, with `w >= 0`.
fn mat_to_quat(m: &Mat3) -> [f64; 4] {
    let trace = m[0][0] + m[1][1] + m[2][2];
    let q = if trace > 0.0 {
        let s = 2.0 * (trace + 1.0).sqrt();
        [
            s / 4.0,
            (m[2][1] - m[1][2]) / s,
            (m[0][2] - m[2][0]) / s,
            (m[1][0] - m[0][1]) / s,
        ]
    } else if m[0][0] > m[1][1] && m[0][0] > m[2][2] {
        let s = 2.0 * (1.0 + m[0][0] - m[1][1] - m[2][2]).sqrt();
        [
            (m[2][1] - m[1][2]) / s,
            s / 4.0,
            (m[0][1] + m[1][0]) / s,
            (m[0][2] + m[2][0]) / s,
        ]
    } else if m[1][1] > m[2][2] {
        let s = 2.0 * (1.0 + m[1][1] - m[0][0] - m[2][2]).sqrt();
        [
            (m[0][2] - m[2][0]) / s,
            (m[0][1] + m[1][0]) / s,
            s / 4.0,
            (m[1][2] + m[2][1]) / s,
        ]
    } else {
        let s = 2.0 * (1.0 + m[2][2] - m[0][0] - m[1][1]).sqrt();
        [
            (m[1][0] - m[0][1]) / s,
            (m[0][2] + m[2][0]) / s,
            (m[1][2] + m[2][1]) / s,
            s / 4.0,
        ]
    };
    if q[0] < 0.0 { q.map(|v| -v) } else { q }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{mat_vec, transpose};

    fn parse(text: &str) -> Robot {
        parse_mjcf(text, "test.xml", &MjcfOptions::default()).expect("valid MJCF")
    }

    /// The message of an [`Error::Mjcf`] for `test.xml`.
    fn mjcf_error(text: &str) -> String {
        match parse_mjcf(text, "test.xml", &MjcfOptions::default()) {
            Err(Error::Mjcf { path, what }) => {
                assert_eq!(path, "test.xml");
                what
            }
            other => panic!("expected an MJCF error, got {other:?}"),
        }
    }

    /// A robot: `worldbody` holding `body`, in radians unless `compiler` says otherwise.
    fn robot(compiler: &str, body: &str) -> String {
        format!(
            r#"<mujoco model="t"><compiler {compiler}/><worldbody>
              <geom type="plane" size="1 1 0.1"/>{body}</worldbody></mujoco>"#
        )
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    fn assert_vec(got: Vec3, want: Vec3, tol: f64) {
        for k in 0..3 {
            assert!(close(got[k], want[k], tol), "{got:?} != {want:?}");
        }
    }

    fn assert_mat(got: &Mat3, want: &Mat3, tol: f64) {
        for r in 0..3 {
            assert_vec(got[r], want[r], tol);
        }
    }

    /// World poses of the links for joint positions `q` (and a floating base at `base`).
    fn link_poses(model: &Model, q: &[f64], base: Option<(Vec3, [f64; 4])>) -> Vec<Pose> {
        let mut poses = vec![Pose::default(); model.links.len()];
        if let Some((xyz, quat)) = base {
            poses[0] = Pose {
                xyz,
                rotation: quat_to_mat(quat).expect("a unit quaternion"),
            };
        }
        for (k, j) in model.joints.iter().enumerate() {
            let motion = match j.kind {
                JointKind::Revolute => Pose {
                    xyz: [0.0; 3],
                    rotation: axis_angle(j.axis, q[k]),
                },
                JointKind::Prismatic => translation(j.axis.map(|a| a * q[k])),
            };
            poses[k + 1] = poses[j.parent].compose(&j.origin).compose(&motion);
        }
        poses
    }

    #[test]
    fn angles_are_degrees_unless_the_compiler_says_radian() {
        let body = |range: &str, euler: &str| {
            format!(
                r#"<body name="base"><geom size="0.1"/>
                  <body name="arm" euler="{euler}"><joint name="j" range="{range}"/>
                  <geom size="0.1"/></body></body>"#
            )
        };
        let degrees = parse(&robot("", &body("-90 45", "0 0 90")));
        let radians = parse(&robot(
            r#"angle="radian""#,
            &body(
                "-1.5707963267948966 0.7853981633974483",
                "0 0 1.5707963267948966",
            ),
        ));
        for m in [&degrees.model, &radians.model] {
            let j = &m.joints[0];
            let (lo, hi) = j.limits.expect("a range makes it limited");
            assert!(close(lo, -std::f64::consts::FRAC_PI_2, 1e-12), "{lo}");
            assert!(close(hi, std::f64::consts::FRAC_PI_4, 1e-12), "{hi}");
            // 90 degrees about z: x goes to y.
            assert_vec(
                mat_vec(&j.origin.rotation, [1.0, 0.0, 0.0]),
                [0.0, 1.0, 0.0],
                1e-12,
            );
        }
        // A slide joint's range is a length, never converted.
        let slide = parse(&robot(
            "",
            r#"<body name="base"><geom size="0.1"/><body name="s">
              <joint name="s" type="slide" range="-0.5 0.5"/><geom size="0.1"/></body></body>"#,
        ));
        assert_eq!(slide.model.joints[0].limits, Some((-0.5, 0.5)));
    }

    #[test]
    fn orientations_agree_and_follow_eulerseq() {
        // 90 degrees about z, in each form.
        let forms = [
            r#"quat="0.7071067811865476 0 0 0.7071067811865476""#,
            r#"axisangle="0 0 2 90""#,
            r#"euler="0 0 90""#,
            r#"xyaxes="0 1 0 -1 0 0""#,
        ];
        for form in forms {
            let m = parse(&robot(
                "",
                &format!(r#"<body name="b"><geom size="0.1" pos="1 0 0" {form}/></body>"#),
            ))
            .model;
            let r = m.links[0].collisions[0].origin.rotation;
            assert_mat(
                &r,
                &[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
                1e-12,
            );
        }
        // zaxis: the smallest rotation taking z to the vector.
        let m = parse(&robot(
            "",
            r#"<body name="b"><geom size="0.1" zaxis="1 0 0"/></body>"#,
        ));
        let r = m.model.links[0].collisions[0].origin.rotation;
        assert_vec(mat_vec(&r, [0.0, 0.0, 1.0]), [1.0, 0.0, 0.0], 1e-12);
        assert_vec(mat_vec(&r, [0.0, 1.0, 0.0]), [0.0, 1.0, 0.0], 1e-12);
        // Intrinsic x then z: R = Rx Rz; extrinsic (upper case): R = Rz Rx.
        let (rx, rz) = (
            axis_angle([1.0, 0.0, 0.0], 0.5),
            axis_angle([0.0, 0.0, 1.0], 0.3),
        );
        for (seq, want) in [("xyz", mat_mul(&rx, &rz)), ("XYZ", mat_mul(&rz, &rx))] {
            let m = parse(&robot(
                &format!(r#"angle="radian" eulerseq="{seq}""#),
                r#"<body name="b"><geom size="0.1" euler="0.5 0 0.3"/></body>"#,
            ));
            assert_mat(
                &m.model.links[0].collisions[0].origin.rotation,
                &want,
                1e-12,
            );
        }
        let msg = mjcf_error(&robot(
            "",
            r#"<body name="b"><geom size="0.1" euler="0 0 1" axisangle="0 0 1 1"/></body>"#,
        ));
        assert!(msg.contains("<geom>") && msg.contains("twice"), "{msg}");
    }

    #[test]
    fn default_classes_nest_and_childclass_applies_below() {
        let text = r#"<mujoco><compiler angle="radian"/>
          <default>
            <joint damping="1" armature="0.1"/>
            <default class="leg">
              <joint axis="0 1 0" range="-1 1"/>
              <default class="knee"><joint range="-2 0" damping="3"/></default>
            </default>
          </default>
          <worldbody><body name="base" childclass="leg"><geom size="0.1"/>
            <body name="thigh"><joint name="hip"/><geom size="0.1"/>
              <body name="shin"><joint name="knee" class="knee" armature="0.5"/><geom size="0.1"/>
                <body name="foot"><joint name="ankle" class="main"/><geom size="0.1"/></body>
              </body>
            </body>
          </body></worldbody></mujoco>"#;
        let m = parse(text).model;
        let get = |name: &str| &m.joints[m.joint_index(name).expect("joint")];
        // `leg` from the childclass, `main` beneath it.
        let hip = get("hip");
        assert_eq!((hip.axis, hip.limits), ([0.0, 1.0, 0.0], Some((-1.0, 1.0))));
        assert_eq!((hip.damping, hip.armature), (1.0, 0.1));
        // `knee` over `leg` over `main`, and the element's own attribute over all.
        let knee = get("knee");
        assert_eq!(
            (knee.axis, knee.limits),
            ([0.0, 1.0, 0.0], Some((-2.0, 0.0)))
        );
        assert_eq!((knee.damping, knee.armature), (3.0, 0.5));
        // An explicit class="main" leaves the childclass.
        let ankle = get("ankle");
        assert_eq!((ankle.axis, ankle.limits), ([0.0, 0.0, 1.0], None));
        assert_eq!(ankle.damping, 1.0);

        let msg = mjcf_error(&robot(
            "",
            r#"<body name="b"><geom class="nowhere" size="0.1"/></body>"#,
        ));
        assert!(msg.contains("<geom>") && msg.contains("`nowhere`"), "{msg}");
    }

    /// Mass from geoms by MuJoCo's formulas, density 1000 unless given; `mass` overrides.
    #[test]
    fn inertia_from_geoms_follows_mujoco() {
        use std::f64::consts::PI;
        let one = |geom: &str| {
            let m = parse(&robot(
                r#"angle="radian""#,
                &format!(r#"<body name="b">{geom}</body>"#),
            ));
            let l = &m.model.links[0];
            (l.mass, l.inertia)
        };
        let diag = |d: Vec3| [[d[0], 0.0, 0.0], [0.0, d[1], 0.0], [0.0, 0.0, d[2]]];
        let (r, h) = (0.1, 0.2);

        let (mass, inertia) = one(r#"<geom type="sphere" size="0.1"/>"#);
        let m = 1000.0 * 4.0 / 3.0 * PI * r * r * r;
        assert!(close(mass, m, 1e-12));
        assert_mat(&inertia, &diag([0.4 * m * r * r; 3]), 1e-12);

        let (mass, inertia) = one(r#"<geom type="box" size="0.1 0.2 0.3" density="500"/>"#);
        let m = 500.0 * 8.0 * 0.1 * 0.2 * 0.3;
        assert!(close(mass, m, 1e-12));
        assert_mat(
            &inertia,
            &diag([
                m * (0.04 + 0.09) / 3.0,
                m * (0.01 + 0.09) / 3.0,
                m * (0.01 + 0.04) / 3.0,
            ]),
            1e-12,
        );

        let (mass, inertia) = one(r#"<geom type="cylinder" size="0.1 0.2" mass="3"/>"#);
        assert_eq!(mass, 3.0);
        let side = 3.0 * (3.0 * r * r + 4.0 * h * h) / 12.0;
        assert_mat(&inertia, &diag([side, side, 3.0 * r * r / 2.0]), 1e-12);

        let (mass, inertia) = one(r#"<geom type="ellipsoid" size="0.1 0.2 0.3"/>"#);
        let m = 1000.0 * 4.0 / 3.0 * PI * 0.1 * 0.2 * 0.3;
        assert!(close(mass, m, 1e-12));
        assert_mat(
            &inertia,
            &diag([
                m * (0.04 + 0.09) / 5.0,
                m * (0.01 + 0.09) / 5.0,
                m * (0.01 + 0.04) / 5.0,
            ]),
            1e-12,
        );

        // A capsule along x by fromto: a cylinder of length 2h and two hemispheres, whose
        // centres of mass lie 3r/8 beyond the ends.
        let (mass, inertia) = one(r#"<geom type="capsule" size="0.1" fromto="-0.2 0 0 0.2 0 0"/>"#);
        let (mc, ms) = (
            1000.0 * PI * r * r * 2.0 * h,
            1000.0 * 4.0 / 3.0 * PI * r * r * r,
        );
        assert!(close(mass, mc + ms, 1e-12));
        let axial = mc * r * r / 2.0 + 0.4 * ms * r * r;
        // Each hemisphere about its own centre of mass, then moved (parallel axes).
        let d = h + 3.0 * r / 8.0;
        let hemi = 0.4 * ms * r * r - ms * (3.0 * r / 8.0).powi(2) + ms * d * d;
        let side = mc * (3.0 * r * r + 4.0 * h * h) / 12.0 + hemi;
        assert_mat(&inertia, &diag([axial, side, side]), 1e-9);

        // Two geoms: the parallel-axis theorem about their common centre.
        let (mass, inertia) = one(r#"<geom type="sphere" size="0.1" pos="0 0 0.5" mass="1"/>
               <geom type="sphere" size="0.1" pos="0 0 -0.5" mass="1"/>"#);
        assert_eq!(mass, 2.0);
        assert_mat(&inertia, &diag([0.008 + 0.5, 0.008 + 0.5, 0.008]), 1e-12);

        // An <inertial> wins over the geoms unless inertiafromgeom is true.
        let body = r#"<body name="b"><inertial pos="0 0 0" mass="2" diaginertia="1 1 1"/>
          <geom type="sphere" size="0.1" mass="5"/></body>"#;
        assert_eq!(parse(&robot("", body)).model.links[0].mass, 2.0);
        let forced = parse(&robot(r#"inertiafromgeom="true""#, body));
        assert_eq!(forced.model.links[0].mass, 5.0);
        let none = parse(&robot(
            r#"inertiafromgeom="false""#,
            r#"<body name="b"><geom size="0.1"/></body>"#,
        ));
        assert_eq!(none.model.links[0].mass, 0.0);
    }

    #[test]
    fn a_body_without_joints_is_merged_into_its_parent() {
        let text = robot(
            r#"angle="radian""#,
            r#"<body name="base"><freejoint/>
                <inertial pos="0 0 0" mass="1" diaginertia="0.1 0.1 0.1"/>
                <body name="weight" pos="1 0 0" euler="0 0 1.5707963267948966">
                  <inertial pos="0 1 0" mass="1" diaginertia="0.1 0.2 0.3"/>
                  <geom type="sphere" size="0.05" pos="0 1 0" contype="1"/>
                  <body name="arm"><joint name="j" axis="0 0 1"/>
                    <inertial pos="0 0 0" mass="1" diaginertia="0.1 0.1 0.1"/></body>
                </body>
              </body>"#,
        );
        let m = parse(&text).model;
        let names: Vec<&str> = m.links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["base", "arm"]);
        let base = &m.links[0];
        // The weight's centre is (1, 0, 0) + Rz(90) (0, 1, 0) = (0, 0, 0): on the base's.
        assert_eq!(base.mass, 2.0);
        assert_vec(base.com, [0.0; 3], 1e-12);
        // Its inertia turned by 90 degrees about z: (0.2, 0.1, 0.3).
        let i = base.inertia;
        assert_vec([i[0][0], i[1][1], i[2][2]], [0.3, 0.2, 0.4], 1e-12);
        assert_vec(base.collisions[0].origin.xyz, [0.0; 3], 1e-12);
        // The joint of the merged body's child sits where the weight is.
        assert_vec(m.joints[0].origin.xyz, [1.0, 0.0, 0.0], 1e-12);
        assert_eq!(m.base, BaseKind::Floating);
    }

    #[test]
    fn the_base_comes_from_the_file_unless_overridden() {
        let free = robot(
            "",
            r#"<body name="b" pos="0 0 1"><freejoint name="root"/><geom size="0.1"/></body>"#,
        );
        let joint_free = free.replace(r#"<freejoint name="root"/>"#, r#"<joint type="free"/>"#);
        let welded = free.replace(r#"<freejoint name="root"/>"#, "");
        for (text, want) in [
            (&free, BaseKind::Floating),
            (&joint_free, BaseKind::Floating),
            (&welded, BaseKind::Fixed),
        ] {
            let m = parse(text).model;
            assert_eq!((m.base, m.links.len()), (want, 1));
        }
        // Welded where the file puts it: the root link is the world's frame.
        let m = parse(&welded).model;
        assert_vec(m.links[0].collisions[0].origin.xyz, [0.0, 0.0, 1.0], 1e-12);
        // Overridden both ways.
        let fixed = MjcfOptions {
            base: Some(BaseKind::Fixed),
            ..MjcfOptions::default()
        };
        let m = parse_mjcf(&free, "t.xml", &fixed).expect("welded").model;
        assert_eq!(m.base, BaseKind::Fixed);
        assert_vec(m.links[0].collisions[0].origin.xyz, [0.0, 0.0, 1.0], 1e-12);
        let floating = MjcfOptions {
            base: Some(BaseKind::Floating),
            ..MjcfOptions::default()
        };
        let m = parse_mjcf(&welded, "t.xml", &floating)
            .expect("floats")
            .model;
        assert_eq!(m.base, BaseKind::Floating);
        // A top-level body hinged to the world hangs from a fixed `world` link.
        let pendulum = parse(&robot(
            "",
            r#"<body name="pole"><joint name="swing"/><geom size="0.1"/></body>"#,
        ))
        .model;
        assert_eq!(pendulum.base, BaseKind::Fixed);
        let names: Vec<&str> = pendulum.links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            (names.as_slice(), pendulum.links[0].mass),
            (["world", "pole"].as_slice(), 0.0)
        );
    }

    /// qpos follows the file (depth-first); the model's joints are breadth-first.
    #[test]
    fn keyframes_and_actuators_follow_the_model() {
        let leg = |side: &str, y: f64| {
            format!(
                r#"<body name="{side}_hip" pos="0 {y} 0"><joint name="{side}_hip" axis="1 0 0"/>
                  <geom size="0.05"/><body name="{side}_knee" pos="0 0 -0.2">
                  <joint name="{side}_knee" axis="0 1 0" range="-2 0"/><geom size="0.05"/>
                  </body></body>"#
            )
        };
        let text = format!(
            r#"<mujoco><compiler angle="radian"/>
              <default><motor ctrlrange="-1 1" gear="20"/></default>
              <worldbody><body name="base" pos="0 0 0.4"><freejoint/><geom size="0.1"/>
              {}{}</body></worldbody>
              <actuator>
                <motor name="l_hip" joint="l_hip"/>
                <position name="l_knee" joint="l_knee" kp="30" kv="0.5" forcerange="-12 12"/>
                <velocity name="r_hip" joint="r_hip" kv="4"/>
                <general name="r_knee" joint="r_knee" gainprm="40" biastype="affine"
                  biasprm="0 -40 -2" ctrlrange="-1 0"/>
                <motor name="tendon" tendon="t"/>
              </actuator>
              <keyframe>
                <key name="home" qpos="1 2 3 1 0 0 0 0.1 -0.2 0.3 -0.4" ctrl="1 2 3 4 5"/>
                <key/>
              </keyframe></mujoco>"#,
            leg("l", 0.1),
            leg("r", -0.1)
        );
        let mjcf = parse(&text);
        let m = &mjcf.model;
        let names: Vec<&str> = m.joints.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["l_hip", "r_hip", "l_knee", "r_knee"]);
        let home = &mjcf.keyframes[0];
        assert_eq!(home.name, "home");
        assert_eq!(home.joint_pos, [0.1, 0.3, -0.2, -0.4]);
        assert_eq!(home.base_pos, Some([1.0, 2.0, 3.0]));
        assert_eq!(home.base_quat, Some([1.0, 0.0, 0.0, 0.0]));
        // ctrl follows the actuators kept (the tendon motor is skipped).
        assert_eq!(home.ctrl, [1.0, 2.0, 3.0, 4.0]);
        // A key without qpos is qpos0: the file's pose.
        let zero = &mjcf.keyframes[1];
        assert_eq!(
            (zero.name.as_str(), zero.joint_pos.as_slice()),
            ("key1", [0.0; 4].as_slice())
        );
        assert_eq!(zero.base_pos, Some([0.0, 0.0, 0.4]));

        let kinds: Vec<(&str, &str, ActuatorKind, f64)> = mjcf
            .actuators
            .iter()
            .map(|a| (a.name.as_str(), a.joint.as_str(), a.kind, a.gear))
            .collect();
        assert_eq!(
            kinds,
            [
                ("l_hip", "l_hip", ActuatorKind::Motor, 20.0),
                (
                    "l_knee",
                    "l_knee",
                    ActuatorKind::Position { kp: 30.0, kv: 0.5 },
                    20.0
                ),
                ("r_hip", "r_hip", ActuatorKind::Velocity { kv: 4.0 }, 20.0),
                (
                    "r_knee",
                    "r_knee",
                    ActuatorKind::Position { kp: 40.0, kv: 2.0 },
                    20.0
                ),
            ]
        );
        assert_eq!(mjcf.actuators[0].ctrlrange, Some((-1.0, 1.0)));
        assert_eq!(mjcf.actuators[1].forcerange, Some((-12.0, 12.0)));
        // Effort limits: motor ctrlrange x gear, forcerange x gear, none for the velocity
        // servo, and for the general one (a position servo) none either.
        let effort = |name: &str| m.joints[m.joint_index(name).expect("joint")].effort_limit;
        assert_eq!(effort("l_hip"), 20.0);
        assert_eq!(effort("l_knee"), 240.0);
        assert!(effort("r_hip").is_infinite() && effort("r_knee").is_infinite());
        assert!(
            m.warnings
                .iter()
                .any(|w| w.contains(r#"<motor name="tendon">"#)),
            "{:?}",
            m.warnings
        );

        let msg = mjcf_error(&text.replace(r#"qpos="1 2 3 1 0 0 0 0.1"#, r#"qpos="1 2 3 1 0 0 0"#));
        assert!(
            msg.contains(r#"<key name="home">"#) && msg.contains("qpos"),
            "{msg}"
        );
    }

    #[test]
    fn what_is_not_modelled_is_a_warning_naming_the_element() {
        let text = robot(
            "",
            r#"<body name="b"><geom size="0.1"/><body name="arm">
              <joint name="knee" frictionloss="0.2" damping="1" stiffness="5"/>
              <geom type="cylinder" size="0.02 0.1"/>
              <geom type="ellipsoid" size="0.1 0.1 0.11" pos="0 0 0.3"/>
              </body></body>"#,
        )
        .replace(
            "</worldbody>",
            r#"</worldbody><equality><joint joint1="knee"/></equality>"#,
        );
        let m = parse(&text).model;
        let find = |what: &str| {
            m.warnings
                .iter()
                .find(|w| w.contains(what))
                .unwrap_or_else(|| panic!("no warning about {what}: {:?}", m.warnings))
        };
        let w = find("frictionloss");
        assert!(
            w.contains("test.xml") && w.contains(r#"<joint name="knee">"#) && w.contains("line 3"),
            "{w}"
        );
        find("stiffness");
        find("cylinder");
        find("ellipsoid");
        find("<equality>");
        assert_eq!(m.warnings.len(), 5, "{:?}", m.warnings);
        // The cylinder is the capsule of the same radius and overall length; the nearly
        // round ellipsoid a sphere.
        let shapes: Vec<Shape> = m.links[1].collisions.iter().map(|c| c.shape).collect();
        assert_eq!(
            shapes[0],
            Shape::Capsule {
                radius: 0.02,
                length: 0.16
            }
        );
        assert!(matches!(shapes[1], Shape::Sphere { .. }), "{shapes:?}");
    }

    #[test]
    fn visual_geoms_give_mass_but_no_contact() {
        let text = robot(
            "",
            r#"<body name="b"><geom size="0.1" mass="1"/>
              <geom size="0.1" mass="2" contype="0" conaffinity="0" group="2"/>
              <geom size="0.1" mass="4" contype="0" pos="0.3 0 0"/></body>"#,
        );
        let m = parse(&text).model;
        // Both 0: visual only; contype 0 alone still touches the ground (conaffinity 1).
        assert_eq!(m.links[0].collisions.len(), 2);
        assert_eq!(m.links[0].mass, 7.0);
        let discard = parse(&text.replace("<compiler ", r#"<compiler discardvisual="true" "#));
        assert_eq!(discard.model.links[0].mass, 5.0);
    }

    #[test]
    fn includes_and_meshes_are_read_relative_to_the_main_file() {
        let dir = std::env::temp_dir().join(format!("cross-gym-mjcf-{}", std::process::id()));
        let assets = dir.join("assets");
        std::fs::create_dir_all(&assets).expect("dirs");
        std::fs::write(
            assets.join("foot.obj"),
            "v -0.02 -0.02 -0.02\nv 0.02 0.02 0.02\nv 0.02 -0.02 0.02\nf 1 2 3\n",
        )
        .expect("obj");
        std::fs::write(
            dir.join("robot.xml"),
            r#"<mujoco model="dog"><compiler meshdir="assets" angle="radian"/>
              <asset><mesh file="foot.obj" scale="2 2 2"/></asset>
              <worldbody><body name="base"><freejoint/><geom size="0.1"/>
                <inertial pos="0 0 0" mass="1" diaginertia="0.1 0.1 0.1"/>
                <geom type="mesh" mesh="foot" pos="0 0 -0.3"/>
              </body></worldbody></mujoco>"#,
        )
        .expect("robot");
        let scene = dir.join("scene.xml");
        std::fs::write(
            &scene,
            r#"<mujoco model="scene"><include file="robot.xml"/>
              <worldbody><geom name="floor" type="plane" size="0 0 1"/></worldbody></mujoco>"#,
        )
        .expect("scene");
        let read = load_mjcf(&scene, &MjcfOptions::default());
        let skipped = load_mjcf(
            &scene,
            &MjcfOptions {
                ignore_mesh_collisions: true,
                ..MjcfOptions::default()
            },
        );
        let by_extension = load_robot(&scene, &MjcfOptions::default());
        std::fs::remove_dir_all(&dir).ok();
        let m = read.expect("loads").model;
        assert_eq!(m.name, "scene");
        let foot = &m.links[0].collisions[1];
        let Shape::Sphere { radius } = foot.shape else {
            panic!("a round mesh is a sphere: {:?}", foot.shape);
        };
        assert!(close(radius, 0.04, 1e-6), "{radius}");
        assert_vec(foot.origin.xyz, [0.0, 0.0, -0.3], 1e-9);
        assert!(
            m.warnings
                .iter()
                .any(|w| w.contains("collision mesh `foot`")),
            "{:?}",
            m.warnings
        );
        assert_eq!(skipped.expect("loads").model.links[0].collisions.len(), 1);
        assert_eq!(by_extension.expect("loads").model, m);
    }

    #[test]
    fn what_cannot_be_simulated_is_refused_by_name() {
        let cases = [
            (
                r#"<body name="a"><geom size="0.1"/></body><body name="b"><geom size="0.1"/></body>"#,
                &[r#"<body name="a">"#, r#"<body name="b">"#, "several"][..],
            ),
            (
                r#"<body name="a"><geom size="0.1"/><body name="c"><joint name="j1"/><joint name="j2"/>
                  <geom size="0.1"/></body></body>"#,
                &[r#"<body name="c">"#, "2 joints", "split"],
            ),
            (
                r#"<body name="a"><geom size="0.1"/><body name="c"><joint name="ball" type="ball"/>
                  <geom size="0.1"/></body></body>"#,
                &[r#"<joint name="ball">"#, "ball joints"],
            ),
            (
                r#"<body name="a"><geom size="0.1"/><body name="c"><freejoint/><geom size="0.1"/></body></body>"#,
                &["<freejoint>", "body `c`", "top-level"],
            ),
            (
                r#"<body name="a"><geom type="plane" size="1 1 1"/></body>"#,
                &["<geom>", "body `a`", "plane"],
            ),
            (
                r#"<body name="a"><geom size="0.1" pos="0 0 x"/></body>"#,
                &["<geom>", "`pos=\"0 0 x\"`"],
            ),
            (
                r#"<body name="a"><geom type="capsule" size="0.1"/></body>"#,
                &["<geom>", "capsule needs 2 numbers"],
            ),
            (
                r#"<frame><body name="a"/></frame>"#,
                &["<frame>", "not supported"],
            ),
            (
                r#"<body name="a"><geom size="0.1"/><body name="c"><joint name="j"/></body></body>"#,
                &["joint `j`", "body `c`", "no mass"],
            ),
            (
                r#"<body name="a"><geom size="0.1"/><body name="b"><joint name="j"/><geom size="0.1"/>
                  <body name="c"><joint name="j"/><geom size="0.1"/></body></body></body>"#,
                &["joint `j`", "twice"],
            ),
            ("", &["no <body>"]),
        ];
        for (body, wanted) in cases {
            let msg = mjcf_error(&robot("", body));
            for w in wanted {
                assert!(msg.contains(w), "`{w}` not in: {msg}");
            }
        }
        let msg = mjcf_error("<mujoco><worldbody>");
        assert!(msg.contains("invalid XML"), "{msg}");
        let err = load_mjcf(Path::new("/nonexistent/robot.xml"), &MjcfOptions::default())
            .expect_err("no such file")
            .to_string();
        assert!(err.contains("/nonexistent/robot.xml"), "{err}");
    }

    /// A joint away from its body's origin, with a `ref`: the link frame sits at the joint,
    /// turned back by `ref`, so that at `q = ref` everything is where the file puts it.
    #[test]
    fn joint_pos_and_ref_keep_the_file_pose_at_qpos0() {
        let text = robot(
            r#"angle="radian""#,
            r#"<body name="base"><geom size="0.1"/>
              <body name="arm" pos="1 0 0"><joint name="j" pos="0.5 0 0" axis="0 0 1" ref="0.3"/>
                <geom type="sphere" size="0.1" pos="1 0 0" mass="1"/></body></body>"#,
        );
        let mjcf = parse(&text);
        let m = &mjcf.model;
        // At q = ref the sphere is at (2, 0, 0); at q = ref + pi/2 it has turned about the
        // joint at (1.5, 0, 0) to (1.5, 0.5, 0).
        for (q, want) in [
            (0.3, [2.0, 0.0, 0.0]),
            (0.3 + std::f64::consts::FRAC_PI_2, [1.5, 0.5, 0.0]),
        ] {
            let poses = link_poses(m, &[q], None);
            assert_vec(poses[1].apply(m.links[1].com), want, 1e-12);
            assert_vec(
                poses[1].apply(m.links[1].collisions[0].origin.xyz),
                want,
                1e-12,
            );
        }
        assert_eq!(mjcf.keyframes, []);
    }

    /// Everything the fixture's MuJoCo recorded, in world coordinates at the file's first
    /// keyframe: masses, centres of mass and inertias of every body (after merging the
    /// bodies without joints), joint anchors, axes, ranges, damping and armature, actuators,
    /// the keyframe itself and the total mass.
    fn compare_with_mujoco(case: &str, file: &str) -> Robot {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        let fixture: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("fixtures/mujoco_mjcf.json")).expect("fixture"),
        )
        .expect("JSON");
        let want = &fixture[case];
        let mjcf =
            load_mjcf(&dir.join("data/mjcf").join(file), &MjcfOptions::default()).expect("loads");
        let m = &mjcf.model;
        let nums = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array()
                .expect("array")
                .iter()
                .map(|x| x.as_f64().expect("number"))
                .collect()
        };
        let v3 = |v: &serde_json::Value| -> Vec3 {
            <[f64; 3]>::try_from(nums(v).as_slice()).expect("3 numbers")
        };
        // The first keyframe, or MuJoCo's qpos0 for a file without one (zero joint
        // positions in these files).
        let qpos = nums(&want["qpos"]);
        let (joint_pos, base, ctrl) = match mjcf.keyframes.first() {
            Some(key) => (
                key.joint_pos.clone(),
                key.base_pos.zip(key.base_quat),
                key.ctrl.clone(),
            ),
            None => (
                vec![0.0; m.num_joints()],
                Some((
                    [qpos[0], qpos[1], qpos[2]],
                    [qpos[3], qpos[4], qpos[5], qpos[6]],
                )),
                vec![0.0; mjcf.actuators.len()],
            ),
        };
        let poses = link_poses(m, &joint_pos, base);

        let bodies = want["bodies"].as_array().expect("bodies");
        assert_eq!(m.links.len(), bodies.len(), "{case}: links");
        for b in bodies {
            let name = b["name"].as_str().expect("name");
            let i = m
                .link_index(name)
                .unwrap_or_else(|| panic!("{case}: no link `{name}`"));
            let (link, pose) = (&m.links[i], &poses[i]);
            assert!(
                close(link.mass, b["mass"].as_f64().expect("mass"), 1e-12),
                "{case} `{name}` mass"
            );
            assert_vec(pose.apply(link.com), v3(&b["com_world"]), 1e-9);
            let r = pose.rotation;
            let world = mat_mul(&mat_mul(&r, &link.inertia), &transpose(&r));
            let rows = b["inertia_world"].as_array().expect("rows");
            let want_inertia: Mat3 = std::array::from_fn(|k| v3(&rows[k]));
            for (got, want) in world.iter().flatten().zip(want_inertia.iter().flatten()) {
                assert!(
                    (got - want).abs() < 1e-9,
                    "{case} `{name}` inertia {world:?} != {want_inertia:?}"
                );
            }
        }
        let joints: Vec<&serde_json::Value> = want["joints"]
            .as_array()
            .expect("joints")
            .iter()
            .filter(|j| j["type"] != "free")
            .collect();
        assert_eq!(m.joints.len(), joints.len(), "{case}: joints");
        for j in joints {
            let name = j["name"].as_str().expect("name");
            let k = m
                .joint_index(name)
                .unwrap_or_else(|| panic!("{case}: no joint `{name}`"));
            let joint = &m.joints[k];
            let frame = poses[joint.parent].compose(&joint.origin);
            // A slide's anchor means nothing to its motion, and MuJoCo's is where the joint
            // is at qpos0: only hinges are compared.
            if joint.kind == JointKind::Revolute {
                assert_vec(frame.xyz, v3(&j["anchor_world"]), 1e-9);
            }
            assert_vec(
                mat_vec(&frame.rotation, joint.axis),
                v3(&j["axis_world"]),
                1e-9,
            );
            let range = (!j["range"].is_null()).then(|| nums(&j["range"]));
            assert_eq!(
                joint.limits.map(|(lo, hi)| vec![lo, hi]),
                range,
                "{case} `{name}`"
            );
            assert_eq!(
                joint.damping,
                j["damping"].as_f64().expect("damping"),
                "{case} `{name}`"
            );
            assert_eq!(
                joint.armature,
                j["armature"].as_f64().expect("armature"),
                "{case} `{name}`"
            );
        }
        let actuators = want["actuators"].as_array().expect("actuators");
        assert_eq!(mjcf.actuators.len(), actuators.len(), "{case}: actuators");
        for (a, w) in mjcf.actuators.iter().zip(actuators) {
            assert_eq!(Some(a.name.as_str()), w["name"].as_str());
            assert_eq!(Some(a.joint.as_str()), w["joint"].as_str());
            assert_eq!(a.gear, w["gear"].as_f64().expect("gear"));
            let (gain, bias) = (w["gain"].as_f64().expect("gain"), nums(&w["bias"]));
            let (g, b) = match a.kind {
                ActuatorKind::Motor => (1.0, [0.0, 0.0, 0.0]),
                ActuatorKind::Position { kp, kv } => (kp, [0.0, -kp, -kv]),
                ActuatorKind::Velocity { kv } => (kv, [0.0, 0.0, -kv]),
            };
            assert_eq!((g, b.to_vec()), (gain, bias), "{case} `{}`", a.name);
            let range = |r: Option<(f64, f64)>| r.map(|(lo, hi)| vec![lo, hi]);
            let want_range = |v: &serde_json::Value| (!v.is_null()).then(|| nums(v));
            assert_eq!(
                range(a.ctrlrange),
                want_range(&w["ctrlrange"]),
                "{case} `{}`",
                a.name
            );
            assert_eq!(
                range(a.forcerange),
                want_range(&w["forcerange"]),
                "{case} `{}`",
                a.name
            );
        }
        assert_eq!(ctrl, nums(&want["ctrl"]), "{case}: ctrl");
        assert!(close(
            m.total_mass(),
            want["total_mass"].as_f64().expect("mass"),
            1e-12
        ));
        mjcf
    }

    /// Menagerie's A1 (BSD-3-Clause, tests/data/mjcf/unitree_a1), through its scene.
    #[test]
    fn menagerie_a1_reads_as_mujoco_reads_it() {
        let a1 = compare_with_mujoco("unitree_a1", "unitree_a1/scene.xml");
        let m = &a1.model;
        assert_eq!((m.name.as_str(), m.base), ("a1 scene", BaseKind::Floating));
        assert!(close(
            m.total_mass(),
            4.713 + 4.0 * (0.696 + 1.013 + 0.226),
            1e-12
        ));
        let names: Vec<&str> = m.joints.iter().map(|j| j.name.as_str()).collect();
        let legs = ["FR", "FL", "RR", "RL"];
        let want: Vec<String> = ["hip", "thigh", "calf"]
            .iter()
            .flat_map(|part| legs.map(|leg| format!("{leg}_{part}_joint")))
            .collect();
        assert_eq!(names, want);
        let hip = &m.joints[0];
        assert_eq!(
            (hip.limits, hip.axis),
            (Some((-0.802851, 0.802851)), [1.0, 0.0, 0.0])
        );
        assert_eq!(
            (hip.damping, hip.armature, hip.effort_limit),
            (1.0, 0.01, 33.5)
        );
        assert_eq!(m.joints[8].limits, Some((-2.69653, -0.916298)));
        // Contacts: 8 trunk shapes, 1 hip cylinder per leg (2 on FL), 3 thigh and 2 calf
        // capsules and a foot sphere per leg; every mesh is visual.
        let shapes: usize = m.links.iter().map(|l| l.collisions.len()).sum();
        // FL's second hip shape, a sphere inside the first, is dropped (it never touches
        // first).
        let dropped: Vec<&String> = m
            .warnings
            .iter()
            .filter(|w| w.contains("dropped"))
            .collect();
        assert!(
            dropped.len() == 1 && dropped[0].contains("link `FL_hip`"),
            "{dropped:?}"
        );
        assert_eq!(shapes, 8 + 5 + 4 * 6 - 1);
        // 12 frictionloss warnings, one per collision cylinder (2 trunk, 5 hip) and the
        // dropped sphere.
        let friction = m
            .warnings
            .iter()
            .filter(|w| w.contains("frictionloss"))
            .count();
        let cylinders = m.warnings.iter().filter(|w| w.contains("cylinder")).count();
        assert_eq!(
            (friction, cylinders, m.warnings.len()),
            (12, 7, 20),
            "{:?}",
            m.warnings
        );
        let home = &a1.keyframes[0];
        assert_eq!(
            (home.name.as_str(), home.base_pos),
            ("home", Some([0.0, 0.0, 0.27]))
        );
        assert_eq!(&home.joint_pos[..4], [0.0; 4]);
        assert_eq!(&home.joint_pos[4..8], [0.9; 4]);
        assert_eq!(&home.joint_pos[8..], [-1.8; 4]);
    }

    /// Menagerie's Go1 and ANYmal C (BSD-3-Clause): ANYmal's bodies are turned by quaternions.
    #[test]
    fn menagerie_go1_and_anymal_c_read_as_mujoco_reads_them() {
        let go1 = compare_with_mujoco("unitree_go1", "unitree_go1/go1.xml");
        let knee = &go1.model.joints[go1.model.joint_index("FR_calf_joint").expect("knee")];
        assert_eq!(knee.effort_limit, 35.55);
        let anymal = compare_with_mujoco("anybotics_anymal_c", "anybotics_anymal_c/anymal_c.xml");
        assert_eq!((anymal.model.num_joints(), anymal.keyframes.len()), (12, 0));
        assert!(close(anymal.model.total_mass(), 44.96518, 1e-6));
    }

    /// tests/data/mjcf/synthetic.xml: degrees, `eulerseq`, every orientation form, classes,
    /// a merged body, a joint away from its body's origin with `ref`, a slide, mass from
    /// every kind of geom, actuators and a keyframe, against MuJoCo.
    #[test]
    fn synthetic_model_reads_as_mujoco_reads_it() {
        let s = compare_with_mujoco("synthetic", "synthetic.xml");
        let names: Vec<&str> = s.model.links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["torso", "thigh", "slider", "shin"]);
        assert_eq!(s.keyframes[0].joint_pos, [0.3, 0.05, -0.8]);
    }
}
