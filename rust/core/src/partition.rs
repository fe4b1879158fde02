//! Grouping transaction rows by customer without a global sort (SPEC §10: "sort once, scan once").
//!
//! Rows are hash-partitioned by customer key in fixed-size chunks (phase 1), then every partition
//! is grouped with a small, cache-resident hash map and a counting sort (phase 2). Both phases run in
//! parallel. Chunk boundaries and partition counts depend only on the number of rows, never on the
//! thread count, and each customer's rows are later put in a canonical order by the caller, so the
//! grouping is deterministic.

use std::hash::{BuildHasher, Hash};

use foldhash::fast::FixedState;
use hashbrown::HashMap;
use rayon::prelude::*;

use crate::occasions::bucket_start;

/// Rows per phase-1 chunk: small enough to stay in cache, large enough to amortise the histogram.
const CHUNK_ROWS: usize = 1 << 16;
/// Target rows per partition: a partition's hash map and rows should fit in L2.
const TARGET_PARTITION_ROWS: usize = 1 << 14;
const MAX_PARTITION_BITS: u32 = 12;
/// Seeds of the two hashes: the partition hash and the in-partition map must not share bits.
const PARTITION_SEED: u64 = 0x5158_A7E1_90D3_4F2B;
const MAP_SEED: u64 = 0x2C1B_3C6D_D7E4_9A85;

/// Largest row count one call can index (row indices are stored as `u32`).
pub const MAX_ROWS: usize = u32::MAX as usize;

/// What to keep of each row before grouping.
#[derive(Debug, Clone, Copy)]
pub struct RowFilter {
    /// Rows with a timestamp after this (µs) are outside the snapshot and only counted.
    pub max_time_us: i64,
    /// Width of an occasion bucket (µs, > 0); kept timestamps are floored to bucket starts.
    pub resolution_us: i64,
}

/// One phase-1 chunk: its kept rows, laid out partition after partition. The key travels with the
/// row so phase 2 never reads the input column at scattered positions (a cache miss per row).
struct Chunk<K> {
    /// `offsets[p]..offsets[p + 1]` are the rows of partition `p` in this chunk.
    offsets: Vec<u32>,
    keys: Vec<K>,
    bucket_us: Vec<i64>,
    amounts: Vec<f64>,
    excluded: u64,
}

/// Rows of a snapshot, hash-partitioned by customer.
pub struct Partitioned<K> {
    chunks: Vec<Chunk<K>>,
    partition_bits: u32,
    /// Rows dropped by the filter (after `max_time_us`).
    pub rows_excluded: u64,
}

fn partition_bits_for(n_rows: usize) -> u32 {
    let wanted = (n_rows / TARGET_PARTITION_ROWS).max(1).next_power_of_two();
    wanted.trailing_zeros().min(MAX_PARTITION_BITS)
}

#[inline]
fn partition_of(hash: u64, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (hash >> (64 - bits)) as usize
    }
}

