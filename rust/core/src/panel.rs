//! The customer × period panel of the value engine (docs/methods.md#periods, #value).
//!
//! Periods are given by their edges (local wall-clock µs): period k is `[edges[k], edges[k+1])`
//! and the last edge closes the last complete period; occasions at or after it fall in the
//! incomplete period, whose index is `edges.len() - 1`. For every customer and every period with
//! at least one occasion the panel holds the occasions x_k, the revenue (sum of occasion amounts)
//! and the occasions and revenue with a positive amount (spend models only use those,
//! docs/methods.md#hygiene). Birth periods and the incomplete period are in the panel; the caller
//! leaves them out of modelling (it knows which they are: a customer's first row, and index
//! `edges.len() - 1`).

use rayon::prelude::*;

use crate::keys::{CustomerIds, CustomerKeys, IntKeys, KeyColumn};
use crate::occasions::collapse_occasions;
use crate::partition::{partition_rows, RowFilter};
use crate::{parallelism, KernelError};

/// Parameters of the panel, times in microseconds (local wall clock).
#[derive(Debug, Clone, PartialEq)]
pub struct PanelParams {
    /// Rows after it are excluded and counted.
    pub max_time_us: i64,
    /// Occasion bucket width (> 0).
    pub resolution_us: i64,
    /// Period starts and the end of the last complete period, strictly increasing, at least
    /// one edge, the first at or before every kept row.
    pub period_edges_us: Vec<i64>,
    /// Worker threads (`None`: the default pool).
    pub num_threads: Option<usize>,
}

impl PanelParams {
    fn validate(&self) -> Result<(), KernelError> {
        let invalid = |reason: &str| {
            Err(KernelError::InvalidParameter {
                name: "period_edges_us",
                reason: reason.into(),
            })
        };
        if self.resolution_us <= 0 {
            return Err(KernelError::InvalidParameter {
                name: "resolution",
                reason: "must be a positive duration".into(),
            });
        }
        if self.period_edges_us.is_empty() {
            return invalid("needs at least one edge");
        }
        if !self.period_edges_us.windows(2).all(|w| w[0] < w[1]) {
            return invalid("must be strictly increasing");
        }
        Ok(())
    }
}

/// One customer's activity in one period.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PeriodRow {
    /// Period index (`edges.len() - 1`: the incomplete period).
    pub period: u32,
    /// Occasions x_k.
    pub occasions: u32,
    /// Occasions with a positive amount.
    pub positive_occasions: u32,
    /// Sum of the occasion amounts (revenue, or cost when the amount column is a cost).
    pub revenue: f64,
    /// Sum of the positive occasion amounts.
    pub positive_revenue: f64,
}

/// The panel: rows of active (customer, period) pairs sorted by customer key, then period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Panel {
    /// Customers in ascending key order.
    pub ids: CustomerIds,
    /// `offsets[c]..offsets[c + 1]` are the rows of customer `c`.
    pub offsets: Vec<u64>,
    pub rows: Vec<PeriodRow>,
    /// Input rows after `max_time_us` (excluded).
    pub rows_excluded: u64,
}

/// The period holding `t_us`: the number of edges at or before it, minus one (0 before the first
/// edge).
#[inline]
fn period_of(t_us: i64, edges: &[i64]) -> u32 {
    edges.partition_point(|&e| e <= t_us).saturating_sub(1) as u32
}

/// Aggregates one customer's occasions (sorted by time) into its active periods.
/// The rows are appended to `out`: its earlier rows are left as they are.
pub fn customer_periods(occasions: &[(i64, f64)], edges: &[i64], out: &mut Vec<PeriodRow>) {
    let first = out.len();
    for &(t, amount) in occasions {
        let period = period_of(t, edges);
        let own = out.len() > first;
        let row = match out.last_mut() {
            Some(last) if own && last.period == period => last,
            _ => {
                out.push(PeriodRow {
                    period,
                    ..PeriodRow::default()
                });
                let n = out.len();
                &mut out[n - 1]
            }
        };
        row.occasions += 1;
        row.revenue += amount;
        if amount > 0.0 {
            row.positive_occasions += 1;
            row.positive_revenue += amount;
        }
    }
}

/// Builds the panel of a transaction table (one amount per row when given; without it the money
/// fields are zero).
pub fn build_panel(
    customers: &CustomerKeys<'_>,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    params: &PanelParams,
) -> Result<Panel, KernelError> {
    params.validate()?;
    if times_us.len() != customers.len() {
        return Err(KernelError::LengthMismatch {
            column: "ts",
            expected: customers.len(),
            actual: times_us.len(),
        });
    }
    if let Some(a) = amounts.filter(|a| a.len() != customers.len()) {
        return Err(KernelError::LengthMismatch {
            column: "amount",
            expected: customers.len(),
            actual: a.len(),
        });
    }
    let filter = RowFilter::new(params.max_time_us, params.resolution_us);
    parallelism::install(params.num_threads, || match customers {
        CustomerKeys::Int(keys) => {
            let (ids, panel) = sorted_panel(&IntKeys(keys), times_us, amounts, filter, params);
            Panel {
                ids: CustomerIds::Int(ids),
                ..panel
            }
        }
        CustomerKeys::View(keys) => {
            let (ids, panel) = sorted_panel(keys, times_us, amounts, filter, params);
            Panel {
                ids: CustomerIds::View(ids),
                ..panel
            }
        }
    })
}

