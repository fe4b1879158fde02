//! Integer customer ids grouped in key order with compact rows, a few partitions at a time
//! (docs/methods.md#scale: "sort once, scan once").
//!
//! When the ids' span allows a range split (see [`crate::partition`]: partition `(id − min) >>
//! shift`, so partitions are in id order) and the snapshot's occasion buckets number fewer than
//! 2³², a kept row is staged as one `u64` — the id's offset in its partition above the bucket's
//! index — and its amount: 16 bytes instead of 24. The partitions are filled and grouped in
//! *rounds* of consecutive partitions, each round re-reading the id column (a sequential read,
//! cheap) and staging only its own rows in one buffer reused by every round, so the staged rows
//! are a fraction of the input whatever its size. Inside a partition one LSD radix sort of the
//! `u64`s orders the rows by customer and then by bucket, so the occasions come out in time order
//! with no per-customer sort; rows of one bucket are summed in the amounts' total order, the
//! canonical order of [`crate::occasions::collapse_occasions`], so the sums are the same bits.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use rayon::prelude::*;

use crate::keys::{inline_order, view_len, KeyColumn, ViewKeys, INLINE_MAX};
use crate::occasions::MICROS_PER_DAY;
use crate::partition::{
    partition_bits_for, CustomerSink, RangeSplit, RowFilter, CHUNK_ROWS, RADIX_BITS,
    TARGET_PARTITION_ROWS,
};

/// Staged bytes a round aims at (16 per row): enough to amortise a re-read of the id column.
const ROUND_BYTES: usize = 16 << 20;
/// Staged bytes a round of string ids aims at (32 per row): each round re-reads the 16-byte views
/// of its rows, scattered over every chunk, so rounds cost more than for integers.
const VIEW_ROUND_BYTES: usize = 64 << 20;
/// Most rounds: each one re-reads the ids (8 bytes a row).
const MAX_ROUNDS: usize = 16;
// A row's offset in its chunk is filed in 16 bits.
const _: () = assert!(CHUNK_ROWS <= 1 << 16);

/// Seed of the hash that ranks a partition's string ids.
const RANK_SEED: u64 = 0x2D35_8DCC_AA6C_78A5;

/// Widest bucket index span (bits) of a compact row.
const MAX_BUCKET_BITS: u32 = 32;

/// The occasion buckets of the kept rows: index `t.div_euclid(resolution)`, stored relative to
/// the earliest row's.
#[derive(Debug, Clone, Copy)]
struct Buckets {
    base: i64,
    resolution_us: i64,
    bits: u32,
}

impl Buckets {
    #[inline]
    fn index(resolution_us: i64, t_us: i64) -> i64 {
        // Day buckets are the common case: a constant divisor compiles to a multiplication.
        if resolution_us == MICROS_PER_DAY {
            t_us.div_euclid(MICROS_PER_DAY)
        } else {
            t_us.div_euclid(resolution_us)
        }
    }

    /// The buckets of kept times in `min..=max` (µs), when their starts are representable and
    /// their span fits [`MAX_BUCKET_BITS`]; any buckets when nothing is kept.
    fn of(min_us: i64, max_us: i64, resolution_us: i64) -> Option<Self> {
        if min_us > max_us {
            return Some(Self {
                base: 0,
                resolution_us,
                bits: 0,
            });
        }
        let (lo, hi) = (
            Self::index(resolution_us, min_us),
            Self::index(resolution_us, max_us),
        );
        // Every start in lo..=hi is then an i64 (so equal to `bucket_start`, which saturates).
        lo.checked_mul(resolution_us)?;
        hi.checked_mul(resolution_us)?;
        let span = hi.checked_sub(lo)? as u64;
        let bits = u64::BITS - span.leading_zeros();
        (bits <= MAX_BUCKET_BITS).then_some(Self {
            base: lo,
            resolution_us,
            bits,
        })
    }

    /// The bucket of a kept time, relative to the base.
    #[inline]
    fn relative(self, t_us: i64) -> u64 {
        (Self::index(self.resolution_us, t_us) - self.base) as u64
    }

    /// The start (µs) of a relative bucket.
    #[inline]
    fn start(self, relative: u64) -> i64 {
        (self.base + relative as i64) * self.resolution_us
    }
}

/// Per input chunk: its kept rows per partition, the offsets of its kept rows by round, and its
/// rows dropped by the filter.
struct ChunkCounts {
    per_partition: Vec<u32>,
    by_round: Vec<Vec<u16>>,
    /// The partitions of `by_round`'s rows, when the split keeps them (string ids, whose
    /// partition costs a search).
    parts_by_round: Vec<Vec<u16>>,
    excluded: u64,
}

/// Groups integer ids by the compact range split and hands `sink` the result of
/// `per_customer(scratch, occasions)` of every customer in id order (see
/// [`crate::partition::visit_occasions_sorted`]). Returns the ids and the excluded row count, or
/// `None` — before any result reaches `sink` — when the split does not apply: ids or buckets
/// spanning too much, skewed ids (a partition far above its share), or a filter with a split.
pub(crate) fn visit<S, R: Send + Sync>(
    keys: &[i64],
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
    init: &(impl Fn() -> S + Sync + Send),
    per_customer: &(impl Fn(&mut S, &[(i64, f64)]) -> Option<R> + Sync + Send),
    sink: &mut impl CustomerSink<R>,
) -> Option<(Vec<i64>, u64)> {
    visit_in_rounds(
        keys,
        times_us,
        amounts,
        filter,
        init,
        per_customer,
        sink,
        ROUND_BYTES,
    )
}

