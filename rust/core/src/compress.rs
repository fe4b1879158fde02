//! Compression of sufficient statistics (SPEC §5, "MLE on compressed sufficient statistics"):
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
        if let Some(row) = values.par_iter().position_first(|v| v.is_nan()) {
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
    };
    for run in keys.chunk_by(|a, b| a == b) {
        for (column, &k) in out.columns.iter_mut().zip(&run[0]) {
            column.push(from_order_key(k));
        }
        out.counts.push(run.len() as u64);
    }
    out
}

/// The distinct rows of `columns` (all of one length, no NaN) with their counts, sorted
/// lexicographically by `f64::total_cmp`. The counts sum to the number of input rows.
pub fn compress_rows(columns: &[&[f64]]) -> Result<Compressed, KernelError> {
    let n_rows = check(columns)?;
    let width = columns.len();
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
    Ok(Compressed { columns, counts })
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

    #[test]
    fn empty_and_mismatched_inputs() {
        let out = compress_rows(&[&[], &[]]).unwrap();
        assert_eq!(out.columns, vec![Vec::<f64>::new(), Vec::new()]);
        assert!(out.counts.is_empty());
        assert!(compress_rows(&[]).is_err());
        assert!(compress_rows(&[&[1.0], &[]]).is_err());
    }
}
