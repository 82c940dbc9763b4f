//! [`TargetName`]: an OTA target's name that is safe to use as a relative path under a
//! directory and as the tail of a URL. One parse function with one rule set, used by the
//! device's client for names from signed metadata and by Command for names operators declare
//! (tough's `TargetName` is the model).
//!
//! TUF allows any string as a target name; a name is also a path on a device or a static
//! mirror, so a name that could climb out of its directory, or hide in a URL, is refused
//! whoever signed it.

use std::fmt;

/// A target name that passed [`TargetName::parse`]: 1 to [`TargetName::MAX_LEN`] bytes of
/// printable ASCII, `/`-separated segments, none empty, `.` or `..`, and no `\`, `?` or `#`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetName(String);

/// Why a target name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetNameError {
    #[error("the target name is empty")]
    Empty,
    #[error("the target name is longer than 255 bytes")]
    TooLong,
    /// A leading or trailing `/`, or `//`: an absolute path or an empty segment.
    #[error("the target name has an empty path segment")]
    EmptySegment,
    #[error("the target name has a `.` or `..` segment")]
    DotSegment,
    /// A control character, NUL, a space, a non-ASCII character, or one of `\`, `?`, `#`.
    #[error("the target name has a character that is not allowed")]
    Character,
}

impl TargetName {
    /// The longest name accepted, in bytes (a file name's usual limit).
    pub const MAX_LEN: usize = 255;

    pub fn parse(name: &str) -> Result<TargetName, TargetNameError> {
        if name.is_empty() {
            return Err(TargetNameError::Empty);
        }
        if name.len() > Self::MAX_LEN {
            return Err(TargetNameError::TooLong);
        }
        if !name.bytes().all(allowed) {
            return Err(TargetNameError::Character);
        }
        for segment in name.split('/') {
            if segment.is_empty() {
                return Err(TargetNameError::EmptySegment);
            }
            if segment == "." || segment == ".." {
                return Err(TargetNameError::DotSegment);
            }
        }
        Ok(TargetName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Printable ASCII, without the path separator of another platform (`\`) and the characters
/// that would end a URL's path (`?`, `#`). `/` separates segments.
const fn allowed(byte: u8) -> bool {
    byte.is_ascii_graphic() && !matches!(byte, b'\\' | b'?' | b'#')
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TargetName {
    type Err = TargetNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        TargetName::parse(name)
    }
}

impl AsRef<str> for TargetName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests;