/// Bounds of the ids and of the times of `keys` and `times_us`.
fn bounds(keys: &[i64], times_us: &[i64]) -> (i64, i64, i64, i64) {
    keys.par_chunks(CHUNK_ROWS)
        .zip(times_us.par_chunks(CHUNK_ROWS))
        .map(|(k, t)| {
            let (k_lo, k_hi) = k
                .iter()
                .fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let (t_lo, t_hi) = t
                .iter()
                .fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            (k_lo, k_hi, t_lo, t_hi)
        })
        .reduce(
            || (i64::MAX, i64::MIN, i64::MAX, i64::MIN),
            |a, b| (a.0.min(b.0), a.1.max(b.1), a.2.min(b.2), a.3.max(b.3)),
        )
}

/// [`visit`] with rounds of about `round_bytes` staged bytes each.
fn visit_in_rounds<S, R: Send + Sync>(
    keys: &[i64],
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
    init: &(impl Fn() -> S + Sync + Send),
    per_customer: &(impl Fn(&mut S, &[(i64, f64)]) -> Option<R> + Sync + Send),
    sink: &mut impl CustomerSink<R>,
    round_bytes: usize,
) -> Option<(Vec<i64>, u64)> {
    if filter.split_us != i64::MAX || keys.is_empty() {
        return None;
    }
    let bits = partition_bits_for(times_us.len());
    let (key_min, key_max, t_min, t_max) = bounds(keys, times_us);
    let split = RangeSplit::from_bounds(key_min, key_max, bits)?;
    let buckets = Buckets::of(t_min, t_max.min(filter.max_time_us), filter.resolution_us)?;
    let shift = buckets.bits;
    let rows = RowSource {
        times_us,
        amounts,
        max_time: filter.max_time_us,
        n_partitions: 1 << bits,
        row_bytes: INT_ROW_BYTES,
        keep_partitions: false,
    };
    let key_bits = split.shift() + shift;
    rows.visit(
        round_bytes,
        &|row| split.partition(keys[row]),
        &|row| (split.low(keys[row]) << shift) | buckets.relative(times_us[row]),
        &|_| (),
        &|p, scratch: &mut Scratch<()>, state| {
            scratch.group(buckets, key_bits, state, per_customer, |customer| {
                split.key(p, customer)
            })
        },
        init,
        sink,
    )
}

/// Staged bytes of a row of integer ids (a packed `u64` and the amount).
const INT_ROW_BYTES: usize = 16;
/// Staged bytes of a row of string ids (its view, the bucket and the amount).
const VIEW_ROW_BYTES: usize = 32;
/// Sampled keys per partition when string ids choose their splitters.
const SAMPLES_PER_PARTITION: usize = 32;

/// The order key of a canonical inline view: `u128` order is the strings' bytewise order.
#[inline]
fn view_order(view: u128) -> u128 {
    let (head, tail) = inline_order(view);
    (u128::from(head) << 64) | u128::from(tail)
}

/// Groups string ids of at most 12 bytes (each view is then its content) by a range split on
/// splitters sampled from the ids, so partitions are in the ids' bytewise order; inside a
/// partition the distinct ids are ranked (a small hash table and a sort of the partition's
/// distinct ids) and the rows go through the same compact rows, radix sort and sink as integer
/// ids. Returns the (canonical) views in order and the excluded row count, or `None` — before any
/// result reaches `sink` — when an id is longer than 12 bytes, the buckets span too much, the
/// split is skewed (one customer far above a partition's share) or the filter has a split.
pub(crate) fn visit_views<S, R: Send + Sync>(
    keys: &ViewKeys<'_>,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
    init: &(impl Fn() -> S + Sync + Send),
    per_customer: &(impl Fn(&mut S, &[(i64, f64)]) -> Option<R> + Sync + Send),
    sink: &mut impl CustomerSink<R>,
) -> Option<(Vec<u128>, u64)> {
    visit_views_in_rounds(
        keys,
        times_us,
        amounts,
        filter,
        init,
        per_customer,
        sink,
        VIEW_ROUND_BYTES,
    )
}

/// [`visit_views`] with rounds of about `round_bytes` staged bytes each.
fn visit_views_in_rounds<S, R: Send + Sync>(
    keys: &ViewKeys<'_>,
    times_us: &[i64],
    amounts: Option<&[f64]>,
    filter: RowFilter,
    init: &(impl Fn() -> S + Sync + Send),
    per_customer: &(impl Fn(&mut S, &[(i64, f64)]) -> Option<R> + Sync + Send),
    sink: &mut impl CustomerSink<R>,
    round_bytes: usize,
) -> Option<(Vec<u128>, u64)> {
    if filter.split_us != i64::MAX || keys.is_empty() {
        return None;
    }
    let (longest, t_min, t_max) = keys
        .views
        .par_chunks(CHUNK_ROWS)
        .zip(times_us.par_chunks(CHUNK_ROWS))
        .map(|(v, t)| {
            let longest = v.iter().map(|&v| view_len(v)).max().unwrap_or(0);
            let (t_lo, t_hi) = t
                .iter()
                .fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            (longest, t_lo, t_hi)
        })
        .reduce(
            || (0, i64::MAX, i64::MIN),
            |a, b| (a.0.max(b.0), a.1.min(b.1), a.2.max(b.2)),
        );
    if longest > INLINE_MAX {
        return None;
    }
    // The bits every id's order key shares (so the lookup table indexes the bits that vary).
    let first = view_order(keys.key(0));
    let differ = (0..keys.len())
        .into_par_iter()
        .with_min_len(CHUNK_ROWS)
        .fold(
            || 0u128,
            |acc, row| acc | (view_order(keys.key(row)) ^ first),
        )
        .reduce(|| 0, |a, b| a | b);
    let buckets = Buckets::of(t_min, t_max.min(filter.max_time_us), filter.resolution_us)?;
    let split = ViewSplit::new(
        view_splitters(keys, 1 << partition_bits_for(times_us.len())),
        differ.leading_zeros(),
    );
    let part = |row: usize| split.partition(view_order(keys.key(row)));
    let rows = RowSource {
        times_us,
        amounts,
        max_time: filter.max_time_us,
        n_partitions: split.splitters.len() + 1,
        row_bytes: VIEW_ROW_BYTES,
        keep_partitions: true,
    };
    rows.visit(
        round_bytes,
        &part,
        &|row| buckets.relative(times_us[row]),
        &|row| keys.key(row),
        &|_, scratch: &mut Scratch<u128>, state| {
            let customer_bits = scratch.rank_views(buckets.bits);
            let ranked = std::mem::take(&mut scratch.distinct);
            let out = scratch.group(
                buckets,
                customer_bits + buckets.bits,
                state,
                per_customer,
                |rank| ranked[rank as usize],
            );
            scratch.distinct = ranked;
            out
        },
        init,
        sink,
    )
}

