//! The error type of sim-physics.

/// Errors raised when loading a robot or driving the batched simulation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An environment index is out of range.
    #[error("environment index {id} is out of range: there are {num_envs} environments")]
    EnvId {
        /// The index that was given.
        id: usize,
        /// Number of environments in the batch.
        num_envs: usize,
    },
    /// An environment index was given twice.
    #[error("environment index {id} is given twice")]
    DuplicateEnvId {
        /// The repeated index.
        id: usize,
    },
    /// A tensor given to the simulator has the wrong shape.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    Shape {
        /// What the tensor is (for example "joint targets").
        what: String,
        /// The shape that was expected.
        expected: Vec<usize>,
        /// The shape that was passed.
        got: Vec<usize>,
    },
    /// A robot model is malformed.
    #[error("model `{model}`: {what}")]
    Model {
        /// The robot's name.
        model: String,
        /// What is wrong, naming the link or joint.
        what: String,
    },
    /// A URDF file could not be read or holds something the simulator cannot take.
    #[error("URDF `{path}`: {what}")]
    Urdf {
        /// The file (or `<string>` for text given directly).
        path: String,
        /// What is wrong, naming the element.
        what: String,
    },
    /// An MJCF (MuJoCo XML) file could not be read or holds something the simulator cannot
    /// take.
    #[error("MJCF `{path}`: {what}")]
    Mjcf {
        /// The file (or `<string>` for text given directly).
        path: String,
        /// What is wrong, naming the element (and its line).
        what: String,
    },
    /// A simulation setting or a state given to the simulator is invalid.
    #[error("physics: {0}")]
    Physics(String),
}

/// Result with the error type of sim-physics.
pub type Result<T, E = Error> = std::result::Result<T, E>;
