//! A small, strict and bounded DER reader (and the matching writer) for the KeyDescription
//! extension.
//!
//! Why not the `der` crate, which this crate uses for certificates: `der` 0.7 can only name
//! context-specific tags with numbers up to 30 (`TagNumber` stops at 30), while an
//! `AuthorizationList` uses EXPLICIT tags up to `[724]`, which need the high-tag-number form
//! (X.690 §8.1.2.4). This module reads exactly what the KeyDescription schema needs and nothing
//! more:
//!
//! - identifiers in the low and the high-tag-number form; a high-form number must be minimal (no
//!   leading `0x80` octet, and at least 31) and fit in a `u32`;
//! - definite lengths only, in their minimal form, never longer than the input that is left;
//! - nesting bounded by [`MAX_DEPTH`];
//! - INTEGER and ENUMERATED in minimal two's complement, read as `i64` (an error when the value
//!   does not fit: every KeyMint integer the schema names fits);
//! - BOOLEAN exactly `0x00` or `0xFF`; NULL empty; OCTET STRING, SEQUENCE and SET in the form DER
//!   requires (primitive, constructed, constructed).
//!
//! Nothing here panics or indexes: every access goes through `get` or `split_at_checked`.

use std::fmt;

/// How deep constructed values may nest, counting from the outermost one. The KeyDescription
/// needs 6 (KeyDescription, AuthorizationList, `[709]`, the AttestationApplicationId inside its
/// OCTET STRING, its SET, a package SEQUENCE); the bound leaves room and stops adversarial depth.
pub const MAX_DEPTH: usize = 16;

/// The longest length field accepted, in octets after the first: 4 octets already allow 4 GiB,
/// more than any extension.
const MAX_LENGTH_OCTETS: usize = 4;

/// Why bytes could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerError {
    /// The bytes are not valid DER (bad identifier, length or content encoding).
    Malformed(&'static str),
    /// Valid DER, but not the value the caller expected here.
    Unexpected(&'static str),
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DerError::Malformed(what) | DerError::Unexpected(what) => f.write_str(what),
        }
    }
}

/// The class bits of an identifier octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Universal,
    Application,
    ContextSpecific,
    Private,
}

impl Class {
    fn bits(self) -> u8 {
        match self {
            Class::Universal => 0x00,
            Class::Application => 0x40,
            Class::ContextSpecific => 0x80,
            Class::Private => 0xC0,
        }
    }

    fn from_bits(octet: u8) -> Class {
        match octet & 0xC0 {
            0x00 => Class::Universal,
            0x40 => Class::Application,
            0x80 => Class::ContextSpecific,
            _ => Class::Private,
        }
    }
}

/// An identifier: class, primitive or constructed, and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    pub class: Class,
    pub constructed: bool,
    pub number: u32,
}

impl Tag {
    pub const BOOLEAN: Tag = Tag::universal(1, false);
    pub const INTEGER: Tag = Tag::universal(2, false);
    pub const OCTET_STRING: Tag = Tag::universal(4, false);
    pub const NULL: Tag = Tag::universal(5, false);
    pub const ENUMERATED: Tag = Tag::universal(10, false);
    pub const SEQUENCE: Tag = Tag::universal(16, true);
    pub const SET: Tag = Tag::universal(17, true);

    const fn universal(number: u32, constructed: bool) -> Tag {
        Tag {
            class: Class::Universal,
            constructed,
            number,
        }
    }

    /// `[number] EXPLICIT`: context-specific and constructed.
    pub const fn explicit(number: u32) -> Tag {
        Tag {
            class: Class::ContextSpecific,
            constructed: true,
            number,
        }
    }
}

/// One element: its tag and its contents octets.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: Tag,
    pub contents: &'a [u8],
    /// The depth of the reader this element was read from.
    depth: usize,
}

impl<'a> Tlv<'a> {
    /// A reader over the elements inside a constructed element.
    pub fn inner(&self) -> Result<Reader<'a>, DerError> {
        if !self.tag.constructed {
            return Err(DerError::Unexpected("expected a constructed element"));
        }
        Reader::nested(self.contents, self.depth)
    }
}

