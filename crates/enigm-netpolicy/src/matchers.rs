//! Compiled matchers: domain names as 64-bit fingerprints of their suffixes in a flat
//! open-addressing table, and CIDR sets as sorted, merged interval arrays.
//!
//! # Fingerprints and their false positives
//!
//! A domain pattern `example.com` is stored as the fingerprint of its labels read from the right
//! (`com`, then `example`), chained: `h(com)`, then `h(example | h(com))`. A flow's name
//! `a.example.com` is hashed once, right to left, giving one fingerprint per suffix (`com`,
//! `example.com`, `a.example.com`); each set is probed with each of them. Labels are hashed whole,
//! so `notexample.com` has no suffix `example.com` and never matches it (short of a collision).
//!
//! Two different names collide with probability about 2^-64. A decision probes at most 127
//! suffixes, so with a set of n fingerprints a name not in the set matches it with probability
//! at most 127·n / 2^64 (about 7·10^-12 at n = 1M, typically 3·n / 2^64 ≈ 1.6·10^-13). A false
//! positive only ever makes a name match a set it is not in: for a blocklist or a block rule the
//! flow is blocked (fails closed); for a route rule's `domains` the flow takes that rule's route,
//! which the policy allows, and a block in a later layer still applies. The hash is a fixed,
//! public, non-cryptographic one: someone who can choose names could search for collisions, so a
//! policy should not rely on a route rule's domain set alone to keep a name away from a route.
//!
//! The table holds fingerprints only (8 bytes each) at a load of 2/3, so 12 bytes per name; a
//! lookup that misses (most do) reads a few consecutive slots, usually one cache line. In front
//! of it sits a blocked Bloom filter of 2 bytes per name (one 64-bit word per fingerprint, five
//! bits set) that turns away about 99.6 % of the misses after one read of a table six times
//! smaller, which stays in cache where the slots do not: 14 bytes per name in all.

use std::net::IpAddr;
use std::sync::Arc;

/// Longest domain name, in bytes, without the trailing dot (RFC 1035 §2.3.4).
pub const MAX_DOMAIN_LEN: usize = 253;
/// Longest label, in bytes.
pub const MAX_LABEL_LEN: usize = 63;
/// A name of 253 bytes has at most 127 labels.
const MAX_LABELS: usize = 127;

// Fixed seeds. The byte form (`CompiledPolicy::to_bytes`) stores fingerprints, so changing the
// seeds or the hash is a new `BYTES_VERSION` (the test `fingerprints_are_stable` pins them).
// INVARIANT: `CHUNK_SEED` has bytes >= 0x80 where a label chunk has bytes < 0x80
// (labels are ASCII, zero-padded), so `chunk ^ CHUNK_SEED` is never zero and `mum` never
// multiplies a label's bytes away.
const SEED: u64 = 0xa076_1d64_78bd_642f;
const LEN_SEED: u64 = 0xe703_7ed1_a0b4_28db;
const CHUNK_SEED: u64 = 0x8ebc_eaf0_9c88_c6e3;
const STATE_SEED: u64 = 0x5899_65cc_7537_4cc3;

/// Multiply and fold (wyhash's `mum`): every input bit reaches the output.
#[inline]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    // Truncation is the point: the low and high halves are folded together.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "folding the 128-bit product"
    )]
    let (lo, hi) = (r as u64, (r >> 64) as u64);
    lo ^ hi
}

/// The state after one more label (the next one to the left).
#[inline]
fn step(state: u64, label: &[u8]) -> u64 {
    let mut h = mum(state ^ SEED, (label.len() as u64) ^ LEN_SEED);
    for chunk in label.chunks(8) {
        let mut word = [0u8; 8];
        // Lowercased here, so a flow's name is hashed straight from its bytes, uncopied.
        for (d, s) in word.iter_mut().zip(chunk) {
            *d = lower(*s);
        }
        h = mum(u64::from_le_bytes(word) ^ CHUNK_SEED, h ^ STATE_SEED);
    }
    h
}

/// The stored fingerprint of a chain state: a bijective finaliser (splitmix64), never 0 (the
/// empty slot).
#[inline]
fn finish(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    if z == 0 { 1 } else { z }
}

/// Why a name is not a domain name this engine accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than 253 bytes")]
    TooLong,
    #[error("the name has an empty label")]
    EmptyLabel,
    #[error("a label is longer than 63 bytes")]
    LabelTooLong,
    #[error("the name has a character other than ASCII letters, digits, `-` and `_`")]
    BadCharacter,
}

/// Each byte of a name as the normalised name spells it: letters lowercased, digits, `-`, `_`
/// and `.` kept, every other byte 0 (refused).
const NAME_BYTES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        // b < 256, so the cast is exact.
        #[allow(clippy::cast_possible_truncation, reason = "b < 256")]
        let byte = b as u8;
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' || byte == b'.' {
            #[allow(
                clippy::indexing_slicing,
                reason = "evaluated at compile time, where an index out of bounds fails the build"
            )]
            {
                table[b] = byte.to_ascii_lowercase();
            }
        }
        b += 1;
    }
    table
};

/// The byte as a normalised name spells it (0 if refused).
#[inline]
fn lower(b: u8) -> u8 {
    NAME_BYTES.get(usize::from(b)).copied().unwrap_or(0)
}

/// `name` without its one trailing dot, once checked: not empty, at most 253 bytes, labels of 1
/// to 63 bytes of `[A-Za-z0-9_-]`. Not yet lowercased.
fn checked(name: &str) -> Result<&[u8], DomainError> {
    let bytes = name.as_bytes();
    let bytes = bytes.strip_suffix(b".").unwrap_or(bytes);
    if bytes.is_empty() {
        return Err(DomainError::Empty);
    }
    if bytes.len() > MAX_DOMAIN_LEN {
        return Err(DomainError::TooLong);
    }
    let mut label_len = 0usize;
    for &b in bytes {
        // One table look-up per byte: the lowercase byte, b'.' for a dot, 0 if refused.
        let c = lower(b);
        if c == b'.' {
            if label_len == 0 {
                return Err(DomainError::EmptyLabel);
            }
            label_len = 0;
        } else if c == 0 {
            return Err(DomainError::BadCharacter);
        } else {
            label_len += 1;
            if label_len > MAX_LABEL_LEN {
                return Err(DomainError::LabelTooLong);
            }
        }
    }
    if label_len == 0 {
        return Err(DomainError::EmptyLabel);
    }
    Ok(bytes)
}