/// Up to `n_partitions − 1` distinct splitters (order keys, ascending) from a sample of the ids:
/// partition `p` holds the ids whose order key is at least splitter `p − 1` and below splitter
/// `p`. Which rows are sampled moves only the partitions' bounds, never a result.
fn view_splitters(keys: &ViewKeys<'_>, n_partitions: usize) -> Vec<u128> {
    let n = keys.len();
    let stride = (n / (n_partitions * SAMPLES_PER_PARTITION)).max(1);
    let mut sample: Vec<u128> = (0..n)
        .step_by(stride)
        .map(|row| view_order(keys.key(row)))
        .collect();
    sample.par_sort_unstable();
    let mut splitters: Vec<u128> = (1..n_partitions)
        .map(|j| sample[j * sample.len() / n_partitions])
        .collect();
    splitters.dedup();
    splitters
}

/// Bits of the splitter lookup table's index.
const TABLE_BITS: u32 = 16;

/// A range split of string ids: partition `p` holds the order keys from splitter `p − 1` up to
/// below splitter `p`. A table indexed by the [`TABLE_BITS`] order-key bits below the bits every
/// id shares narrows the splitters to compare to the few with the key's index.
struct ViewSplit {
    splitters: Vec<u128>,
    /// Left shift that drops (some of) the shared bits.
    shift: u32,
    /// `table[i]`: the splitters whose index is below `i` (`2^TABLE_BITS + 1` entries).
    table: Vec<u32>,
}

impl ViewSplit {
    fn new(splitters: Vec<u128>, shared_bits: u32) -> Self {
        let shift = shared_bits.min(u128::BITS - TABLE_BITS);
        let mut table = vec![0u32; (1 << TABLE_BITS) + 1];
        let index = |order: u128| ((order << shift) >> (u128::BITS - TABLE_BITS)) as usize;
        for &s in &splitters {
            table[index(s) + 1] += 1;
        }
        for i in 0..1 << TABLE_BITS {
            table[i + 1] += table[i];
        }
        Self {
            splitters,
            shift,
            table,
        }
    }

    /// The partition of an order key that shares the ids' shared bits.
    #[inline]
    fn partition(&self, order: u128) -> usize {
        let i = ((order << self.shift) >> (u128::BITS - TABLE_BITS)) as usize;
        let (lo, hi) = (self.table[i] as usize, self.table[i + 1] as usize);
        // Splitters of a lower index are below `order`, of a higher one above it.
        lo + splitters_at_or_below(&self.splitters[lo..hi], order)
    }
}

/// How many of the ascending `splitters` are at most `order` (the partition of `order`): a binary
/// search without branches on the comparisons.
#[inline]
fn splitters_at_or_below(splitters: &[u128], order: u128) -> usize {
    if splitters.is_empty() {
        return 0;
    }
    let mut base = 0;
    let mut size = splitters.len();
    while size > 1 {
        let half = size / 2;
        let mid = base + half;
        base += usize::from(splitters[mid] <= order) * half;
        size -= half;
    }
    base + usize::from(splitters[base] <= order)
}

/// The rows of a compact split: times, amounts, the filter's cut-off, the partition count and the
/// staged bytes of a row.
struct RowSource<'a> {
    times_us: &'a [i64],
    amounts: Option<&'a [f64]>,
    max_time: i64,
    n_partitions: usize,
    row_bytes: usize,
    /// Whether the count pass keeps each row's partition for the stage pass.
    keep_partitions: bool,
}

