//! One customer's silence figures and model statistics from its own rows, without a table
//! (docs/methods.md#scorer): the fast path of the in-process scorer.
//!
//! The rows are filtered, bucketed and collapsed into occasions exactly as the table kernels do
//! ([`crate::partition::RowFilter`] with no split, [`collapse_occasions`]), then scored by the
//! same per-customer functions ([`score_occasions`], [`summarise_occasions`]), so every figure
//! is the bits [`crate::silence::score`] and [`crate::summary::summarise`] give for that
//! customer in a table with the same snapshot time.

use crate::occasions::{bucket_start, collapse_occasions};
use crate::silence::{score_occasions, CustomerSilence, SilenceParams};
use crate::summary::{summarise_occasions, CustomerSummary, SummaryParams};
use crate::KernelError;

/// The silence figures and the summary (no calibration split, no period panel, durations in
/// `unit_us`) of one customer's rows at `params.as_of_us`; `None` when no row is at or before
/// it. `amounts`, when given, has one value per row (without it the amounts are zero).
pub fn score_customer(
    times_us: &[i64],
    amounts: Option<&[f64]>,
    params: &SilenceParams,
    unit_us: i64,
) -> Result<Option<(CustomerSilence, CustomerSummary)>, KernelError> {
    params.validate()?;
    let summary_params = SummaryParams {
        resolution_us: params.resolution_us,
        ..SummaryParams::new(params.as_of_us, unit_us)
    };
    summary_params.validate()?;
    if let Some(values) = amounts {
        if values.len() != times_us.len() {
            return Err(KernelError::LengthMismatch {
                column: "amount",
                expected: times_us.len(),
                actual: values.len(),
            });
        }
    }
    let mut rows: Vec<(i64, f64)> = times_us
        .iter()
        .enumerate()
        .filter(|(_, &t)| t <= params.as_of_us)
        .map(|(i, &t)| {
            let amount = amounts.map_or(0.0, |values| values[i]);
            (bucket_start(t, params.resolution_us), amount)
        })
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let mut occasions = Vec::with_capacity(rows.len());
    collapse_occasions(&mut rows, &mut occasions);
    let as_of_bucket_us = bucket_start(params.as_of_us, params.resolution_us);
    let silence = score_occasions(&occasions, as_of_bucket_us, params, &mut Vec::new());
    let summary = summarise_occasions(&occasions, &summary_params, as_of_bucket_us)
        .expect("a customer with a row at or before as_of is born by it");
    Ok(Some((silence, summary)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::CustomerKeys;
    use crate::occasions::MICROS_PER_DAY as DAY;
    use crate::silence::score;
    use crate::summary::summarise;

    #[test]
    fn equals_the_table_kernels() {
        let times = [3 * DAY + 5, DAY, 40 * DAY, 3 * DAY + 9, 90 * DAY, 20 * DAY];
        let amounts = [1.5, 2.0, -1.0, 0.25, 7.0, 3.0];
        let mut params = SilenceParams::new(60 * DAY + 17);
        params.num_threads = Some(1);
        let (silence, summary) = score_customer(&times, Some(&amounts), &params, 7 * DAY)
            .unwrap()
            .unwrap();
        let keys = [4_i64; 6];
        let table = score(&CustomerKeys::Int(&keys), &times, Some(&amounts), &params).unwrap();
        assert_eq!(table.customers, vec![silence]);
        let mut summary_params = SummaryParams::new(params.as_of_us, 7 * DAY);
        summary_params.num_threads = Some(1);
        let summaries = summarise(
            &CustomerKeys::Int(&keys),
            &times,
            Some(&amounts),
            &summary_params,
        )
        .unwrap();
        assert_eq!(summaries.customers, vec![summary]);
    }

    #[test]
    fn nothing_before_as_of_is_none_and_lengths_must_agree() {
        let params = SilenceParams::new(0);
        assert_eq!(score_customer(&[DAY], None, &params, DAY).unwrap(), None);
        let err = score_customer(&[DAY], Some(&[]), &params, DAY).unwrap_err();
        assert!(matches!(
            err,
            KernelError::LengthMismatch {
                column: "amount",
                ..
            }
        ));
    }
}