/// A normalised name: ASCII lowercase, no trailing dot, valid labels; in a stack buffer.
pub struct NormalName {
    buf: [u8; MAX_DOMAIN_LEN],
    len: usize,
}

impl NormalName {
    /// Normalises `name`: ASCII lowercase, one trailing dot stripped; refuses empty labels,
    /// over-long names and labels, and characters outside `[A-Za-z0-9_-]` (internationalised
    /// names travel as punycode `xn--` labels).
    pub fn parse(name: &str) -> Result<NormalName, DomainError> {
        let bytes = checked(name)?;
        let mut buf = [0u8; MAX_DOMAIN_LEN];
        for (d, &b) in buf.iter_mut().zip(bytes) {
            *d = lower(b);
        }
        Ok(NormalName {
            buf,
            len: bytes.len(),
        })
    }

    pub fn as_str(&self) -> &str {
        // INVARIANT: only ASCII bytes were written, so this never fails.
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The fingerprint of the whole name (how a pattern is stored).
    pub fn fingerprint(&self) -> u64 {
        let mut state = 0u64;
        for label in self.bytes().rsplit(|&b| b == b'.') {
            state = step(state, label);
        }
        finish(state)
    }

    /// How many labels the name has (1 to 127).
    pub fn labels(&self) -> usize {
        self.bytes().iter().filter(|&&b| b == b'.').count() + 1
    }
}

/// Suffix fingerprints kept inline; longer names (rare) spill to the heap.
const INLINE_SUFFIXES: usize = 8;

/// The fingerprints of the suffixes of a flow's name, shortest first, up to the longest pattern
/// of the policy (a longer suffix cannot match); computed once per decision.
pub struct Suffixes {
    inline: [u64; INLINE_SUFFIXES],
    spill: Vec<u64>,
    len: usize,
}

impl Suffixes {
    pub fn of(name: &NormalName, max_labels: usize) -> Suffixes {
        let mut suffixes = Suffixes::none();
        Suffixes::of_checked(name.bytes(), max_labels, &mut suffixes);
        suffixes
    }

    /// Checks and hashes a flow's name: the same refusals and fingerprints as
    /// [`NormalName::parse`] then [`Suffixes::of`], in one pass over the name eight bytes at a
    /// time (checking them and finding the dots) and then one 8-byte word, lowercased in place,
    /// per chunk of a label; the name is never copied.
    #[inline]
    pub fn parse(name: &str, max_labels: usize) -> Result<Suffixes, DomainError> {
        let mut suffixes = Suffixes::none();
        suffixes.parse_into(name, max_labels)?;
        Ok(suffixes)
    }

    /// [`Suffixes::parse`] into `self`, replacing what it held: the fingerprints are written
    /// where the decision reads them, not built on the stack and moved there. A move of this
    /// struct copies it in 16-byte loads of the 8-byte stores just made, which the CPU cannot
    /// forward from the store buffer: a stall per load, some 10 % of a decision.
    #[inline]
    pub fn parse_into(&mut self, name: &str, max_labels: usize) -> Result<(), DomainError> {
        self.len = 0;
        self.spill.clear();
        // The dots live here, not in the scan's result: no copy of them on return.
        let mut dots = [0u8; MAX_LABELS];
        match Scanned::of(name, &mut dots) {
            Some(scanned) => {
                scanned.suffixes(max_labels, self);
                Ok(())
            }
            // The exact refusal, in the order the name spells it; invalid names are rare.
            None => match checked(name) {
                Ok(bytes) => {
                    Suffixes::of_checked(bytes, max_labels, self);
                    Ok(())
                }
                Err(e) => Err(e),
            },
        }
    }

    fn of_checked(bytes: &[u8], max_labels: usize, suffixes: &mut Suffixes) {
        let mut state = 0u64;
        for label in bytes
            .rsplit(|&b| b == b'.')
            .take(max_labels.min(MAX_LABELS))
        {
            state = step(state, label);
            let fp = finish(state);
            match suffixes.inline.get_mut(suffixes.len) {
                Some(slot) => *slot = fp,
                None => suffixes.spill.push(fp),
            }
            suffixes.len += 1;
        }
    }

    pub const fn none() -> Suffixes {
        Suffixes {
            inline: [0u64; INLINE_SUFFIXES],
            spill: Vec::new(),
            len: 0,
        }
    }

