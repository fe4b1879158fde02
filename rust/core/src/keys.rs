//! Customer key columns. A key is a small `Copy` value carried with every row through the
//! partitioning, so grouping never reads the input column at scattered positions. Hashing,
//! equality and order go through the column, which resolves the rare keys that point into shared
//! buffers (long strings).

use std::cmp::Ordering;
use std::hash::BuildHasher;

use foldhash::fast::FixedState;

const KEY_SEED: u64 = 0x5158_A7E1_90D3_4F2B;
/// Longest string stored inside an Arrow string view (its 12 bytes after the length).
const INLINE_MAX: usize = 12;

/// A column of customer keys: content hashing, equality and order of its `Copy` keys.
pub trait KeyColumn: Sync {
    type Key: Copy + Default + Send + Sync;
    /// Number of rows.
    fn len(&self) -> usize;
    /// Whether the column has no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The key of row `row` (`row < len()`).
    fn key(&self, row: usize) -> Self::Key;
    /// Content hash, identical for equal keys, deterministic across runs.
    fn hash(&self, key: Self::Key) -> u64;
    /// Content equality.
    fn eq(&self, a: Self::Key, b: Self::Key) -> bool;
    /// Content order: integers numerically, strings bytewise (UTF-8 code point order).
    fn cmp(&self, a: Self::Key, b: Self::Key) -> Ordering;
    /// A number whose order agrees with [`KeyColumn::cmp`] wherever two numbers differ (equal
    /// numbers say nothing). Read once per key, it lets a sort compare most pairs without
    /// touching the column's buffers. The default says nothing.
    #[inline]
    fn order_prefix(&self, _key: Self::Key) -> u64 {
        0
    }
}

/// Integer customer ids.
#[derive(Debug, Clone, Copy)]
pub struct IntKeys<'a>(pub &'a [i64]);

impl KeyColumn for IntKeys<'_> {
    type Key = i64;

    fn len(&self) -> usize {
        self.0.len()
    }

    #[inline]
    fn key(&self, row: usize) -> i64 {
        self.0[row]
    }

    #[inline]
    fn hash(&self, key: i64) -> u64 {
        FixedState::with_seed(KEY_SEED).hash_one(key)
    }

    #[inline]
    fn eq(&self, a: i64, b: i64) -> bool {
        a == b
    }

    /// The id with its sign bit flipped: unsigned order is the ids' numeric order.
    #[inline]
    fn order_prefix(&self, key: i64) -> u64 {
        (key as u64) ^ (1 << 63)
    }

    #[inline]
    fn cmp(&self, a: i64, b: i64) -> Ordering {
        a.cmp(&b)
    }
}

/// String customer ids in Arrow's string-view layout: each row is a 128-bit view holding the
/// length in its low 32 bits and then either the bytes themselves (≤ 12 bytes) or a 4-byte prefix,
/// a buffer index and an offset into `buffers`.
#[derive(Debug, Clone)]
pub struct ViewKeys<'a> {
    pub views: &'a [u128],
    pub buffers: Vec<&'a [u8]>,
}

/// The view of a string of at most 12 bytes (its bytes inline, zero padded).
pub fn inline_view(bytes: &[u8]) -> Option<u128> {
    if bytes.len() > INLINE_MAX {
        return None;
    }
    let mut raw = [0u8; 16];
    raw[..4].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
    raw[4..4 + bytes.len()].copy_from_slice(bytes);
    Some(u128::from_le_bytes(raw))
}

#[inline]
fn view_len(view: u128) -> usize {
    (view as u32) as usize
}

/// A key whose integer order is the bytewise order of a canonical inline view's string: its 12
/// bytes (zero padded) big-endian, then its length (a string sorts after its prefixes, which
/// pad with zeros).
#[inline]
fn inline_order(view: u128) -> (u64, u64) {
    let raw = view.to_le_bytes();
    let head = u64::from_be_bytes([
        raw[4], raw[5], raw[6], raw[7], raw[8], raw[9], raw[10], raw[11],
    ]);
    let tail = u64::from(u32::from_be_bytes([raw[12], raw[13], raw[14], raw[15]]));
    (head, (tail << 32) | u64::from(view as u32))
}