/// Reads a run of DER elements from a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
    /// How many constructed values enclose the elements this reader reads.
    depth: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a whole DER document.
    pub fn new(input: &'a [u8]) -> Reader<'a> {
        Reader {
            rest: input,
            depth: 0,
        }
    }

    /// A reader over the contents of a value found at `depth` (inside a constructed element, or
    /// a DER document carried in an OCTET STRING found there).
    pub fn nested(input: &'a [u8], depth: usize) -> Result<Reader<'a>, DerError> {
        let depth = depth + 1;
        if depth > MAX_DEPTH {
            return Err(DerError::Malformed("values are nested too deeply"));
        }
        Ok(Reader { rest: input, depth })
    }

    /// The depth of this reader (0 for a whole document).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Whether every element has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Requires that every element has been read.
    pub fn finish(&self) -> Result<(), DerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError::Unexpected("unexpected trailing elements"))
        }
    }

    /// Reads the next element, whatever its tag.
    pub fn any(&mut self) -> Result<Tlv<'a>, DerError> {
        let (tag, after_tag) = read_tag(self.rest)?;
        let (length, after_length) = read_length(after_tag)?;
        let Some((contents, rest)) = after_length.split_at_checked(length) else {
            return Err(DerError::Malformed("length exceeds the remaining input"));
        };
        self.rest = rest;
        Ok(Tlv {
            tag,
            contents,
            depth: self.depth,
        })
    }

    /// Reads the next element, which must have tag `expected`, and returns its contents.
    pub fn expect(&mut self, expected: Tag, what: &'static str) -> Result<Tlv<'a>, DerError> {
        let tlv = self.any()?;
        if tlv.tag != expected {
            return Err(DerError::Unexpected(what));
        }
        Ok(tlv)
    }

    pub fn integer(&mut self) -> Result<i64, DerError> {
        let tlv = self.expect(Tag::INTEGER, "expected an INTEGER")?;
        decode_integer(tlv.contents)
    }

    pub fn enumerated(&mut self) -> Result<i64, DerError> {
        let tlv = self.expect(Tag::ENUMERATED, "expected an ENUMERATED")?;
        decode_integer(tlv.contents)
    }

    pub fn boolean(&mut self) -> Result<bool, DerError> {
        let tlv = self.expect(Tag::BOOLEAN, "expected a BOOLEAN")?;
        match tlv.contents {
            [0x00] => Ok(false),
            [0xFF] => Ok(true),
            _ => Err(DerError::Malformed(
                "a BOOLEAN must be one octet, 0x00 or 0xFF",
            )),
        }
    }

    pub fn null(&mut self) -> Result<(), DerError> {
        let tlv = self.expect(Tag::NULL, "expected a NULL")?;
        if tlv.contents.is_empty() {
            Ok(())
        } else {
            Err(DerError::Malformed("a NULL must be empty"))
        }
    }

    pub fn octet_string(&mut self) -> Result<&'a [u8], DerError> {
        Ok(self
            .expect(Tag::OCTET_STRING, "expected an OCTET STRING")?
            .contents)
    }

    pub fn sequence(&mut self) -> Result<Reader<'a>, DerError> {
        self.expect(Tag::SEQUENCE, "expected a SEQUENCE")?.inner()
    }

    pub fn set(&mut self) -> Result<Reader<'a>, DerError> {
        self.expect(Tag::SET, "expected a SET")?.inner()
    }
}

