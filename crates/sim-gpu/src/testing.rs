//! Helpers for the unit tests: Gymnasium fixtures and reading tensors back.

use burn::backend::NdArray;
use burn::tensor::{Bool, Tensor, TensorData};
use serde::Deserialize;

/// The CPU backend the tests run on.
pub(crate) type B = NdArray;

/// Transitions recorded from Gymnasium by `tools/gymnasium/make_fixtures.py`.
#[derive(Debug, Deserialize)]
pub(crate) struct Fixture {
    pub(crate) transitions: Vec<Record>,
}

/// One recorded transition (float64 values from Gymnasium).
#[derive(Debug, Deserialize)]
pub(crate) struct Record {
    pub(crate) state: Vec<f64>,
    pub(crate) action: Vec<f64>,
    pub(crate) next_state: Vec<f64>,
    pub(crate) obs: Vec<f64>,
    pub(crate) reward: f64,
    pub(crate) terminated: bool,
}

impl Fixture {
    pub(crate) fn parse(json: &str) -> Self {
        let fixture: Self = serde_json::from_str(json).expect("fixture JSON parses");
        assert!(
            fixture.transitions.len() >= 20,
            "fixture has too few transitions"
        );
        fixture
    }

    /// One field of every transition stacked as a float32 tensor `[N, K]`.
    pub(crate) fn stack(&self, field: impl Fn(&Record) -> &Vec<f64>) -> Tensor<B, 2> {
        let rows: Vec<Vec<f64>> = self.transitions.iter().map(|r| field(r).clone()).collect();
        rows_to_tensor(&rows)
    }
}

/// Rows of equal length as a float32 tensor `[rows, cols]`.
pub(crate) fn rows_to_tensor(rows: &[Vec<f64>]) -> Tensor<B, 2> {
    let cols = rows.first().map_or(0, Vec::len);
    let values: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Tensor::from_data(
        TensorData::new(values, [rows.len(), cols]),
        &Default::default(),
    )
}

/// A float tensor's values, row-major.
pub(crate) fn floats<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec().expect("f32 tensor")
}

/// A bool tensor's values.
pub(crate) fn bools(t: Tensor<B, 1, Bool>) -> Vec<bool> {
    t.into_data().to_vec().expect("bool tensor")
}

/// Asserts `|got - want| <= 1e-5 max(1, |want|)`.
pub(crate) fn assert_close(got: f32, want: f64, what: &str) {
    let tol = 1e-5 * want.abs().max(1.0);
    assert!(
        (f64::from(got) - want).abs() <= tol,
        "{what}: got {got}, Gymnasium gives {want} (tolerance {tol:e})"
    );
}
