//! The byte form of a compiled policy ([`CompiledPolicy::to_bytes`]) and deciding over it in
//! place ([`CompiledPolicy::from_bytes`]): the domain fingerprint tables and CIDR interval
//! tables are read where they lie (a memory-mapped bundle file, say), the small parts (ids,
//! rules, layers) are decoded.
//!
//! # Layout (all integers little-endian, no alignment assumed or needed)
//!
//! ```text
//! header (32 bytes): magic "ENPOLICY" | version u32 | flags u32 (0) | body length u64 | checksum u64
//! body:
//!   allow_direct u8 | trusted networks: strs
//!   blocklists: u32 count, each: domain table, CIDR table
//!   layers: u32 count, each: id str, rule count u32
//!   rules: u32 count, each: id str, match, action
//! str      = u16 length, UTF-8 bytes          strs = u32 count, each a str
//! opt(x)   = u8 0 (absent) or 1 then x
//! domain table = label counts u128, slot count u64, slots u64 each (0 = empty)
//! CIDR table   = IPv4 count u64, (start u32, end u32) each; IPv6 count u64, (start u128, end u128) each
//! match    = opt(strs) apps, opt(strs) categories, opt(domain table), opt(CIDR table),
//!            opt(u32) blocklist, u8 network (0 any, 1 trusted, 2 untrusted),
//!            opt(u8) trust-state bits, opt(u8) lifecycle bits
//! action   = u8 0 block: reason str, strs-less list of u32 rule indices (u32 count);
//!            1 enigm-proxy, 2 vpn: location str, 3 tor-gateway, 4 direct
//! ```
//!
//! # Why hostile bytes cannot make a decision more permissive
//!
//! A policy is only as trusted as its origin: the byte form travels inside the signed policy
//! bundle (whose signature covers it) or is produced locally by [`CompiledPolicy::to_bytes`].
//! What this decoder guards against is bytes that are not what the producer wrote:
//!
//! - **Corruption and truncation**: the header holds the body's length and a 64-bit checksum,
//!   both checked before anything else is read. Each 8-byte word enters the checksum through a
//!   step that is a bijection of the running state for a fixed word and of the word for a fixed
//!   state, and the final mix is a bijection, so a change confined to one word (every single
//!   bit flip) always changes it, and a truncated body fails the length check. The checksum is
//!   not a signature: someone who can rewrite the bytes can write a valid checksum, which is why
//!   authenticity comes from the bundle signature.
//! - **Structure**: every count is bounded by the bytes left before anything is allocated;
//!   every table's size, every index and every id is checked up front, with the same rules as
//!   [`CompiledPolicy::compile`] (valid ids, unique rule and layer ids, a valid non-reserved
//!   reason, `direct` only with `allow_direct`, `reopenable_by` naming route rules of later
//!   layers only). A domain table must have an empty slot (so a probe that misses ends); CIDR
//!   intervals must be sorted and disjoint (so the binary search is right). The /16 index of a
//!   large IPv4 table and the Bloom filter in front of each domain table are never read from
//!   the bytes: they are rebuilt from the checked tables (the filter from the slots, so it
//!   holds exactly their fingerprints; a few milliseconds for a million names).
//! - **No reads out of bounds, no panics**: every read in place is a checked little-endian read
//!   of a slice. Should an owner's bytes change after they were checked (a memory-mapped file
//!   rewritten underneath), a read that falls outside them counts as a *match*, the direction
//!   a fingerprint collision already fails in (see [`crate::matchers`]); callers map a file
//!   nobody else writes.
//!
//! Any error means no policy: [`crate::decide`] with `None` blocks every flow (`no-policy`).

use std::sync::Arc;

use crate::matchers::{
    CidrSet, DomainSet, Owner, Region, slots_valid, v4_intervals_valid, v6_intervals_valid,
};

use super::{
    CompiledAction, CompiledBlocklist, CompiledLayer, CompiledMatch, CompiledPolicy, CompiledRoute,
    CompiledRule, DEFAULT_RULE, FAIL_CLOSED_RULE, MAX_BLOCKLISTS, MAX_ID_LEN, MAX_LAYERS, MAX_LIST,
    MAX_RULES, NetworkMatch, StrSet, valid_id, valid_reason,
};

