//! The floor of silence scoring (benches/README.md, issue 18): one counting partition of the
//! (customer, day) keys by a hash of the customer, plus one scan of the partitioned keys.
//!
//! This is the least any method that groups rows by customer without a global sort must do: read
//! every key and time once, bucket the time to a day, write each (key, day) pair once into its
//! partition, and read it back once. It computes nothing comparable to a silence table; it is a
//! timing reference, run by `benches/bench_silence.py` in the same process run as the engines.
//!
//! Input (raw little-endian files written by the Python bench):
//!   --keys FILE        customer keys: i64 per row, or with --offsets the UTF-8 bytes of strings
//!   --offsets FILE     i64 Arrow offsets (rows + 1) of string keys in --keys
//!   --times FILE       i64 µs per row, or i32 days per row with --days
//!   --threads N        worker threads (default: all cores)
//!   --repeat N         timed runs (default 5)
//! Output: one JSON line `{"seconds": [...], "median": s, "rows": n, "checksum": x}`.

use std::hash::BuildHasher;
use std::time::Instant;

use foldhash::fast::FixedState;
use rayon::prelude::*;

const CHUNK_ROWS: usize = 1 << 16;
const TARGET_PARTITION_ROWS: usize = 1 << 14;
const MAX_PARTITION_BITS: u32 = 12;
const DAY_US: i64 = 86_400_000_000;

enum Keys {
    Int(Vec<i64>),
    Str { offsets: Vec<i64>, bytes: Vec<u8> },
}

enum Times {
    Micros(Vec<i64>),
    Days(Vec<i32>),
}

struct Chunk {
    offsets: Vec<u32>,
    keys: Vec<u64>,
    days: Vec<i32>,
}

fn read_i64(path: &str) -> Vec<i64> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    raw.chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect()
}

fn read_i32(path: &str) -> Vec<i32> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    raw.chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect()
}

/// The 64-bit key of a row (an integer id itself, a string id's hash) and its partition hash.
#[inline]
fn row_key(keys: &Keys, row: usize, hasher: &FixedState) -> (u64, u64) {
    match keys {
        Keys::Int(ids) => {
            let k = ids[row];
            (k as u64, hasher.hash_one(k))
        }
        Keys::Str { offsets, bytes } => {
            let s = &bytes[offsets[row] as usize..offsets[row + 1] as usize];
            let h = hasher.hash_one(s);
            (h, h)
        }
    }
}

#[inline]
fn row_day(times: &Times, row: usize) -> i32 {
    match times {
        Times::Micros(t) => t[row].div_euclid(DAY_US) as i32,
        Times::Days(d) => d[row],
    }
}

fn partition_chunk(keys: &Keys, times: &Times, rows: std::ops::Range<usize>, bits: u32) -> Chunk {
    let hasher = FixedState::with_seed(0x5158_A7E1_90D3_4F2B);
    let n_partitions = 1usize << bits;
    let shift = 64 - bits.max(1);
    let mut counts = vec![0u32; n_partitions + 1];
    let mut part = Vec::with_capacity(rows.len());
    let mut pairs = Vec::with_capacity(rows.len());
    for row in rows {
        let (key, hash) = row_key(keys, row, &hasher);
        let p = if bits == 0 {
            0
        } else {
            (hash >> shift) as usize
        };
        counts[p + 1] += 1;
        part.push(p as u16);
        pairs.push((key, row_day(times, row)));
    }
    for p in 0..n_partitions {
        counts[p + 1] += counts[p];
    }
    let mut cursor = counts.clone();
    let mut out_keys = vec![0u64; pairs.len()];
    let mut out_days = vec![0i32; pairs.len()];
    for (&p, &(key, day)) in part.iter().zip(&pairs) {
        let slot = cursor[p as usize] as usize;
        cursor[p as usize] += 1;
        out_keys[slot] = key;
        out_days[slot] = day;
    }
    Chunk {
        offsets: counts,
        keys: out_keys,
        days: out_days,
    }
}

/// One partition pass and one scan; returns a checksum so nothing is optimised away.
fn floor(keys: &Keys, times: &Times, n_rows: usize) -> u64 {
    let wanted = (n_rows / TARGET_PARTITION_ROWS).max(1).next_power_of_two();
    let bits = wanted.trailing_zeros().min(MAX_PARTITION_BITS);
    let chunks: Vec<Chunk> = (0..n_rows.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(|c| {
            let start = c * CHUNK_ROWS;
            partition_chunk(keys, times, start..(start + CHUNK_ROWS).min(n_rows), bits)
        })
        .collect();
    (0..1usize << bits)
        .into_par_iter()
        .map(|p| {
            let mut acc = 0u64;
            for chunk in &chunks {
                let (lo, hi) = (chunk.offsets[p] as usize, chunk.offsets[p + 1] as usize);
                for (k, d) in chunk.keys[lo..hi].iter().zip(&chunk.days[lo..hi]) {
                    acc = acc.wrapping_add(k ^ (*d as u64)).rotate_left(1);
                }
            }
            acc
        })
        .reduce(|| 0, u64::wrapping_add)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let Some(keys_path) = value("--keys") else {
        // `cargo bench`/`cargo test --benches` run this without data: nothing to time.
        eprintln!("usage: floor --keys FILE [--offsets FILE] --times FILE [--days] [--threads N] [--repeat N]");
        return;
    };
    let times_path = value("--times").expect("--times FILE");
    let keys = match value("--offsets") {
        Some(offsets) => Keys::Str {
            offsets: read_i64(&offsets),
            bytes: std::fs::read(&keys_path).expect("reading --keys"),
        },
        None => Keys::Int(read_i64(&keys_path)),
    };
    let times = if args.iter().any(|a| a == "--days") {
        Times::Days(read_i32(&times_path))
    } else {
        Times::Micros(read_i64(&times_path))
    };
    let n_rows = match &times {
        Times::Micros(t) => t.len(),
        Times::Days(d) => d.len(),
    };
    let threads = value("--threads").map_or(0, |v| v.parse().expect("--threads N"));
    let repeat: usize = value("--repeat").map_or(5, |v| v.parse().expect("--repeat N"));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let mut seconds = Vec::new();
    let mut checksum = 0;
    for _ in 0..repeat.max(1) {
        let began = Instant::now();
        checksum = pool.install(|| floor(&keys, &times, n_rows));
        seconds.push(began.elapsed().as_secs_f64());
    }
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let shown: Vec<String> = seconds.iter().map(|s| format!("{s:.6}")).collect();
    println!(
        "{{\"seconds\": [{}], \"median\": {median:.6}, \"rows\": {n_rows}, \"threads\": {}, \"checksum\": {checksum}}}",
        shown.join(", "),
        pool.current_num_threads()
    );
}
