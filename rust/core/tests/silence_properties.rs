//! Property tests of the silence kernel against a direct transcription of docs/methods.md#silence.

use std::collections::BTreeMap;

use proptest::prelude::*;
use winback_core::keys::{CustomerIds, CustomerKeys};
use winback_core::occasions::MICROS_PER_DAY as DAY;
use winback_core::silence::{score, SilenceParams, STATUS_SCORED};

/// docs/methods.md#silence written out plainly: (n, recency rank, max gap µs, total amount) per
/// customer.
fn reference(
    keys: &[i64],
    times: &[i64],
    amounts: &[f64],
    as_of: i64,
) -> BTreeMap<i64, (usize, usize, i64, f64)> {
    let mut by_customer: BTreeMap<i64, BTreeMap<i64, Vec<f64>>> = BTreeMap::new();
    for ((&k, &t), &a) in keys.iter().zip(times).zip(amounts) {
        if t <= as_of {
            let day = t.div_euclid(DAY) * DAY;
            by_customer
                .entry(k)
                .or_default()
                .entry(day)
                .or_default()
                .push(a);
        }
    }
    let as_of_day = as_of.div_euclid(DAY) * DAY;
    by_customer
        .into_iter()
        .map(|(k, days)| {
            let occasions: Vec<i64> = days.keys().copied().collect();
            let gaps: Vec<i64> = occasions.windows(2).map(|w| w[1] - w[0]).collect();
            let recency = as_of_day - occasions[occasions.len() - 1];
            let rank = 1 + gaps.iter().filter(|&&g| g <= recency).count();
            let total: f64 = days.values().flatten().sum();
            (
                k,
                (
                    occasions.len(),
                    rank,
                    gaps.iter().copied().max().unwrap_or(0),
                    total,
                ),
            )
        })
        .collect()
}

fn rows() -> impl Strategy<Value = Vec<(i64, i64, f64)>> {
    prop::collection::vec((0i64..15, 0i64..(60 * DAY), -10.0f64..100.0), 0..200)
}

proptest! {
    #[test]
    fn kernel_agrees_with_reference(rows in rows(), as_of_day in 0i64..70) {
        let keys: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let times: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let amounts: Vec<f64> = rows.iter().map(|r| r.2).collect();
        let as_of = as_of_day * DAY + DAY / 2;
        let params = SilenceParams::new(as_of);
        let table = score(&CustomerKeys::Int(&keys), &times, Some(&amounts), &params).unwrap();
        let expected = reference(&keys, &times, &amounts, as_of);
        let CustomerIds::Int(ids) = &table.ids else { panic!("integer ids expected") };
        prop_assert_eq!(ids.clone(), expected.keys().copied().collect::<Vec<_>>());
        for (id, row) in ids.iter().zip(&table.customers) {
            let (n, rank, max_gap, total) = expected[id];
            prop_assert_eq!(row.n_occasions as usize, n);
            prop_assert!((row.total_amount - total).abs() <= 1e-9 * (1.0 + total.abs()) * n as f64);
            if row.status == STATUS_SCORED {
                prop_assert_eq!(row.recency_rank as usize, rank);
                prop_assert!((row.max_gap_days - max_gap as f64 / DAY as f64).abs() < 1e-12);
            } else {
                prop_assert_eq!(n, 1);
            }
        }
    }

    #[test]
    fn reversed_rows_and_thread_counts_give_identical_tables(rows in rows()) {
        let keys: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let times: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let amounts: Vec<f64> = rows.iter().map(|r| r.2).collect();
        let mut params = SilenceParams::new(60 * DAY);
        params.num_threads = Some(1);
        let forward = score(&CustomerKeys::Int(&keys), &times, Some(&amounts), &params).unwrap();
        let (rk, rt, ra): (Vec<i64>, Vec<i64>, Vec<f64>) = {
            let mut k = keys.clone();
            let mut t = times.clone();
            let mut a = amounts.clone();
            k.reverse();
            t.reverse();
            a.reverse();
            (k, t, a)
        };
        params.num_threads = Some(3);
        let backward = score(&CustomerKeys::Int(&rk), &rt, Some(&ra), &params).unwrap();
        prop_assert_eq!(forward, backward);
    }
}
