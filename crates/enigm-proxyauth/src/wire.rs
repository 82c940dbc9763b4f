//! The byte reader of the binary encodings: fixed-width fields, big-endian integers, and an
//! error instead of a panic on every short or trailing input.

use enigm_types::Timestamp;

/// Why bytes are not a well-formed credential, proof or revocation list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the input ends early")]
    Truncated,
    #[error("the input has bytes after its end")]
    Trailing,
    #[error("unknown format version {0}")]
    Version(u8),
    #[error("the {0} field is malformed")]
    Field(&'static str),
    #[error("the input is too long")]
    TooLong,
}

pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], ParseError> {
        if self.rest.len() < len {
            return Err(ParseError::Truncated);
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        let bytes = self.take(N)?;
        bytes.try_into().map_err(|_| ParseError::Truncated)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, ParseError> {
        let [byte] = self.array::<1>()?;
        Ok(byte)
    }

    pub(crate) fn version(&mut self, expected: u8) -> Result<(), ParseError> {
        match self.byte()? {
            version if version == expected => Ok(()),
            other => Err(ParseError::Version(other)),
        }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ParseError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn timestamp(&mut self) -> Result<Timestamp, ParseError> {
        Ok(Timestamp::from_unix_millis(i64::from_be_bytes(
            self.array()?,
        )))
    }

    pub(crate) fn finish(self) -> Result<(), ParseError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ParseError::Trailing)
        }
    }
}

pub(crate) fn put_timestamp(out: &mut Vec<u8>, at: Timestamp) {
    out.extend_from_slice(&at.unix_millis().to_be_bytes());
}
