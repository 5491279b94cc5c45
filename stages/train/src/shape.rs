//! Dimension checks at the entry of every model and loss function, so a bad batch fails with the name of the
//! input instead of a libtorch panic deep inside an einsum.

use crate::error::{Result, TrainError};
use tch::Tensor;

/// Checks `t` against `expected`, one entry per dimension: `Some(n)` must equal n, `None` accepts any size.
/// Returns the actual sizes.
pub(crate) fn expect_dims(
    op: &'static str,
    input: &'static str,
    t: &Tensor,
    expected: &[Option<i64>],
) -> Result<Vec<i64>> {
    let actual = t.size();
    let ok = actual.len() == expected.len()
        && actual
            .iter()
            .zip(expected)
            .all(|(a, e)| e.is_none_or(|e| *a == e));
    if ok {
        Ok(actual)
    } else {
        let dims: Vec<String> = expected
            .iter()
            .map(|e| e.map_or_else(|| "_".to_string(), |n| n.to_string()))
            .collect();
        Err(TrainError::Shape {
            op,
            input,
            expected: format!("[{}]", dims.join(", ")),
            actual,
        })
    }
}
