//! Helpers for batches of environments: shape checks and writing chosen rows.

use burn::tensor::{Bool, IndexingUpdateOp, Int, Tensor, TensorData, backend::Backend};

use crate::{Error, Result};

/// Returns a shape error unless `got == expected`.
pub(crate) fn check_shape(what: &str, got: [usize; 2], expected: [usize; 2]) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::Shape {
            what: what.to_string(),
            expected: expected.to_vec(),
            got: got.to_vec(),
        })
    }
}

/// The mask `[N]` of chosen environments and their rows spread over the batch `[N, K]`.
pub type Scattered<B> = (Tensor<B, 1, Bool>, Tensor<B, 2>);

/// Spreads the rows `[M, K]` given for the environments `ids` over a batch of `n`: returns
/// the mask `[N]` of the chosen environments and a `[N, K]` tensor whose row `ids[i]` is
/// `rows[i]` (the others zero), or `None` when `ids` is empty. The mask and index are built
/// on the host and written to the device, never read back.
///
/// # Errors
/// An id out of range or given twice.
pub fn scatter_rows<B: Backend>(
    ids: &[usize],
    rows: Tensor<B, 2>,
    n: usize,
) -> Result<Option<Scattered<B>>> {
    let mut chosen = vec![false; n];
    for &id in ids {
        match chosen.get_mut(id) {
            None => return Err(Error::EnvId { id, num_envs: n }),
            Some(true) => return Err(Error::DuplicateEnvId { id }),
            Some(flag) => *flag = true,
        }
    }
    if ids.is_empty() {
        return Ok(None);
    }
    let device = rows.device();
    let k = rows.dims()[1];
    let index: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(index, [ids.len()]), &device);
    let mask = Tensor::<B, 1, Bool>::from_data(TensorData::new(chosen, [n]), &device);
    // Row ids[i] of `scattered` is rows[i]; the other rows are zero.
    let scattered =
        Tensor::<B, 2>::zeros([n, k], &device).select_assign(0, index, rows, IndexingUpdateOp::Add);
    Ok(Some((mask, scattered)))
}
