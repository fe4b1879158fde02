//! Grouping transaction rows by customer without a global sort (docs/methods.md#scale: "sort once,
//! scan once").
//!
//! Rows are hash-partitioned by customer key in fixed-size chunks (phase 1), then every partition
//! is grouped with a small, cache-resident hash table and a counting sort (phase 2). Both phases
//! run in parallel. Chunk boundaries and partition counts depend only on the number of rows, never
//! on the thread count, and callers put each customer's rows in a canonical order, so the grouping
//! is deterministic.

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use rayon::prelude::*;

use crate::keys::{CustomerIds, CustomerKeys, IntKeys, KeyColumn};
use crate::occasions::bucket_start;
use crate::{parallelism, KernelError};

/// Rows per phase-1 chunk: small enough to stay in cache, large enough to amortise the histogram.
const CHUNK_ROWS: usize = 1 << 16;
/// Target rows per partition: a partition's hash table and rows should fit in L2.
const TARGET_PARTITION_ROWS: usize = 1 << 14;
const MAX_PARTITION_BITS: u32 = 12;
/// Marks a row of a chunk that the filter dropped.
const DROPPED: u16 = u16::MAX;

/// Largest row count one call can index.
pub const MAX_ROWS: usize = u32::MAX as usize;

/// What to keep of each row before grouping, and how to date it.
#[derive(Debug, Clone, Copy)]
pub struct RowFilter {
    /// Rows with a timestamp after this (µs) are outside the snapshot and only counted.
    pub max_time_us: i64,
    /// Width of an occasion bucket (µs, > 0); kept timestamps are floored to bucket starts.
    pub resolution_us: i64,
    /// Rows after this time never share an occasion with rows at or before it: the bucket that
    /// holds it is cut in two and its later part is dated `split_us + 1`
    /// (docs/methods.md#summary-holdout: the calibration end). `i64::MAX` cuts nothing.
    pub split_us: i64,
}

impl RowFilter {
    /// Keeps rows up to `max_time_us`, in buckets of `resolution_us`, with no split.
    pub fn new(max_time_us: i64, resolution_us: i64) -> Self {
        Self {
            max_time_us,
            resolution_us,
            split_us: i64::MAX,
        }
    }

    /// The occasion date of a kept row at `t_us`: its bucket start, or `split_us + 1` for a row
    /// after the split whose bucket starts at or before it.
    #[inline]
    pub fn occasion_time(&self, t_us: i64) -> i64 {
        let start = bucket_start(t_us, self.resolution_us);
        if t_us > self.split_us && start <= self.split_us {
            self.split_us + 1
        } else {
            start
        }
    }
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
        bucket[slot] = filter.occasion_time(times_us[row]);
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

/// Per-customer results, sorted by customer key (integers numerically, strings bytewise).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerTable<R> {
    /// Customer of each row, in ascending order.
    pub ids: CustomerIds,
    pub rows: Vec<R>,
    /// Input rows dropped by the filter (after `max_time_us`).
    pub rows_excluded: u64,
}

/// Checks that the row columns of a transaction table have one value per customer key.
fn check_lengths(
    n_rows: usize,
    times_us: &[i64],
    amounts: Option<&[f64]>,
) -> Result<(), KernelError> {
    let mismatch = |column, actual| KernelError::LengthMismatch {
        column,
        expected: n_rows,
        actual,
    };
    if times_us.len() != n_rows {
        return Err(mismatch("ts", times_us.len()));
    }
    match amounts {
        Some(a) if a.len() != n_rows => return Err(mismatch("amount", a.len())),
        _ => {}
    }
    if n_rows > MAX_ROWS {
        return Err(KernelError::TooManyRows {
            rows: n_rows,
            limit: MAX_ROWS,
        });
    }
    Ok(())
}

