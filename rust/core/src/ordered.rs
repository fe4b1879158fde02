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

use rayon::prelude::*;

use crate::occasions::MICROS_PER_DAY;
use crate::partition::{
    partition_bits_for, CustomerSink, RangeSplit, RowFilter, CHUNK_ROWS, RADIX_BITS,
    TARGET_PARTITION_ROWS,
};

/// Staged bytes a round aims at (16 per row): enough to amortise a re-read of the id column.
const ROUND_BYTES: usize = 32 << 20;
/// Most rounds: each one re-reads the ids (8 bytes a row).
const MAX_ROUNDS: usize = 8;
// A row's offset in its chunk is filed in 16 bits.
const _: () = assert!(CHUNK_ROWS <= 1 << 16);

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
    let (key_min, key_max, t_min, t_max) = keys
        .par_chunks(CHUNK_ROWS)
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
        );
    let split = RangeSplit::from_bounds(key_min, key_max, bits)?;
    let buckets = Buckets::of(t_min, t_max.min(filter.max_time_us), filter.resolution_us)?;
    let n_partitions = 1usize << bits;
    let max_time = filter.max_time_us;
    // Rounds of consecutive partitions, fixed before any row is read so the count pass can file
    // each kept row under its round: a round then reads only its own rows.
    let rounds = round_bounds(n_partitions, times_us.len(), round_bytes);
    let mut round_of = vec![0u8; n_partitions];
    for (r, w) in rounds.windows(2).enumerate() {
        round_of[w[0]..w[1]].fill(r as u8);
    }
    let counts = count_rows(keys, times_us, split, max_time, &round_of);
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
    let mut staged_amounts = vec![0f64; if amounts.is_some() { staged } else { 0 }];
    let mut ids = Vec::with_capacity(kept);
    sink.reserve(kept);
    let layout = Layout { split, buckets };
    for (r, round) in rounds.windows(2).enumerate() {
        let parts = round[0]..round[1];
        let starts = layout.stage(
            keys,
            times_us,
            amounts,
            &counts,
            r,
            parts.clone(),
            &mut packed,
            &mut staged_amounts,
        );
        let results: Vec<Vec<(i64, R)>> = parts
            .clone()
            .into_par_iter()
            .map_init(
                || (init(), Scratch::default()),
                |(state, scratch), p| {
                    let slices = counts.iter().zip(&starts).map(|(chunk, chunk_starts)| {
                        let start = chunk_starts[p - parts.start];
                        start..start + chunk.per_partition[p] as usize
                    });
                    scratch.gather(slices, &packed, &staged_amounts);
                    layout.group(p, scratch, state, per_customer)
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
    keys: &[i64],
    times_us: &[i64],
    split: RangeSplit,
    max_time: i64,
    round_of: &[u8],
) -> Vec<ChunkCounts> {
    let n_rounds = round_of.last().map_or(1, |&r| usize::from(r) + 1);
    keys.par_chunks(CHUNK_ROWS)
        .zip(times_us.par_chunks(CHUNK_ROWS))
        .map(|(k, t)| {
            let mut per_partition = vec![0u32; round_of.len()];
            let mut by_round = vec![Vec::with_capacity(k.len() / n_rounds + 64); n_rounds];
            let mut excluded = 0;
            for (offset, (&key, &time)) in k.iter().zip(t).enumerate() {
                if time > max_time {
                    excluded += 1;
                } else {
                    let p = split.partition(key);
                    per_partition[p] += 1;
                    by_round[usize::from(round_of[p])].push(offset as u16);
                }
            }
            ChunkCounts {
                per_partition,
                by_round,
                excluded,
            }
        })
        .collect()
}

/// Partition bounds of the rounds: equal runs of consecutive partitions, as many rounds as
/// `n_rows` staged rows of 16 bytes need for about `round_bytes` a round (at most
/// [`MAX_ROUNDS`]).
fn round_bounds(n_partitions: usize, n_rows: usize, round_bytes: usize) -> Vec<usize> {
    let rounds = (n_rows * 16)
        .div_ceil(round_bytes)
        .clamp(1, MAX_ROUNDS.min(n_partitions));
    (0..=rounds).map(|r| r * n_partitions / rounds).collect()
}

#[derive(Clone, Copy)]
struct Layout {
    split: RangeSplit,
    buckets: Buckets,
}

/// A worker's buffers for grouping one partition.
#[derive(Default)]
struct Scratch {
    rows: Vec<(u64, f64)>,
    spare: Vec<(u64, f64)>,
    counts: Vec<usize>,
    occasions: Vec<(i64, f64)>,
}

impl Scratch {
    /// Collects one partition's staged rows (amount 0 without amounts).
    fn gather(
        &mut self,
        slices: impl Iterator<Item = std::ops::Range<usize>>,
        packed: &[u64],
        amounts: &[f64],
    ) {
        self.rows.clear();
        for range in slices {
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
}

impl Layout {
    /// Stages the kept rows of round `round`, partitions `parts`: chunk after chunk, and in a
    /// chunk partition after partition. Returns, per chunk, where each of those partitions' rows
    /// start.
    fn stage(
        self,
        keys: &[i64],
        times_us: &[i64],
        amounts: Option<&[f64]>,
        counts: &[ChunkCounts],
        round: usize,
        parts: std::ops::Range<usize>,
        packed: &mut [u64],
        staged_amounts: &mut [f64],
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
        let mut pieces = Vec::with_capacity(counts.len());
        let (mut rest_packed, mut rest_amounts) = (&mut packed[..at], staged_amounts);
        for chunk in counts {
            let len = chunk.by_round[round].len();
            let (here, later) = rest_packed.split_at_mut(len);
            rest_packed = later;
            let amount_len = if amounts.is_some() { len } else { 0 };
            let (here_amounts, later_amounts) = rest_amounts.split_at_mut(amount_len);
            rest_amounts = later_amounts;
            pieces.push((here, here_amounts));
        }
        let shift = self.buckets.bits;
        pieces
            .into_par_iter()
            .zip(counts.par_iter())
            .enumerate()
            .for_each(|(c, ((piece, piece_amounts), chunk))| {
                let mut cursor: Vec<usize> = Vec::with_capacity(parts.len());
                let mut at = 0;
                for &n in &chunk.per_partition[parts.clone()] {
                    cursor.push(at);
                    at += n as usize;
                }
                let first = c * CHUNK_ROWS;
                let end = (first + CHUNK_ROWS).min(keys.len());
                let (keys, times) = (&keys[first..end], &times_us[first..end]);
                let amounts = amounts.map(|a| &a[first..end]);
                for &offset in &chunk.by_round[round] {
                    let row = offset as usize;
                    let key = keys[row];
                    let slot = &mut cursor[self.split.partition(key) - parts.start];
                    piece[*slot] =
                        (self.split.low(key) << shift) | self.buckets.relative(times[row]);
                    if let Some(a) = amounts {
                        piece_amounts[*slot] = a[row];
                    }
                    *slot += 1;
                }
            });
        starts
    }

    /// Sorts one partition's rows by (customer, bucket), collapses each customer's into
    /// occasions and scores them; the results in id order.
    fn group<S, R>(
        self,
        p: usize,
        scratch: &mut Scratch,
        state: &mut S,
        per_customer: &impl Fn(&mut S, &[(i64, f64)]) -> Option<R>,
    ) -> Vec<(i64, R)> {
        let bucket_bits = self.buckets.bits;
        radix_sort(
            &mut scratch.rows,
            &mut scratch.spare,
            &mut scratch.counts,
            self.split.shift() + bucket_bits,
        );
        let rows = &mut scratch.rows[..];
        let occasions = &mut scratch.occasions;
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
                occasions.push((self.buckets.start(value & bucket_mask), amount));
                i = j;
            }
            if let Some(result) = per_customer(state, occasions) {
                out.push((self.split.key(p, customer), result));
            }
        }
        out
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
            let bits = crate::silence::float_bits;
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