impl RowSource<'_> {
    /// Counts, stages and groups the kept rows in rounds of consecutive partitions: `part(row)`
    /// is a row's partition (partitions in key order), `packed(row)` and `extra(row)` what is
    /// staged of it besides its amount, and `group(p, scratch, state)` the `(key, result)`s of
    /// partition `p`'s gathered rows in key order. `None` when the split is skewed.
    fn visit<T: Copy + Default + Send + Sync, K, S, R: Send + Sync>(
        &self,
        round_bytes: usize,
        part: &(impl Fn(usize) -> usize + Sync),
        packed_of: &(impl Fn(usize) -> u64 + Sync),
        extra_of: &(impl Fn(usize) -> T + Sync),
        group: &(impl Fn(usize, &mut Scratch<T>, &mut S) -> Vec<(K, R)> + Sync),
        init: &(impl Fn() -> S + Sync + Send),
        sink: &mut impl CustomerSink<R>,
    ) -> Option<(Vec<K>, u64)>
    where
        K: Send,
    {
        let n_partitions = self.n_partitions;
        // Rounds of consecutive partitions, fixed before any row is read so the count pass can
        // file each kept row under its round: a round then reads only its own rows.
        let rounds = round_bounds_for(
            n_partitions,
            self.times_us.len(),
            self.row_bytes,
            round_bytes,
        );
        let mut round_of = vec![0u8; n_partitions];
        for (r, w) in rounds.windows(2).enumerate() {
            round_of[w[0]..w[1]].fill(r as u8);
        }
        let counts = self.count_rows(part, &round_of);
        let mut sizes = vec![0usize; n_partitions];
        for chunk in &counts {
            for (size, &c) in sizes.iter_mut().zip(&chunk.per_partition) {
                *size += c as usize;
            }
        }
        let kept: usize = sizes.iter().sum();
        let largest = sizes.iter().copied().max().unwrap_or(0);
        if largest > 4 * (kept / n_partitions) + TARGET_PARTITION_ROWS {
            return None;
        }
        let excluded = counts.iter().map(|c| c.excluded).sum();
        let staged = rounds
            .windows(2)
            .map(|w| sizes[w[0]..w[1]].iter().sum::<usize>())
            .max()
            .unwrap_or(0);
        // Calloc'd: pages are touched only as rows land in them.
        let mut packed = vec![0u64; staged];
        let mut extras = vec![T::default(); staged];
        let mut staged_amounts = vec![0f64; if self.amounts.is_some() { staged } else { 0 }];
        let mut ids = Vec::with_capacity(kept);
        sink.reserve(kept);
        for (r, round) in rounds.windows(2).enumerate() {
            let parts = round[0]..round[1];
            let starts = self.stage(
                &counts,
                r,
                parts.clone(),
                part,
                packed_of,
                extra_of,
                (&mut packed, &mut extras, &mut staged_amounts),
            );
            let results: Vec<Vec<(K, R)>> = parts
                .clone()
                .into_par_iter()
                .map_init(
                    || (init(), Scratch::default()),
                    |(state, scratch), p| {
                        let slices = counts.iter().zip(&starts).map(|(chunk, chunk_starts)| {
                            let start = chunk_starts[p - parts.start];
                            start..start + chunk.per_partition[p] as usize
                        });
                        scratch.gather(slices, &packed, &extras, &staged_amounts);
                        group(p, scratch, state)
                    },
                )
                .collect();
            for part in results {
                for (key, result) in part {
                    ids.push(key);
                    sink.push(result);
                }
            }
        }
        ids.shrink_to_fit();
        Some((ids, excluded))
    }

    /// Pass 1: kept rows per (chunk, partition), which place every row of every round, and each
    /// kept row's offset in its chunk (16 bits), by round (`round_of` a partition).
    fn count_rows(
        &self,
        part: &(impl Fn(usize) -> usize + Sync),
        round_of: &[u8],
    ) -> Vec<ChunkCounts> {
        let n_rounds = round_of.last().map_or(1, |&r| usize::from(r) + 1);
        let max_time = self.max_time;
        self.times_us
            .par_chunks(CHUNK_ROWS)
            .enumerate()
            .map(|(c, t)| {
                let first = c * CHUNK_ROWS;
                let mut per_partition = vec![0u32; round_of.len()];
                let mut by_round = vec![Vec::with_capacity(t.len() / n_rounds + 64); n_rounds];
                let mut parts_by_round = if self.keep_partitions {
                    by_round.clone()
                } else {
                    Vec::new()
                };
                let mut excluded = 0;
                for (offset, &time) in t.iter().enumerate() {
                    if time > max_time {
                        excluded += 1;
                    } else {
                        let p = part(first + offset);
                        per_partition[p] += 1;
                        let r = usize::from(round_of[p]);
                        by_round[r].push(offset as u16);
                        if let Some(parts) = parts_by_round.get_mut(r) {
                            parts.push(p as u16);
                        }
                    }
                }
                ChunkCounts {
                    per_partition,
                    by_round,
                    parts_by_round,
                    excluded,
                }
            })
            .collect()
    }

    /// Stages the kept rows of round `round`, partitions `parts`: chunk after chunk, and in a
    /// chunk partition after partition. Returns, per chunk, where each of those partitions' rows
    /// start.
    fn stage<T: Copy + Send + Sync>(
        &self,
        counts: &[ChunkCounts],
        round: usize,
        parts: std::ops::Range<usize>,
        part: &(impl Fn(usize) -> usize + Sync),
        packed_of: &(impl Fn(usize) -> u64 + Sync),
        extra_of: &(impl Fn(usize) -> T + Sync),
        (packed, extras, staged_amounts): (&mut [u64], &mut [T], &mut [f64]),
    ) -> Vec<Vec<usize>> {
        let mut starts = Vec::with_capacity(counts.len());
        let mut at = 0;
        for chunk in counts {
            let mut chunk_starts = Vec::with_capacity(parts.len());
            for &c in &chunk.per_partition[parts.clone()] {
                chunk_starts.push(at);
                at += c as usize;
            }
            starts.push(chunk_starts);
        }
        // Each chunk writes its own disjoint piece of the buffers.
        let with_amounts = self.amounts.is_some();
        let mut pieces = Vec::with_capacity(counts.len());
        let (mut rest_packed, mut rest_extras, mut rest_amounts) =
            (&mut packed[..at], &mut extras[..at], staged_amounts);
        for chunk in counts {
            let len = chunk.by_round[round].len();
            let (here, later) = rest_packed.split_at_mut(len);
            rest_packed = later;
            let (here_extras, later_extras) = rest_extras.split_at_mut(len);
            rest_extras = later_extras;
            let amount_len = if with_amounts { len } else { 0 };
            let (here_amounts, later_amounts) = rest_amounts.split_at_mut(amount_len);
            rest_amounts = later_amounts;
            pieces.push((here, here_extras, here_amounts));
        }
        pieces
            .into_par_iter()
            .zip(counts.par_iter())
            .enumerate()
            .for_each(|(c, ((piece, piece_extras, piece_amounts), chunk))| {
                let mut cursor: Vec<usize> = Vec::with_capacity(parts.len());
                let mut at = 0;
                for &n in &chunk.per_partition[parts.clone()] {
                    cursor.push(at);
                    at += n as usize;
                }
                let first = c * CHUNK_ROWS;
                let kept_parts = chunk.parts_by_round.get(round);
                for (i, &offset) in chunk.by_round[round].iter().enumerate() {
                    let row = first + offset as usize;
                    let p = match kept_parts {
                        Some(kept) => usize::from(kept[i]),
                        None => part(row),
                    };
                    let slot = &mut cursor[p - parts.start];
                    piece[*slot] = packed_of(row);
                    piece_extras[*slot] = extra_of(row);
                    if let Some(a) = self.amounts {
                        piece_amounts[*slot] = a[row];
                    }
                    *slot += 1;
                }
            });
        starts
    }
}

