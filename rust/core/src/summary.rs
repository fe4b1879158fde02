//! Per-customer sufficient statistics of the frequency and spend models (docs/methods.md#summary).
//!
//! From a customer's occasions t_1 < … < t_n (docs/methods.md#occasions) and a calibration end c:
//! - the BTYD triple of the calibration occasions (those from rows at or before c): `frequency`
//!   x = repeat occasions, `recency` t_x = t_last − t_1 and `T` = bucket(c) − t_1, in output
//!   time units;
//! - the Gamma–Gamma inputs: `monetary_value` z̄ = mean amount of the positive repeat calibration
//!   occasions and `spend_frequency`, their number (occasions with a summed amount ≤ 0 are
//!   excluded from spend models, docs/methods.md#hygiene);
//! - the holdout (rows after c up to `max_time_us`): occasion count and positive mean amount;
//! - the period panel of the period NBD model ("Periods"): complete periods after the birth
//!   period and the occasions in them.
//!
//! Customers whose first occasion is after c are left out and counted.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::keys::{CustomerIds, CustomerKeys};
use crate::occasions::{bucket_start, collapse_occasions};
use crate::partition::{map_customers_sorted, RowFilter};
use crate::KernelError;

/// Parameters of the summary, times in microseconds (local wall clock).
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryParams {
    /// Rows at or before it are calibration rows; `T` is measured to its bucket start.
    pub calibration_end_us: i64,
    /// Rows after it are excluded and counted; rows in (calibration end, max time] are holdout.
    pub max_time_us: i64,
    /// Occasion bucket width (> 0).
    pub resolution_us: i64,
    /// Length of the output time unit (> 0): a day or a week.
    pub unit_us: i64,
    /// Period boundaries, strictly increasing: the starts of periods 0, 1, … and the end of the
    /// last complete period, at most one µs after the calibration end. Fewer than two: no panel.
    pub period_edges_us: Vec<i64>,
    /// Worker threads (`None`: the default pool).
    pub num_threads: Option<usize>,
}

impl SummaryParams {
    /// A summary at `calibration_end_us` with no holdout, day resolution and no period panel.
    pub fn new(calibration_end_us: i64, unit_us: i64) -> Self {
        Self {
            calibration_end_us,
            max_time_us: calibration_end_us,
            resolution_us: crate::occasions::MICROS_PER_DAY,
            unit_us,
            period_edges_us: Vec::new(),
            num_threads: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), KernelError> {
        let invalid = |name, reason: String| Err(KernelError::InvalidParameter { name, reason });
        if self.resolution_us <= 0 {
            return invalid("resolution", "must be a positive duration".into());
        }
        if self.unit_us <= 0 {
            return invalid("unit", "must be a positive duration".into());
        }
        if self.max_time_us < self.calibration_end_us {
            return invalid(
                "max_time_us",
                format!(
                    "{} is before the calibration end {}",
                    self.max_time_us, self.calibration_end_us
                ),
            );
        }
        let edges = &self.period_edges_us;
        if !edges.windows(2).all(|w| w[0] < w[1]) {
            return invalid("period_edges_us", "must be strictly increasing".into());
        }
        match edges.last() {
            Some(&last) if last > self.calibration_end_us.saturating_add(1) => invalid(
                "period_edges_us",
                format!(
                    "the last edge {last} is after the calibration end {} (periods must be \
                     complete by then)",
                    self.calibration_end_us
                ),
            ),
            _ => Ok(()),
        }
    }
}

/// One customer's sufficient statistics; durations in output time units.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CustomerSummary {
    /// Repeat calibration occasions (x).
    pub frequency: u32,
    /// Last calibration occasion − first occasion (t_x).
    pub recency: f64,
    /// Calibration end's bucket − first occasion (T).
    pub t: f64,
    /// Mean amount of the positive repeat calibration occasions (z̄; 0 when there are none).
    pub monetary_value: f64,
    /// Number of positive repeat calibration occasions (the x of Gamma–Gamma).
    pub spend_frequency: u32,
    /// Amount of the first occasion.
    pub first_amount: f64,
    /// Occasions after the calibration end.
    pub frequency_holdout: u32,
    /// Mean amount of the positive holdout occasions (0 when there are none).
    pub monetary_value_holdout: f64,
    /// Complete periods after the birth period (T_c of the period NBD).
    pub n_periods: u32,
    /// Occasions in those periods (X_c).
    pub period_frequency: u32,
}

/// The summary: one row per customer born by the calibration end, sorted by customer key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummaryTable {
    /// Customer of each row, in ascending order (integers numerically, strings bytewise).
    pub ids: CustomerIds,
    pub customers: Vec<CustomerSummary>,
    /// Input rows after `max_time_us` (excluded).
    pub rows_after_max_time: u64,
    /// Input rows at or before `max_time_us`.
    pub rows_used: u64,
    /// Customers whose first occasion is after the calibration end (not in the table).
    pub customers_born_after_calibration: u64,
    /// Used rows of those customers.
    pub rows_born_after_calibration: u64,
}