    /// (label count, fingerprint) of each suffix.
    fn iter(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.inline
            .iter()
            .take(self.len)
            .chain(self.spill.iter())
            .copied()
            .enumerate()
            .map(|(i, fp)| (i + 1, fp))
    }
}

/// A flow's name, checked, with where its dots are: each label can then be hashed a word at a
/// time straight from the name's bytes (lowercased eight at a time), with no copy of the name
/// and no byte loop per label.
struct Scanned<'a, 'd> {
    /// The name without its trailing dot: 1 to 253 bytes of `[A-Za-z0-9_.-]`, valid labels.
    bytes: &'a [u8],
    /// Position of each dot, left to right. INVARIANT: `dots[..ndots]` are in `0..bytes.len()`.
    dots: &'d mut [u8; MAX_LABELS],
    ndots: usize,
}

impl<'a, 'd> Scanned<'a, 'd> {
    /// `None` when the name is not valid (the caller finds out why).
    #[inline]
    fn of(name: &'a str, dots: &'d mut [u8; MAX_LABELS]) -> Option<Scanned<'a, 'd>> {
        let bytes = name.as_bytes();
        let bytes = bytes.strip_suffix(b".").unwrap_or(bytes);
        if bytes.is_empty() || bytes.len() > MAX_DOMAIN_LEN {
            return None;
        }
        let mut s = Scanned {
            bytes,
            dots,
            ndots: 0,
        };
        // Eight bytes at a time: which are allowed, which are dots; a branch per dot only.
        let mut bad = false;
        let mut label_start = 0usize;
        let mut at = 0usize;
        while at < bytes.len() {
            let word = s.word(at);
            // The bytes of this word that are the name's (the rest are zero padding).
            let real = HIGH >> (8 * (8usize.saturating_sub(bytes.len() - at)));
            let (allowed, dots) = classify_word(word);
            bad |= real & !allowed != 0;
            let mut dots = dots & real;
            while dots != 0 {
                let i = at + (dots.trailing_zeros() / 8) as usize;
                dots &= dots - 1;
                bad |= i == label_start || i - label_start > MAX_LABEL_LEN;
                match s.dots.get_mut(s.ndots) {
                    // i < 253, so it fits in a byte.
                    Some(slot) => *slot = u8::try_from(i).unwrap_or(u8::MAX),
                    None => bad = true,
                }
                s.ndots += 1;
                label_start = i + 1;
            }
            at += 8;
        }
        let last = bytes.len() - label_start;
        bad |= last == 0 || last > MAX_LABEL_LEN;
        (!bad).then_some(s)
    }

    /// The suffix fingerprints, right to left, up to `max_labels` of them.
    #[inline]
    fn suffixes(&self, max_labels: usize, suffixes: &mut Suffixes) {
        let mut state = 0u64;
        let mut end = self.bytes.len();
        let wanted = max_labels.min(MAX_LABELS).min(self.ndots + 1);
        for k in 0..wanted {
            // The label left of `end`: it starts after the dot before it, or at 0.
            let start = match self.ndots.checked_sub(k + 1) {
                Some(d) => usize::from(self.dots.get(d).copied().unwrap_or(0)) + 1,
                None => 0,
            };
            state = self.step(state, start, end.saturating_sub(start));
            let fp = finish(state);
            match suffixes.inline.get_mut(suffixes.len) {
                Some(slot) => *slot = fp,
                None => suffixes.spill.push(fp),
            }
            suffixes.len += 1;
            end = start.saturating_sub(1);
        }
    }

    /// The eight bytes of the name from `at` as a little-endian word, zero past the name's end.
    #[inline]
    fn word(&self, at: usize) -> u64 {
        let bytes = self.bytes;
        if let Some(w) = bytes.get(at..at + 8) {
            return <[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes);
        }
        // Fewer than eight bytes left: the word that ends where the name does, shifted down.
        let len = bytes.len();
        if let Some(w) = len.checked_sub(8).and_then(|from| bytes.get(from..len))
            && at < len
        {
            let word = <[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes);
            return word >> (8 * (at + 8 - len));
        }
        // A name shorter than eight bytes.
        let mut word = [0u8; 8];
        for (d, s) in word.iter_mut().zip(bytes.get(at..).unwrap_or_default()) {
            *d = *s;
        }
        u64::from_le_bytes(word)
    }