/// Partition bounds of the rounds: equal runs of consecutive partitions, as many rounds as
/// `n_rows` staged rows of 16 bytes need for about `round_bytes` a round (at most
/// [`MAX_ROUNDS`]).
#[cfg(test)]
fn round_bounds(n_partitions: usize, n_rows: usize, round_bytes: usize) -> Vec<usize> {
    round_bounds_for(n_partitions, n_rows, INT_ROW_BYTES, round_bytes)
}

/// [`round_bounds`] for staged rows of `row_bytes` bytes.
fn round_bounds_for(
    n_partitions: usize,
    n_rows: usize,
    row_bytes: usize,
    round_bytes: usize,
) -> Vec<usize> {
    let rounds = (n_rows * row_bytes)
        .div_ceil(round_bytes)
        .clamp(1, MAX_ROUNDS.min(n_partitions));
    (0..=rounds).map(|r| r * n_partitions / rounds).collect()
}

/// A worker's buffers for grouping one partition: its rows (packed `u64`, amount) and their
/// extras (string ids' views), the radix sort's spare and counts, a customer's occasions, and the
/// ranking's table and distinct ids.
#[derive(Default)]
struct Scratch<T> {
    rows: Vec<(u64, f64)>,
    extras: Vec<T>,
    spare: Vec<(u64, f64)>,
    counts: Vec<usize>,
    occasions: Vec<(i64, f64)>,
    table: HashTable<(u128, u32)>,
    distinct: Vec<u128>,
    ranks: Vec<u32>,
}

impl<T: Copy> Scratch<T> {
    /// Collects one partition's staged rows (amount 0 without amounts) and extras.
    fn gather(
        &mut self,
        slices: impl Iterator<Item = std::ops::Range<usize>>,
        packed: &[u64],
        extras: &[T],
        amounts: &[f64],
    ) {
        self.rows.clear();
        self.extras.clear();
        for range in slices {
            if std::mem::size_of::<T>() > 0 {
                self.extras.extend_from_slice(&extras[range.clone()]);
            }
            if amounts.is_empty() {
                self.rows.extend(packed[range].iter().map(|&v| (v, 0.0)));
            } else {
                self.rows.extend(
                    packed[range.clone()]
                        .iter()
                        .copied()
                        .zip(amounts[range].iter().copied()),
                );
            }
        }
    }

    /// Sorts the rows by (customer, bucket) on their low `key_bits` bits, collapses each
    /// customer's into occasions and scores them; the results in customer order, each customer's
    /// key `key_of(customer)` (the packed value above the bucket bits).
    fn group<K, S, R>(
        &mut self,
        buckets: Buckets,
        key_bits: u32,
        state: &mut S,
        per_customer: &impl Fn(&mut S, &[(i64, f64)]) -> Option<R>,
        key_of: impl Fn(u64) -> K,
    ) -> Vec<(K, R)> {
        let bucket_bits = buckets.bits;
        radix_sort(&mut self.rows, &mut self.spare, &mut self.counts, key_bits);
        let rows = &mut self.rows[..];
        let occasions = &mut self.occasions;
        let bucket_mask = (1u64 << bucket_bits) - 1;
        let mut out = Vec::new();
        let mut i = 0;
        while i < rows.len() {
            let customer = rows[i].0 >> bucket_bits;
            occasions.clear();
            while i < rows.len() && rows[i].0 >> bucket_bits == customer {
                let value = rows[i].0;
                let mut j = i + 1;
                while j < rows.len() && rows[j].0 == value {
                    j += 1;
                }
                let same_bucket = &mut rows[i..j];
                if same_bucket.len() > 1 {
                    // The canonical order of collapse_occasions: by the amount's total order.
                    same_bucket.sort_unstable_by(|a, b| a.1.total_cmp(&b.1));
                }
                let mut amount = same_bucket[0].1;
                for row in &same_bucket[1..] {
                    amount += row.1;
                }
                occasions.push((buckets.start(value & bucket_mask), amount));
                i = j;
            }
            if let Some(result) = per_customer(state, occasions) {
                out.push((key_of(customer), result));
            }
        }
        out
    }
}