/// Groups a transaction table by customer and computes `per_customer(scratch, rows)` for every
/// customer, where `rows` are the customer's kept `(occasion time, amount)` pairs in no
/// particular order (see [`Partitioned::map_customers`]). Customers for which it returns `None`
/// are left out. Runs on `num_threads` workers; the result does not depend on their number.
pub fn map_customers_sorted<S, R>(
    customers: &CustomerKeys<'_>,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
    num_threads: Option<usize>,
    init: impl Fn() -> S + Sync + Send,
    per_customer: impl Fn(&mut S, &mut [(i64, f64)]) -> Option<R> + Sync + Send,
) -> Result<CustomerTable<R>, KernelError>
where
    R: Copy + Send + Sync,
{
    check_lengths(customers.len(), times_us, amounts)?;
    let (init, per_customer) = (&init, &per_customer);
    parallelism::install(num_threads, || match customers {
        CustomerKeys::Int(keys) => {
            let (ids, table) = sorted_by_key(
                &IntKeys(keys),
                times_us,
                amounts,
                filter,
                init,
                per_customer,
            );
            CustomerTable {
                ids: CustomerIds::Int(ids),
                ..table
            }
        }
        CustomerKeys::View(keys) => {
            let (ids, table) = sorted_by_key(keys, times_us, amounts, filter, init, per_customer);
            CustomerTable {
                ids: CustomerIds::View(ids),
                ..table
            }
        }
    })
}

fn sorted_by_key<C: KeyColumn, S, R: Copy + Send + Sync>(
    keys: &C,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
    init: &(impl Fn() -> S + Sync + Send),
    per_customer: &(impl Fn(&mut S, &mut [(i64, f64)]) -> Option<R> + Sync + Send),
) -> (Vec<C::Key>, CustomerTable<R>) {
    let partitioned = partition_rows(keys, times_us, amounts, filter);
    let results = partitioned.map_customers(keys, init, |scratch, _key, rows| {
        per_customer(scratch, rows)
    });
    let rows_excluded = partitioned.rows_excluded;
    drop(partitioned);
    // Sort (key, partition, position) triples rather than the wide rows; keys are unique, so an
    // unstable sort gives one canonical order.
    let mut order: Vec<(C::Key, u32, u32)> = results
        .iter()
        .enumerate()
        .flat_map(|(p, part)| {
            part.iter()
                .enumerate()
                .filter(|(_, (_, r))| r.is_some())
                .map(move |(i, (key, _))| (*key, p as u32, i as u32))
        })
        .collect();
    order.par_sort_unstable_by(|a, b| keys.cmp(a.0, b.0));
    let rows = order
        .par_iter()
        .filter_map(|&(_, p, i)| results[p as usize][i as usize].1)
        .collect();
    drop(results);
    let ids = order.into_iter().map(|(key, _, _)| key).collect();
    let table = CustomerTable {
        ids: CustomerIds::default(),
        rows,
        rows_excluded,
    };
    (ids, table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::IntKeys;

    fn groups(keys: &[i64], times: &[i64]) -> Vec<(i64, Vec<i64>)> {
        let column = IntKeys(keys);
        let filter = RowFilter::new(100, 1);
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
    fn the_split_cuts_its_bucket_in_two() {
        let filter = RowFilter {
            split_us: 25,
            ..RowFilter::new(100, 10)
        };
        let dated: Vec<i64> = [19, 20, 25, 26, 29, 30]
            .map(|t| filter.occasion_time(t))
            .to_vec();
        assert_eq!(dated, vec![10, 20, 20, 26, 26, 30]);
        assert_eq!(
            RowFilter::new(100, 10).occasion_time(i64::MAX),
            i64::MAX - 7
        );
    }

    #[test]
    fn sorted_table_leaves_out_none_and_counts_excluded_rows() {
        let keys = [5, 3, 5, 9, 3];
        let times = [1, 2, 3, 200, 4];
        let table = map_customers_sorted(
            &CustomerKeys::Int(&keys),
            &times,
            None,
            RowFilter::new(100, 1),
            Some(2),
            || (),
            |(), rows| (rows.len() == 2).then_some(rows.len()),
        )
        .unwrap();
        assert_eq!(table.ids, CustomerIds::Int(vec![3, 5]));
        assert_eq!(table.rows, vec![2, 2]);
        assert_eq!(table.rows_excluded, 1);
        let err = map_customers_sorted(
            &CustomerKeys::Int(&keys),
            &times,
            Some(&[1.0]),
            RowFilter::new(100, 1),
            None,
            || (),
            |(), _| Some(()),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            KernelError::LengthMismatch {
                column: "amount",
                ..
            }
        ));
    }

    #[test]
    fn partition_count_grows_with_rows_and_is_capped() {
        assert_eq!(partition_bits_for(0), 0);
        assert_eq!(partition_bits_for(TARGET_PARTITION_ROWS * 4), 2);
        assert_eq!(partition_bits_for(usize::MAX / 2), MAX_PARTITION_BITS);
    }
}