/// The only byte-form version this build reads and writes.
pub const BYTES_VERSION: u32 = 1;
const MAGIC: [u8; 8] = *b"ENPOLICY";
const HEADER_LEN: usize = 32;

/// Why bytes are not a compiled policy this build can decide with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BytesError {
    #[error("the bytes are shorter than the 32-byte header")]
    TooShort,
    #[error("the bytes are not a compiled network policy (no `ENPOLICY` magic)")]
    BadMagic,
    #[error("byte form version {0} is not supported; this build reads version {BYTES_VERSION}")]
    UnsupportedVersion(u32),
    #[error("the header's flags are not 0")]
    UnknownFlags,
    #[error("the body is not as long as the header says (truncated or extended)")]
    LengthMismatch,
    #[error("the body's checksum does not match the header (corrupted)")]
    ChecksumMismatch,
    #[error("the body ends inside {0}")]
    Truncated(&'static str),
    #[error("the body has an invalid {0}")]
    Invalid(&'static str),
    #[error("the body has bytes after its last rule")]
    TrailingBytes,
}

impl CompiledPolicy {
    /// The byte form of this policy: a header with the body's length and checksum, then the
    /// tables as they are held in memory (see the module docs of `engine::bytes` for the
    /// layout). [`CompiledPolicy::from_bytes`] decides over it without rebuilding the tables.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        out.push(u8::from(self.allow_direct));
        put_strs(&mut out, self.trusted_networks.0.iter().map(|s| &**s));
        put_count(&mut out, self.blocklists.len());
        for list in self.blocklists.iter() {
            put_domains(&mut out, &list.domains);
            list.cidrs.write_intervals(&mut out);
        }
        put_count(&mut out, self.layers.len());
        for layer in self.layers.iter() {
            put_str(&mut out, &layer.id);
            put_count(&mut out, layer.rules.len());
        }
        put_count(&mut out, self.rules.len());
        for rule in self.rules.iter() {
            put_str(&mut out, &rule.id);
            put_match(&mut out, &rule.matches);
            put_action(&mut out, &rule.action);
        }
        let body_len = (out.len() - HEADER_LEN) as u64;
        let sum = checksum(out.get(HEADER_LEN..).unwrap_or_default());
        let mut header = [0u8; HEADER_LEN];
        for (dst, src) in header.iter_mut().zip(
            MAGIC
                .iter()
                .chain(&BYTES_VERSION.to_le_bytes())
                .chain(&0u32.to_le_bytes())
                .chain(&body_len.to_le_bytes())
                .chain(&sum.to_le_bytes()),
        ) {
            *dst = *src;
        }
        for (dst, src) in out.iter_mut().zip(header) {
            *dst = src;
        }
        out
    }

    /// A policy that decides over `bytes` (a [`CompiledPolicy::to_bytes`] output: a `Vec<u8>`,
    /// an `Arc<[u8]>`, a memory map) without rebuilding its tables: the header, length,
    /// checksum, every table size, index and id are checked here, once; the domain and CIDR
    /// tables are then read in place, the small parts decoded. It decides exactly as the policy
    /// it was written from. `bytes.as_ref()` must return the same bytes every time.
    pub fn from_bytes<B>(bytes: B) -> Result<CompiledPolicy, BytesError>
    where
        B: AsRef<[u8]> + Send + Sync + 'static,
    {
        let owner: Owner = Arc::new(bytes);
        let all = (*owner).as_ref();
        let body = check_header(all)?;
        if checksum(body) != read_u64(all, 24).unwrap_or(0) {
            return Err(BytesError::ChecksumMismatch);
        }
        let mut r = Reader {
            bytes: all,
            pos: HEADER_LEN,
            owner: &owner,
        };
        let policy = decode(&mut r)?;
        if r.pos != all.len() {
            return Err(BytesError::TrailingBytes);
        }
        Ok(policy)
    }
}

