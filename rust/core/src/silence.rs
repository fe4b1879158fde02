//! Silence scoring (docs/methods.md#silence; seed 沉默用户激活方案 §一–§五).
//!
//! For a customer with occasions t_1 < … < t_n, gaps T_i = t_{i+1} − t_i, recency Tr = as_of − t_n,
//! `recency_rank` = #{v ∈ {T_1..T_{n−1}, Tr} : v ≤ Tr} (ties count for Tr), TrF = rank / n and
//! S = Tr / max T_i. Groups a–e cut TrF, bands cut S. All durations are integer microseconds inside
//! the kernel (exact comparisons) and float64 days on output.

use crate::keys::{CustomerIds, CustomerKeys};
use crate::occasions::{bucket_start, micros_to_days};
use crate::partition::{visit_occasions_sorted, CustomerSink, RowFilter};
use crate::KernelError;

/// `status` codes, in the order of [`STATUS_LABELS`].
pub const STATUS_SCORED: u8 = 0;
pub const STATUS_SINGLE_PURCHASE: u8 = 1;
pub const STATUS_BELOW_MIN_OCCASIONS: u8 = 2;
/// Labels of the `status` codes.
pub const STATUS_LABELS: [&str; 3] = ["scored", "single_purchase", "below_min_occasions"];
/// Labels of the TrF groups, by code.
pub const GROUP_LABELS: [&str; 5] = ["a", "b", "c", "d", "e"];
/// Labels of the S bands, by code.
pub const BAND_LABELS: [&str; 3] = ["not_silent", "silent", "deep_silent"];

/// Parameters of silence scoring (docs/methods.md#silence), times in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceParams {
    /// Snapshot time: rows after it are excluded; floored to the resolution for Tr.
    pub as_of_us: i64,
    /// Occasion bucket width (> 0).
    pub resolution_us: i64,
    /// Customers with fewer occasions are not scored (β of docs/methods.md#not-scored, ≥ 1).
    pub min_occasions: u32,
    /// TrF cuts between groups a|b|c|d|e, strictly increasing in (0, 1].
    pub trf_cuts: [f64; 4],
    /// S cuts between bands `not_silent|silent|deep_silent`, strictly increasing, positive.
    pub s_cuts: [f64; 2],
    /// Worker threads (`None`: the default pool).
    pub num_threads: Option<usize>,
}

impl SilenceParams {
    /// The defaults of docs/methods.md#silence at a given snapshot time, day resolution.
    pub fn new(as_of_us: i64) -> Self {
        Self {
            as_of_us,
            resolution_us: crate::occasions::MICROS_PER_DAY,
            min_occasions: 2,
            trf_cuts: [0.4, 0.6, 0.8, 0.95],
            s_cuts: [1.0, 2.0],
            num_threads: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), KernelError> {
        let invalid = |name, reason: &str| {
            Err(KernelError::InvalidParameter {
                name,
                reason: reason.to_string(),
            })
        };
        if self.resolution_us <= 0 {
            return invalid("resolution", "must be a positive duration");
        }
        if self.min_occasions == 0 {
            return invalid("min_occasions", "must be at least 1");
        }
        let increasing = |c: &[f64]| c.windows(2).all(|w| w[0] < w[1]);
        if !increasing(&self.trf_cuts) || !self.trf_cuts.iter().all(|&c| c > 0.0 && c <= 1.0) {
            return invalid(
                "trf_cuts",
                "must be 4 strictly increasing numbers in (0, 1]",
            );
        }
        if !increasing(&self.s_cuts) || !self.s_cuts.iter().all(|&c| c > 0.0 && c.is_finite()) {
            return invalid(
                "s_cuts",
                "must be 2 strictly increasing positive finite numbers",
            );
        }
        Ok(())
    }
}

/// One customer's silence figures; gap-based fields are meaningful only when `status` is scored.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CustomerSilence {
    pub status: u8,
    pub n_occasions: u32,
    pub first_us: i64,
    pub last_us: i64,
    pub tenure_days: f64,
    pub recency_days: f64,
    pub max_gap_days: f64,
    pub mean_gap_days: f64,
    pub median_gap_days: f64,
    pub recency_rank: u32,
    pub rank_ratio: f64,
    pub silence_score: f64,
    pub group: u8,
    pub band: u8,
    pub total_amount: f64,
    pub mean_amount: f64,
}

