//! Property tests of the summary and compression kernels against direct transcriptions of
//! docs/methods.md#summary.

use std::collections::BTreeMap;

use proptest::prelude::*;
use winback_core::compress::compress_rows;
use winback_core::keys::{inline_view, CustomerIds, CustomerKeys, ViewKeys};
use winback_core::occasions::MICROS_PER_DAY as DAY;
use winback_core::summary::{summarise, CustomerSummary, SummaryParams};

const HOUR: i64 = DAY / 24;

/// Occasions (bucket start → summed amount) of the rows of one customer in `(after, upto]`.
fn occasions(rows: &[(i64, f64)], after: i64, upto: i64, resolution: i64) -> BTreeMap<i64, f64> {
    let mut out = BTreeMap::new();
    for &(t, a) in rows {
        if t > after && t <= upto {
            *out.entry(t.div_euclid(resolution) * resolution)
                .or_insert(0.0) += a;
        }
    }
    out
}

fn positive_mean(amounts: impl Iterator<Item = f64>) -> (f64, u32) {
    let positive: Vec<f64> = amounts.filter(|&a| a > 0.0).collect();
    if positive.is_empty() {
        (0.0, 0)
    } else {
        (
            positive.iter().sum::<f64>() / positive.len() as f64,
            positive.len() as u32,
        )
    }
}

/// docs/methods.md#summary written out plainly: calibration and holdout are two separate snapshots
/// of the rows.
fn reference(rows: &[(i64, i64, f64)], p: &SummaryParams) -> (BTreeMap<i64, CustomerSummary>, u64) {
    let mut by_customer: BTreeMap<i64, Vec<(i64, f64)>> = BTreeMap::new();
    for &(k, t, a) in rows {
        by_customer.entry(k).or_default().push((t, a));
    }
    let (cal, res, unit) = (p.calibration_end_us, p.resolution_us, p.unit_us as f64);
    let cal_bucket = cal.div_euclid(res) * res;
    let edges = &p.period_edges_us;
    let period = |t: i64| (0..edges.len() - 1).find(|&k| edges[k] <= t && t < edges[k + 1]);
    let mut born_after = 0;
    let mut out = BTreeMap::new();
    for (k, rows) in by_customer {
        let calibration = occasions(&rows, i64::MIN, cal, res);
        let holdout = occasions(&rows, cal, p.max_time_us, res);
        let Some((&first, &first_amount)) = calibration.iter().next() else {
            born_after += u64::from(!holdout.is_empty());
            continue;
        };
        let last = *calibration.keys().last().unwrap();
        let (monetary_value, spend_frequency) =
            positive_mean(calibration.values().skip(1).copied());
        let birth = period(first);
        let complete = edges.len().saturating_sub(1);
        let (n_periods, period_frequency) = match birth {
            Some(b) => (
                (complete - b - 1) as u32,
                calibration
                    .keys()
                    .filter(|&&t| period(t).is_some_and(|q| q > b))
                    .count() as u32,
            ),
            None => (0, 0),
        };
        out.insert(
            k,
            CustomerSummary {
                frequency: calibration.len() as u32 - 1,
                recency: (last - first) as f64 / unit,
                t: (cal_bucket - first) as f64 / unit,
                monetary_value,
                spend_frequency,
                first_amount,
                frequency_holdout: holdout.len() as u32,
                monetary_value_holdout: positive_mean(holdout.values().copied()).0,
                n_periods,
                period_frequency,
            },
        );
    }
    (out, born_after)
}

/// Rows with amounts on a quarter grid, so occasion sums are exact in any order.
fn rows() -> impl Strategy<Value = Vec<(i64, i64, f64)>> {
    prop::collection::vec(
        (
            0i64..12,
            0i64..(60 * DAY),
            (-20i64..200).prop_map(|q| q as f64 / 4.0),
        ),
        0..150,
    )
}

fn params() -> impl Strategy<Value = SummaryParams> {
    (
        0i64..(60 * HOUR * 24),
        0i64..(30 * DAY),
        prop::sample::select(vec![HOUR, DAY, 7 * DAY]),
        prop::sample::select(vec![DAY, 7 * DAY]),
        1i64..15,
    )
        .prop_map(|(cal, extra, resolution_us, unit_us, period_days)| {
            // Periods of `period_days` from day 0, complete by the calibration end.
            let period_us = period_days * DAY;
            let edges = (0..=(cal + 1) / period_us).map(|k| k * period_us).collect();
            SummaryParams {
                calibration_end_us: cal,
                max_time_us: cal + extra,
                resolution_us,
                unit_us,
                period_edges_us: edges,
                num_threads: None,
            }
        })
}