impl SummaryTable {
    /// The row and customer counts by name, for reports.
    pub fn counts(&self) -> [(&'static str, u64); 4] {
        [
            ("rows_used", self.rows_used),
            ("rows_after_max_time", self.rows_after_max_time),
            (
                "customers_born_after_calibration",
                self.customers_born_after_calibration,
            ),
            (
                "rows_born_after_calibration",
                self.rows_born_after_calibration,
            ),
        ]
    }
}

/// `later − earlier` in units of `unit_us`, without overflow.
#[inline]
fn duration(later: i64, earlier: i64, unit_us: i64) -> f64 {
    (i128::from(later) - i128::from(earlier)) as f64 / unit_us as f64
}

/// Mean amount and number of the occasions with a positive amount, summed in occasion order
/// (0 and 0 when there are none).
fn positive_mean(occasions: &[(i64, f64)]) -> (f64, u32) {
    let (sum, count) = occasions
        .iter()
        .filter(|o| o.1 > 0.0)
        .fold((0.0, 0u32), |(s, c), o| (s + o.1, c + 1));
    if count == 0 {
        (0.0, 0)
    } else {
        (sum / f64::from(count), count)
    }
}

/// Summarises one customer from its occasions (sorted by time, distinct dates, at least one);
/// `None` when the first occasion is after the calibration end.
pub fn summarise_occasions(
    occasions: &[(i64, f64)],
    params: &SummaryParams,
    calibration_bucket_us: i64,
) -> Option<CustomerSummary> {
    let (first_us, first_amount) = occasions[0];
    let cal_end = params.calibration_end_us;
    if first_us > cal_end {
        return None;
    }
    let n_cal = occasions.partition_point(|o| o.0 <= cal_end);
    let (calibration, holdout) = occasions.split_at(n_cal);
    let last_us = calibration[n_cal - 1].0;
    let (monetary_value, spend_frequency) = positive_mean(&calibration[1..]);
    let (monetary_value_holdout, _) = positive_mean(holdout);
    let (n_periods, period_frequency) = period_panel(occasions, &params.period_edges_us);
    Some(CustomerSummary {
        frequency: (n_cal - 1) as u32,
        recency: duration(last_us, first_us, params.unit_us),
        t: duration(calibration_bucket_us, first_us, params.unit_us),
        monetary_value,
        spend_frequency,
        first_amount,
        frequency_holdout: holdout.len() as u32,
        monetary_value_holdout,
        n_periods,
        period_frequency,
    })
}

/// Complete periods after the birth period (the period of the first occasion) and the occasions
/// in them. Occasions at or after the last edge are in incomplete periods and do not count.
fn period_panel(occasions: &[(i64, f64)], edges: &[i64]) -> (u32, u32) {
    if edges.len() < 2 {
        return (0, 0);
    }
    // Edges at or before the first occasion: the birth period's index + 1 (0 before period 0).
    let after_birth = edges.partition_point(|&e| e <= occasions[0].0);
    let last = edges.len() - 1;
    if after_birth > last {
        return (0, 0);
    }
    let (from, to) = (edges[after_birth], edges[last]);
    let start = occasions.partition_point(|o| o.0 < from);
    let end = occasions.partition_point(|o| o.0 < to);
    ((last - after_birth) as u32, (end - start) as u32)
}

/// Summarises every customer of a transaction table (docs/methods.md#summary). `amounts`, when
/// given, has one value per row; without it the amount fields are zero and the caller reports them
/// as null.
pub fn summarise(
    customers: &CustomerKeys<'_>,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    params: &SummaryParams,
) -> Result<SummaryTable, KernelError> {
    params.validate()?;
    let filter = RowFilter {
        split_us: params.calibration_end_us,
        ..RowFilter::new(params.max_time_us, params.resolution_us)
    };
    let calibration_bucket_us = bucket_start(params.calibration_end_us, params.resolution_us);
    let born_after = (AtomicU64::new(0), AtomicU64::new(0));
    let table = map_customers_sorted(
        customers,
        times_us,
        amounts,
        filter,
        params.num_threads,
        Vec::new,
        |occasions, rows| {
            collapse_occasions(rows, occasions);
            let summary = summarise_occasions(occasions, params, calibration_bucket_us);
            if summary.is_none() {
                born_after.0.fetch_add(1, Ordering::Relaxed);
                born_after.1.fetch_add(rows.len() as u64, Ordering::Relaxed);
            }
            summary
        },
    )?;
    Ok(SummaryTable {
        ids: table.ids,
        customers: table.rows,
        rows_after_max_time: table.rows_excluded,
        rows_used: times_us.len() as u64 - table.rows_excluded,
        customers_born_after_calibration: born_after.0.into_inner(),
        rows_born_after_calibration: born_after.1.into_inner(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::occasions::MICROS_PER_DAY as DAY;

    const WEEK: i64 = 7 * DAY;

    fn occ(days_amounts: &[(i64, f64)]) -> Vec<(i64, f64)> {
        days_amounts.iter().map(|&(d, a)| (d * DAY, a)).collect()
    }

    #[test]
    fn btyd_triple_spend_and_holdout() {
        // Calibration ends on day 20 (end of day); day 30 is holdout.
        let mut params = SummaryParams::new(21 * DAY - 1, WEEK);
        params.max_time_us = 40 * DAY;
        let c = summarise_occasions(
            &occ(&[
                (0, 10.0),
                (7, 4.0),
                (14, -3.0),
                (20, 0.0),
                (30, 6.0),
                (31, -1.0),
            ]),
            &params,
            20 * DAY,
        )
        .unwrap();
        assert_eq!(c.frequency, 3);
        assert!((c.recency - 20.0 / 7.0).abs() < 1e-15);
        assert!((c.t - 20.0 / 7.0).abs() < 1e-15);
        assert_eq!((c.monetary_value, c.spend_frequency), (4.0, 1));
        assert!((c.first_amount - 10.0).abs() < f64::EPSILON);
        assert_eq!(c.frequency_holdout, 2);
        assert!((c.monetary_value_holdout - 6.0).abs() < f64::EPSILON);
    }

    #[test]
    fn customers_born_after_calibration_are_left_out() {
        let params = SummaryParams::new(5 * DAY, DAY);
        assert!(summarise_occasions(&occ(&[(6, 1.0)]), &params, 5 * DAY).is_none());
        let single = summarise_occasions(&occ(&[(5, 1.0)]), &params, 5 * DAY).unwrap();
        assert_eq!((single.frequency, single.recency, single.t), (0, 0.0, 0.0));
        assert_eq!((single.monetary_value, single.spend_frequency), (0.0, 0));
    }

    #[test]
    fn period_panel_skips_the_birth_period_and_incomplete_ones() {
        // Periods [0, 10), [10, 20), [20, 30) days; day 30 onwards is incomplete.
        let edges: Vec<i64> = [0, 10, 20, 30].map(|d| d * DAY).to_vec();
        let occasions = occ(&[
            (3, 1.0),
            (5, 1.0),
            (12, 1.0),
            (25, 1.0),
            (29, 1.0),
            (30, 1.0),
        ]);
        assert_eq!(period_panel(&occasions, &edges), (2, 3));
        assert_eq!(period_panel(&occ(&[(20, 1.0)]), &edges), (0, 0));
        assert_eq!(period_panel(&occ(&[(31, 1.0)]), &edges), (0, 0));
        assert_eq!(period_panel(&occ(&[(-1, 1.0), (2, 1.0)]), &edges), (3, 1));
        assert_eq!(period_panel(&occasions, &edges[..1]), (0, 0));
    }

    #[test]
    fn a_calibration_end_inside_a_bucket_splits_it() {
        // Weekly buckets from the epoch; calibration ends mid-week on day 9.
        let mut params = SummaryParams::new(9 * DAY, DAY);
        params.resolution_us = WEEK;
        params.max_time_us = 30 * DAY;
        let keys = [1, 1, 1, 2];
        let times = [DAY, 8 * DAY, 10 * DAY, 10 * DAY];
        let table = summarise(&CustomerKeys::Int(&keys), &times, None, &params).unwrap();
        assert_eq!(table.ids, CustomerIds::Int(vec![1]));
        let c = table.customers[0];
        assert_eq!((c.frequency, c.frequency_holdout), (1, 1));
        assert!((c.t - 7.0).abs() < f64::EPSILON && (c.recency - 7.0).abs() < f64::EPSILON);
        assert_eq!(table.customers_born_after_calibration, 1);
        assert_eq!(table.rows_born_after_calibration, 1);
    }

    #[test]
    fn bad_parameters_are_errors() {
        let keys = CustomerKeys::Int(&[]);
        let check = |params: &SummaryParams, name: &str| {
            let err = summarise(&keys, &[], None, params).unwrap_err();
            assert!(
                matches!(&err, KernelError::InvalidParameter { name: n, .. } if *n == name),
                "{err}"
            );
        };
        let mut params = SummaryParams::new(10, 0);
        check(&params, "unit");
        params.unit_us = DAY;
        params.max_time_us = 9;
        check(&params, "max_time_us");
        params.max_time_us = 10;
        params.period_edges_us = vec![0, 5, 5];
        check(&params, "period_edges_us");
        params.period_edges_us = vec![0, 12];
        check(&params, "period_edges_us");
        params.period_edges_us = vec![0, 11];
        assert!(summarise(&keys, &[], None, &params).is_ok());
    }
}