/// Scores one customer from its occasions (sorted by time, distinct buckets, at least one).
/// `as_of_bucket_us` is the floored snapshot time; `gaps` is a scratch buffer.
pub fn score_occasions(
    occasions: &[(i64, f64)],
    as_of_bucket_us: i64,
    params: &SilenceParams,
    gaps: &mut Vec<i64>,
) -> CustomerSilence {
    let n = occasions.len();
    let (first_us, last_us) = (occasions[0].0, occasions[n - 1].0);
    let total_amount: f64 = occasions.iter().map(|o| o.1).sum();
    let recency_us = as_of_bucket_us - last_us;
    let mut out = CustomerSilence {
        n_occasions: n as u32,
        first_us,
        last_us,
        tenure_days: micros_to_days(as_of_bucket_us - first_us),
        recency_days: micros_to_days(recency_us),
        total_amount,
        mean_amount: total_amount / n as f64,
        ..CustomerSilence::default()
    };
    if n == 1 {
        out.status = STATUS_SINGLE_PURCHASE;
        return out;
    }
    if (n as u64) < u64::from(params.min_occasions) {
        out.status = STATUS_BELOW_MIN_OCCASIONS;
        return out;
    }
    gaps.clear();
    gaps.extend(occasions.windows(2).map(|w| w[1].0 - w[0].0));
    let max_gap_us = gaps.iter().copied().max().unwrap_or(1);
    // Tr always counts itself; ties with a gap count in Tr's favour.
    let rank = 1 + gaps.iter().filter(|&&g| g <= recency_us).count();
    let rank_ratio = rank as f64 / n as f64;
    let silence_score = recency_us as f64 / max_gap_us as f64;
    out.status = STATUS_SCORED;
    out.max_gap_days = micros_to_days(max_gap_us);
    out.mean_gap_days = micros_to_days(last_us - first_us) / (n - 1) as f64;
    out.median_gap_days = median_days(gaps);
    out.recency_rank = rank as u32;
    out.rank_ratio = rank_ratio;
    out.silence_score = silence_score;
    out.group = params.trf_cuts.iter().filter(|&&c| rank_ratio >= c).count() as u8;
    out.band = params
        .s_cuts
        .iter()
        .filter(|&&c| silence_score >= c)
        .count() as u8;
    out
}

/// Median of a non-empty list of durations (µs), in days; the mean of the middle two when even.
fn median_days(values: &mut [i64]) -> f64 {
    let m = values.len();
    if m <= SMALL_MEDIAN {
        // Most customers have a handful of gaps: an insertion sort beats a selection there.
        values.sort_unstable();
        let upper = values[m / 2];
        return if m % 2 == 1 {
            micros_to_days(upper)
        } else {
            f64::midpoint(micros_to_days(values[m / 2 - 1]), micros_to_days(upper))
        };
    }
    let (left, upper, _) = values.select_nth_unstable(m / 2);
    let upper = *upper;
    if m % 2 == 1 {
        micros_to_days(upper)
    } else {
        let lower = left.iter().copied().max().unwrap_or(upper);
        f64::midpoint(micros_to_days(lower), micros_to_days(upper))
    }
}

/// Gap counts up to which the median sorts the gaps instead of selecting.
const SMALL_MEDIAN: usize = 16;

/// The scored table: one row per customer present at `as_of`, sorted by customer key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SilenceTable {
    /// Customer of each row, in ascending order (integers numerically, strings bytewise).
    pub ids: CustomerIds,
    pub customers: Vec<CustomerSilence>,
    /// Input rows after `as_of` (excluded from the snapshot).
    pub rows_after_as_of: u64,
    /// Input rows that entered the snapshot.
    pub rows_used: u64,
}

/// Scores every customer of a transaction table (docs/methods.md#silence). `amounts`, when given,
/// has one value per row; without it the amount columns are zero and the caller reports them as
/// null.
pub fn score(
    customers: &CustomerKeys<'_>,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    params: &SilenceParams,
) -> Result<SilenceTable, KernelError> {
    let mut rows = Vec::new();
    let (ids, rows_after_as_of) = score_into(customers, times_us, amounts, params, &mut rows)?;
    Ok(SilenceTable {
        ids,
        customers: rows,
        rows_after_as_of,
        rows_used: times_us.len() as u64 - rows_after_as_of,
    })
}

/// [`score`] as one vector per output column (what the Arrow output wraps without a copy): the
/// same figures, written straight into the columns in customer order.
pub fn score_columns(
    customers: &CustomerKeys<'_>,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    params: &SilenceParams,
) -> Result<SilenceColumns, KernelError> {
    let mut columns = SilenceColumns::default();
    let (ids, rows_after_as_of) = score_into(customers, times_us, amounts, params, &mut columns)?;
    columns.shrink_to_fit();
    columns.ids = ids;
    columns.rows_after_as_of = rows_after_as_of;
    columns.rows_used = times_us.len() as u64 - rows_after_as_of;
    Ok(columns)
}