fn columns(rows: &[(i64, i64, f64)]) -> (Vec<i64>, Vec<i64>, Vec<f64>) {
    (
        rows.iter().map(|r| r.0).collect(),
        rows.iter().map(|r| r.1).collect(),
        rows.iter().map(|r| r.2).collect(),
    )
}

proptest! {
    #[test]
    fn kernel_agrees_with_reference(rows in rows(), params in params()) {
        let (keys, times, amounts) = columns(&rows);
        let table = summarise(&CustomerKeys::Int(&keys), &times, Some(&amounts), &params).unwrap();
        let (expected, born_after) = reference(&rows, &params);
        let CustomerIds::Int(ids) = &table.ids else { panic!("integer ids expected") };
        prop_assert_eq!(ids.clone(), expected.keys().copied().collect::<Vec<_>>());
        for (id, row) in ids.iter().zip(&table.customers) {
            prop_assert_eq!(row, &expected[id], "customer {}", id);
        }
        prop_assert_eq!(table.customers_born_after_calibration, born_after);
        let after = times.iter().filter(|&&t| t > params.max_time_us).count() as u64;
        prop_assert_eq!(table.rows_after_max_time, after);
        prop_assert_eq!(table.rows_used, times.len() as u64 - after);
    }

    #[test]
    fn order_threads_and_key_kind_do_not_matter(rows in rows(), params in params()) {
        let (keys, times, amounts) = columns(&rows);
        let mut params = params;
        params.num_threads = Some(1);
        let forward = summarise(&CustomerKeys::Int(&keys), &times, Some(&amounts), &params).unwrap();
        let mut reversed = rows.clone();
        reversed.reverse();
        let (rk, rt, ra) = columns(&reversed);
        params.num_threads = Some(3);
        let backward = summarise(&CustomerKeys::Int(&rk), &rt, Some(&ra), &params).unwrap();
        prop_assert_eq!(&forward, &backward);
        // The same customers as strings "k<id>" (ids < 100 sort like their integers).
        let names: Vec<String> = keys.iter().map(|k| format!("k{k:02}")).collect();
        let views: Vec<u128> = names.iter().map(|n| inline_view(n.as_bytes()).unwrap()).collect();
        let strings = CustomerKeys::View(ViewKeys { views: &views, buffers: vec![] });
        let by_name = summarise(&strings, &times, Some(&amounts), &params).unwrap();
        prop_assert_eq!(&by_name.customers, &forward.customers);
        prop_assert_eq!(by_name.customers_born_after_calibration, forward.customers_born_after_calibration);
    }

    #[test]
    fn compression_keeps_the_multiset(
        rows in prop::collection::vec((0u8..4, prop::sample::select(vec![0.0, -0.0, 1.5, 2.0])), 0..300)
    ) {
        let x: Vec<f64> = rows.iter().map(|r| f64::from(r.0)).collect();
        let y: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let out = compress_rows(&[&x, &y]).unwrap();
        prop_assert_eq!(out.counts.iter().sum::<u64>(), rows.len() as u64);
        let key = |a: f64, b: f64| (a.to_bits(), b.to_bits());
        let mut expected: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        for (&a, &b) in x.iter().zip(&y) {
            *expected.entry(key(a, b)).or_default() += 1;
        }
        let got: BTreeMap<(u64, u64), u64> = (0..out.counts.len())
            .map(|i| (key(out.columns[0][i], out.columns[1][i]), out.counts[i]))
            .collect();
        prop_assert_eq!(got, expected);
        for i in 1..out.counts.len() {
            let order = out.columns[0][i - 1]
                .total_cmp(&out.columns[0][i])
                .then(out.columns[1][i - 1].total_cmp(&out.columns[1][i]));
            prop_assert!(order.is_lt());
        }
    }
}

#[test]
fn compression_of_many_rows_is_the_same_on_any_thread_count() {
    let x: Vec<f64> = (0..300_000).map(|i| f64::from(i % 37)).collect();
    let t: Vec<f64> = (0..300_000).map(|i| f64::from(i % 11) / 2.0).collect();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| compress_rows(&[&x, &t]).unwrap());
    let many = compress_rows(&[&x, &t]).unwrap();
    assert_eq!(one, many);
    assert_eq!(one.counts.len(), 37 * 11);
}