impl<'a> ViewKeys<'a> {
    /// The bytes of a long string's view (empty if the view points outside the buffers, which
    /// Arrow's validation rules out).
    fn long_bytes(&self, view: u128) -> &'a [u8] {
        let len = view_len(view);
        let buffer = ((view >> 64) as u32) as usize;
        let offset = ((view >> 96) as u32) as usize;
        self.buffers
            .get(buffer)
            .and_then(|b| b.get(offset..offset + len))
            .unwrap_or_default()
    }

    /// Calls `f` with the string bytes of a key.
    #[inline]
    pub fn with_bytes<R>(&self, view: u128, f: impl FnOnce(&[u8]) -> R) -> R {
        let len = view_len(view);
        if len <= INLINE_MAX {
            let raw = view.to_le_bytes();
            f(&raw[4..4 + len])
        } else {
            f(self.long_bytes(view))
        }
    }

    /// The string bytes of a key that came from this column.
    pub fn bytes(&self, view: u128) -> Vec<u8> {
        self.with_bytes(view, <[u8]>::to_vec)
    }
}

impl KeyColumn for ViewKeys<'_> {
    type Key = u128;

    fn len(&self) -> usize {
        self.views.len()
    }

    /// Inline views are canonicalised (bytes past the length zeroed), so for short strings the
    /// raw view is the content and compares without touching any buffer.
    #[inline]
    fn key(&self, row: usize) -> u128 {
        let view = self.views[row];
        let len = view_len(view);
        if len < INLINE_MAX {
            view & ((1u128 << (32 + 8 * len)) - 1)
        } else {
            view
        }
    }

    #[inline]
    fn hash(&self, key: u128) -> u64 {
        let hasher = FixedState::with_seed(KEY_SEED);
        if view_len(key) <= INLINE_MAX {
            hasher.hash_one(key)
        } else {
            hasher.hash_one(self.long_bytes(key))
        }
    }

    #[inline]
    fn eq(&self, a: u128, b: u128) -> bool {
        if a == b {
            return true;
        }
        // Length and 4-byte prefix sit in the low 64 bits of every view.
        if view_len(a) <= INLINE_MAX || (a as u64) != (b as u64) {
            return false;
        }
        self.long_bytes(a) == self.long_bytes(b)
    }

    fn cmp(&self, a: u128, b: u128) -> Ordering {
        if view_len(a) <= INLINE_MAX && view_len(b) <= INLINE_MAX {
            return inline_order(a).cmp(&inline_order(b));
        }
        self.with_bytes(a, |x| self.with_bytes(b, |y| x.cmp(y)))
    }

    /// The first 8 string bytes, big-endian, zero-padded: padding with the least byte keeps
    /// bytewise order wherever two prefixes differ. A long string's bytes are read once here.
    #[inline]
    fn order_prefix(&self, key: u128) -> u64 {
        if view_len(key) <= INLINE_MAX {
            return inline_order(key).0;
        }
        let bytes = self.long_bytes(key);
        let mut head = [0u8; 8];
        let n = bytes.len().min(8);
        head[..n].copy_from_slice(&bytes[..n]);
        u64::from_be_bytes(head)
    }
}

/// Bytes set in every string byte lane of a view (lanes 4..16), for the SWAR digit test.
const LANES_LOW_NIBBLES: u128 = 0x0F0F_0F0F_0F0F_0F0F_0F0F_0F0F_0000_0000;
/// Added to a lane's low nibble, carries into bit 4 exactly when the nibble is above 9.
const LANES_SIX: u128 = 0x0606_0606_0606_0606_0606_0606_0000_0000;
const LANES_BIT4: u128 = 0x1010_1010_1010_1010_1010_1010_0000_0000;

/// String ids that are all the same short text with a fixed-width decimal field, such as
/// `"C000000017"`: every id at most 12 bytes (inline in its view), all of one length, and every
/// byte position either the same in all ids or an ASCII digit in all ids. Such an id is then
/// one integer — the digits of its varying positions read as a decimal number — and the
/// integers are in the ids' bytewise order (ids agree outside those positions, and fixed-width
/// digit strings compare like their numbers), so the ids can take the integer path
/// (docs/methods.md#scale) and come back as the same views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DigitIds {
    /// The canonical view of every id with its varying bytes zeroed.
    template: u128,
    /// Byte lanes of the view (4..16) that vary, most significant digit first.
    lanes: Vec<u32>,
}

