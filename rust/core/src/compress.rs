//! Compression of sufficient statistics (docs/methods.md#fitting):
//! the distinct rows of a few float64 columns, with how often each occurs. A million customers'
//! (x, t_x, T) become the few thousand distinct tuples the likelihoods are summed over.
//!
//! Values are compared by their bits: -0.0 and 0.0 stay distinct rows (in `total_cmp` order) and
//! NaN, which has many bit patterns and no order, is an error.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use rayon::prelude::*;

use crate::partition::MAX_ROWS;
use crate::KernelError;

/// Rows per parallel piece; pieces are merged in order, so the result never depends on threads.
const CHUNK_ROWS: usize = 1 << 16;
const ROW_SEED: u64 = 0x2C1B_3C6D_0E4F_9A87;

/// Distinct rows as columns, sorted lexicographically (`f64::total_cmp` per column), and counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Compressed {
    pub columns: Vec<Vec<f64>>,
    pub counts: Vec<u64>,
    /// Per column, each output row's rank among that column's distinct values (0 = smallest),
    /// when the compression found them on the way (see [`Compressed::ranks`]).
    pub ranks: Option<Vec<Vec<u32>>>,
}

impl Compressed {
    /// Per column, each output row's rank among the column's distinct values in `total_cmp`
    /// order: lets a caller evaluate a function once per distinct value and look it up per row.
    pub fn ranks(&mut self) -> &[Vec<u32>] {
        let columns = &self.columns;
        self.ranks
            .get_or_insert_with(|| columns.par_iter().map(|c| ranks_of(c)).collect())
    }
}

/// Rank of each value among the distinct values of `values` (`total_cmp` order).
fn ranks_of(values: &[f64]) -> Vec<u32> {
    let mut distinct: Vec<u64> = values.iter().map(|&v| order_key(v)).collect();
    distinct.par_sort_unstable();
    distinct.dedup();
    values
        .iter()
        .map(|&v| distinct.partition_point(|&k| k < order_key(v)) as u32)
        .collect()
}

/// A set of rows (bit patterns, `width` values each) with a count per row.
struct RowCounts {
    width: usize,
    bits: Vec<u64>,
    counts: Vec<u64>,
    table: HashTable<(u64, u32)>,
}

impl RowCounts {
    fn new(width: usize) -> Self {
        Self {
            width,
            bits: Vec::new(),
            counts: Vec::new(),
            table: HashTable::new(),
        }
    }

    fn row(&self, i: usize) -> &[u64] {
        &self.bits[i * self.width..(i + 1) * self.width]
    }

    fn add(&mut self, row: &[u64], count: u64) {
        let hash = FixedState::with_seed(ROW_SEED).hash_one(row);
        let Self {
            width,
            bits,
            counts,
            table,
        } = self;
        let same = |&(h, i): &(u64, u32)| {
            h == hash && &bits[i as usize * *width..(i as usize + 1) * *width] == row
        };
        match table.entry(hash, same, |e| e.0) {
            Entry::Occupied(entry) => counts[entry.get().1 as usize] += count,
            Entry::Vacant(entry) => {
                entry.insert((hash, counts.len() as u32));
                bits.extend_from_slice(row);
                counts.push(count);
            }
        }
    }
}

fn check(columns: &[&[f64]]) -> Result<usize, KernelError> {
    let Some(first) = columns.first() else {
        return Err(KernelError::InvalidParameter {
            name: "columns",
            reason: "at least one column is needed".into(),
        });
    };
    let n_rows = first.len();
    if let Some((c, col)) = columns.iter().enumerate().find(|(_, c)| c.len() != n_rows) {
        return Err(KernelError::InvalidParameter {
            name: "columns",
            reason: format!(
                "column {c} has {} rows but column 0 has {n_rows}",
                col.len()
            ),
        });
    }
    if n_rows > MAX_ROWS {
        return Err(KernelError::TooManyRows {
            rows: n_rows,
            limit: MAX_ROWS,
        });
    }
    for (column, values) in columns.iter().enumerate() {
        // A sequential scan: memory-bound and vectorised, it takes well under a millisecond per
        // million values, where a parallel search paid for its splits many times over.
        if let Some(row) = values.iter().position(|v| v.is_nan()) {
            return Err(KernelError::NotANumber { column, row });
        }
    }
    Ok(n_rows)
}

