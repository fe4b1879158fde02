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

use crate::keys::{CustomerIds, CustomerKeys, DigitIds, IntKeys, KeyColumn, ViewKeys};
use crate::occasions::{bucket_start, MICROS_PER_DAY};
use crate::{parallelism, KernelError};

/// Rows per phase-1 chunk: small enough to stay in cache, large enough to amortise the histogram.
pub(crate) const CHUNK_ROWS: usize = 1 << 16;
/// Target rows per partition: a partition's hash table and rows should fit in L2.
pub(crate) const TARGET_PARTITION_ROWS: usize = 1 << 14;
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
        // Day buckets are the common case: a constant divisor compiles to a multiplication.
        let start = if self.resolution_us == MICROS_PER_DAY {
            bucket_start(t_us, MICROS_PER_DAY)
        } else {
            bucket_start(t_us, self.resolution_us)
        };
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

pub(crate) fn partition_bits_for(n_rows: usize) -> u32 {
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
    let bits = partition_bits_for(times_us.len());
    partition_rows_by(keys, times_us, amounts, filter, bits, |key| {
        partition_of(keys.hash(key), bits)
    })
}

/// Phase 1 with a given partition function (`part(key) < 2^bits`).
fn partition_rows_by<C: KeyColumn>(
    keys: &C,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
    bits: u32,
    part: impl Fn(C::Key) -> usize + Sync,
) -> Partitioned<C::Key> {
    let n_rows = times_us.len();
    let chunks: Vec<Chunk<C::Key>> = (0..n_rows.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(|c| {
            let start = c * CHUNK_ROWS;
            let end = (start + CHUNK_ROWS).min(n_rows);
            partition_chunk(keys, times_us, amounts, filter, start..end, bits, &part)
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
    part_of: &impl Fn(C::Key) -> usize,
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
            let p = part_of(keys.key(row));
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

/// One partition's results of [`Partitioned::map_customers_flat`]: customer `i` has
/// `items[ends[i - 1]..ends[i]]` (from 0 for the first).
#[derive(Debug, Default)]
pub struct FlatPart<K, T> {
    pub keys: Vec<K>,
    pub ends: Vec<usize>,
    pub items: Vec<T>,
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

    /// Phase 2 with a flat output: `per_customer(scratch, key, rows, out)` appends the
    /// customer's results to `out`, the partition's one vector (no allocation per customer).
    /// Returns, per partition in partition order, its customers' keys, the end of each
    /// customer's results in the partition's vector, and that vector.
    pub fn map_customers_flat<C, S, T>(
        &self,
        keys: &C,
        init: impl Fn() -> S + Sync + Send,
        per_customer: impl Fn(&mut S, K, &mut [(i64, f64)], &mut Vec<T>) + Sync + Send,
    ) -> Vec<FlatPart<K, T>>
    where
        C: KeyColumn<Key = K>,
        T: Send,
    {
        let n_partitions = 1usize << self.partition_bits;
        (0..n_partitions)
            .into_par_iter()
            .map_init(
                || (init(), Vec::new(), Vec::new()),
                |(scratch, codes, grouped), p| {
                    let mut part = FlatPart {
                        keys: Vec::new(),
                        ends: Vec::new(),
                        items: Vec::new(),
                    };
                    self.visit_partition(p, keys, codes, grouped, |key, rows| {
                        per_customer(scratch, key, rows, &mut part.items);
                        part.keys.push(key);
                        part.ends.push(part.items.len());
                    });
                    part
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
        let mut out = Vec::new();
        self.visit_partition(p, keys, codes, grouped, |key, rows| {
            out.push((key, per_customer(scratch, key, rows)));
        });
        out
    }

    /// Groups partition `p`'s rows by customer and calls `visit(key, rows)` once per customer,
    /// in the order the customers were first seen.
    fn visit_partition<C>(
        &self,
        p: usize,
        keys: &C,
        codes: &mut Vec<u32>,
        grouped: &mut Vec<(i64, f64)>,
        mut visit: impl FnMut(K, &mut [(i64, f64)]),
    ) where
        C: KeyColumn<Key = K>,
    {
        // Entries are (table hash, key, customer code); sized for a customer per 4 rows, so the
        // table rarely grows.
        let n_rows: usize = self
            .chunks
            .iter()
            .map(|c| (c.offsets[p + 1] - c.offsets[p]) as usize)
            .sum();
        let mut table: HashTable<(u64, K, u32)> = HashTable::with_capacity(n_rows / 4 + 16);
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
        for (c, &key) in customers.iter().enumerate() {
            visit(key, &mut grouped[starts[c]..starts[c + 1]]);
        }
    }
}

/// Widest span of integer keys within one partition that the range split handles (so a key's
/// offset in its partition fits in 32 bits).
const MAX_RANGE_LOW_BITS: u32 = 32;
/// Bits of the radix sort's digits inside a partition.
pub(crate) const RADIX_BITS: u32 = 11;

/// A split of integer keys into contiguous ranges: partition `(key − min) >> shift`, so the
/// partitions are in key order and a customer's offset in its partition is its low `shift` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RangeSplit {
    min: i64,
    shift: u32,
}

impl RangeSplit {
    /// The split of `keys` into `2^bits` ranges, or `None` when the keys span too many values
    /// for a 32-bit offset within a partition (or there are none).
    fn of(keys: &[i64], bits: u32) -> Option<Self> {
        let (min, max) = keys
            .par_chunks(CHUNK_ROWS)
            .map(|c| {
                c.iter()
                    .fold((i64::MAX, i64::MIN), |(lo, hi), &k| (lo.min(k), hi.max(k)))
            })
            .reduce(
                || (i64::MAX, i64::MIN),
                |(a, b), (c, d)| (a.min(c), b.max(d)),
            );
        Self::from_bounds(min, max, bits)
    }

    /// The split of keys in `min..=max` into `2^bits` ranges (see [`RangeSplit::of`]).
    pub(crate) fn from_bounds(min: i64, max: i64, bits: u32) -> Option<Self> {
        if min > max {
            return None;
        }
        let span = max.wrapping_sub(min) as u64;
        let span_bits = u64::BITS - span.leading_zeros();
        let shift = span_bits.saturating_sub(bits);
        (shift <= MAX_RANGE_LOW_BITS).then_some(Self { min, shift })
    }

    /// Bits of a key's offset within its partition.
    pub(crate) fn shift(self) -> u32 {
        self.shift
    }

    #[inline]
    pub(crate) fn offset(self, key: i64) -> u64 {
        key.wrapping_sub(self.min) as u64
    }

    #[inline]
    pub(crate) fn partition(self, key: i64) -> usize {
        (self.offset(key) >> self.shift) as usize
    }

    #[inline]
    pub(crate) fn low(self, key: i64) -> u64 {
        self.offset(key) & ((1u64 << self.shift) - 1)
    }

    #[inline]
    pub(crate) fn key(self, partition: usize, low: u64) -> i64 {
        self.min
            .wrapping_add((((partition as u64) << self.shift) | low) as i64)
    }
}

/// Stable LSD radix sort of `values` by their high 32 bits, of which only the low `key_bits`
/// can be set; `scratch` is a buffer of the same use. Digit passes where every value has the same
/// digit are skipped.
fn radix_sort_high(values: &mut Vec<u64>, scratch: &mut Vec<u64>, key_bits: u32) {
    let buckets = 1usize << RADIX_BITS;
    let mut counts = vec![0usize; buckets];
    let mut digit_shift = 32;
    while digit_shift < 32 + key_bits {
        counts.fill(0);
        let mask = (buckets - 1) as u64;
        for &v in values.iter() {
            counts[((v >> digit_shift) & mask) as usize] += 1;
        }
        if counts.contains(&values.len()) {
            digit_shift += RADIX_BITS;
            continue;
        }
        let mut total = 0;
        for c in &mut counts {
            let here = *c;
            *c = total;
            total += here;
        }
        scratch.clear();
        scratch.resize(values.len(), 0);
        for &v in values.iter() {
            let d = ((v >> digit_shift) & mask) as usize;
            scratch[counts[d]] = v;
            counts[d] += 1;
        }
        std::mem::swap(values, scratch);
        digit_shift += RADIX_BITS;
    }
}

impl Partitioned<i64> {
    /// Whether no partition holds far more than its share of the rows (a range split of skewed
    /// keys can put most rows in a few partitions, which would then run on one thread).
    fn balanced(&self) -> bool {
        let n_partitions = 1usize << self.partition_bits;
        let mut sizes = vec![0usize; n_partitions];
        let mut total = 0;
        for chunk in &self.chunks {
            for (p, size) in sizes.iter_mut().enumerate() {
                let rows = (chunk.offsets[p + 1] - chunk.offsets[p]) as usize;
                *size += rows;
                total += rows;
            }
        }
        let largest = sizes.iter().copied().max().unwrap_or(0);
        largest <= 4 * (total / n_partitions) + TARGET_PARTITION_ROWS
    }

    /// Phase 2 of a range split: each partition's rows are radix-sorted by key, so its customers
    /// come out in key order, and the partitions are in key order. Returns the `(key, result)`
    /// pairs of the customers for which `per_customer` gives `Some`, per partition.
    fn map_customers_in_order<S, R: Send>(
        &self,
        split: RangeSplit,
        init: impl Fn() -> S + Sync + Send,
        per_customer: impl Fn(&mut S, &mut [(i64, f64)]) -> Option<R> + Sync + Send,
    ) -> Vec<Vec<(i64, R)>> {
        let n_partitions = 1usize << self.partition_bits;
        (0..n_partitions)
            .into_par_iter()
            .map_init(
                || (init(), Vec::new(), Vec::new(), Vec::new(), Vec::new()),
                |(state, order, scratch, rows, grouped), p| {
                    order.clear();
                    rows.clear();
                    for chunk in &self.chunks {
                        let (lo, hi) = (chunk.offsets[p] as usize, chunk.offsets[p + 1] as usize);
                        for j in lo..hi {
                            order.push((split.low(chunk.keys[j]) << 32) | rows.len() as u64);
                            let amount = chunk.amounts.get(j).copied().unwrap_or(0.0);
                            rows.push((chunk.bucket_us[j], amount));
                        }
                    }
                    radix_sort_high(order, scratch, split.shift);
                    let mut out = Vec::new();
                    let mut i = 0;
                    while i < order.len() {
                        let low = order[i] >> 32;
                        grouped.clear();
                        while i < order.len() && order[i] >> 32 == low {
                            grouped.push(rows[(order[i] & 0xFFFF_FFFF) as usize]);
                            i += 1;
                        }
                        if let Some(result) = per_customer(state, grouped) {
                            out.push((split.key(p, low), result));
                        }
                    }
                    out
                },
            )
            .collect()
    }
}

/// Integer keys by a range split when their span allows and the split is balanced: customers come
/// out in key order with no hash table and no sort of the output. `None`: use the hash split.
fn int_keys_in_order<S, R: Copy + Send + Sync>(
    keys: &[i64],
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
    init: &(impl Fn() -> S + Sync + Send),
    per_customer: &(impl Fn(&mut S, &mut [(i64, f64)]) -> Option<R> + Sync + Send),
) -> Option<(Vec<i64>, CustomerTable<R>)> {
    let bits = partition_bits_for(times_us.len());
    let split = RangeSplit::of(keys, bits)?;
    let column = IntKeys(keys);
    let partitioned = partition_rows_by(&column, times_us, amounts, filter, bits, |key| {
        split.partition(key)
    });
    if !partitioned.balanced() {
        return None;
    }
    let results = partitioned.map_customers_in_order(split, init, per_customer);
    let rows_excluded = partitioned.rows_excluded;
    drop(partitioned);
    // Concatenated in partition order (the key order) into exactly sized vectors.
    let total = results.iter().map(Vec::len).sum();
    let (mut ids, mut rows) = (Vec::with_capacity(total), Vec::with_capacity(total));
    for part in &results {
        ids.extend(part.iter().map(|(key, _)| *key));
        rows.extend(part.iter().map(|(_, row)| *row));
    }
    let table = CustomerTable {
        ids: CustomerIds::default(),
        rows,
        rows_excluded,
    };
    Some((ids, table))
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
            let (ids, table) =
                int_keys_in_order(keys, times_us, amounts, filter, init, per_customer)
                    .unwrap_or_else(|| {
                        sorted_by_key(
                            &IntKeys(keys),
                            times_us,
                            amounts,
                            filter,
                            init,
                            per_customer,
                        )
                    });
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
    let mut rows: Vec<R> = Vec::new();
    let (ids, rows_excluded) = visit_by_key(
        keys,
        times_us,
        amounts,
        filter,
        init,
        per_customer,
        &mut rows,
    );
    let table = CustomerTable {
        ids: CustomerIds::default(),
        rows,
        rows_excluded,
    };
    (ids, table)
}

/// Where the per-customer results of a grouping go, one customer at a time in key order.
pub trait CustomerSink<R> {
    /// Room for at least `additional` more results (a hint; untouched room costs no memory).
    fn reserve(&mut self, additional: usize);
    /// The next customer's result.
    fn push(&mut self, result: R);
}

impl<R> CustomerSink<R> for Vec<R> {
    fn reserve(&mut self, additional: usize) {
        Vec::reserve(self, additional);
    }

    fn push(&mut self, result: R) {
        Vec::push(self, result);
    }
}

/// The hash split: groups by a hash of the key, then sorts the distinct keys once and hands the
/// results to `sink` in key order. Returns the keys (in that order) and the excluded row count.
pub(crate) fn visit_by_key<C: KeyColumn, S, R: Send + Sync>(
    keys: &C,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
    init: &(impl Fn() -> S + Sync + Send),
    per_customer: &(impl Fn(&mut S, &mut [(i64, f64)]) -> Option<R> + Sync + Send),
    sink: &mut impl CustomerSink<R>,
) -> (Vec<C::Key>, u64) {
    let partitioned = partition_rows(keys, times_us, amounts, filter);
    let mut results = partitioned.map_customers(keys, init, |scratch, _key, rows| {
        per_customer(scratch, rows)
    });
    let rows_excluded = partitioned.rows_excluded;
    drop(partitioned);
    // Sort (order prefix, key, partition, position) rather than the wide rows; keys are unique,
    // so an unstable sort gives one canonical order. The prefix, read once per key, decides most
    // comparisons without reading long strings' bytes at scattered places.
    let mut order: Vec<(u64, C::Key, u32, u32)> = results
        .par_iter()
        .enumerate()
        .flat_map_iter(|(p, part)| {
            part.iter()
                .enumerate()
                .filter(|(_, (_, r))| r.is_some())
                .map(move |(i, (key, _))| (keys.order_prefix(*key), *key, p as u32, i as u32))
        })
        .collect();
    order.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| keys.cmp(a.1, b.1)));
    sink.reserve(order.len());
    let mut ids = Vec::with_capacity(order.len());
    for &(_, key, p, i) in &order {
        if let Some(result) = results[p as usize][i as usize].1.take() {
            sink.push(result);
            ids.push(key);
        }
    }
    (ids, rows_excluded)
}

/// Groups a transaction table by customer and hands `sink` the result of
/// `per_customer(scratch, occasions)` for every customer in key order (integers numerically,
/// strings bytewise), where `occasions` are the customer's occasions
/// (docs/methods.md#occasions): `(bucket start µs, summed amount)` in time order, one per bucket,
/// each amount summed in a canonical order. Customers for which it returns `None` are left out.
/// Returns the customers' ids (in that order) and the rows dropped by the filter. Runs on
/// `num_threads` workers; the result does not depend on their number.
///
/// Integer ids take [`crate::ordered`]'s compact range split when their span and the snapshot's
/// buckets allow (and the filter has no split); otherwise the hash split.
pub fn visit_occasions_sorted<S, R>(
    customers: &CustomerKeys<'_>,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
    num_threads: Option<usize>,
    init: impl Fn() -> S + Sync + Send,
    per_customer: impl Fn(&mut S, &[(i64, f64)]) -> Option<R> + Sync + Send,
    sink: &mut (impl CustomerSink<R> + Send),
) -> Result<(CustomerIds, u64), KernelError>
where
    R: Send + Sync,
{
    check_lengths(customers.len(), times_us, amounts)?;
    let (init, per_customer) = (&init, &per_customer);
    // The hash split hands over raw rows: collapse them into occasions first.
    let init_rows = || (init(), Vec::new());
    let per_rows = |(state, occasions): &mut (S, Vec<(i64, f64)>), rows: &mut [(i64, f64)]| {
        crate::occasions::collapse_occasions(rows, occasions);
        per_customer(state, occasions)
    };
    parallelism::install(num_threads, || match customers {
        CustomerKeys::Int(keys) => {
            if let Some(done) =
                crate::ordered::visit(keys, times_us, amounts, filter, init, per_customer, sink)
            {
                return (CustomerIds::Int(done.0), done.1);
            }
            let (ids, excluded) = visit_by_key(
                &IntKeys(keys),
                times_us,
                amounts,
                filter,
                &init_rows,
                &per_rows,
                sink,
            );
            (CustomerIds::Int(ids), excluded)
        }
        CustomerKeys::View(keys) => {
            if let Some(done) =
                digit_ids_in_order(keys, times_us, amounts, filter, init, per_customer, sink)
            {
                return (CustomerIds::View(done.0), done.1);
            }
            let (ids, excluded) =
                visit_by_key(keys, times_us, amounts, filter, &init_rows, &per_rows, sink);
            (CustomerIds::View(ids), excluded)
        }
    })
}

/// String ids of the [`DigitIds`] form through [`crate::ordered`]'s integer path: each id is
/// read as its integer, grouped like integer ids, and the ids come back as the same canonical
/// views. `None` — before any result reaches `sink` — when the ids are not of that form or the
/// integer path does not apply (then the hash split runs, with the same results).
fn digit_ids_in_order<S, R: Send + Sync>(
    keys: &ViewKeys<'_>,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
    init: &(impl Fn() -> S + Sync + Send),
    per_customer: &(impl Fn(&mut S, &[(i64, f64)]) -> Option<R> + Sync + Send),
    sink: &mut impl CustomerSink<R>,
) -> Option<(Vec<u128>, u64)> {
    if filter.split_us != i64::MAX {
        return None;
    }
    let digits = DigitIds::of(keys)?;
    let weights = digits.weights();
    // Padding bytes past an id's end have weight 0, so the raw views need no canonical form.
    let mut ints = vec![0i64; keys.len()];
    ints.par_chunks_mut(CHUNK_ROWS)
        .zip(keys.views.par_chunks(CHUNK_ROWS))
        .for_each(|(out, views)| {
            for (v, &view) in out.iter_mut().zip(views) {
                *v = DigitIds::value(view, &weights);
            }
        });
    let (ids, excluded) =
        crate::ordered::visit(&ints, times_us, amounts, filter, init, per_customer, sink)?;
    drop(ints);
    let views = ids.par_iter().map(|&id| digits.view(id)).collect();
    Some((views, excluded))
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

    /// A key generator from a random draw.
    type Kind = Box<dyn Fn(u64) -> i64>;

    /// splitmix64: a seeded stream for test data.
    fn stream(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed;
        move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    /// Every customer's rows (sorted) by the range split and by the hash split with a sort.
    fn both_ways(keys: &[i64], times: &[i64]) -> (Vec<i64>, Vec<i64>, Option<Vec<i64>>) {
        let amounts: Vec<f64> = times.iter().map(|&t| (t % 1000) as f64 / 8.0).collect();
        let filter = RowFilter::new(1 << 40, 1000);
        // A customer's result: its row count and a digest of its sorted rows.
        let per_customer = |(): &mut (), rows: &mut [(i64, f64)]| {
            rows.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let digest = rows.iter().fold(rows.len() as i64, |acc, r| {
                acc.wrapping_mul(31)
                    .wrapping_add(r.0 ^ r.1.to_bits() as i64)
            });
            (rows.len() > 1).then_some(digest)
        };
        let (hash_ids, hash_table) = sorted_by_key(
            &IntKeys(keys),
            times,
            Some(&amounts),
            filter,
            &|| (),
            &per_customer,
        );
        let range = int_keys_in_order(keys, times, Some(&amounts), filter, &|| (), &per_customer)
            .map(|(ids, table)| {
                assert_eq!(ids, hash_ids);
                assert_eq!(table.rows_excluded, hash_table.rows_excluded);
                table.rows
            });
        (hash_ids, hash_table.rows, range)
    }

    #[test]
    fn range_split_equals_hash_split_with_a_sort() {
        let n = 150_000;
        let mut next = stream(7);
        let times: Vec<i64> = (0..n).map(|_| (next() % (1 << 41)) as i64).collect();
        // Ids over 31 bits, dense ids, negative ids, and ids near both ends of i64.
        let kinds: [(&str, Kind); 5] = [
            ("sparse31", Box::new(|r| (r % 40_000) as i64 * 53_687 + 11)),
            ("dense", Box::new(|r| (r % 9_000) as i64 + 1)),
            (
                "negative",
                Box::new(|r| (r % 30_000) as i64 * 1_000 - 20_000_000),
            ),
            (
                "bottom of i64",
                Box::new(|r| i64::MIN + (r % 30_000) as i64 * 1_000),
            ),
            (
                "top of i64",
                Box::new(|r| i64::MAX - (r % 30_000) as i64 * 1_000),
            ),
        ];
        for (name, kind) in &kinds {
            let keys: Vec<i64> = (0..n).map(|_| kind(next())).collect();
            let (ids, rows, range) = both_ways(&keys, &times);
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{name}");
            assert!(!ids.is_empty(), "{name}");
            let range = range.unwrap_or_else(|| panic!("{name}: the range split was not used"));
            assert_eq!(range, rows, "{name}");
        }
    }

    #[test]
    fn wide_or_skewed_keys_fall_back_to_the_hash_split() {
        let n = 150_000;
        let mut next = stream(11);
        let times: Vec<i64> = (0..n).map(|_| (next() % (1 << 41)) as i64).collect();
        let wide: Vec<i64> = (0..n)
            .map(|_| (next() % 20_000) as i64 * (1 << 40))
            .collect();
        assert!(both_ways(&wide, &times).2.is_none());
        let extremes: Vec<i64> = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    i64::MIN + (next() % 50) as i64
                } else {
                    i64::MAX - (next() % 50) as i64
                }
            })
            .collect();
        assert!(both_ways(&extremes, &times).2.is_none());
        // 95% of the rows in a narrow band at the bottom of a 2^35-wide span.
        let skewed: Vec<i64> = (0..n)
            .map(|i| {
                if i % 20 == 0 {
                    (next() % (1 << 25)) as i64 * 1_000
                } else {
                    (next() % 5_000) as i64
                }
            })
            .collect();
        assert!(both_ways(&skewed, &times).2.is_none());
    }

    #[test]
    fn radix_sort_orders_by_the_high_half_and_is_stable() {
        let mut next = stream(3);
        let mut values: Vec<u64> = (0..5_000u64)
            .map(|i| ((next() % (1 << 27)) << 32) | i)
            .collect();
        let mut expected = values.clone();
        expected.sort_by_key(|v| v >> 32); // stable: ties keep the low half's (index) order
        radix_sort_high(&mut values, &mut Vec::new(), 27);
        assert_eq!(values, expected);
    }

    #[test]
    fn partition_count_grows_with_rows_and_is_capped() {
        assert_eq!(partition_bits_for(0), 0);
        assert_eq!(partition_bits_for(TARGET_PARTITION_ROWS * 4), 2);
        assert_eq!(partition_bits_for(usize::MAX / 2), MAX_PARTITION_BITS);
    }

    /// An id's text from a number.
    type Format = Box<dyn Fn(u64) -> String>;

    /// The canonical views of `ids` (each at most 12 bytes).
    fn views_of(ids: &[String]) -> Vec<u128> {
        ids.iter()
            .map(|id| crate::keys::inline_view(id.as_bytes()).expect("inline"))
            .collect()
    }

    /// Silence figures of string ids by `visit_occasions_sorted` (the digit path when it
    /// applies) and by the hash split: the same ids and the same bits. Returns whether the
    /// digit path applied.
    fn strings_both_ways(ids: &[String], times: &[i64], amounts: Option<&[f64]>) -> bool {
        use crate::silence::{score_occasions, CustomerSilence, SilenceParams};
        let views = views_of(ids);
        let keys = ViewKeys {
            views: &views,
            buffers: vec![],
        };
        let as_of = 500 * MICROS_PER_DAY + 7;
        let params = SilenceParams::new(as_of);
        let filter = RowFilter::new(as_of, MICROS_PER_DAY);
        let as_of_bucket = bucket_start(as_of, MICROS_PER_DAY);
        let per_occasions = |gaps: &mut Vec<i64>, occasions: &[(i64, f64)]| {
            Some(score_occasions(occasions, as_of_bucket, &params, gaps))
        };
        let per_rows = |(gaps, occasions): &mut (Vec<i64>, Vec<(i64, f64)>),
                        rows: &mut [(i64, f64)]| {
            crate::occasions::collapse_occasions(rows, occasions);
            Some(score_occasions(occasions, as_of_bucket, &params, gaps))
        };
        let mut expected: Vec<CustomerSilence> = Vec::new();
        let (expected_ids, expected_excluded) = visit_by_key(
            &keys,
            times,
            amounts,
            filter,
            &|| (Vec::new(), Vec::new()),
            &per_rows,
            &mut expected,
        );
        let mut digit_sink: Vec<CustomerSilence> = Vec::new();
        let applied = digit_ids_in_order(
            &keys,
            times,
            amounts,
            filter,
            &Vec::new,
            &per_occasions,
            &mut digit_sink,
        )
        .map(|(ids, excluded)| {
            assert_eq!(ids, expected_ids);
            assert_eq!(excluded, expected_excluded);
        })
        .is_some();
        if !applied {
            assert!(digit_sink.is_empty());
        }
        let mut got: Vec<CustomerSilence> = Vec::new();
        let (ids, excluded) = visit_occasions_sorted(
            &CustomerKeys::View(keys.clone()),
            times,
            amounts,
            filter,
            Some(2),
            Vec::new,
            per_occasions,
            &mut got,
        )
        .unwrap();
        assert_eq!(ids, CustomerIds::View(expected_ids));
        assert_eq!(excluded, expected_excluded);
        let bits = crate::silence::float_bits;
        assert_eq!(got.len(), expected.len());
        for (a, b) in got.iter().zip(&expected) {
            assert_eq!(a, b);
            assert_eq!(bits(a), bits(b));
        }
        applied
    }

    #[test]
    fn digit_string_ids_equal_the_hash_split_bit_for_bit() {
        let n = 100_000;
        let mut next = stream(11);
        let day = MICROS_PER_DAY as u64;
        let times: Vec<i64> = (0..n).map(|_| (next() % (700 * day)) as i64).collect();
        let amounts: Vec<f64> = (0..n)
            .map(|_| match next() % 6 {
                0 => -0.0,
                1 => 1e16,
                2 => -1e16,
                _ => (next() % 100_000) as f64 / 100.0 - 100.0,
            })
            .collect();
        let numbers: Vec<u64> = (0..n).map(|_| next() % 20_000).collect();
        let sparse: Vec<u64> = (0..n).map(|_| (next() % 20_000) * 107_371).collect();
        // Digit forms: a prefix and zero padding, ids over 31 bits, digits with a constant
        // separator inside, bare digits of 12 bytes.
        let digit_forms: [(&[u64], Format); 4] = [
            (&numbers, Box::new(|x| format!("C{x:09}"))),
            (&sparse, Box::new(|x| format!("C{x:010}"))),
            (
                &numbers,
                Box::new(|x| format!("{:03}-{:02}x", x / 100, x % 100)),
            ),
            (&sparse, Box::new(|x| format!("{x:012}"))),
        ];
        for (source, format) in &digit_forms {
            let ids: Vec<String> = source.iter().map(|&x| format(x)).collect();
            assert!(strings_both_ways(&ids, &times, Some(&amounts)));
            assert!(strings_both_ways(&ids, &times, None));
        }
        // Not of the form: other lengths, a varying letter, a byte just past '9'.
        let other_forms: [Format; 3] = [
            Box::new(|x| format!("C{x}")),
            Box::new(|x| format!("C{x:05}{}", if x % 2 == 0 { 'a' } else { 'b' })),
            Box::new(|x| format!("C{x:05}{}", if x % 2 == 0 { '9' } else { ':' })),
        ];
        for format in &other_forms {
            let ids: Vec<String> = numbers.iter().map(|&x| format(x)).collect();
            assert!(!strings_both_ways(&ids, &times, Some(&amounts)));
        }
    }

    #[test]
    fn digit_ids_read_and_write_the_same_views() {
        let ids: Vec<String> = [7_u64, 1_000_000, 42, 999_999_999]
            .iter()
            .map(|x| format!("K{x:09}"))
            .collect();
        let views = views_of(&ids);
        let keys = ViewKeys {
            views: &views,
            buffers: vec![],
        };
        let digits = DigitIds::of(&keys).expect("digit ids");
        let weights = digits.weights();
        let values: Vec<i64> = views
            .iter()
            .map(|&v| DigitIds::value(v, &weights))
            .collect();
        assert_eq!(values, vec![7, 1_000_000, 42, 999_999_999]);
        for (&v, &x) in views.iter().zip(&values) {
            assert_eq!(digits.view(x), v);
        }
        let long = views_of(&["C1234567890".into()]);
        assert!(DigitIds::of(&ViewKeys {
            views: &long,
            buffers: vec![]
        })
        .is_some());
        let empty: Vec<u128> = Vec::new();
        assert!(DigitIds::of(&ViewKeys {
            views: &empty,
            buffers: vec![]
        })
        .is_none());
    }
}