impl DigitIds {
    /// The digit form of `views` (canonical inline views, see [`ViewKeys::key`]), or `None`
    /// when an id is long, the lengths differ, or a varying byte is not a digit in every id.
    pub(crate) fn of(keys: &ViewKeys<'_>) -> Option<Self> {
        use rayon::prelude::*;
        let n = keys.views.len();
        if n == 0 {
            return None;
        }
        // AND and OR of every canonical view (the bits every id shares), and an OR of the
        // "low nibble above 9" bits of every string byte.
        let (and, or, above_nine) = (0..n)
            .into_par_iter()
            .with_min_len(1 << 14)
            .fold(
                || (u128::MAX, 0u128, 0u128),
                |(and, or, bad), row| {
                    let v = keys.key(row);
                    let nine = ((v & LANES_LOW_NIBBLES) + LANES_SIX) & LANES_BIT4;
                    (and & v, or | v, bad | nine)
                },
            )
            .reduce(
                || (u128::MAX, 0u128, 0u128),
                |a, b| (a.0 & b.0, a.1 | b.1, a.2 | b.2),
            );
        let varying = and ^ or;
        let len = view_len(and);
        if (varying as u32) != 0 || len > INLINE_MAX {
            return None;
        }
        let mut lanes = Vec::new();
        for lane in 4..4 + len as u32 {
            let byte = |x: u128| (x >> (8 * lane)) as u8;
            if byte(varying) == 0 {
                continue;
            }
            // High nibble 3 in every id (AND and OR agree on it), low nibble at most 9.
            if byte(and) >> 4 != 3 || byte(or) >> 4 != 3 || byte(above_nine) != 0 {
                return None;
            }
            lanes.push(lane);
        }
        let mut template = and;
        for &lane in &lanes {
            template &= !(0xFFu128 << (8 * lane));
        }
        Some(Self { template, lanes })
    }

    /// The weight of each string byte lane's digit (lanes 4..16; 0 where the byte is constant).
    pub(crate) fn weights(&self) -> [i64; INLINE_MAX] {
        let mut weights = [0i64; INLINE_MAX];
        let mut weight = 1i64;
        for &lane in self.lanes.iter().rev() {
            weights[lane as usize - 4] = weight;
            weight *= 10;
        }
        weights
    }

    /// The integer of a canonical view of the column, with the lanes' [`DigitIds::weights`]: a
    /// sum of independent products (no chain of multiply-adds from digit to digit).
    #[inline]
    pub(crate) fn value(view: u128, weights: &[i64; INLINE_MAX]) -> i64 {
        let raw = view.to_le_bytes();
        let mut value = 0i64;
        for (i, &w) in weights.iter().enumerate() {
            value += i64::from(raw[4 + i] & 0x0F) * w;
        }
        value
    }

    /// The canonical view of an integer from [`DigitIds::value`].
    pub(crate) fn view(&self, mut value: i64) -> u128 {
        let mut view = self.template;
        for &lane in self.lanes.iter().rev() {
            view |= u128::from(b'0' + (value % 10) as u8) << (8 * lane);
            value /= 10;
        }
        view
    }
}

/// Customer keys of the input rows.
#[derive(Debug, Clone)]
pub enum CustomerKeys<'a> {
    /// Integer ids.
    Int(&'a [i64]),
    /// UTF-8 ids in Arrow's string-view layout (see [`ViewKeys`]).
    View(ViewKeys<'a>),
}

impl CustomerKeys<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Self::Int(keys) => keys.len(),
            Self::View(keys) => keys.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Customer ids of the output rows: integers, or string views into the input's buffers.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerIds {
    Int(Vec<i64>),
    View(Vec<u128>),
}

