//! Short checked names held inline (no heap), so that the types built on them are `Copy` like
//! the rest of an audit target: one representation and one set of text impls for each.

/// At most `N` (and 255) bytes of text, inline. Only the wrapping type decides what the text may
/// contain; this only holds it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct InlineText<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> InlineText<N> {
    /// `None` for text longer than `N` or 255 bytes.
    pub(crate) fn new(text: &str) -> Option<Self> {
        let len = u8::try_from(text.len()).ok()?;
        let mut bytes = [0u8; N];
        bytes
            .get_mut(..text.len())?
            .copy_from_slice(text.as_bytes());
        Some(InlineText { len, bytes })
    }

    pub(crate) fn as_str(&self) -> &str {
        // INVARIANT: `new` stored `len` bytes of a `str`, cut at its end.
        self.bytes
            .get(..usize::from(self.len))
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or_default()
    }
}

/// `Display`, `Debug`, `FromStr`, `Serialize` and `Deserialize` of a checked inline name
/// `$name` with `fn parse(&str) -> Result<$name, $error>` and `fn as_str(&self) -> &str`.
macro_rules! inline_name_impls {
    ($name:ident, $error:ty) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $error;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $name::parse(text)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(
                    deserializer,
                )?;
                $name::parse(&text).map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use inline_name_impls;