fn sorted_panel<C: KeyColumn>(
    keys: &C,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
    params: &PanelParams,
) -> (Vec<C::Key>, Panel) {
    let edges = &params.period_edges_us;
    let partitioned = partition_rows(keys, times_us, amounts, filter);
    // One flat vector of rows per partition (no vector per customer: at 1M customers those
    // were ≈ 800 MB of small allocations kept resident by the allocator).
    let parts = partitioned.map_customers_flat(keys, Vec::new, |occasions, _key, rows, out| {
        collapse_occasions(rows, occasions);
        customer_periods(occasions, edges, out);
    });
    let rows_excluded = partitioned.rows_excluded;
    drop(partitioned);
    let mut order: Vec<(C::Key, u32, u32)> = parts
        .iter()
        .enumerate()
        .flat_map(|(p, part)| {
            part.keys
                .iter()
                .enumerate()
                .map(move |(i, key)| (*key, p as u32, i as u32))
        })
        .collect();
    order.par_sort_unstable_by(|a, b| keys.cmp(a.0, b.0));
    let span = |p: u32, i: u32| {
        let part = &parts[p as usize];
        let i = i as usize;
        let lo = if i == 0 { 0 } else { part.ends[i - 1] };
        &part.items[lo..part.ends[i]]
    };
    let mut offsets = Vec::with_capacity(order.len() + 1);
    offsets.push(0u64);
    let mut total = 0u64;
    for &(_, p, i) in &order {
        total += span(p, i).len() as u64;
        offsets.push(total);
    }
    let mut rows = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for &(_, p, i) in &order {
        rows.extend_from_slice(span(p, i));
    }
    drop(parts);
    let ids = order.into_iter().map(|(key, _, _)| key).collect();
    let panel = Panel {
        ids: CustomerIds::default(),
        offsets,
        rows,
        rows_excluded,
    };
    (ids, panel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::occasions::MICROS_PER_DAY as DAY;

    fn params(edges_days: &[i64], max_day: i64) -> PanelParams {
        PanelParams {
            max_time_us: max_day * DAY,
            resolution_us: DAY,
            period_edges_us: edges_days.iter().map(|d| d * DAY).collect(),
            num_threads: None,
        }
    }

    #[test]
    fn occasions_are_aggregated_by_period() {
        // Periods [0, 10), [10, 20); day 20 onwards is the incomplete period 2.
        let keys = [7, 7, 7, 7, 7, 3, 7];
        let times = [1, 1, 5, 12, 25, 11, 30].map(|d| d * DAY);
        let amounts = [2.0, 3.0, -1.0, 4.0, 6.0, 9.0, 1.0];
        let p = params(&[0, 10, 20], 29);
        let panel = build_panel(&CustomerKeys::Int(&keys), &times, Some(&amounts), &p).unwrap();
        assert_eq!(panel.ids, CustomerIds::Int(vec![3, 7]));
        assert_eq!(panel.offsets, vec![0, 1, 4]);
        assert_eq!(panel.rows_excluded, 1);
        let row = |period, occasions, positive_occasions, revenue, positive_revenue| PeriodRow {
            period,
            occasions,
            positive_occasions,
            revenue,
            positive_revenue,
        };
        assert_eq!(
            panel.rows,
            vec![
                row(1, 1, 1, 9.0, 9.0),
                row(0, 2, 1, 4.0, 5.0),
                row(1, 1, 1, 4.0, 4.0),
                row(2, 1, 1, 6.0, 6.0),
            ]
        );
    }

    #[test]
    fn customer_periods_appends_after_earlier_rows() {
        // A second customer whose first period equals the previous customer's last one gets
        // a row of its own: rows already in `out` are never merged into.
        let edges = [0, 10 * DAY, 20 * DAY];
        let mut out = Vec::new();
        customer_periods(&[(DAY, 2.0), (12 * DAY, 3.0)], &edges, &mut out);
        customer_periods(&[(15 * DAY, -1.0), (16 * DAY, 4.0)], &edges, &mut out);
        let periods: Vec<(u32, u32, u32)> = out
            .iter()
            .map(|r| (r.period, r.occasions, r.positive_occasions))
            .collect();
        assert_eq!(periods, vec![(0, 1, 1), (1, 1, 1), (1, 2, 1)]);
        assert_eq!((out[2].revenue, out[2].positive_revenue), (3.0, 4.0));
    }

    #[test]
    fn bad_edges_are_errors() {
        let keys = CustomerKeys::Int(&[]);
        assert!(build_panel(&keys, &[], None, &params(&[], 1)).is_err());
        assert!(build_panel(&keys, &[], None, &params(&[1, 1], 1)).is_err());
        assert!(build_panel(&keys, &[1], None, &params(&[0], 1)).is_err());
        let empty = build_panel(&keys, &[], None, &params(&[0], 1)).unwrap();
        assert_eq!(empty.offsets, vec![0]);
    }
}