/// Reads an identifier; returns it and the input after it.
fn read_tag(input: &[u8]) -> Result<(Tag, &[u8]), DerError> {
    let Some((&first, mut rest)) = input.split_first() else {
        return Err(DerError::Malformed("unexpected end of input"));
    };
    let class = Class::from_bits(first);
    let constructed = first & 0x20 != 0;
    let low = first & 0x1F;
    if low != 0x1F {
        let tag = Tag {
            class,
            constructed,
            number: u32::from(low),
        };
        return Ok((tag, rest));
    }
    // High-tag-number form: base-128 digits, most significant first, bit 8 set on all but the
    // last.
    let mut number: u32 = 0;
    let mut first_digit = true;
    loop {
        let Some((&octet, after)) = rest.split_first() else {
            return Err(DerError::Malformed("truncated tag number"));
        };
        rest = after;
        if first_digit && octet == 0x80 {
            return Err(DerError::Malformed("tag number is not minimally encoded"));
        }
        first_digit = false;
        number = number
            .checked_mul(128)
            .map(|shifted| shifted | u32::from(octet & 0x7F))
            .ok_or(DerError::Malformed("tag number does not fit in 32 bits"))?;
        if octet & 0x80 == 0 {
            break;
        }
    }
    if number < 31 {
        return Err(DerError::Malformed(
            "tag number below 31 in the high-tag-number form",
        ));
    }
    let tag = Tag {
        class,
        constructed,
        number,
    };
    Ok((tag, rest))
}

/// Reads a definite length in its minimal form; returns it and the input after it.
fn read_length(input: &[u8]) -> Result<(usize, &[u8]), DerError> {
    let Some((&first, rest)) = input.split_first() else {
        return Err(DerError::Malformed("truncated length"));
    };
    if first < 0x80 {
        return Ok((usize::from(first), rest));
    }
    if first == 0x80 {
        return Err(DerError::Malformed("indefinite lengths are not DER"));
    }
    let count = usize::from(first & 0x7F);
    if count > MAX_LENGTH_OCTETS {
        return Err(DerError::Malformed("length field too long"));
    }
    let Some((octets, rest)) = rest.split_at_checked(count) else {
        return Err(DerError::Malformed("truncated length"));
    };
    if octets.first() == Some(&0) {
        return Err(DerError::Malformed("length is not minimally encoded"));
    }
    let length = octets
        .iter()
        .fold(0usize, |acc, &octet| (acc << 8) | usize::from(octet));
    if length < 0x80 {
        return Err(DerError::Malformed("length is not minimally encoded"));
    }
    Ok((length, rest))
}

/// Decodes the contents of an INTEGER or ENUMERATED: minimal two's complement, into an `i64`.
fn decode_integer(contents: &[u8]) -> Result<i64, DerError> {
    match contents {
        [] => return Err(DerError::Malformed("an INTEGER must not be empty")),
        [0x00, second, ..] if second & 0x80 == 0 => {
            return Err(DerError::Malformed("INTEGER is not minimally encoded"));
        }
        [0xFF, second, ..] if second & 0x80 != 0 => {
            return Err(DerError::Malformed("INTEGER is not minimally encoded"));
        }
        _ => {}
    }
    if contents.len() > 8 {
        return Err(DerError::Unexpected("INTEGER does not fit in 64 bits"));
    }
    let negative = contents.first().is_some_and(|first| first & 0x80 != 0);
    let start: u64 = if negative { u64::MAX } else { 0 };
    let value = contents
        .iter()
        .fold(start, |acc, &octet| (acc << 8) | u64::from(octet));
    Ok(i64::from_ne_bytes(value.to_ne_bytes()))
}

/// Writes DER: the inverse of [`Reader`] for the same value types.
pub mod write {
    use super::Tag;

    /// Appends one element with the given tag and contents.
    pub fn tlv(out: &mut Vec<u8>, tag: Tag, contents: &[u8]) {
        write_tag(out, tag);
        write_length(out, contents.len());
        out.extend_from_slice(contents);
    }

    pub fn integer(out: &mut Vec<u8>, value: i64) {
        tlv(out, Tag::INTEGER, &integer_contents(value));
    }

    pub fn enumerated(out: &mut Vec<u8>, value: i64) {
        tlv(out, Tag::ENUMERATED, &integer_contents(value));
    }