/// Phase 1: filters, buckets and hash-partitions the rows (`times_us.len()` rows; `key_of(i)` is
/// row `i`'s customer key). The caller checks that lengths agree and are at most [`MAX_ROWS`].
pub fn partition_rows<K, F>(
    key_of: &F,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
) -> Partitioned<K>
where
    K: Hash + Copy + Default + Send,
    F: Fn(usize) -> K + Sync,
{
    let n_rows = times_us.len();
    let bits = partition_bits_for(n_rows);
    let n_partitions = 1usize << bits;
    let hasher = FixedState::with_seed(PARTITION_SEED);
    let chunks: Vec<Chunk<K>> = (0..n_rows.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(|c| {
            let start = c * CHUNK_ROWS;
            let end = (start + CHUNK_ROWS).min(n_rows);
            let mut part = Vec::with_capacity(end - start);
            let mut chunk_keys = Vec::with_capacity(end - start);
            let mut counts = vec![0u32; n_partitions + 1];
            let mut excluded = 0u64;
            for (row, &t) in times_us.iter().enumerate().take(end).skip(start) {
                if t > filter.max_time_us {
                    excluded += 1;
                    part.push(u16::MAX);
                    continue;
                }
                let key = key_of(row);
                let p = partition_of(hasher.hash_one(key), bits);
                counts[p + 1] += 1;
                part.push(p as u16);
                chunk_keys.push(key);
            }
            for p in 0..n_partitions {
                counts[p + 1] += counts[p];
            }
            let kept = counts[n_partitions] as usize;
            let mut cursor = counts.clone();
            let mut bucket = vec![0i64; kept];
            let mut amount = vec![0f64; if amounts.is_some() { kept } else { 0 }];
            let mut keys = vec![K::default(); kept];
            let mut kept_keys = chunk_keys.into_iter();
            for (offset, &p) in part.iter().enumerate() {
                if p == u16::MAX {
                    continue;
                }
                let row = start + offset;
                let slot = cursor[p as usize] as usize;
                cursor[p as usize] += 1;
                bucket[slot] = bucket_start(times_us[row], filter.resolution_us);
                if let Some(a) = amounts {
                    amount[slot] = a[row];
                }
                keys[slot] = kept_keys.next().unwrap_or_default();
            }
            Chunk {
                offsets: counts,
                keys,
                bucket_us: bucket,
                amounts: amount,
                excluded,
            }
        })
        .collect();
    let rows_excluded = chunks.iter().map(|c| c.excluded).sum();
    Partitioned {
        chunks,
        partition_bits: bits,
        rows_excluded,
    }
}

impl<K> Partitioned<K>
where
    K: Hash + Eq + Copy + Send + Sync,
{
    /// Phase 2: calls `per_customer(scratch, key, rows)` once per customer, where `rows` holds that
    /// customer's kept `(bucket_start_us, amount)` pairs (amount 0 when there is no amount column)
    /// in no particular order. Results come back in partition order; callers sort them by key.
    pub fn map_customers<S, R>(
        &self,
        init: impl Fn() -> S + Sync + Send,
        per_customer: impl Fn(&mut S, K, &mut [(i64, f64)]) -> R + Sync + Send,
    ) -> Vec<(K, R)>
    where
        R: Send,
    {
        let n_partitions = 1usize << self.partition_bits;
        let per_partition: Vec<Vec<(K, R)>> = (0..n_partitions)
            .into_par_iter()
            .map_init(
                || (init(), Vec::new(), Vec::new()),
                |(scratch, codes, grouped), p| {
                    self.group_partition(p, codes, grouped, scratch, &per_customer)
                },
            )
            .collect();
        per_partition.into_iter().flatten().collect()
    }

    fn group_partition<S, R>(
        &self,
        p: usize,
        codes: &mut Vec<u32>,
        grouped: &mut Vec<(i64, f64)>,
        scratch: &mut S,
        per_customer: &impl Fn(&mut S, K, &mut [(i64, f64)]) -> R,
    ) -> Vec<(K, R)> {
        let mut codes_of: HashMap<K, u32, FixedState> =
            HashMap::with_hasher(FixedState::with_seed(MAP_SEED));
        let mut keys: Vec<K> = Vec::new();
        codes.clear();
        for chunk in &self.chunks {
            let (lo, hi) = (chunk.offsets[p] as usize, chunk.offsets[p + 1] as usize);
            for &key in &chunk.keys[lo..hi] {
                let next = keys.len() as u32;
                let code = *codes_of.entry(key).or_insert_with(|| {
                    keys.push(key);
                    next
                });
                codes.push(code);
            }
        }
        // Counting sort of the partition's rows by customer code.
        let mut starts = vec![0usize; keys.len() + 1];
        for &code in codes.iter() {
            starts[code as usize + 1] += 1;
        }
        for c in 0..keys.len() {
            starts[c + 1] += starts[c];
        }
        grouped.clear();
        grouped.resize(codes.len(), (0, 0.0));
        let mut cursor = starts.clone();
        let mut i = 0;
        for chunk in &self.chunks {
            let (lo, hi) = (chunk.offsets[p] as usize, chunk.offsets[p + 1] as usize);
            for j in lo..hi {
                let c = codes[i] as usize;
                let amount = chunk.amounts.get(j).copied().unwrap_or(0.0);
                grouped[cursor[c]] = (chunk.bucket_us[j], amount);
                cursor[c] += 1;
                i += 1;
            }
        }
        keys.iter()
            .enumerate()
            .map(|(c, &key)| {
                let rows = &mut grouped[starts[c]..starts[c + 1]];
                (key, per_customer(scratch, key, rows))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(keys: &[i64], times: &[i64]) -> Vec<(i64, Vec<i64>)> {
        let key_of = |i: usize| keys[i];
        let filter = RowFilter {
            max_time_us: 100,
            resolution_us: 1,
        };
        let parts = partition_rows(&key_of, times, None, filter);
        let mut out = parts.map_customers(
            || (),
            |(), _key, rows| {
                let mut t: Vec<i64> = rows.iter().map(|r| r.0).collect();
                t.sort_unstable();
                t
            },
        );
        out.sort_unstable_by_key(|(k, _)| *k);
        out
    }

    #[test]
    fn every_kept_row_lands_with_its_customer() {
        let keys = [3, 1, 3, 2, 1, 3];
        let times = [5, 1, 7, 2, 200, 6];
        assert_eq!(
            groups(&keys, &times),
            vec![(1, vec![1]), (2, vec![2]), (3, vec![5, 6, 7])]
        );
    }

    #[test]
    fn partition_count_grows_with_rows_and_is_capped() {
        assert_eq!(partition_bits_for(0), 0);
        assert_eq!(partition_bits_for(TARGET_PARTITION_ROWS * 4), 2);
        assert_eq!(partition_bits_for(usize::MAX / 2), MAX_PARTITION_BITS);
    }
}