impl Default for CustomerIds {
    fn default() -> Self {
        Self::Int(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_view(len: usize, prefix: &[u8], buffer: u32, offset: u32) -> u128 {
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&(len as u32).to_le_bytes());
        raw[4..8].copy_from_slice(&prefix[..4]);
        raw[8..12].copy_from_slice(&buffer.to_le_bytes());
        raw[12..16].copy_from_slice(&offset.to_le_bytes());
        u128::from_le_bytes(raw)
    }

    #[test]
    fn order_prefix_never_contradicts_the_bytewise_order() {
        // Words of 0..20 bytes over a tiny alphabet (zero bytes included) so that prefixes,
        // padding and the inline/long boundary collide often.
        let mut state = 0x1234_5678_9ABC_DEF0u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let words: Vec<Vec<u8>> = (0..400)
            .map(|_| {
                let len = (next() % 21) as usize;
                (0..len).map(|_| b"\0ab"[(next() % 3) as usize]).collect()
            })
            .collect();
        let data: Vec<u8> = words.concat();
        let mut views = Vec::new();
        let mut offset = 0u32;
        for word in &words {
            views.push(match inline_view(word) {
                Some(view) => view,
                None => long_view(word.len(), &word[..4], 0, offset),
            });
            offset += word.len() as u32;
        }
        let keys = ViewKeys {
            views: &views,
            buffers: vec![&data],
        };
        let ints = IntKeys(&[i64::MIN, -1, 0, 1, i64::MAX]);
        for (i, &a) in views.iter().enumerate() {
            for (j, &b) in views.iter().enumerate() {
                assert_eq!(keys.cmp(a, b), words[i].cmp(&words[j]));
                let (pa, pb) = (keys.order_prefix(a), keys.order_prefix(b));
                if pa != pb {
                    assert_eq!(pa.cmp(&pb), keys.cmp(a, b), "{:?} {:?}", words[i], words[j]);
                }
            }
        }
        for &a in ints.0 {
            for &b in ints.0 {
                assert_eq!(ints.order_prefix(a).cmp(&ints.order_prefix(b)), a.cmp(&b));
            }
        }
    }

    #[test]
    fn equal_long_strings_in_different_places_are_equal() {
        let data = b"customer-000017customer-000017customer-000018";
        let a = long_view(15, b"cust", 0, 0);
        let b = long_view(15, b"cust", 0, 15);
        let c = long_view(15, b"cust", 0, 30);
        let keys = ViewKeys {
            views: &[a, b, c],
            buffers: vec![data],
        };
        assert!(keys.eq(a, b));
        assert_eq!(keys.hash(a), keys.hash(b));
        assert!(!keys.eq(a, c));
        assert_eq!(keys.cmp(a, c), Ordering::Less);
    }

    #[test]
    fn inline_keys_ignore_garbage_padding_and_sort_bytewise() {
        let clean = inline_view(b"ab").unwrap();
        let dirty = clean | (0xFFu128 << 120);
        let keys = ViewKeys {
            views: &[
                dirty,
                inline_view(b"b").unwrap(),
                inline_view(b"abc").unwrap(),
            ],
            buffers: vec![],
        };
        assert_eq!(keys.key(0), clean);
        assert_eq!(keys.cmp(keys.key(0), keys.key(1)), Ordering::Less);
        assert_eq!(keys.cmp(keys.key(0), keys.key(2)), Ordering::Less);
        assert_eq!(keys.bytes(keys.key(2)), b"abc".to_vec());
    }

    #[test]
    fn inline_order_is_bytewise_order() {
        let words: [&[u8]; 9] = [
            b"",
            b"\0",
            b"a",
            b"a\0",
            b"ab",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefghijkl",
            b"b",
        ];
        let keys = ViewKeys {
            views: &[],
            buffers: vec![],
        };
        for x in words {
            for y in words {
                let (vx, vy) = (inline_view(x).unwrap(), inline_view(y).unwrap());
                assert_eq!(keys.cmp(vx, vy), x.cmp(y), "{x:?} vs {y:?}");
            }
        }
    }

    #[test]
    fn a_twelve_byte_string_is_inline() {
        assert!(inline_view(b"123456789012").is_some());
        assert!(inline_view(b"1234567890123").is_none());
    }
}