    pub fn boolean(out: &mut Vec<u8>, value: bool) {
        tlv(out, Tag::BOOLEAN, &[if value { 0xFF } else { 0x00 }]);
    }

    pub fn null(out: &mut Vec<u8>) {
        tlv(out, Tag::NULL, &[]);
    }

    pub fn octet_string(out: &mut Vec<u8>, value: &[u8]) {
        tlv(out, Tag::OCTET_STRING, value);
    }

    fn write_tag(out: &mut Vec<u8>, tag: Tag) {
        let class = tag.class.bits() | if tag.constructed { 0x20 } else { 0x00 };
        let Ok(low) = u8::try_from(tag.number) else {
            return write_high_tag(out, class, tag.number);
        };
        if low < 31 {
            out.push(class | low);
        } else {
            write_high_tag(out, class, tag.number);
        }
    }

    fn write_high_tag(out: &mut Vec<u8>, class: u8, number: u32) {
        out.push(class | 0x1F);
        // Base-128 digits, most significant first; at most 5 for a u32.
        let mut digits = [0u8; 5];
        let mut count = 0;
        let mut rest = number;
        for digit in digits.iter_mut() {
            *digit = (rest & 0x7F) as u8;
            rest >>= 7;
            count += 1;
            if rest == 0 {
                break;
            }
        }
        let used = digits.iter().take(count).rev();
        let last = count.saturating_sub(1);
        for (index, digit) in used.enumerate() {
            out.push(if index == last { *digit } else { digit | 0x80 });
        }
    }

    fn write_length(out: &mut Vec<u8>, length: usize) {
        if length < 0x80 {
            out.push(length as u8);
            return;
        }
        let bytes = length.to_be_bytes();
        let skip = bytes.iter().take_while(|octet| **octet == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }

    /// The minimal two's-complement octets of `value`.
    fn integer_contents(value: i64) -> Vec<u8> {
        let bytes = value.to_be_bytes();
        let mut start = 0;
        // Drop a leading octet while the next one carries the same sign.
        while let (Some(&first), Some(&second)) = (bytes.get(start), bytes.get(start + 1)) {
            let redundant =
                (first == 0x00 && second & 0x80 == 0) || (first == 0xFF && second & 0x80 != 0);
            if !redundant {
                break;
            }
            start += 1;
        }
        bytes.get(start..).unwrap_or_default().to_vec()
    }

    #[cfg(test)]
    pub(super) fn length_for_test(out: &mut Vec<u8>, length: usize) {
        write_length(out, length);
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        reason = "a test: a failed unwrap is the report"
    )]

    use super::*;