/// Rewrites the header's body length and checksum (bytes 16..32) to match the body, when `bytes`
/// has a whole header. For tools and fuzzers that edit a byte form on purpose: sealed bytes pass
/// the corruption check, which says nothing about who wrote them (the bundle signature does).
pub fn reseal_bytes(bytes: &mut [u8]) {
    let Some(body) = bytes.get(HEADER_LEN..) else {
        return;
    };
    let fields: Vec<u8> = (body.len() as u64)
        .to_le_bytes()
        .into_iter()
        .chain(checksum(body).to_le_bytes())
        .collect();
    for (dst, src) in bytes.iter_mut().skip(16).zip(fields) {
        *dst = src;
    }
}

/// The body, once the magic, version, flags and length are right.
fn check_header(all: &[u8]) -> Result<&[u8], BytesError> {
    let header = all.get(..HEADER_LEN).ok_or(BytesError::TooShort)?;
    if header.get(..8) != Some(&MAGIC[..]) {
        return Err(BytesError::BadMagic);
    }
    let version = read_u32(all, 8).ok_or(BytesError::TooShort)?;
    if version != BYTES_VERSION {
        return Err(BytesError::UnsupportedVersion(version));
    }
    if read_u32(all, 12) != Some(0) {
        return Err(BytesError::UnknownFlags);
    }
    let body = all.get(HEADER_LEN..).unwrap_or_default();
    if read_u64(all, 16) != Some(body.len() as u64) {
        return Err(BytesError::LengthMismatch);
    }
    Ok(body)
}

/// A 64-bit checksum of the body. Each step `h -> rotl((h ^ w) * K, 29)` is a bijection of
/// `h` for a fixed word `w` and of `w` for a fixed `h`, and the final mix (splitmix64's) is a
/// bijection: two bodies of one length that differ in one 8-byte word never share a checksum.
fn checksum(body: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (body.len() as u64) ^ 0x2d35_8dcc_aa6c_78a5;
    for chunk in body.chunks(8) {
        let mut word = [0u8; 8];
        for (d, s) in word.iter_mut().zip(chunk) {
            *d = *s;
        }
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    <[u8; 4]>::try_from(b).ok().map(u32::from_le_bytes)
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    <[u8; 8]>::try_from(b).ok().map(u64::from_le_bytes)
}

fn put_count(out: &mut Vec<u8>, n: usize) {
    // INVARIANT: every count written (rules, layers, lists) is bounded far below u32::MAX by
    // the document limits.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // INVARIANT: ids and reasons are at most MAX_ID_LEN bytes.
    out.extend_from_slice(&u16::try_from(s.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_strs<'s>(out: &mut Vec<u8>, items: impl ExactSizeIterator<Item = &'s str>) {
    put_count(out, items.len());
    for s in items {
        put_str(out, s);
    }
}

fn put_domains(out: &mut Vec<u8>, set: &DomainSet) {
    out.extend_from_slice(&set.label_counts().to_le_bytes());
    set.write_slots(out);
}

fn put_opt<T>(out: &mut Vec<u8>, value: Option<&T>, put: impl FnOnce(&mut Vec<u8>, &T)) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put(out, v);
        }
    }
}

fn put_match(out: &mut Vec<u8>, m: &CompiledMatch) {
    put_opt(out, m.apps.as_ref(), |o, s| {
        put_strs(o, s.0.iter().map(|s| &**s));
    });
    put_opt(out, m.categories.as_ref(), |o, s| {
        put_strs(o, s.0.iter().map(|s| &**s));
    });
    put_opt(out, m.domains.as_ref(), put_domains);
    put_opt(out, m.cidrs.as_ref(), |o, c| c.write_intervals(o));
    put_opt(out, m.blocklist.as_ref(), |o, &b| put_count(o, b));
    out.push(match m.network {
        NetworkMatch::Any => 0,
        NetworkMatch::Trusted => 1,
        NetworkMatch::Untrusted => 2,
    });
    put_opt(out, m.trust_states.as_ref(), |o, &b| o.push(b));
    put_opt(out, m.lifecycle.as_ref(), |o, &b| o.push(b));
}

fn put_action(out: &mut Vec<u8>, action: &CompiledAction) {
    match action {
        CompiledAction::Block {
            reason,
            reopenable_by,
        } => {
            out.push(0);
            put_str(out, reason);
            put_count(out, reopenable_by.len());
            for &i in reopenable_by.iter() {
                put_count(out, i);
            }
        }
        CompiledAction::Route(CompiledRoute::EnigmProxy) => out.push(1),
        CompiledAction::Route(CompiledRoute::Vpn(location)) => {
            out.push(2);
            put_str(out, location);
        }
        CompiledAction::Route(CompiledRoute::TorGateway) => out.push(3),
        CompiledAction::Route(CompiledRoute::Direct) => out.push(4),
    }
}