impl Scratch<u128> {
    /// Ranks the partition's distinct views in bytewise order (`distinct` then holds them in
    /// that order) and puts each row's rank above its `bucket_bits` bucket bits; returns the
    /// ranks' bit width.
    fn rank_views(&mut self, bucket_bits: u32) -> u32 {
        let hasher = FixedState::with_seed(RANK_SEED);
        self.table.clear();
        self.distinct.clear();
        self.ranks.clear();
        // First-seen codes, then ranks by a sort of the (few) distinct views.
        for (row, &view) in self.rows.iter_mut().zip(&self.extras) {
            let hash = hasher.hash_one(view);
            let code = match self
                .table
                .entry(hash, |e| e.0 == view, |e| hasher.hash_one(e.0))
            {
                Entry::Occupied(entry) => entry.get().1,
                Entry::Vacant(entry) => {
                    let code = self.distinct.len() as u32;
                    self.distinct.push(view);
                    entry.insert((view, code));
                    code
                }
            };
            row.0 |= u64::from(code) << bucket_bits;
        }
        let mut order: Vec<(u128, u32)> = self
            .distinct
            .iter()
            .enumerate()
            .map(|(code, &view)| (view_order(view), code as u32))
            .collect();
        order.sort_unstable();
        self.ranks.resize(order.len(), 0);
        for (rank, &(_, code)) in order.iter().enumerate() {
            self.ranks[code as usize] = rank as u32;
        }
        let bucket_mask = (1u64 << bucket_bits) - 1;
        for row in &mut self.rows {
            let code = (row.0 >> bucket_bits) as usize;
            row.0 = (u64::from(self.ranks[code]) << bucket_bits) | (row.0 & bucket_mask);
        }
        // `distinct` in rank order: the output ids.
        let sorted: Vec<u128> = order
            .iter()
            .map(|&(_, code)| self.distinct[code as usize])
            .collect();
        self.distinct = sorted;
        let n = order.len() as u64;
        u64::BITS - n.saturating_sub(1).leading_zeros()
    }
}