/// Scores every customer into `sink` in customer order; returns the ids and the rows after
/// `as_of`.
fn score_into(
    customers: &CustomerKeys<'_>,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    params: &SilenceParams,
    sink: &mut (impl CustomerSink<CustomerSilence> + Send),
) -> Result<(CustomerIds, u64), KernelError> {
    params.validate()?;
    let filter = RowFilter::new(params.as_of_us, params.resolution_us);
    let as_of_bucket_us = bucket_start(params.as_of_us, params.resolution_us);
    visit_occasions_sorted(
        customers,
        times_us,
        amounts,
        filter,
        params.num_threads,
        Vec::new,
        |gaps, occasions| Some(score_occasions(occasions, as_of_bucket_us, params, gaps)),
        sink,
    )
}

/// The scored table by column: one entry per customer present at `as_of`, sorted by customer key
/// (the fields of [`CustomerSilence`], same meaning).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SilenceColumns {
    /// Customer of each row, in ascending order (integers numerically, strings bytewise).
    pub ids: CustomerIds,
    pub status: Vec<u8>,
    pub n_occasions: Vec<u32>,
    pub first_us: Vec<i64>,
    pub last_us: Vec<i64>,
    pub tenure_days: Vec<f64>,
    pub recency_days: Vec<f64>,
    pub max_gap_days: Vec<f64>,
    pub mean_gap_days: Vec<f64>,
    pub median_gap_days: Vec<f64>,
    pub recency_rank: Vec<u32>,
    pub rank_ratio: Vec<f64>,
    pub silence_score: Vec<f64>,
    pub group: Vec<u8>,
    pub band: Vec<u8>,
    pub total_amount: Vec<f64>,
    pub mean_amount: Vec<f64>,
    /// Input rows after `as_of` (excluded from the snapshot).
    pub rows_after_as_of: u64,
    /// Input rows that entered the snapshot.
    pub rows_used: u64,
}

impl SilenceColumns {
    /// Number of customers.
    pub fn len(&self) -> usize {
        self.status.len()
    }

    /// Whether there are no customers.
    pub fn is_empty(&self) -> bool {
        self.status.is_empty()
    }

    /// The figures of row `i`.
    pub fn row(&self, i: usize) -> CustomerSilence {
        CustomerSilence {
            status: self.status[i],
            n_occasions: self.n_occasions[i],
            first_us: self.first_us[i],
            last_us: self.last_us[i],
            tenure_days: self.tenure_days[i],
            recency_days: self.recency_days[i],
            max_gap_days: self.max_gap_days[i],
            mean_gap_days: self.mean_gap_days[i],
            median_gap_days: self.median_gap_days[i],
            recency_rank: self.recency_rank[i],
            rank_ratio: self.rank_ratio[i],
            silence_score: self.silence_score[i],
            group: self.group[i],
            band: self.band[i],
            total_amount: self.total_amount[i],
            mean_amount: self.mean_amount[i],
        }
    }

    /// Returns the unused room of every column (reserved for an upper bound of the customers).
    fn shrink_to_fit(&mut self) {
        self.status.shrink_to_fit();
        self.n_occasions.shrink_to_fit();
        self.first_us.shrink_to_fit();
        self.last_us.shrink_to_fit();
        self.tenure_days.shrink_to_fit();
        self.recency_days.shrink_to_fit();
        self.max_gap_days.shrink_to_fit();
        self.mean_gap_days.shrink_to_fit();
        self.median_gap_days.shrink_to_fit();
        self.recency_rank.shrink_to_fit();
        self.rank_ratio.shrink_to_fit();
        self.silence_score.shrink_to_fit();
        self.group.shrink_to_fit();
        self.band.shrink_to_fit();
        self.total_amount.shrink_to_fit();
        self.mean_amount.shrink_to_fit();
    }
}

impl CustomerSink<CustomerSilence> for SilenceColumns {
    fn reserve(&mut self, additional: usize) {
        self.status.reserve(additional);
        self.n_occasions.reserve(additional);
        self.first_us.reserve(additional);
        self.last_us.reserve(additional);
        self.tenure_days.reserve(additional);
        self.recency_days.reserve(additional);
        self.max_gap_days.reserve(additional);
        self.mean_gap_days.reserve(additional);
        self.median_gap_days.reserve(additional);
        self.recency_rank.reserve(additional);
        self.rank_ratio.reserve(additional);
        self.silence_score.reserve(additional);
        self.group.reserve(additional);
        self.band.reserve(additional);
        self.total_amount.reserve(additional);
        self.mean_amount.reserve(additional);
    }

