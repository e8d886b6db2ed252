//! The field names a request accepts, taken from the request structs themselves.
//!
//! Bodies built with `#[serde(flatten)]` cannot use `deny_unknown_fields`, so the
//! JSON extractor checks top-level keys against [`KnownFields`] instead. The list is
//! never written by hand: [`request_struct!`] declares a struct and derives its
//! list from the field declarations (a flattened field contributes its own type's
//! list), and [`serde_fields`] reads the list serde's derived `Deserialize` of a
//! plain struct carries. The OpenAPI tests compare both with the document.

use std::cell::Cell;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// Top-level field names a request struct accepts.
pub trait KnownFields {
    /// Appends the accepted keys to `out`, in declaration order.
    fn collect_fields(out: &mut Vec<&'static str>);

    /// The accepted keys, in declaration order.
    fn fields() -> Vec<&'static str> {
        let mut out = Vec::new();
        Self::collect_fields(&mut out);
        out
    }
}

/// Declares a request struct and implements [`KnownFields`] for it from the same
/// declaration: each field contributes its name, a `#[serde(flatten)]` field its
/// type's fields. Field renames are not supported (the OpenAPI tests compare the
/// lists of plain structs with [`serde_fields`], which would catch one).
macro_rules! request_struct {
    // One field: a flattened field contributes its type's fields...
    (@field $out:ident, $field:ident, $fty:ty; #[serde(flatten)] $($rest:tt)*) => {
        <$fty as $crate::fields::KnownFields>::collect_fields($out)
    };
    // ...any other attribute is skipped...
    (@field $out:ident, $field:ident, $fty:ty; #[$($attr:tt)*] $($rest:tt)*) => {
        $crate::fields::request_struct!(@field $out, $field, $fty; $($rest)*)
    };
    // ...and a field without `flatten` contributes its name.
    (@field $out:ident, $field:ident, $fty:ty;) => {
        $out.push(stringify!($field))
    };
    (
        $(#[$($sattr:tt)*])*
        $svis:vis struct $name:ident {
            $(
                $(#[$($fattr:tt)*])*
                $fvis:vis $field:ident : $fty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$($sattr)*])*
        $svis struct $name {
            $(
                $(#[$($fattr)*])*
                $fvis $field: $fty,
            )*
        }

        impl $crate::fields::KnownFields for $name {
            fn collect_fields(out: &mut Vec<&'static str>) {
                $(
                    $crate::fields::request_struct!(@field out, $field, $fty; $(#[$($fattr)*])*);
                )*
            }
        }
    };
}
pub(crate) use request_struct;

/// The field names serde's derived `Deserialize` of a plain struct (one without
/// `#[serde(flatten)]`) accepts, as serde lists them; empty for any other type.
pub fn serde_fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let seen = Cell::new(&[][..]);
    // The recorder always fails after noting the list: nothing is deserialised.
    let _ = T::deserialize(FieldRecorder(&seen));
    seen.get()
}

/// A deserializer that notes the field list a struct asks for, then stops.
struct FieldRecorder<'a>(&'a Cell<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldRecorder<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a plain struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(fields);
        Err(de::Error::custom("field list recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        a: u8,
        #[allow(dead_code)]
        b: u8,
    }

    impl KnownFields for Inner {
        fn collect_fields(out: &mut Vec<&'static str>) {
            out.extend(serde_fields::<Self>());
        }
    }

    request_struct! {
        /// A struct with a flattened part between two own fields.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            /// First.
            #[serde(default)]
            first: Option<u8>,
            /// The flattened part.
            #[serde(flatten)]
            inner: Inner,
            last: u8,
        }
    }

    #[test]
    fn flattened_fields_come_in_declaration_order() {
        assert_eq!(Outer::fields(), ["first", "a", "b", "last"]);
    }

    #[test]
    fn serde_lists_plain_structs_only() {
        assert_eq!(serde_fields::<Inner>(), ["a", "b"]);
        // A flattened struct is read as a map: serde carries no list for it.
        assert!(serde_fields::<Outer>().is_empty());
        assert!(serde_fields::<u32>().is_empty());
    }
}