/// A cursor over the whole byte string (positions are absolute, so a table's position is its
/// region in the owner).
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    owner: &'a Owner,
}

impl<'a> Reader<'a> {
    /// The absolute range of the next `n` bytes, consumed.
    fn take(&mut self, n: usize, what: &'static str) -> Result<(usize, usize), BytesError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(BytesError::Truncated(what))?;
        let start = self.pos;
        self.pos = end;
        Ok((start, end))
    }

    fn slice(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], BytesError> {
        let (start, end) = self.take(n, what)?;
        self.bytes
            .get(start..end)
            .ok_or(BytesError::Truncated(what))
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, BytesError> {
        self.slice(1, what)?
            .first()
            .copied()
            .ok_or(BytesError::Truncated(what))
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, BytesError> {
        let b = self.slice(2, what)?;
        <[u8; 2]>::try_from(b)
            .map(u16::from_le_bytes)
            .map_err(|_| BytesError::Truncated(what))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, BytesError> {
        let b = self.slice(4, what)?;
        <[u8; 4]>::try_from(b)
            .map(u32::from_le_bytes)
            .map_err(|_| BytesError::Truncated(what))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, BytesError> {
        let b = self.slice(8, what)?;
        <[u8; 8]>::try_from(b)
            .map(u64::from_le_bytes)
            .map_err(|_| BytesError::Truncated(what))
    }

    fn u128(&mut self, what: &'static str) -> Result<u128, BytesError> {
        let b = self.slice(16, what)?;
        <[u8; 16]>::try_from(b)
            .map(u128::from_le_bytes)
            .map_err(|_| BytesError::Truncated(what))
    }

    /// A count of items of at least `min_size` bytes each, at most `max`: never more than the
    /// bytes left could hold, so nothing is allocated for a count the input cannot back.
    fn count(
        &mut self,
        max: usize,
        min_size: usize,
        what: &'static str,
    ) -> Result<usize, BytesError> {
        let n = usize::try_from(self.u32(what)?).map_err(|_| BytesError::Invalid(what))?;
        let left = self.bytes.len().saturating_sub(self.pos);
        if n > max || n.saturating_mul(min_size) > left {
            return Err(BytesError::Invalid(what));
        }
        Ok(n)
    }

    fn str(&mut self, what: &'static str) -> Result<&'a str, BytesError> {
        let len = usize::from(self.u16(what)?);
        if len > MAX_ID_LEN {
            return Err(BytesError::Invalid(what));
        }
        std::str::from_utf8(self.slice(len, what)?).map_err(|_| BytesError::Invalid(what))
    }

    fn id(&mut self, what: &'static str) -> Result<&'a str, BytesError> {
        let id = self.str(what)?;
        if valid_id(id) {
            Ok(id)
        } else {
            Err(BytesError::Invalid(what))
        }
    }

    fn present(&mut self, what: &'static str) -> Result<bool, BytesError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(BytesError::Invalid(what)),
        }
    }

    fn ids(&mut self, what: &'static str) -> Result<StrSet, BytesError> {
        let n = self.count(MAX_LIST, 2, what)?;
        let items = (0..n)
            .map(|_| self.id(what).map(str::to_owned))
            .collect::<Result<Vec<String>, _>>()?;
        Ok(StrSet::new(&items))
    }

    fn domains(&mut self) -> Result<DomainSet, BytesError> {
        const WHAT: &str = "domain table";
        let label_counts = self.u128(WHAT)?;
        let slots = usize::try_from(self.u64(WHAT)?).map_err(|_| BytesError::Truncated(WHAT))?;
        let len = slots.checked_mul(8).ok_or(BytesError::Truncated(WHAT))?;
        let (start, end) = self.take(len, WHAT)?;
        if !slots_valid(self.bytes.get(start..end).unwrap_or_default()) {
            return Err(BytesError::Invalid(WHAT));
        }
        Ok(DomainSet::mapped(
            Region::new(Arc::clone(self.owner), start, end),
            label_counts,
        ))
    }

    fn intervals(
        &mut self,
        size: usize,
        valid: fn(&[u8]) -> bool,
        what: &'static str,
    ) -> Result<Region, BytesError> {
        let n = usize::try_from(self.u64(what)?).map_err(|_| BytesError::Truncated(what))?;
        let len = n.checked_mul(size).ok_or(BytesError::Truncated(what))?;
        let (start, end) = self.take(len, what)?;
        if !valid(self.bytes.get(start..end).unwrap_or_default()) {
            return Err(BytesError::Invalid(what));
        }
        Ok(Region::new(Arc::clone(self.owner), start, end))
    }

    fn cidrs(&mut self) -> Result<CidrSet, BytesError> {
        let v4 = self.intervals(8, v4_intervals_valid, "IPv4 interval table")?;
        let v6 = self.intervals(32, v6_intervals_valid, "IPv6 interval table")?;
        Ok(CidrSet::mapped(v4, v6))
    }
}

fn decode(r: &mut Reader<'_>) -> Result<CompiledPolicy, BytesError> {
    let allow_direct = r.present("allow_direct flag")?;
    let trusted_networks = r.ids("trusted network")?;
    // A blocklist is at least two empty tables' headers (16 + 8 + 8 + 8 bytes).
    let n_blocklists = r.count(MAX_BLOCKLISTS, 40, "blocklist count")?;
    let mut blocklists = Vec::with_capacity(n_blocklists);
    for _ in 0..n_blocklists {
        blocklists.push(CompiledBlocklist {
            domains: r.domains()?,
            cidrs: r.cidrs()?,
        });
    }

    let n_layers = r.count(MAX_LAYERS, 6, "layer count")?;
    let mut layers = Vec::with_capacity(n_layers);
    let mut layer_of_rule = Vec::new();
    let mut total = 0usize;
    for layer_no in 0..n_layers {
        let id = r.id("layer id")?;
        if layers.iter().any(|l: &CompiledLayer| &*l.id == id) {
            return Err(BytesError::Invalid("layer id (used twice)"));
        }
        let n = usize::try_from(r.u32("layer rule count")?)
            .map_err(|_| BytesError::Invalid("layer rule count"))?;
        let end = total
            .checked_add(n)
            .filter(|&end| end <= MAX_RULES)
            .ok_or(BytesError::Invalid("layer rule count"))?;
        layer_of_rule.resize(end, layer_no);
        layers.push(CompiledLayer {
            id: id.into(),
            rules: total..end,
        });
        total = end;
    }

    let n_rules = r.count(MAX_RULES, 5, "rule count")?;
    if n_rules != total {
        return Err(BytesError::Invalid("rule count (not the layers' total)"));
    }
    let mut rules: Vec<CompiledRule> = Vec::with_capacity(n_rules);
    let mut rule_ids = std::collections::BTreeSet::new();
    for _ in 0..n_rules {
        let id = r.id("rule id")?;
        if id == DEFAULT_RULE || id == FAIL_CLOSED_RULE || !rule_ids.insert(id) {
            return Err(BytesError::Invalid("rule id (used twice or reserved)"));
        }
        let matches = decode_match(r, n_blocklists)?;
        let action = decode_action(r, allow_direct, n_rules)?;
        rules.push(CompiledRule {
            id: id.into(),
            matches,
            action,
        });
    }

    // `reopenable_by` may name only route rules of later layers, as compile requires.
    for (index, rule) in rules.iter().enumerate() {
        if let CompiledAction::Block { reopenable_by, .. } = &rule.action {
            let layer = layer_of_rule.get(index);
            for &by in reopenable_by.iter() {
                let later = layer_of_rule.get(by) > layer;
                let route = matches!(
                    rules.get(by).map(|r| &r.action),
                    Some(CompiledAction::Route(_))
                );
                if !later || !route {
                    return Err(BytesError::Invalid("reopenable_by"));
                }
            }
        }
    }

    let max_labels = blocklists
        .iter()
        .map(|b| &b.domains)
        .chain(rules.iter().filter_map(|r| r.matches.domains.as_ref()))
        .map(|d| highest_label_count(d.label_counts()))
        .max()
        .unwrap_or(0);
    Ok(CompiledPolicy {
        allow_direct,
        trusted_networks,
        max_labels,
        blocklists: blocklists.into_boxed_slice(),
        layers: layers.into_boxed_slice(),
        rules: rules.into_boxed_slice(),
    })
}

/// The most labels of a name in a set: its highest label-count bit. Derived rather than stored,
/// so the byte form cannot say to hash fewer labels than its tables hold.
fn highest_label_count(label_counts: u128) -> usize {
    (128 - label_counts.leading_zeros()).saturating_sub(1) as usize
}

fn decode_match(r: &mut Reader<'_>, n_blocklists: usize) -> Result<CompiledMatch, BytesError> {
    let nonempty = |set: StrSet, what| {
        if set.0.is_empty() {
            Err(BytesError::Invalid(what))
        } else {
            Ok(set)
        }
    };
    let apps = match r.present("apps")? {
        true => Some(nonempty(r.ids("apps")?, "apps")?),
        false => None,
    };
    let categories = match r.present("categories")? {
        true => Some(nonempty(r.ids("categories")?, "categories")?),
        false => None,
    };
    let domains = match r.present("rule domains")? {
        true => Some(r.domains()?),
        false => None,
    };
    let cidrs = match r.present("rule CIDRs")? {
        true => Some(r.cidrs()?),
        false => None,
    };
    let blocklist = match r.present("blocklist reference")? {
        true => {
            let b = usize::try_from(r.u32("blocklist reference")?)
                .map_err(|_| BytesError::Invalid("blocklist reference"))?;
            if b >= n_blocklists {
                return Err(BytesError::Invalid("blocklist reference"));
            }
            Some(b)
        }
        false => None,
    };
    let network = match r.u8("network match")? {
        0 => NetworkMatch::Any,
        1 => NetworkMatch::Trusted,
        2 => NetworkMatch::Untrusted,
        _ => return Err(BytesError::Invalid("network match")),
    };
    // A present condition names at least one state, and only known ones.
    let bits = |r: &mut Reader<'_>, max: u8, what| -> Result<Option<u8>, BytesError> {
        match r.present(what)? {
            true => match r.u8(what)? {
                b if b != 0 && b <= max => Ok(Some(b)),
                _ => Err(BytesError::Invalid(what)),
            },
            false => Ok(None),
        }
    };
    let trust_states = bits(r, 0b111, "trust-state condition")?;
    let lifecycle = bits(r, 0b11_1111, "lifecycle condition")?;
    Ok(CompiledMatch {
        apps,
        categories,
        domains,
        cidrs,
        blocklist,
        network,
        trust_states,
        lifecycle,
    })
}

fn decode_action(
    r: &mut Reader<'_>,
    allow_direct: bool,
    n_rules: usize,
) -> Result<CompiledAction, BytesError> {
    Ok(match r.u8("action")? {
        0 => {
            let reason = r.str("block reason")?;
            if !valid_reason(reason) {
                return Err(BytesError::Invalid("block reason"));
            }
            let n = r.count(MAX_LIST, 4, "reopenable_by")?;
            let mut by = Vec::with_capacity(n);
            for _ in 0..n {
                let i = usize::try_from(r.u32("reopenable_by")?)
                    .map_err(|_| BytesError::Invalid("reopenable_by"))?;
                if i >= n_rules {
                    return Err(BytesError::Invalid("reopenable_by"));
                }
                by.push(i);
            }
            by.sort_unstable();
            by.dedup();
            CompiledAction::Block {
                reason: reason.into(),
                reopenable_by: by.into_boxed_slice(),
            }
        }
        1 => CompiledAction::Route(CompiledRoute::EnigmProxy),
        2 => CompiledAction::Route(CompiledRoute::Vpn(r.id("VPN location")?.into())),
        3 => CompiledAction::Route(CompiledRoute::TorGateway),
        4 if allow_direct => CompiledAction::Route(CompiledRoute::Direct),
        4 => return Err(BytesError::Invalid("direct route (allow_direct not set)")),
        _ => return Err(BytesError::Invalid("action")),
    })
}