    #[inline]
    fn push(&mut self, c: CustomerSilence) {
        self.status.push(c.status);
        self.n_occasions.push(c.n_occasions);
        self.first_us.push(c.first_us);
        self.last_us.push(c.last_us);
        self.tenure_days.push(c.tenure_days);
        self.recency_days.push(c.recency_days);
        self.max_gap_days.push(c.max_gap_days);
        self.mean_gap_days.push(c.mean_gap_days);
        self.median_gap_days.push(c.median_gap_days);
        self.recency_rank.push(c.recency_rank);
        self.rank_ratio.push(c.rank_ratio);
        self.silence_score.push(c.silence_score);
        self.group.push(c.group);
        self.band.push(c.band);
        self.total_amount.push(c.total_amount);
        self.mean_amount.push(c.mean_amount);
    }
}

/// The float fields of `c` as bit patterns, for tests that must tell -0.0 from 0.0 (f64 equality
/// would let it pass).
#[cfg(test)]
pub(crate) fn float_bits(c: &CustomerSilence) -> Vec<u64> {
    [
        c.tenure_days,
        c.recency_days,
        c.max_gap_days,
        c.mean_gap_days,
        c.median_gap_days,
        c.rank_ratio,
        c.silence_score,
        c.total_amount,
        c.mean_amount,
    ]
    .into_iter()
    .map(f64::to_bits)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::ViewKeys;
    use crate::occasions::MICROS_PER_DAY as DAY;

    fn occ(days: &[i64]) -> Vec<(i64, f64)> {
        days.iter().map(|&d| (d * DAY, 1.0)).collect()
    }

    #[test]
    fn seed_example_rank_and_score() {
        // Gaps 10, 20, 5 days; Tr = 20 ties the longest gap and ranks in its favour.
        let params = SilenceParams::new(55 * DAY);
        let c = score_occasions(&occ(&[0, 10, 30, 35]), 55 * DAY, &params, &mut Vec::new());
        assert_eq!(c.status, STATUS_SCORED);
        assert_eq!(c.recency_rank, 4);
        assert!((c.rank_ratio - 1.0).abs() < f64::EPSILON);
        assert!((c.silence_score - 1.0).abs() < f64::EPSILON);
        assert_eq!((c.group, c.band), (4, 1));
        assert!((c.median_gap_days - 10.0).abs() < f64::EPSILON);
        assert!((c.mean_gap_days - 35.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn single_and_below_min_have_status() {
        let mut params = SilenceParams::new(10 * DAY);
        let single = score_occasions(&occ(&[3]), 10 * DAY, &params, &mut Vec::new());
        assert_eq!(single.status, STATUS_SINGLE_PURCHASE);
        assert!((single.recency_days - 7.0).abs() < f64::EPSILON);
        params.min_occasions = 3;
        let few = score_occasions(&occ(&[1, 2]), 10 * DAY, &params, &mut Vec::new());
        assert_eq!(few.status, STATUS_BELOW_MIN_OCCASIONS);
    }

    #[test]
    fn bad_parameters_are_errors() {
        let mut params = SilenceParams::new(0);
        params.trf_cuts = [0.4, 0.4, 0.8, 0.95];
        let err = score(&CustomerKeys::Int(&[]), &[], None, &params).unwrap_err();
        assert!(matches!(
            err,
            KernelError::InvalidParameter {
                name: "trf_cuts",
                ..
            }
        ));
        let params = SilenceParams::new(0);
        let err = score(&CustomerKeys::Int(&[1]), &[], None, &params).unwrap_err();
        assert!(matches!(
            err,
            KernelError::LengthMismatch { column: "ts", .. }
        ));
    }

    #[test]
    fn string_keys_sort_bytewise() {
        let views = [b"b".as_slice(), b"b", b"a"].map(|v| crate::keys::inline_view(v).unwrap());
        let keys = CustomerKeys::View(ViewKeys {
            views: &views,
            buffers: vec![],
        });
        let params = SilenceParams::new(10 * DAY);
        let table = score(&keys, &[DAY, 2 * DAY, 3 * DAY], None, &params).unwrap();
        assert_eq!(table.ids, CustomerIds::View(vec![views[2], views[0]]));
        assert_eq!(table.customers[1].n_occasions, 2);
    }
}
