//! One way to spell a domain enum as a string: the [`Vocabulary`] trait and the `vocabulary!`
//! macro that every closed set of names in this crate (trust states, severities, lifecycle
//! states, signal kinds, ...) is declared with.
//!
//! The macro takes each variant's spelling once and derives from that one literal the
//! `as_str` name, `Display`, `FromStr` and the serde name of the variant, so the database, the
//! wire, the audit log and the CLI cannot drift apart.

use std::fmt;

/// A closed set of names with one spelling each.
pub trait Vocabulary: Copy + Eq + fmt::Debug + 'static {
    /// What the values are, in words, for errors (`trust state`).
    const WHAT: &'static str;

    /// Every value, in declaration order.
    fn all() -> &'static [Self];

    /// The value's one spelling, on the wire and in the database.
    fn name(self) -> &'static str;

    /// The value spelled `text`; anything else (another case, spaces) is refused.
    fn from_name(text: &str) -> Result<Self, UnknownName> {
        Self::all()
            .iter()
            .copied()
            .find(|value| value.name() == text)
            .ok_or_else(|| UnknownName::new(Self::WHAT, text))
    }
}

/// A name that is not one of a vocabulary's spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{text}`")]
pub struct UnknownName {
    what: &'static str,
    /// The refused text, cut to [`UnknownName::MAX_ECHO`] characters, controls escaped.
    text: String,
}

impl UnknownName {
    /// How much of the refused text an error repeats.
    pub const MAX_ECHO: usize = 64;

    pub fn new(what: &'static str, text: &str) -> Self {
        // The text may come from a request or a corrupt row: keep it short and printable.
        let text = text
            .chars()
            .take(Self::MAX_ECHO)
            .flat_map(char::escape_default)
            .collect();
        UnknownName { what, text }
    }

    /// What kind of name was expected (`trust state`).
    pub const fn what(&self) -> &'static str {
        self.what
    }
}

/// Declares a fieldless enum whose variants each have one spelling, with `ALL`, `as_str`,
/// `Display`, `FromStr` (error [`UnknownName`]), serde under exactly those spellings,
/// `utoipa::ToSchema`, and [`Vocabulary`]. Extra attributes (docs, more derives such as
/// `PartialOrd, Ord`) pass through.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$variant_meta:meta])* $variant:ident => $spelling:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            ::serde::Serialize, ::serde::Deserialize, ::utoipa::ToSchema,
        )]
        pub enum $name {
            // utoipa does not see serde's rename through a macro's literal (it arrives wrapped in
            // an invisible group), so the schema is told the same spelling itself.
            $( $(#[$variant_meta])* #[serde(rename = $spelling)] #[schema(rename = $spelling)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($spelling),+].len()] = [$($name::$variant),+];

            /// The one spelling of this value, on the wire and in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $spelling, )+
                }
            }
        }

        impl $crate::vocabulary::Vocabulary for $name {
            const WHAT: &'static str = $what;

            fn all() -> &'static [Self] {
                &$name::ALL
            }

            fn name(self) -> &'static str {
                self.as_str()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::vocabulary::UnknownName;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $( $spelling => Ok($name::$variant), )+
                    _ => Err($crate::vocabulary::UnknownName::new($what, text)),
                }
            }
        }
    };
}

pub(crate) use vocabulary;

#[cfg(test)]
mod tests;
