//! `Deserialize` for the wire structs that keep unknown fields in an
//! `extra` map, without serde's `#[serde(flatten)]`.
//!
//! `flatten` first buffers every key and value of the object into serde's
//! generic content tree, then reads the struct from that copy: for a
//! stream chunk (three nested objects, each flattened) that doubled the
//! work of reading every chunk of every stream. These impls read the object
//! once: known keys into their fields, the rest into `extra`, with the
//! same rules (every field may be absent, a key twice is an error, unknown
//! keys keep their last value). The property test in `chunk.rs` checks them
//! against the derived, flattened reading.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Visitor};

/// An object key, borrowed from the input when it has no escapes.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Key<'de>, E> {
                match std::str::from_utf8(v) {
                    Ok(v) => Ok(Key(Cow::Owned(v.to_owned()))),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(v), &self)),
                }
            }
        }

        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// `impl Deserialize for $ty`: an object whose keys `$name` go to
/// `$field`, every other key to `extra`; the struct starts as `$init`
/// (the values of absent fields). The keys listed after `required` must
/// be present (as with a derived field without `#[serde(default)]`).
macro_rules! deserialize_with_extra {
    ($ty:ident, $init:expr, { $($name:literal => $field:ident),+ $(,)? }) => {
        crate::chat::extra_fields::deserialize_with_extra!(
            $ty, $init, { $($name => $field),+ }, required: []
        );
    };
    ($ty:ident, $init:expr, { $($name:literal => $field:ident),+ $(,)? }, required: [$($required:literal),* $(,)?]) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ObjectVisitor;

                impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
                    type Value = $ty;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("struct ", stringify!($ty)))
                    }

                    #[allow(unused_assignments)]
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        let mut out: $ty = $init;
                        let mut seen = [false; [$($name),+].len()];
                        while let Some(key) = map.next_key::<crate::chat::extra_fields::Key<'de>>()? {
                            let mut i = 0usize;
                            $(
                                if key.0 == $name {
                                    if seen[i] {
                                        return Err(<A::Error as serde::de::Error>::duplicate_field($name));
                                    }
                                    seen[i] = true;
                                    out.$field = map.next_value()?;
                                    continue;
                                }
                                i += 1;
                            )+
                            let value: serde_json::Value = map.next_value()?;
                            out.extra.insert(key.0.into_owned(), value);
                        }
                        let names = [$($name),+];
                        for required in [$($required),*] {
                            let at = names.iter().position(|name| *name == required);
                            if at.is_some_and(|at| !seen[at]) {
                                return Err(<A::Error as serde::de::Error>::missing_field(required));
                            }
                        }
                        Ok(out)
                    }
                }

                deserializer.deserialize_map(ObjectVisitor)
            }
        }
    };
}

pub(crate) use deserialize_with_extra;