    /// [`step`] over the label `bytes[start..start + len]`, a word at a time: each word is
    /// lowercased whole and the bytes past the label masked off, so it equals the zero-padded,
    /// lowercased chunk `step` builds.
    #[inline]
    fn step(&self, state: u64, start: usize, len: usize) -> u64 {
        let mut h = mum(state ^ SEED, (len as u64) ^ LEN_SEED);
        let mut offset = 0usize;
        while offset < len {
            let word = ascii_lowercase_word(self.word(start + offset));
            // 1 to 8 bytes of the label in this word.
            let keep = (len - offset).min(8);
            let mask = u64::MAX >> (64 - 8 * keep);
            h = mum((word & mask) ^ CHUNK_SEED, h ^ STATE_SEED);
            offset += 8;
        }
        h
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` (each below 0x80) that is in `lo..=hi`: adding
/// `0x80 - lo` carries a byte to 0x80 or above when it is at least `lo`, adding `0x7f - hi`
/// when it is above `hi`; neither addition carries into the next byte.
#[inline]
fn bytes_in(word: u64, lo: u8, hi: u8) -> u64 {
    let at_least_lo = word.wrapping_add(ONES * (0x80 - u64::from(lo)));
    let above_hi = word.wrapping_add(ONES * (0x7f - u64::from(hi)));
    at_least_lo & !above_hi & HIGH
}

/// For eight bytes of a name: the high bit of each byte a name may hold (`[A-Za-z0-9_.-]`, the
/// bytes `lower` does not map to 0), and the high bit of each dot.
#[inline]
fn classify_word(word: u64) -> (u64, u64) {
    // Bytes of 0x80 and above are refused; the checks below see the low seven bits only.
    let ascii = !word & HIGH;
    let low = word & !HIGH;
    let dots = bytes_in(low, b'.', b'.');
    let allowed = bytes_in(low, b'a', b'z')
        | bytes_in(low, b'A', b'Z')
        | bytes_in(low, b'0', b'9')
        | bytes_in(low, b'-', b'-')
        | bytes_in(low, b'_', b'_')
        | dots;
    (allowed & ascii, dots & ascii)
}

/// Eight ASCII bytes (each below 0x80, as in a checked name) with `A`..=`Z` lowercased: a byte
/// is upper case when adding 0x3f carries it to 0x80 or above (it is at least `A`) and adding
/// 0x25 does not (it is at most `Z`); no addition carries into the next byte.
#[inline]
fn ascii_lowercase_word(word: u64) -> u64 {
    word | (bytes_in(word, b'A', b'Z') >> 2)
}

/// Bytes a policy decoded by [`crate::CompiledPolicy::from_bytes`] reads its tables from in
/// place (a `Vec<u8>`, an `Arc<[u8]>`, a memory map): shared, never copied.
pub(crate) type Owner = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A range of an [`Owner`]'s bytes. INVARIANT (checked when decoded): in bounds, and a whole
/// number of the table's elements.
#[derive(Clone)]
pub(crate) struct Region {
    owner: Owner,
    start: usize,
    end: usize,
}

impl Region {
    pub(crate) fn new(owner: Owner, start: usize, end: usize) -> Region {
        Region { owner, start, end }
    }

    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        (*self.owner)
            .as_ref()
            .get(self.start..self.end)
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Region({}..{})", self.start, self.end)
    }
}

/// The little-endian u64 at element `i` of `bytes`; no alignment assumed.
#[inline]
fn u64_at(bytes: &[u8], i: usize) -> Option<u64> {
    let at = i.checked_mul(8)?;
    let word = bytes.get(at..at.checked_add(8)?)?;
    <[u8; 8]>::try_from(word).ok().map(u64::from_le_bytes)
}

#[inline]
fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    <[u8; 4]>::try_from(word).ok().map(u32::from_le_bytes)
}

#[inline]
fn u128_at(bytes: &[u8], at: usize) -> Option<u128> {
    let word = bytes.get(at..at.checked_add(16)?)?;
    <[u8; 16]>::try_from(word).ok().map(u128::from_le_bytes)
}

#[derive(Debug, Clone)]
enum Slots {
    Owned(Box<[u64]>),
    /// Little-endian u64 slots.
    Mapped(Region),
}

/// A set of domain suffix fingerprints: a flat open-addressing table with linear probing.
#[derive(Debug, Clone)]
pub struct DomainSet {
    // INVARIANT: at least one slot is 0 (empty), so a probe that misses terminates (checked
    // when a mapped table is decoded; the probe is bounded by the capacity all the same).
    slots: Slots,
    /// Bit k set when some name of the set has k labels: a suffix of another length is not
    /// probed (a blocklist of registrable names is probed once per flow, not once per label).
    label_counts: u128,
    /// A Bloom filter over the table's fingerprints, read before the table: see [`Filter`].
    /// Never stored in the byte form: rebuilt from the slots when decoded.
    filter: Filter,
}

/// Bits of filter per fingerprint: with [`FILTER_BITS_SET`] = 5 bits set in one 64-bit word, a
/// fingerprint not in the set passes with probability about 0.4 %.
const FILTER_BITS_PER_NAME: usize = 16;
const FILTER_BITS_SET: u32 = 5;

/// A blocked Bloom filter: one 64-bit word per fingerprint, five bits set in it. It answers
/// "certainly not in the table" for almost every fingerprint that is not, after one read of a
/// table an eighth the size of the slots (2 bytes per name: 2 MiB for a million names, where the
/// slots take 12 MiB). Most probes of a flow's suffixes miss (a flow's name is rarely blocked,
/// and even a blocked one is probed at lengths that are not), and a miss in the slot table is
/// the costly case: a cache miss (and a TLB miss) and about five slots read. A fingerprint the
/// filter passes is still looked up in the table, so the filter never changes an answer.
#[derive(Debug, Clone)]
struct Filter(Box<[u64]>);

impl Filter {
    /// The filter over the non-zero (occupied) slots.
    fn of(slots: impl Iterator<Item = u64> + Clone) -> Filter {
        let names = slots.clone().filter(|&s| s != 0).count();
        let words = (names * FILTER_BITS_PER_NAME).div_ceil(64).max(1);
        let mut filter = vec![0u64; words].into_boxed_slice();
        for fp in slots.filter(|&s| s != 0) {
            let (index, mask) = Filter::place(fp, words);
            if let Some(word) = filter.get_mut(index) {
                *word |= mask;
            }
        }
        Filter(filter)
    }

    /// The word a fingerprint sets bits in, chosen by its low 32 bits, and the bits, chosen by
    /// its high ones (the fingerprint is already a well-mixed hash).
    #[inline]
    fn place(fp: u64, words: usize) -> (usize, u64) {
        let index = slot_of(fp.rotate_left(32), words);
        let high = fp >> 32;
        let mut mask = 0u64;
        for k in 0..FILTER_BITS_SET {
            mask |= 1u64 << ((high >> (6 * k)) & 63);
        }
        (index, mask)
    }

    /// False only when `fp` is certainly not one of the fingerprints the filter was built from.
    #[inline]
    fn may_contain(&self, fp: u64) -> bool {
        let (index, mask) = Filter::place(fp, self.0.len());
        // A word that cannot be read (never: the index is below the length) passes.
        self.0.get(index).is_none_or(|word| word & mask == mask)
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.0)
    }
}

impl DomainSet {
    /// A set of (label count, fingerprint) pairs.
    pub fn new(names: impl ExactSizeIterator<Item = (usize, u64)>) -> DomainSet {
        let n = names.len();
        let mut label_counts = 0u128;
        // Load 2/3: a miss probes about five slots, mostly in one cache line; 12 bytes per name.
        let capacity = n + n / 2 + 1;
        let mut slots = vec![0u64; capacity].into_boxed_slice();
        for (labels, fp) in names {
            label_counts |= 1u128
                .checked_shl(u32::try_from(labels).unwrap_or(0))
                .unwrap_or(0);
            let mut i = slot_of(fp, capacity);
            loop {
                match slots.get_mut(i) {
                    Some(slot) if *slot == 0 => {
                        *slot = fp;
                        break;
                    }
                    Some(slot) if *slot == fp => break,
                    Some(_) => i = if i + 1 == capacity { 0 } else { i + 1 },
                    None => break,
                }
            }
        }
        DomainSet {
            filter: Filter::of(slots.iter().copied()),
            slots: Slots::Owned(slots),
            label_counts,
        }
    }

    /// A table read in place. The caller has checked that `region` is a non-empty whole number
    /// of u64 slots with at least one empty (0) slot.
    pub(crate) fn mapped(region: Region, label_counts: u128) -> DomainSet {
        let bytes = region.bytes();
        let filter = Filter::of((0..bytes.len() / 8).filter_map(|i| u64_at(bytes, i)));
        DomainSet {
            slots: Slots::Mapped(region),
            label_counts,
            filter,
        }
    }

    /// Whether the table holds `fp`. The filter is built from the slots as they were when the
    /// set was made (or its bytes checked), so it never turns away a fingerprint they held.
    #[inline]
    pub fn contains_fingerprint(&self, fp: u64) -> bool {
        self.filter.may_contain(fp) && self.table_contains(fp)
    }

    /// The slot table alone, without the filter.
    #[inline]
    fn table_contains(&self, fp: u64) -> bool {
        match &self.slots {
            Slots::Owned(slots) => probe(slots.len(), fp, |i| slots.get(i).copied()),
            Slots::Mapped(region) => {
                let bytes = region.bytes();
                probe(bytes.len() / 8, fp, |i| u64_at(bytes, i))
            }
        }
    }

    /// Whether the set holds the name or one of its parent domains.
    ///
    /// The filter words of every suffix worth probing (one whose label count the set has) are
    /// read before any is tested: the reads do not wait on each other's cache misses, nor on a
    /// mispredicted branch. Only the suffixes the filter passes are looked up in the table.
    #[inline]
    pub fn matches(&self, suffixes: &Suffixes) -> bool {
        let mut passed = 0u32;
        for (i, fp) in suffixes.inline.iter().take(suffixes.len).enumerate() {
            // i < INLINE_SUFFIXES = 8; label count i + 1.
            let wanted = (self.label_counts >> (i + 1)) & 1 == 1;
            passed |= u32::from(wanted && self.filter.may_contain(*fp)) << i;
        }
        while passed != 0 {
            let i = passed.trailing_zeros() as usize;
            passed &= passed - 1;
            if suffixes
                .inline
                .get(i)
                .is_some_and(|&fp| self.table_contains(fp))
            {
                return true;
            }
        }
        // Names of more than eight labels: the rest, one by one.
        suffixes.iter().skip(INLINE_SUFFIXES).any(|(labels, fp)| {
            (self.label_counts >> labels) & 1 == 1 && self.contains_fingerprint(fp)
        })
    }

    /// Bytes held by the table and its filter.
    pub fn size_bytes(&self) -> usize {
        let slots = match &self.slots {
            Slots::Owned(slots) => std::mem::size_of_val(&**slots),
            Slots::Mapped(region) => region.bytes().len(),
        };
        slots + self.filter.size_bytes()
    }

    pub(crate) fn label_counts(&self) -> u128 {
        self.label_counts
    }

    /// The slot count and the slots as little-endian bytes (the byte form).
    pub(crate) fn write_slots(&self, out: &mut Vec<u8>) {
        match &self.slots {
            Slots::Owned(slots) => {
                out.extend_from_slice(&(slots.len() as u64).to_le_bytes());
                out.reserve(slots.len() * 8);
                for slot in slots.iter() {
                    out.extend_from_slice(&slot.to_le_bytes());
                }
            }
            Slots::Mapped(region) => {
                let bytes = region.bytes();
                out.extend_from_slice(&((bytes.len() / 8) as u64).to_le_bytes());
                out.extend_from_slice(bytes);
            }
        }
    }
}

/// Linear probing from the fingerprint's home slot, at most `capacity` slots. A slot that
/// cannot be read, or a full table, counts as a match: only a mapped table whose owner changed
/// its bytes after they were checked can get there, and a match is the direction a fingerprint
/// collision already fails in (see the module docs).
#[inline]
fn probe(capacity: usize, fp: u64, slot: impl Fn(usize) -> Option<u64>) -> bool {
    let mut i = slot_of(fp, capacity);
    for _ in 0..capacity {
        match slot(i) {
            Some(s) if s == fp => return true,
            Some(0) => return false,
            Some(_) => i = if i + 1 == capacity { 0 } else { i + 1 },
            None => return true,
        }
    }
    true
}

/// Maps a fingerprint onto `0..capacity` by its high bits (Lemire's fast range reduction).
#[inline]
fn slot_of(fp: u64, capacity: usize) -> usize {
    let r = (u128::from(fp) * capacity as u128) >> 64;
    // r < capacity, which fits in usize.
    usize::try_from(r).unwrap_or(0)
}

/// Why a CIDR is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("`{0}` is not an address and prefix length such as `10.0.0.0/8` or `2001:db8::/32`")]
    Syntax(String),
    #[error("`{0}` has a prefix length longer than its address")]
    PrefixTooLong(String),
    #[error("`{0}` has bits set after its prefix")]
    HostBits(String),
}

/// One parsed CIDR: an inclusive address interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cidr {
    V4(u32, u32),
    V6(u128, u128),
}

impl Cidr {
    /// Parses `addr/len`, refusing a bare address and set host bits (a typo like `10.1.0.0/8`
    /// would otherwise silently cover far more than meant).
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let syntax = || CidrError::Syntax(text.to_owned());
        let (addr, len) = text.split_once('/').ok_or_else(syntax)?;
        if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let len: u32 = len.parse().map_err(|_| syntax())?;
        let addr: IpAddr = addr.parse().map_err(|_| syntax())?;
        match addr {
            IpAddr::V4(a) => {
                if len > 32 {
                    return Err(CidrError::PrefixTooLong(text.to_owned()));
                }
                let a = u32::from(a);
                let host = u32::MAX.checked_shr(len).unwrap_or(0);
                if a & host != 0 {
                    return Err(CidrError::HostBits(text.to_owned()));
                }
                Ok(Cidr::V4(a, a | host))
            }
            IpAddr::V6(a) => {
                if len > 128 {
                    return Err(CidrError::PrefixTooLong(text.to_owned()));
                }
                let a = u128::from(a);
                let host = u128::MAX.checked_shr(len).unwrap_or(0);
                if a & host != 0 {
                    return Err(CidrError::HostBits(text.to_owned()));
                }
                Ok(Cidr::V6(a, a | host))
            }
        }
    }
}

/// A flow's address as the matchers see it: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is
/// the IPv4 address, so an IPv4 blocklist cannot be bypassed by spelling the address in IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addr {
    V4(u32),
    V6(u128),
}

impl Addr {
    #[inline]
    pub fn of(ip: IpAddr) -> Addr {
        match ip {
            IpAddr::V4(a) => Addr::V4(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Addr::V4(u32::from(v4)),
                None => Addr::V6(u128::from(a)),
            },
        }
    }
}

/// IPv4 intervals: (start, end) pairs, or 8 little-endian bytes each when mapped.
#[derive(Debug, Clone)]
enum V4 {
    Owned(Box<[(u32, u32)]>),
    Mapped(Region),
}

/// IPv6 intervals: (start, end) pairs, or 32 little-endian bytes each when mapped.
#[derive(Debug, Clone)]
enum V6 {
    Owned(Box<[(u128, u128)]>),
    Mapped(Region),
}

impl Default for V4 {
    fn default() -> V4 {
        V4::Owned(Box::default())
    }
}

impl Default for V6 {
    fn default() -> V6 {
        V6::Owned(Box::default())
    }
}

/// A set of CIDRs: sorted, merged, disjoint inclusive intervals per family; binary search.
#[derive(Debug, Clone, Default)]
pub struct CidrSet {
    v4: V4,
    /// For large IPv4 sets: entry h is the first interval starting at or after `h << 16`, so a
    /// lookup binary-searches only the intervals of its /16 (256 KiB, a few steps instead of 17).
    /// Never stored in the byte form: rebuilt from the intervals when decoded.
    v4_index: Box<[u32]>,
    v6: V6,
}

/// IPv4 sets at least this large get the /16 index.
const V4_INDEX_MIN: usize = 4096;

fn merged<T: Ord + Copy>(
    mut intervals: Vec<(T, T)>,
    next: impl Fn(T) -> Option<T>,
) -> Box<[(T, T)]> {
    intervals.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(intervals.len());
    for (start, end) in intervals {
        if let Some(last) = out.last_mut() {
            // Overlapping or adjacent intervals merge.
            if next(last.1).is_none_or(|after| start <= after) {
                if end > last.1 {
                    last.1 = end;
                }
                continue;
            }
        }
        out.push((start, end));
    }
    out.into_boxed_slice()
}

/// Whether `addr` is in one of the sorted, disjoint intervals `at(lo..hi)`, given that every
/// interval before `lo` starts below `addr`. An interval that cannot be read counts as a
/// match (see [`probe`]).
#[inline]
fn lookup<T: Ord + Copy>(
    at: impl Fn(usize) -> Option<(T, T)>,
    mut lo: usize,
    mut hi: usize,
    addr: T,
) -> bool {
    // The first index in lo..hi whose interval starts after `addr`.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match at(mid) {
            Some((start, _)) if start <= addr => lo = mid + 1,
            Some(_) => hi = mid,
            None => return true,
        }
    }
    match lo.checked_sub(1) {
        Some(i) => at(i).is_none_or(|(_, end)| addr <= end),
        None => false,
    }
}

fn v4_pair(bytes: &[u8], i: usize) -> Option<(u32, u32)> {
    let at = i.checked_mul(8)?;
    Some((u32_at(bytes, at)?, u32_at(bytes, at.checked_add(4)?)?))
}

fn v6_pair(bytes: &[u8], i: usize) -> Option<(u128, u128)> {
    let at = i.checked_mul(32)?;
    Some((u128_at(bytes, at)?, u128_at(bytes, at.checked_add(16)?)?))
}

impl V4 {
    fn len(&self) -> usize {
        match self {
            V4::Owned(v) => v.len(),
            V4::Mapped(r) => r.bytes().len() / 8,
        }
    }

    fn contains(&self, index: &[u32], a: u32) -> bool {
        let bucket = usize::try_from(a >> 16).unwrap_or(0);
        // Every interval before `lo` starts below this /16, so the last one starting at or
        // below `a` is in lo..hi or is lo - 1.
        let (lo, hi) = match (index.get(bucket), index.get(bucket + 1)) {
            (Some(&lo), Some(&hi)) => (lo as usize, hi as usize),
            _ => (0, self.len()),
        };
        match self {
            V4::Owned(v) => lookup(|i| v.get(i).copied(), lo, hi, a),
            V4::Mapped(r) => {
                let bytes = r.bytes();
                lookup(|i| v4_pair(bytes, i), lo, hi, a)
            }
        }
    }

    fn starts(&self) -> Vec<u32> {
        match self {
            V4::Owned(v) => v.iter().map(|&(s, _)| s).collect(),
            V4::Mapped(r) => {
                let bytes = r.bytes();
                (0..bytes.len() / 8)
                    .filter_map(|i| v4_pair(bytes, i))
                    .map(|(s, _)| s)
                    .collect()
            }
        }
    }
}

/// The /16 index of sorted interval starts, or none for a small set.
fn v4_index(starts: &[u32]) -> Box<[u32]> {
    if starts.len() < V4_INDEX_MIN {
        return Box::default();
    }
    (0..=1u32 << 16)
        .map(|h| {
            let first = starts.partition_point(|&start| u64::from(start) < u64::from(h) << 16);
            u32::try_from(first).unwrap_or(u32::MAX)
        })
        .collect()
}

impl CidrSet {
    pub fn new(cidrs: impl IntoIterator<Item = Cidr>) -> CidrSet {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for cidr in cidrs {
            match cidr {
                Cidr::V4(s, e) => v4.push((s, e)),
                Cidr::V6(s, e) => v6.push((s, e)),
            }
        }
        let v4 = V4::Owned(merged(v4, |x: u32| x.checked_add(1)));
        CidrSet {
            v4_index: v4_index(&v4.starts()),
            v4,
            v6: V6::Owned(merged(v6, |x: u128| x.checked_add(1))),
        }
    }

    /// Interval tables read in place. The caller has checked that both regions are whole
    /// numbers of intervals, each with start <= end, sorted and disjoint.
    pub(crate) fn mapped(v4: Region, v6: Region) -> CidrSet {
        let v4 = V4::Mapped(v4);
        CidrSet {
            v4_index: v4_index(&v4.starts()),
            v4,
            v6: V6::Mapped(v6),
        }
    }

    #[inline]
    pub fn contains(&self, addr: Addr) -> bool {
        match addr {
            Addr::V4(a) => self.v4.contains(&self.v4_index, a),
            Addr::V6(a) => match &self.v6 {
                V6::Owned(v) => lookup(|i| v.get(i).copied(), 0, v.len(), a),
                V6::Mapped(r) => {
                    let bytes = r.bytes();
                    lookup(|i| v6_pair(bytes, i), 0, bytes.len() / 32, a)
                }
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.len() == 0 && self.v6_len() == 0
    }

    fn v6_len(&self) -> usize {
        match &self.v6 {
            V6::Owned(v) => v.len(),
            V6::Mapped(r) => r.bytes().len() / 32,
        }
    }

    pub fn size_bytes(&self) -> usize {
        self.v4.len() * 8 + std::mem::size_of_val(&*self.v4_index) + self.v6_len() * 32
    }

    /// The interval counts and intervals as little-endian bytes (the byte form).
    pub(crate) fn write_intervals(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.v4.len() as u64).to_le_bytes());
        match &self.v4 {
            V4::Owned(v) => {
                for (s, e) in v.iter() {
                    out.extend_from_slice(&s.to_le_bytes());
                    out.extend_from_slice(&e.to_le_bytes());
                }
            }
            V4::Mapped(r) => out.extend_from_slice(r.bytes()),
        }
        out.extend_from_slice(&(self.v6_len() as u64).to_le_bytes());
        match &self.v6 {
            V6::Owned(v) => {
                for (s, e) in v.iter() {
                    out.extend_from_slice(&s.to_le_bytes());
                    out.extend_from_slice(&e.to_le_bytes());
                }
            }
            V6::Mapped(r) => out.extend_from_slice(r.bytes()),
        }
    }
}

/// Checks a mapped interval table: `size`-byte intervals read by `pair`, each start <= end,
/// sorted and disjoint (what [`lookup`]'s binary search needs).
pub(crate) fn intervals_valid<T: Ord + Copy>(
    bytes: &[u8],
    size: usize,
    pair: impl Fn(&[u8], usize) -> Option<(T, T)>,
) -> bool {
    if size == 0 || !bytes.len().is_multiple_of(size) {
        return false;
    }
    let mut last: Option<T> = None;
    for i in 0..bytes.len() / size {
        let Some((start, end)) = pair(bytes, i) else {
            return false;
        };
        if start > end || last.is_some_and(|l| start <= l) {
            return false;
        }
        last = Some(end);
    }
    true
}

pub(crate) fn v4_intervals_valid(bytes: &[u8]) -> bool {
    intervals_valid(bytes, 8, v4_pair)
}

pub(crate) fn v6_intervals_valid(bytes: &[u8]) -> bool {
    intervals_valid(bytes, 32, v6_pair)
}

/// Checks a mapped slot table: a non-empty whole number of slots, at least one of them empty.
pub(crate) fn slots_valid(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len().is_multiple_of(8)
        && (0..bytes.len() / 8).any(|i| u64_at(bytes, i) == Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn suffixes_of(s: &Suffixes) -> Vec<(usize, u64)> {
        s.iter().collect()
    }

    fn of_checked(bytes: &[u8], max_labels: usize) -> Suffixes {
        let mut suffixes = Suffixes::none();
        Suffixes::of_checked(bytes, max_labels, &mut suffixes);
        suffixes
    }

    proptest! {
        /// The one-pass scan of a flow's name gives the same refusals and the same suffix
        /// fingerprints as checking the name and hashing it label by label.
        #[test]
        fn scan_agrees_with_label_by_label(
            name in "[a-zA-Z0-9_.-]{0,8}(\\.[a-zA-Z0-9_-]{0,70}){0,5}\\.?|[ -~]{0,20}",
            max_labels in 0usize..8,
        ) {
            let fast = Suffixes::parse(&name, max_labels);
            let slow = checked(&name).map(|b| of_checked(b, max_labels));
            prop_assert_eq!(fast.as_ref().err(), slow.as_ref().err());
            if let (Ok(fast), Ok(slow)) = (fast, slow) {
                prop_assert_eq!(suffixes_of(&fast), suffixes_of(&slow));
                prop_assert!(Scanned::of(&name, &mut [0; MAX_LABELS]).is_some());
            } else {
                prop_assert!(Scanned::of(&name, &mut [0; MAX_LABELS]).is_none());
            }
        }
    }

    /// Labels that share prefixes, differ in case only, and span one or several 8-byte words.
    fn label() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("A".to_owned()),
            Just("ab".to_owned()),
            Just("b".to_owned()),
            Just("x-y_z".to_owned()),
            Just("example".to_owned()),
            Just("examples".to_owned()),
            Just("Exampl".to_owned()),
            Just("abcdefgh".to_owned()),
            Just("abcdefghi".to_owned()),
            Just("a".repeat(63)),
            "[a-zA-Z0-9-]{1,10}",
        ]
    }

    /// Names of 1 to 11 labels (more than the eight suffixes kept inline).
    fn name_of_labels() -> impl Strategy<Value = String> {
        prop::collection::vec(label(), 1..12).prop_map(|labels| labels.join("."))
    }

    /// The reference: the normalised name or one of its parent domains is in the set.
    fn naive_matches(set: &std::collections::HashSet<String>, name: &NormalName) -> bool {
        let name = name.as_str();
        std::iter::once(name)
            .chain(name.match_indices('.').map(|(i, _)| &name[i + 1..]))
            .any(|suffix| set.contains(suffix))
    }

    /// The same set read in place from its byte form, as `CompiledPolicy::from_bytes` does.
    fn mapped_copy(set: &DomainSet) -> DomainSet {
        let mut bytes = Vec::new();
        set.write_slots(&mut bytes);
        let end = bytes.len();
        let owner: Owner = Arc::new(bytes);
        DomainSet::mapped(Region::new(owner, 8, end), set.label_counts())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// The filtered, label-count-pruned table lookup over one-pass suffix fingerprints
        /// agrees with a hash set of normalised names on random names, built directly and read
        /// in place from bytes.
        #[test]
        fn domain_set_agrees_with_a_set_of_normalised_names(
            patterns in prop::collection::vec(name_of_labels(), 0..100),
            flows in prop::collection::vec((name_of_labels(), any::<bool>()), 1..30),
        ) {
            let normal: Vec<NormalName> = patterns
                .iter()
                .filter_map(|p| NormalName::parse(p).ok())
                .collect();
            let naive: std::collections::HashSet<String> =
                normal.iter().map(|n| n.as_str().to_owned()).collect();
            let max_labels = normal.iter().map(NormalName::labels).max().unwrap_or(0);
            let set = DomainSet::new(
                normal
                    .iter()
                    .map(|n| (n.labels(), n.fingerprint()))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            let mapped = mapped_copy(&set);
            // Every pattern, every flow name, and each flow name under a pattern (a subdomain
            // of a name in the set), some with a trailing dot.
            let under: Vec<(String, bool)> = flows
                .iter()
                .zip(patterns.iter().cycle())
                .map(|((flow, dot), pattern)| (format!("{flow}.{pattern}"), *dot))
                .collect();
            let all = patterns.iter().map(|p| (p.clone(), false)).chain(flows).chain(under);
            for (flow, dot) in all {
                let flow = if dot { format!("{flow}.") } else { flow };
                let Ok(normal_flow) = NormalName::parse(&flow) else {
                    prop_assert!(Suffixes::parse(&flow, max_labels).is_err());
                    continue;
                };
                let expected = naive_matches(&naive, &normal_flow);
                let suffixes = Suffixes::parse(&flow, max_labels).unwrap();
                prop_assert_eq!(set.matches(&suffixes), expected, "{}", flow);
                prop_assert_eq!(mapped.matches(&suffixes), expected, "{} (mapped)", flow);
            }
        }

        /// The filter in front of the table never turns away a fingerprint the table holds,
        /// for sets large enough to have many filter words, and lets the table answer for the
        /// rest.
        #[test]
        fn the_filter_never_hides_a_member(
            members in prop::collection::hash_set(1u64.., 0..5000),
            others in prop::collection::vec(1u64.., 0..500),
        ) {
            let set = DomainSet::new(members.iter().map(|&fp| (1, fp)).collect::<Vec<_>>().into_iter());
            let mapped = mapped_copy(&set);
            for &fp in members.iter().chain(&others) {
                prop_assert_eq!(set.contains_fingerprint(fp), members.contains(&fp));
                prop_assert_eq!(mapped.contains_fingerprint(fp), members.contains(&fp));
            }
        }
    }

    #[test]
    fn word_classification_agrees_with_the_byte_table_for_every_byte() {
        for b in 0..=u8::MAX {
            for position in 0..8 {
                let mut bytes = *b"A.zZ-9_M";
                bytes[position] = b;
                let (allowed, dots) = classify_word(u64::from_le_bytes(bytes));
                for (i, &c) in bytes.iter().enumerate() {
                    let bit = 0x80u64 << (8 * i);
                    assert_eq!(allowed & bit != 0, lower(c) != 0, "byte {c:#x} at {i}");
                    assert_eq!(dots & bit != 0, c == b'.', "byte {c:#x} at {i}");
                }
            }
        }
    }

    #[test]
    fn word_lowercasing_agrees_with_the_byte_table_for_every_ascii_byte() {
        for b in 0u8..0x80 {
            for position in 0..8 {
                // The byte among neighbours that are upper case, lower case and dots.
                let mut bytes = *b"A.zZ-9_M";
                bytes[position] = b;
                let word = ascii_lowercase_word(u64::from_le_bytes(bytes));
                let expected = bytes.map(|c| c.to_ascii_lowercase());
                assert_eq!(word.to_le_bytes(), expected, "byte {b:#x} at {position}");
            }
        }
    }

    #[test]
    fn parsing_into_used_suffixes_replaces_them() {
        let long = ["a"; 12].join(".");
        let mut suffixes = Suffixes::none();
        suffixes.parse_into(&long, 127).unwrap();
        assert_eq!(suffixes.len, 12);
        suffixes.parse_into("www.Example.com.", 127).unwrap();
        assert_eq!(
            suffixes_of(&suffixes),
            suffixes_of(&Suffixes::parse("www.example.com", 127).unwrap())
        );
        assert_eq!(suffixes.len, 3);
        assert!(suffixes.spill.is_empty());
        assert_eq!(
            suffixes.parse_into("bad..name", 127),
            Err(DomainError::EmptyLabel)
        );
    }

    #[test]
    fn fingerprints_are_stable() {
        let fp = |n: &str| NormalName::parse(n).unwrap().fingerprint();
        assert_eq!(
            [
                fp("com"),
                fp("example.com"),
                fp("a-very-long-label.example.com")
            ],
            [
                5_557_859_244_262_199_198,
                3_009_426_529_879_389_882,
                2_405_286_625_917_126_146,
            ]
        );
    }

    #[test]
    fn scan_handles_the_longest_names_and_labels() {
        let long = [
            "a".repeat(63),
            "B".repeat(63),
            "c".repeat(63),
            "d_-9".repeat(15) + "x",
        ]
        .join(".");
        assert_eq!(long.len(), 253);
        for max_labels in [1, 4, 127] {
            let fast = Suffixes::parse(&long, max_labels).unwrap();
            let slow = of_checked(checked(&long).unwrap(), max_labels);
            assert_eq!(suffixes_of(&fast), suffixes_of(&slow));
        }
        let many = vec!["a"; 127].join(".");
        let fast = Suffixes::parse(&many, 127).unwrap();
        assert_eq!(fast.len, 127);
        assert_eq!(
            suffixes_of(&fast),
            suffixes_of(&of_checked(checked(&many).unwrap(), 127))
        );
        assert!(Scanned::of(&format!("{many}."), &mut [0; MAX_LABELS]).is_some());
        assert!(Scanned::of(&format!("{many}.a"), &mut [0; MAX_LABELS]).is_none());
    }
}