    fn read_one(bytes: &[u8]) -> Result<Tlv<'_>, DerError> {
        let mut reader = Reader::new(bytes);
        let tlv = reader.any()?;
        reader.finish()?;
        Ok(tlv)
    }

    #[test]
    fn high_tag_numbers_round_trip() {
        for number in [0, 1, 30, 31, 127, 128, 709, 724, 16_383, 16_384, u32::MAX] {
            let mut out = Vec::new();
            write::tlv(&mut out, Tag::explicit(number), &[0x05, 0x00]);
            let tlv = read_one(&out).unwrap();
            assert_eq!(tlv.tag, Tag::explicit(number));
            assert_eq!(tlv.contents, [0x05, 0x00]);
        }
        // [709] is 0xBF 0x85 0x45.
        let mut out = Vec::new();
        write::tlv(&mut out, Tag::explicit(709), &[]);
        assert_eq!(out, [0xBF, 0x85, 0x45, 0x00]);
    }

    #[test]
    fn rejects_non_minimal_and_oversized_tag_numbers() {
        // Leading 0x80 digit.
        assert!(read_one(&[0xBF, 0x80, 0x85, 0x45, 0x00]).is_err());
        // High form for a number below 31.
        assert!(read_one(&[0xBF, 0x1E, 0x00]).is_err());
        // 2^35: more than 32 bits.
        assert!(read_one(&[0xBF, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00]).is_err());
        // Truncated.
        assert!(read_one(&[0xBF, 0x85]).is_err());
    }

    #[test]
    fn rejects_bad_lengths() {
        assert!(read_one(&[0x04, 0x80, 0x00, 0x00]).is_err(), "indefinite");
        assert!(
            read_one(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).is_err(),
            "long form < 128"
        );
        assert!(read_one(&[0x04, 0x82, 0x00, 0x80]).is_err(), "leading zero");
        assert!(read_one(&[0x04, 0x05, 1, 2]).is_err(), "past the end");
        assert!(
            read_one(&[0x04, 0x85, 1, 0, 0, 0, 0]).is_err(),
            "5 length octets"
        );
        assert!(read_one(&[0x04, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
        for length in [0, 1, 127, 128, 255, 256, 70_000] {
            let mut out = vec![0x04];
            write::length_for_test(&mut out, length);
            out.resize(out.len() + length, 0xAB);
            assert_eq!(read_one(&out).unwrap().contents.len(), length);
        }
    }

    #[test]
    fn integers() {
        for value in [
            0,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            255,
            256,
            65_537,
            1_771_979_841_867,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            write::integer(&mut out, value);
            let mut reader = Reader::new(&out);
            assert_eq!(reader.integer().unwrap(), value, "{out:02x?}");
            reader.finish().unwrap();
        }
        assert!(Reader::new(&[0x02, 0x00]).integer().is_err(), "empty");
        assert!(Reader::new(&[0x02, 0x02, 0x00, 0x01]).integer().is_err());
        assert!(Reader::new(&[0x02, 0x02, 0xFF, 0x80]).integer().is_err());
        assert!(
            Reader::new(&[0x02, 0x09, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0])
                .integer()
                .is_err(),
            "2^63 does not fit"
        );
        assert!(Reader::new(&[0x0A, 0x01, 0x01]).integer().is_err(), "tag");
        assert_eq!(Reader::new(&[0x0A, 0x01, 0x01]).enumerated().unwrap(), 1);
    }

    #[test]
    fn booleans_and_nulls() {
        assert!(Reader::new(&[0x01, 0x01, 0xFF]).boolean().unwrap());
        assert!(!Reader::new(&[0x01, 0x01, 0x00]).boolean().unwrap());
        assert!(Reader::new(&[0x01, 0x01, 0x01]).boolean().is_err());
        assert!(Reader::new(&[0x01, 0x02, 0xFF, 0xFF]).boolean().is_err());
        assert!(Reader::new(&[0x01, 0x00]).boolean().is_err());
        Reader::new(&[0x05, 0x00]).null().unwrap();
        assert!(Reader::new(&[0x05, 0x01, 0x00]).null().is_err());
    }

    #[test]
    fn universal_types_must_have_the_der_form() {
        // A constructed OCTET STRING (BER only).
        assert!(Reader::new(&[0x24, 0x00]).octet_string().is_err());
        // A primitive SEQUENCE.
        assert!(Reader::new(&[0x10, 0x00]).sequence().is_err());
        // [2] EXPLICIT is 0xA2.
        let mut out = Vec::new();
        write::tlv(&mut out, Tag::explicit(2), &[]);
        assert_eq!(out, [0xA2, 0x00]);
        let tlv = read_one(&out).unwrap();
        assert_eq!(tlv.tag.class, Class::ContextSpecific);
    }

    #[test]
    fn nesting_is_bounded() {
        let mut value = vec![0x05, 0x00];
        for _ in 0..40 {
            let mut outer = Vec::new();
            write::tlv(&mut outer, Tag::SEQUENCE, &value);
            value = outer;
        }
        let mut reader = Reader::new(&value);
        let mut deepest = 0;
        let error = loop {
            match reader.sequence() {
                Ok(inner) => {
                    deepest = inner.depth();
                    reader = inner;
                }
                Err(error) => break error,
            }
        };
        assert_eq!(deepest, MAX_DEPTH);
        assert_eq!(error, DerError::Malformed("values are nested too deeply"));
    }
}
