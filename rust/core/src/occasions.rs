//! Purchase occasions (docs/methods.md#occasions): rows of one customer in the same resolution
//! bucket form one occasion, dated at the bucket start, whose amount is the sum of the rows'
//! amounts.

/// Microseconds in one day; durations leave the kernels as float64 days.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Converts a duration in microseconds to float64 days (one correctly rounded division).
#[inline]
pub fn micros_to_days(duration_us: i64) -> f64 {
    duration_us as f64 / MICROS_PER_DAY as f64
}

/// The start of the resolution bucket holding `t_us`: the largest multiple of `resolution_us`
/// (counted from the Unix epoch) not after `t_us`. `resolution_us` must be positive.
#[inline]
pub fn bucket_start(t_us: i64, resolution_us: i64) -> i64 {
    t_us.saturating_sub(t_us.rem_euclid(resolution_us))
}

/// Collapses one customer's `(bucket_start, amount)` rows into occasions, in time order.
///
/// The rows are first put in a canonical order (by time, then by the amount's total order), so the
/// float sums are the same bits whatever order the rows arrived in. `occasions` is cleared and
/// refilled; it is a caller-owned buffer so the hot loop allocates nothing.
pub fn collapse_occasions(rows: &mut [(i64, f64)], occasions: &mut Vec<(i64, f64)>) {
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.total_cmp(&b.1)));
    occasions.clear();
    for &(t, amount) in rows.iter() {
        match occasions.last_mut() {
            Some(last) if last.0 == t => last.1 += amount,
            _ => occasions.push((t, amount)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_start_floors_towards_minus_infinity() {
        assert_eq!(bucket_start(0, MICROS_PER_DAY), 0);
        assert_eq!(bucket_start(MICROS_PER_DAY - 1, MICROS_PER_DAY), 0);
        assert_eq!(bucket_start(MICROS_PER_DAY, MICROS_PER_DAY), MICROS_PER_DAY);
        assert_eq!(bucket_start(-1, MICROS_PER_DAY), -MICROS_PER_DAY);
        assert_eq!(bucket_start(i64::MIN + 5, 10), i64::MIN);
    }

    #[test]
    fn same_bucket_rows_become_one_occasion_in_any_order() {
        let mut a = vec![(10, 1.5), (0, 2.0), (10, 0.25), (0, -1.0)];
        let mut b = vec![(0, -1.0), (10, 0.25), (0, 2.0), (10, 1.5)];
        let (mut oa, mut ob) = (Vec::new(), Vec::new());
        collapse_occasions(&mut a, &mut oa);
        collapse_occasions(&mut b, &mut ob);
        assert_eq!(oa, vec![(0, 1.0), (10, 1.75)]);
        assert_eq!(oa, ob);
    }

    #[test]
    fn days_conversion() {
        assert!((micros_to_days(MICROS_PER_DAY * 3 / 2) - 1.5).abs() < f64::EPSILON);
    }
}