/// Stable LSD radix sort of `rows` by the low `key_bits` bits of their `u64`; digit passes where
/// every row has the same digit are skipped.
fn radix_sort(
    rows: &mut Vec<(u64, f64)>,
    spare: &mut Vec<(u64, f64)>,
    counts: &mut Vec<usize>,
    key_bits: u32,
) {
    let buckets = 1usize << RADIX_BITS;
    let mask = (buckets - 1) as u64;
    counts.resize(buckets, 0);
    let mut shift = 0;
    while shift < key_bits {
        counts.fill(0);
        for row in rows.iter() {
            counts[((row.0 >> shift) & mask) as usize] += 1;
        }
        if counts.contains(&rows.len()) {
            shift += RADIX_BITS;
            continue;
        }
        let mut total = 0;
        for c in counts.iter_mut() {
            let here = *c;
            *c = total;
            total += here;
        }
        spare.clear();
        spare.resize(rows.len(), (0, 0.0));
        for &row in rows.iter() {
            let d = ((row.0 >> shift) & mask) as usize;
            spare[counts[d]] = row;
            counts[d] += 1;
        }
        std::mem::swap(rows, spare);
        shift += RADIX_BITS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_sort_is_a_stable_sort_by_the_low_bits() {
        let mut state = 7u64;
        let mut rows: Vec<(u64, f64)> = (0..5_000)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 20) & ((1 << 30) - 1) | (0xAB << 40), f64::from(i))
            })
            .collect();
        rows.extend([(5, 1.0), (5, 0.5), (3, 2.0)]);
        let mut expected = rows.clone();
        expected.sort_by_key(|r| r.0 & ((1 << 30) - 1));
        radix_sort(&mut rows, &mut Vec::new(), &mut Vec::new(), 30);
        assert_eq!(rows, expected);
    }

    #[test]
    fn buckets_refuse_wide_spans_and_unrepresentable_starts() {
        let day = MICROS_PER_DAY;
        let b = Buckets::of(-3 * day - 1, 10 * day, day).unwrap();
        assert_eq!((b.base, b.bits), (-4, 4));
        assert_eq!(b.start(b.relative(-1)), -day);
        assert!(Buckets::of(0, 1 << 40, 1).is_none());
        assert!(Buckets::of(i64::MIN + 5, 0, 10).is_none());
        assert_eq!(Buckets::of(5, 1, 1).unwrap().bits, 0);
    }

    #[test]
    fn rounds_cover_every_partition_once() {
        let bounds = round_bounds(64, 64_000_000, ROUND_BYTES);
        assert_eq!(bounds.len(), MAX_ROUNDS + 1);
        assert_eq!((bounds[0], bounds[MAX_ROUNDS]), (0, 64));
        assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(round_bounds(4, 5, ROUND_BYTES), vec![0, 4]);
        assert_eq!(round_bounds(2, 64_000_000, ROUND_BYTES), vec![0, 1, 2]);
        assert_eq!(round_bounds(8, 6_000, 16_000), vec![0, 1, 2, 4, 5, 6, 8]);
    }

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

    /// Every customer's silence figures by the compact split (in `round_bytes` rounds) and by
    /// the hash split with its per-customer sort, which must be the same bits.
    fn compare_with_hash_split(keys: &[i64], times: &[i64], amounts: Option<&[f64]>, as_of: i64) {
        use crate::keys::IntKeys;
        use crate::silence::{score_occasions, CustomerSilence, SilenceParams};
        let mut params = SilenceParams::new(as_of);
        params.resolution_us = if as_of % 2 == 0 {
            MICROS_PER_DAY
        } else {
            3_600_000_000
        };
        let filter = RowFilter::new(params.as_of_us, params.resolution_us);
        let as_of_bucket = crate::occasions::bucket_start(as_of, params.resolution_us);
        let per_occasions = |gaps: &mut Vec<i64>, occasions: &[(i64, f64)]| {
            Some(score_occasions(occasions, as_of_bucket, &params, gaps))
        };
        let per_rows = |(gaps, occasions): &mut (Vec<i64>, Vec<(i64, f64)>),
                        rows: &mut [(i64, f64)]| {
            crate::occasions::collapse_occasions(rows, occasions);
            Some(score_occasions(occasions, as_of_bucket, &params, gaps))
        };
        let mut expected: Vec<CustomerSilence> = Vec::new();
        let (expected_ids, expected_excluded) = crate::partition::visit_by_key(
            &IntKeys(keys),
            times,
            amounts,
            filter,
            &|| (Vec::new(), Vec::new()),
            &per_rows,
            &mut expected,
        );
        assert!(!expected.is_empty());
        for round_bytes in [ROUND_BYTES, 4096] {
            let mut got: Vec<CustomerSilence> = Vec::new();
            let (ids, excluded) = visit_in_rounds(
                keys,
                times,
                amounts,
                filter,
                &Vec::new,
                &per_occasions,
                &mut got,
                round_bytes,
            )
            .expect("the compact split applies");
            assert_eq!(ids, expected_ids);
            assert_eq!(excluded, expected_excluded);
            // Bitwise: f64 equality would let -0.0 pass for 0.0.
            let bits = |c: &CustomerSilence| {
                [
                    c.tenure_days,
                    c.recency_days,
                    c.max_gap_days,
                    c.mean_gap_days,
                ]
                .into_iter()
                .chain([c.median_gap_days, c.rank_ratio, c.silence_score])
                .chain([c.total_amount, c.mean_amount])
                .map(f64::to_bits)
                .collect::<Vec<_>>()
            };
            for (a, b) in got.iter().zip(&expected) {
                assert_eq!(a, b);
                assert_eq!(bits(a), bits(b));
            }
            assert_eq!(got.len(), expected.len());
        }
    }

    #[test]
    fn equals_the_hash_split_bit_for_bit() {
        let n = 120_000;
        let mut next = stream(5);
        let day = MICROS_PER_DAY;
        let keys: Vec<i64> = (0..n)
            .map(|_| (next() % 30_000) as i64 * 71_993 - 5_000)
            .collect();
        // Times over ~3 years around the epoch (negative too), many rows on the same day.
        let times: Vec<i64> = (0..n)
            .map(|_| (next() % (1_100 * day as u64)) as i64 - 300 * day)
            .collect();
        // Amounts whose sum depends on the order (so the canonical order shows), ±0, refunds.
        let amounts: Vec<f64> = (0..n)
            .map(|_| match next() % 7 {
                0 => 0.0,
                1 => -0.0,
                2 => 1e16,
                3 => -1e16,
                _ => (next() % 100_000) as f64 / 100.0 - 100.0,
            })
            .collect();
        let as_of = 700 * day; // some rows after it
        compare_with_hash_split(&keys, &times, Some(&amounts), as_of);
        compare_with_hash_split(&keys, &times, None, as_of);
        // Hour buckets, and few rows per customer.
        let hours: Vec<i64> = times.iter().map(|t| t / 20).collect();
        compare_with_hash_split(&keys, &hours, Some(&amounts), 30 * day + 1);
    }

    /// Every customer's silence figures by the string range split (in `round_bytes` rounds) and
    /// by the hash split with its per-customer sort and its sort of the ids: the same ids in the
    /// same order and the same bits.
    fn compare_views_with_hash_split(
        views: &[u128],
        times: &[i64],
        amounts: Option<&[f64]>,
        as_of: i64,
    ) {
        use crate::silence::{score_occasions, CustomerSilence, SilenceParams};
        let keys = ViewKeys {
            views,
            buffers: vec![],
        };
        let mut params = SilenceParams::new(as_of);
        params.resolution_us = if as_of % 2 == 0 {
            MICROS_PER_DAY
        } else {
            3_600_000_000
        };
        let filter = RowFilter::new(params.as_of_us, params.resolution_us);
        let as_of_bucket = crate::occasions::bucket_start(as_of, params.resolution_us);
        let per_occasions = |gaps: &mut Vec<i64>, occasions: &[(i64, f64)]| {
            Some(score_occasions(occasions, as_of_bucket, &params, gaps))
        };
        let per_rows = |(gaps, occasions): &mut (Vec<i64>, Vec<(i64, f64)>),
                        rows: &mut [(i64, f64)]| {
            crate::occasions::collapse_occasions(rows, occasions);
            Some(score_occasions(occasions, as_of_bucket, &params, gaps))
        };
        let mut expected: Vec<CustomerSilence> = Vec::new();
        let (expected_ids, expected_excluded) = crate::partition::visit_by_key(
            &keys,
            times,
            amounts,
            filter,
            &|| (Vec::new(), Vec::new()),
            &per_rows,
            &mut expected,
        );
        assert!(!expected.is_empty());
        for round_bytes in [ROUND_BYTES, 4096] {
            let mut got: Vec<CustomerSilence> = Vec::new();
            let (ids, excluded) = visit_views_in_rounds(
                &keys,
                times,
                amounts,
                filter,
                &Vec::new,
                &per_occasions,
                &mut got,
                round_bytes,
            )
            .expect("the string range split applies");
            assert_eq!(ids, expected_ids);
            assert_eq!(excluded, expected_excluded);
            let bits = |c: &CustomerSilence| {
                [
                    c.tenure_days,
                    c.recency_days,
                    c.max_gap_days,
                    c.mean_gap_days,
                ]
                .into_iter()
                .chain([c.median_gap_days, c.rank_ratio, c.silence_score])
                .chain([c.total_amount, c.mean_amount])
                .map(f64::to_bits)
                .collect::<Vec<_>>()
            };
            assert_eq!(got.len(), expected.len());
            for (a, b) in got.iter().zip(&expected) {
                assert_eq!(a, b);
                assert_eq!(bits(a), bits(b));
            }
        }
    }

    #[test]
    fn string_ids_equal_the_hash_split_bit_for_bit() {
        use crate::keys::inline_view;
        let n = 120_000;
        let mut next = stream(9);
        let day = MICROS_PER_DAY;
        // Ids like "C0000012345" (11 bytes), and ids of every length up to 12 bytes whose bytes
        // include zeros, prefixes of each other and the empty string.
        let fixed: Vec<u128> = (0..n)
            .map(|_| {
                let id = (next() % 25_000) * 85_899;
                inline_view(format!("C{id:010}").as_bytes()).unwrap()
            })
            .collect();
        let alphabet = [0u8, b'0', b'a', b'b', 0xC3, 0xA9, 0xFF];
        let mixed: Vec<u128> = (0..n)
            .map(|_| {
                let len = (next() % 13) as usize;
                let bytes: Vec<u8> = (0..len)
                    .map(|i| alphabet[((next() % 3) as usize + i) % alphabet.len()])
                    .collect();
                // Garbage past the length: keys are canonicalised.
                inline_view(&bytes).unwrap() | if len < 11 { 0xAB << 120 } else { 0 }
            })
            .collect();
        let times: Vec<i64> = (0..n)
            .map(|_| (next() % (1_100 * day as u64)) as i64 - 300 * day)
            .collect();
        let amounts: Vec<f64> = (0..n)
            .map(|_| match next() % 7 {
                0 => 0.0,
                1 => -0.0,
                2 => 1e16,
                3 => -1e16,
                _ => (next() % 100_000) as f64 / 100.0 - 100.0,
            })
            .collect();
        let as_of = 700 * day;
        compare_views_with_hash_split(&fixed, &times, Some(&amounts), as_of);
        compare_views_with_hash_split(&fixed, &times, None, as_of);
        compare_views_with_hash_split(&mixed, &times, Some(&amounts), as_of);
        let hours: Vec<i64> = times.iter().map(|t| t / 20).collect();
        compare_views_with_hash_split(&fixed, &hours, Some(&amounts), 30 * day + 1);
    }

    #[test]
    fn the_splitter_search_is_a_partition_point() {
        let splitters: Vec<u128> = vec![3, 7, 8, 20, 21];
        for n in 0..=splitters.len() {
            let s = &splitters[..n];
            for x in 0..25 {
                assert_eq!(splitters_at_or_below(s, x), s.partition_point(|&v| v <= x));
            }
        }
    }

    #[test]
    fn the_view_split_is_the_splitters_partition_point() {
        let mut next = stream(4);
        // Keys sharing their top 20 bits, splitters among them.
        let keys: Vec<u128> = (0..5_000)
            .map(|_| (0xABCDE << 108) | (u128::from(next()) << 40) >> (next() % 30))
            .collect();
        let mut splitters: Vec<u128> = keys.iter().step_by(37).copied().collect();
        splitters.sort_unstable();
        splitters.dedup();
        for shared in [0, 20] {
            let split = ViewSplit::new(splitters.clone(), shared);
            for &k in &keys {
                assert_eq!(split.partition(k), splitters.partition_point(|&s| s <= k));
            }
        }
    }

    #[test]
    fn long_string_ids_are_left_to_the_hash_split() {
        use crate::keys::inline_view;
        let mut views = vec![inline_view(b"a").unwrap(), inline_view(b"b").unwrap()];
        let data = b"customer-0000017";
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&16u32.to_le_bytes());
        raw[4..8].copy_from_slice(&data[..4]);
        views.push(u128::from_le_bytes(raw));
        let keys = ViewKeys {
            views: &views,
            buffers: vec![data],
        };
        let per = |(): &mut (), o: &[(i64, f64)]| Some(o.len());
        let filter = RowFilter::new(100, 1);
        let sink = &mut Vec::new();
        assert!(visit_views(&keys, &[0, 5, 9], None, filter, &|| (), &per, sink).is_none());
        let short = ViewKeys {
            views: &views[..2],
            buffers: vec![],
        };
        let ok = visit_views(&short, &[7, 5], None, filter, &|| (), &per, sink);
        assert_eq!(ok, Some((vec![views[0], views[1]], 0)));
        assert_eq!(*sink, vec![1, 1]);
    }

    #[test]
    fn wide_spans_and_split_filters_are_left_to_the_hash_split() {
        let keys = [1_i64, 2, 1];
        let sink = &mut Vec::new();
        let per = |(): &mut (), o: &[(i64, f64)]| Some(o.len());
        let filter = RowFilter::new(i64::MAX, 1);
        assert!(visit(&keys, &[0, 5, 1 << 40], None, filter, &|| (), &per, sink).is_none());
        let split = RowFilter {
            split_us: 3,
            ..RowFilter::new(100, 1)
        };
        assert!(visit(&keys, &[0, 5, 9], None, split, &|| (), &per, sink).is_none());
        let ok = visit(
            &keys,
            &[0, 5, 9],
            None,
            RowFilter::new(8, 1),
            &|| (),
            &per,
            sink,
        );
        assert_eq!(ok, Some((vec![1, 2], 1)));
        assert_eq!(*sink, vec![1, 1]);
    }
}
