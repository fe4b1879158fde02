//! Stable per-customer hashes for campaign assignment (docs/methods.md#campaign-hash: holdout arm,
//! staff order, follow-up spread).
//!
//! The hash of a customer is the 8-byte BLAKE2b digest (RFC 7693, output length 8, no key) of
//! `prefix ‖ id`, read as a little-endian `u64`, where `id` is the 8-byte little-endian two's
//! complement of an integer id or the UTF-8 bytes of a string id. Python's
//! `int.from_bytes(hashlib.blake2b(prefix + id, digest_size=8).digest(), "little")` gives the same
//! number, so any system can reproduce an assignment; it depends on nothing but its input (no
//! process seed, no platform, no thread count).

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;
use rayon::prelude::*;

use crate::keys::{CustomerKeys, KeyColumn};
use crate::parallelism;
use crate::KernelError;

/// Rows hashed per parallel task (fixed, so work splits the same way for any thread count).
const CHUNK: usize = 1 << 14;
/// Bytes of the digest.
const DIGEST_BYTES: usize = 8;

/// The hash of one id's bytes under `prefix` (see the module documentation).
pub fn stable_hash(prefix: &[u8], id: &[u8]) -> u64 {
    let mut out = [0u8; DIGEST_BYTES];
    // An output length of 8 is within BLAKE2b's 1..=64, so neither call can fail.
    if let Ok(mut hasher) = Blake2bVar::new(DIGEST_BYTES) {
        hasher.update(prefix);
        hasher.update(id);
        if hasher.finalize_variable(&mut out).is_err() {
            out = [0u8; DIGEST_BYTES];
        }
    }
    u64::from_le_bytes(out)
}

/// The hash of every customer key, in row order.
pub fn stable_hashes(
    keys: &CustomerKeys<'_>,
    prefix: &[u8],
    num_threads: Option<usize>,
) -> Result<Vec<u64>, KernelError> {
    parallelism::install(num_threads, || match keys {
        CustomerKeys::Int(ids) => hash_rows(ids.len(), |row| {
            stable_hash(prefix, &ids[row].to_le_bytes())
        }),
        CustomerKeys::View(view) => hash_rows(view.len(), |row| {
            view.with_bytes(view.views[row], |bytes| stable_hash(prefix, bytes))
        }),
    })
}

fn hash_rows(rows: usize, hash: impl Fn(usize) -> u64 + Sync) -> Vec<u64> {
    let mut out = vec![0u64; rows];
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(chunk, values)| {
            let first = chunk * CHUNK;
            for (offset, value) in values.iter_mut().enumerate() {
                *value = hash(first + offset);
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{inline_view, ViewKeys};

    #[test]
    fn matches_python_hashlib_blake2b() {
        // int.from_bytes(hashlib.blake2b(message, digest_size=8).digest(), "little")
        assert_eq!(stable_hash(b"", b""), 0xb4b2_7974_57a0_a6e4);
        let h = stable_hash(b"spring\x00", &42i64.to_le_bytes());
        assert_eq!(h, 0x0586_6b3f_6c5a_a693);
        assert_eq!(
            stable_hash(b"spring\x00", &(-1i64).to_le_bytes()),
            0x2f5b_ee1d_9561_db76
        );
        assert_ne!(h, stable_hash(b"autumn\x00", &42i64.to_le_bytes()));
    }

    #[test]
    fn same_ids_same_hashes_for_any_thread_count() {
        let ids: Vec<i64> = (0..50_000).map(|i| i * 7919 - 3).collect();
        let one = stable_hashes(&CustomerKeys::Int(&ids), b"c\x00", Some(1)).unwrap();
        let two = stable_hashes(&CustomerKeys::Int(&ids), b"c\x00", Some(2)).unwrap();
        assert_eq!(one, two);
        assert_eq!(one[17], stable_hash(b"c\x00", &ids[17].to_le_bytes()));
    }

    #[test]
    fn string_ids_hash_their_utf8_bytes() {
        let views = [inline_view(b"C0001").unwrap()];
        let keys = CustomerKeys::View(ViewKeys {
            views: &views,
            buffers: vec![],
        });
        let hashes = stable_hashes(&keys, b"x\x00", None).unwrap();
        assert_eq!(hashes, vec![0x1325_6fc2_0987_b890]);
    }
}