/// Maps an `f64`'s bits to a `u64` whose unsigned order is `f64::total_cmp`'s order.
#[inline]
fn order_key(value: f64) -> u64 {
    let bits = value.to_bits();
    // Negative numbers: flip every bit (larger magnitude sorts first); others: set the sign bit.
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

#[inline]
fn from_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// Rows of at most this many columns are compressed by sorting fixed-width keys.
const SORT_WIDTH: usize = 4;

/// Sort-based compression of exactly `W` columns: one parallel sort of `W`-word keys, then one
/// scan. No hash table, no serial merge, no indirection in the comparisons.
fn compress_by_sort<const W: usize>(columns: &[&[f64]], n_rows: usize) -> Compressed {
    let mut keys: Vec<[u64; W]> = (0..n_rows)
        .into_par_iter()
        .with_min_len(CHUNK_ROWS)
        .map(|r| std::array::from_fn(|c| order_key(columns[c][r])))
        .collect();
    keys.par_sort_unstable();
    let mut out = Compressed {
        columns: vec![Vec::new(); W],
        counts: Vec::new(),
        ranks: None,
    };
    for run in keys.chunk_by(|a, b| a == b) {
        for (column, &k) in out.columns.iter_mut().zip(&run[0]) {
            column.push(from_order_key(k));
        }
        out.counts.push(run.len() as u64);
    }
    out
}

/// One chunk's view of one column: its distinct values (order keys, first-seen order) and each
/// row's index into them.
struct LocalCodes {
    distinct: Vec<u64>,
    codes: Vec<u32>,
}

fn local_codes(values: &[f64]) -> LocalCodes {
    let hasher = FixedState::with_seed(ROW_SEED);
    let mut table: HashTable<u32> = HashTable::new();
    let mut distinct: Vec<u64> = Vec::new();
    let codes = values
        .iter()
        .map(|&v| {
            let key = order_key(v);
            let hash = hasher.hash_one(key);
            match table.entry(
                hash,
                |&i| distinct[i as usize] == key,
                |&i| hasher.hash_one(distinct[i as usize]),
            ) {
                Entry::Occupied(entry) => *entry.get(),
                Entry::Vacant(entry) => {
                    let index = distinct.len() as u32;
                    distinct.push(key);
                    entry.insert(index);
                    index
                }
            }
        })
        .collect();
    LocalCodes { distinct, codes }
}

/// Bits needed to store ranks `0..n`.
fn bits_for(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

/// Keys of at most this many significant bits are sorted by [`radix_sort`] (at most 4 passes).
const RADIX_MAX_BITS: u32 = 44;

/// Least-significant-digit radix sort of keys below `2^bits`: `ceil(bits / 11)` passes of at
/// most 11 bits each, one counting read for all passes, then one scatter per pass. For the
/// 30-odd-bit keys of a summary this beats a comparison sort on two threads.
fn radix_sort(keys: &mut Vec<u64>, bits: u32) {
    let passes = bits.div_ceil(11).max(1) as usize;
    let digit_bits = bits.div_ceil(passes as u32).max(1);
    let mask = (1u64 << digit_bits) - 1;
    let buckets = 1usize << digit_bits;
    let mut offsets = vec![0usize; passes * buckets];
    for &key in keys.iter() {
        for pass in 0..passes {
            let digit = ((key >> (pass as u32 * digit_bits)) & mask) as usize;
            offsets[pass * buckets + digit] += 1;
        }
    }
    for counts in offsets.chunks_mut(buckets) {
        let mut sum = 0;
        for slot in counts {
            let count = *slot;
            *slot = sum;
            sum += count;
        }
    }
    let mut scratch = vec![0u64; keys.len()];
    for pass in 0..passes {
        let next = &mut offsets[pass * buckets..(pass + 1) * buckets];
        let shift = pass as u32 * digit_bits;
        for &key in keys.iter() {
            let digit = ((key >> shift) & mask) as usize;
            scratch[next[digit]] = key;
            next[digit] += 1;
        }
        std::mem::swap(keys, &mut scratch);
    }
}

/// Each run of equal keys in sorted `keys`: the key and the run's length.
fn runs_of(keys: &[u64]) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::with_capacity(keys.len() / 2);
    let mut start = 0;
    while start < keys.len() {
        let key = keys[start];
        let mut end = start + 1;
        while end < keys.len() && keys[end] == key {
            end += 1;
        }
        runs.push((key, (end - start) as u64));
        start = end;
    }
    runs
}

/// Compression through dictionary codes: each column's values become their rank among the
/// column's distinct values, the ranks of a row are packed into one `u64` (first column in the
/// high bits, so integer order is the rows' lexicographic order), and one parallel sort of those
/// integers finds the runs. Summary columns have few distinct values (days, counts), so this
/// sorts 8-byte keys instead of `8 × width`-byte ones. `None` when the ranks need more than 64
/// bits; the caller then sorts full keys.
fn compress_by_codes(columns: &[&[f64]], n_rows: usize) -> Option<Compressed> {
    let n_chunks = n_rows.div_ceil(CHUNK_ROWS);
    let chunk = |c: usize| c * CHUNK_ROWS..((c + 1) * CHUNK_ROWS).min(n_rows);
    let locals: Vec<Vec<LocalCodes>> = (0..n_chunks)
        .into_par_iter()
        .map(|c| {
            columns
                .iter()
                .map(|col| local_codes(&col[chunk(c)]))
                .collect()
        })
        .collect();
    // Nearly continuous values (amounts): the dictionary would be as large as the data, and
    // sorting full keys is cheaper than building it.
    let continuous = (0..columns.len())
        .any(|c| locals.iter().map(|l| l[c].distinct.len()).sum::<usize>() > n_rows / 2);
    if continuous {
        return None;
    }
    let distinct: Vec<Vec<u64>> = (0..columns.len())
        .into_par_iter()
        .map(|column| {
            let mut all: Vec<u64> = locals
                .iter()
                .flat_map(|l| l[column].distinct.iter().copied())
                .collect();
            all.par_sort_unstable();
            all.dedup();
            all
        })
        .collect();
    let bits: Vec<u32> = distinct.iter().map(|d| bits_for(d.len())).collect();
    if bits.iter().sum::<u32>() > u64::BITS {
        return None;
    }
    // Column c's rank sits at `shifts[c]`; the last column in the lowest bits.
    let shifts: Vec<u32> = (0..bits.len())
        .map(|c| bits[c + 1..].iter().sum())
        .collect();
    let mut keys: Vec<u64> = locals
        .par_iter()
        .flat_map_iter(|local| {
            let to_global: Vec<Vec<u64>> = local
                .iter()
                .zip(&distinct)
                .zip(&shifts)
                .map(|((l, global), &shift)| {
                    l.distinct
                        .iter()
                        .map(|k| (global.partition_point(|g| g < k) as u64) << shift)
                        .collect()
                })
                .collect();
            let n = local[0].codes.len();
            (0..n).map(move |r| {
                local
                    .iter()
                    .zip(&to_global)
                    .fold(0u64, |key, (l, map)| key | map[l.codes[r] as usize])
            })
        })
        .collect();
    drop(locals);
    let total_bits: u32 = bits.iter().sum();
    if total_bits <= RADIX_MAX_BITS {
        radix_sort(&mut keys, total_bits);
    } else {
        keys.par_sort_unstable();
    }
    let runs = runs_of(&keys);
    drop(keys);
    let ranks: Vec<Vec<u32>> = (0..columns.len())
        .into_par_iter()
        .map(|c| {
            let mask = if bits[c] == 0 {
                0
            } else {
                u64::MAX >> (u64::BITS - bits[c])
            };
            runs.iter()
                .map(|&(key, _)| ((key >> shifts[c]) & mask) as u32)
                .collect()
        })
        .collect();
    let out = Compressed {
        columns: ranks
            .par_iter()
            .zip(&distinct)
            .map(|(column_ranks, values)| {
                column_ranks
                    .iter()
                    .map(|&rank| from_order_key(values[rank as usize]))
                    .collect()
            })
            .collect(),
        counts: runs.iter().map(|&(_, count)| count).collect(),
        ranks: Some(ranks),
    };
    Some(out)
}

/// The distinct rows of `columns` (all of one length, no NaN) with their counts, sorted
/// lexicographically by `f64::total_cmp`. The counts sum to the number of input rows.
pub fn compress_rows(columns: &[&[f64]]) -> Result<Compressed, KernelError> {
    let n_rows = check(columns)?;
    let width = columns.len();
    if width <= SORT_WIDTH {
        if let Some(out) = compress_by_codes(columns, n_rows) {
            return Ok(out);
        }
    }
    match width {
        1 => return Ok(compress_by_sort::<1>(columns, n_rows)),
        2 => return Ok(compress_by_sort::<2>(columns, n_rows)),
        3 => return Ok(compress_by_sort::<3>(columns, n_rows)),
        SORT_WIDTH => return Ok(compress_by_sort::<SORT_WIDTH>(columns, n_rows)),
        _ => {}
    }
    let pieces: Vec<RowCounts> = (0..n_rows.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(|c| {
            let mut set = RowCounts::new(width);
            let mut row = vec![0u64; width];
            for r in c * CHUNK_ROWS..((c + 1) * CHUNK_ROWS).min(n_rows) {
                for (slot, column) in row.iter_mut().zip(columns) {
                    *slot = column[r].to_bits();
                }
                set.add(&row, 1);
            }
            set
        })
        .collect();
    let mut merged = RowCounts::new(width);
    for piece in &pieces {
        for (i, &count) in piece.counts.iter().enumerate() {
            merged.add(piece.row(i), count);
        }
    }
    drop(pieces);
    let mut order: Vec<usize> = (0..merged.counts.len()).collect();
    order.par_sort_unstable_by(|&a, &b| {
        let (ra, rb) = (merged.row(a), merged.row(b));
        ra.iter()
            .zip(rb)
            .map(|(&x, &y)| f64::from_bits(x).total_cmp(&f64::from_bits(y)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let columns = (0..width)
        .map(|c| {
            order
                .iter()
                .map(|&i| f64::from_bits(merged.row(i)[c]))
                .collect()
        })
        .collect();
    let counts = order.iter().map(|&i| merged.counts[i]).collect();
    Ok(Compressed {
        columns,
        counts,
        ranks: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_rows_sorted_with_counts() {
        let x = [1.0, 0.0, 1.0, 0.0, 2.0];
        let t = [5.0, 3.0, 5.0, 3.0, 1.0];
        let out = compress_rows(&[&x, &t]).unwrap();
        assert_eq!(out.columns, vec![vec![0.0, 1.0, 2.0], vec![3.0, 5.0, 1.0]]);
        assert_eq!(out.counts, vec![2, 2, 1]);
    }

    #[test]
    fn negative_zero_stays_apart_and_nan_is_an_error() {
        let out = compress_rows(&[&[0.0, -0.0, 0.0]]).unwrap();
        assert_eq!(out.counts, vec![1, 2]);
        assert!(out.columns[0][0].is_sign_negative());
        let err = compress_rows(&[&[1.0, 2.0], &[0.0, f64::NAN]]).unwrap_err();
        assert_eq!(err, KernelError::NotANumber { column: 1, row: 1 });
    }

    #[test]
    fn order_keys_follow_total_cmp() {
        let values = [
            f64::NEG_INFINITY,
            -3.5,
            -0.0,
            0.0,
            1e-300,
            2.0,
            f64::INFINITY,
        ];
        for pair in values.windows(2) {
            assert!(order_key(pair[0]) < order_key(pair[1]), "{pair:?}");
        }
        for v in values {
            assert_eq!(from_order_key(order_key(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn wide_rows_use_the_hash_path_with_the_same_result() {
        let a = [1.0, 0.0, 1.0, 0.0, 2.0];
        let columns: Vec<&[f64]> = vec![&a; 5];
        let out = compress_rows(&columns).unwrap();
        assert_eq!(out.columns[4], vec![0.0, 1.0, 2.0]);
        assert_eq!(out.counts, vec![2, 2, 1]);
    }

    /// A small deterministic generator (splitmix64) so the test needs no extra crate.
    fn values(seed: u64, n: usize, distinct: u64) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) % distinct) as f64 * 0.25 - 3.0
            })
            .collect()
    }

    #[test]
    fn dictionary_codes_match_the_full_key_sort_and_ranks_index_the_distinct_values() {
        // Enough rows for several chunks; few, many and single distinct values per column.
        let n = 3 * CHUNK_ROWS + 17;
        let (a, b, c) = (values(1, n, 7), values(2, n, 5_000), values(3, n, 1));
        let columns: Vec<&[f64]> = vec![&a, &b, &c];
        let mut by_codes = compress_by_codes(&columns, n).expect("fits in 64 bits");
        let by_sort = compress_by_sort::<3>(&columns, n);
        assert_eq!(by_codes.columns, by_sort.columns);
        assert_eq!(by_codes.counts, by_sort.counts);
        let ranks = by_codes.ranks().to_vec();
        for (column, column_ranks) in by_codes.columns.iter().zip(&ranks) {
            assert_eq!(column_ranks, &ranks_of(column));
        }
    }

    #[test]
    fn radix_sort_sorts_keys_of_any_width_up_to_its_limit() {
        for bits in [0, 1, 5, 11, 12, 23, 33, RADIX_MAX_BITS] {
            let mask = if bits == 0 {
                0
            } else {
                u64::MAX >> (64 - bits)
            };
            let mut keys: Vec<u64> = values(u64::from(bits), 5_000, 1 << 40)
                .iter()
                .map(|v| (v.to_bits().wrapping_mul(0x9E37_79B9_7F4A_7C15)) & mask)
                .collect();
            let mut expected = keys.clone();
            expected.sort_unstable();
            radix_sort(&mut keys, bits);
            assert_eq!(keys, expected, "{bits} bits");
        }
    }

    #[test]
    fn too_many_distinct_values_fall_back_to_the_key_sort() {
        let n = 70_000;
        let columns: Vec<Vec<f64>> = (0..4).map(|s| values(s, n, 1 << 40)).collect();
        let slices: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
        assert!(compress_by_codes(&slices, n).is_none());
        let mut out = compress_rows(&slices).unwrap();
        assert_eq!(out.counts.iter().sum::<u64>(), n as u64);
        assert!(out.ranks.is_none());
        let ranks = out.ranks().to_vec();
        assert_eq!(ranks[0], ranks_of(&out.columns[0]));
    }

    #[test]
    fn empty_and_mismatched_inputs() {
        let out = compress_rows(&[&[], &[]]).unwrap();
        assert_eq!(out.columns, vec![Vec::<f64>::new(), Vec::new()]);
        assert!(out.counts.is_empty());
        assert!(compress_rows(&[]).is_err());
        assert!(compress_rows(&[&[1.0], &[]]).is_err());
    }
}
