//! Grouping transaction rows by customer without a global sort (SPEC §10: "sort once, scan once").
//!
//! Rows are hash-partitioned by customer key in fixed-size chunks (phase 1), then every partition
//! is grouped with a small, cache-resident hash table and a counting sort (phase 2). Both phases
//! run in parallel. Chunk boundaries and partition counts depend only on the number of rows, never
//! on the thread count, and callers put each customer's rows in a canonical order, so the grouping
//! is deterministic.

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use rayon::prelude::*;

use crate::keys::KeyColumn;
use crate::occasions::bucket_start;

/// Rows per phase-1 chunk: small enough to stay in cache, large enough to amortise the histogram.
const CHUNK_ROWS: usize = 1 << 16;
/// Target rows per partition: a partition's hash table and rows should fit in L2.
const TARGET_PARTITION_ROWS: usize = 1 << 14;
const MAX_PARTITION_BITS: u32 = 12;
/// Marks a row of a chunk that the filter dropped.
const DROPPED: u16 = u16::MAX;

/// Largest row count one call can index.
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
/// row, so phase 2 never reads the input column at scattered positions (a cache miss per row).
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

/// The in-partition table's hash. Keys of one partition share their top hash bits, which the
/// table uses as tags, so the bits are remixed first.
#[inline]
fn table_hash(hash: u64) -> u64 {
    (hash ^ (hash >> 31))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
}

/// Phase 1: filters, buckets and hash-partitions the rows of `keys` (with `times_us`, and
/// `amounts` when given). The caller checks that lengths agree and are at most [`MAX_ROWS`].
pub fn partition_rows<C: KeyColumn>(
    keys: &C,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
) -> Partitioned<C::Key> {
    let n_rows = times_us.len();
    let bits = partition_bits_for(n_rows);
    let chunks: Vec<Chunk<C::Key>> = (0..n_rows.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(|c| {
            let start = c * CHUNK_ROWS;
            let end = (start + CHUNK_ROWS).min(n_rows);
            partition_chunk(keys, times_us, amounts, filter, start..end, bits)
        })
        .collect();
    let rows_excluded = chunks.iter().map(|c| c.excluded).sum();
    Partitioned {
        chunks,
        partition_bits: bits,
        rows_excluded,
    }
}

fn partition_chunk<C: KeyColumn>(
    keys: &C,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
    rows: std::ops::Range<usize>,
    bits: u32,
) -> Chunk<C::Key> {
    let n_partitions = 1usize << bits;
    let mut part = Vec::with_capacity(rows.len());
    let mut counts = vec![0u32; n_partitions + 1];
    let mut excluded = 0u64;
    for row in rows.clone() {
        if times_us[row] > filter.max_time_us {
            excluded += 1;
            part.push(DROPPED);
        } else {
            let p = partition_of(keys.hash(keys.key(row)), bits);
            counts[p + 1] += 1;
            part.push(p as u16);
        }
    }
    for p in 0..n_partitions {
        counts[p + 1] += counts[p];
    }
    let kept = counts[n_partitions] as usize;
    let mut cursor = counts.clone();
    let mut chunk_keys = vec![C::Key::default(); kept];
    let mut bucket = vec![0i64; kept];
    let mut amount = vec![0f64; if amounts.is_some() { kept } else { 0 }];
    for (row, &p) in rows.zip(&part) {
        if p == DROPPED {
            continue;
        }
        let slot = cursor[p as usize] as usize;
        cursor[p as usize] += 1;
        chunk_keys[slot] = keys.key(row);
        bucket[slot] = bucket_start(times_us[row], filter.resolution_us);
        if let Some(a) = amounts {
            amount[slot] = a[row];
        }
    }
    Chunk {
        offsets: counts,
        keys: chunk_keys,
        bucket_us: bucket,
        amounts: amount,
        excluded,
    }
}

impl<K: Copy + Send + Sync> Partitioned<K> {
    /// Phase 2: calls `per_customer(scratch, key, rows)` once per customer, where `rows` holds that
    /// customer's kept `(bucket_start_us, amount)` pairs (amount 0 when there is no amount column)
    /// in no particular order. Returns one vector of results per partition, in partition order;
    /// callers sort them by key for a canonical order.
    pub fn map_customers<C, S, R>(
        &self,
        keys: &C,
        init: impl Fn() -> S + Sync + Send,
        per_customer: impl Fn(&mut S, K, &mut [(i64, f64)]) -> R + Sync + Send,
    ) -> Vec<Vec<(K, R)>>
    where
        C: KeyColumn<Key = K>,
        R: Send,
    {
        let n_partitions = 1usize << self.partition_bits;
        (0..n_partitions)
            .into_par_iter()
            .map_init(
                || (init(), Vec::new(), Vec::new()),
                |(scratch, codes, grouped), p| {
                    self.group_partition(p, keys, codes, grouped, scratch, &per_customer)
                },
            )
            .collect()
    }

    fn group_partition<C, S, R>(
        &self,
        p: usize,
        keys: &C,
        codes: &mut Vec<u32>,
        grouped: &mut Vec<(i64, f64)>,
        scratch: &mut S,
        per_customer: &impl Fn(&mut S, K, &mut [(i64, f64)]) -> R,
    ) -> Vec<(K, R)>
    where
        C: KeyColumn<Key = K>,
    {
        // Entries are (table hash, key, customer code).
        let mut table: HashTable<(u64, K, u32)> = HashTable::new();
        let mut customers: Vec<K> = Vec::new();
        codes.clear();
        for chunk in &self.chunks {
            let (lo, hi) = (chunk.offsets[p] as usize, chunk.offsets[p + 1] as usize);
            for &key in &chunk.keys[lo..hi] {
                let hash = table_hash(keys.hash(key));
                let code = match table.entry(hash, |e| keys.eq(e.1, key), |e| e.0) {
                    Entry::Occupied(entry) => entry.get().2,
                    Entry::Vacant(entry) => {
                        let code = customers.len() as u32;
                        customers.push(key);
                        entry.insert((hash, key, code));
                        code
                    }
                };
                codes.push(code);
            }
        }
        // Counting sort of the partition's rows by customer code.
        let mut starts = vec![0usize; customers.len() + 1];
        for &code in codes.iter() {
            starts[code as usize + 1] += 1;
        }
        for c in 0..customers.len() {
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
        customers
            .iter()
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
    use crate::keys::IntKeys;

    fn groups(keys: &[i64], times: &[i64]) -> Vec<(i64, Vec<i64>)> {
        let column = IntKeys(keys);
        let filter = RowFilter {
            max_time_us: 100,
            resolution_us: 1,
        };
        let parts = partition_rows(&column, times, None, filter);
        let mut out: Vec<(i64, Vec<i64>)> = parts
            .map_customers(
                &column,
                || (),
                |(), _key, rows| {
                    let mut t: Vec<i64> = rows.iter().map(|r| r.0).collect();
                    t.sort_unstable();
                    t
                },
            )
            .into_iter()
            .flatten()
            .collect();
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
