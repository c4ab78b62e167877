//! A field of a typed patch, which tells "not supplied" from "supplied as null" from
//! "supplied with a value".

use std::fmt;

/// One field of a typed patch: *absent* (the client did not send it), *null* (the client
/// sent `null`), or a *value* (anything else, including `""` and `0`).
///
/// A patch struct has one `Field` per record field it may change. Applying it changes only
/// what was supplied: [`apply_to`](Field::apply_to) for required record fields (where null
/// is refused) and [`apply_to_option`](Field::apply_to_option) for optional ones (where null
/// clears).
///
/// # Deserializing (the `serde` feature)
///
/// Mark every `Field` of a patch struct `#[serde(default)]` (or the whole struct, if it
/// derives `Default`): a missing key is then [`Absent`](Field::Absent), `null` is
/// [`Null`](Field::Null), and anything else is a [`Value`](Field::Value) — `""` and `0`
/// included, so they reach validation. Without the attribute a missing key is an error
/// (`missing field ...`), never silently read as null, which would clear data the client
/// did not mention.
///
/// A `Field` reads its input with `deserialize_any`, so it needs a self-describing format
/// (JSON, YAML, TOML, CBOR, MessagePack), which request bodies are. Any input but null is
/// then read by `T` exactly as `T` reads it alone (newtype structs, `Option`s, enums,
/// tuples, nested structs, range checks on integers), with one exception: an integer
/// past 64 bits reaches `T` as whatever the format's `deserialize_any` makes of it
/// (serde_json: a float), so a `Field<u128>` refuses what a `u128` would take.
///
/// # Examples
///
/// ```
/// use verkv::Field;
///
/// let mut title = String::from("Alien");
/// Field::Absent.apply_to(&mut title).unwrap();
/// assert_eq!(title, "Alien");
/// Field::Value("Aliens".to_string()).apply_to(&mut title).unwrap();
/// assert_eq!(title, "Aliens");
/// assert!(Field::Null.apply_to(&mut title).is_err()); // a required field stays set
///
/// let mut tagline = Some(String::from("In space no one can hear you scream."));
/// Field::Null.apply_to_option(&mut tagline);
/// assert_eq!(tagline, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Field<T> {
    /// Not supplied: the record keeps what it has.
    #[default]
    Absent,
    /// Supplied as null: clear the record's field (refused where the field is required).
    Null,
    /// Supplied with this value, which replaces the record's.
    Value(T),
}

impl<T> Field<T> {
    /// Whether the field was not supplied.
    pub fn is_absent(&self) -> bool {
        matches!(self, Field::Absent)
    }

    /// Whether the field was supplied as null.
    pub fn is_null(&self) -> bool {
        matches!(self, Field::Null)
    }

    /// The supplied value, if there is one (not for absent or null).
    ///
    /// ```
    /// use verkv::Field;
    ///
    /// assert_eq!(Field::Value(0).as_value(), Some(&0));
    /// assert_eq!(Field::<u32>::Null.as_value(), None);
    /// ```
    pub fn as_value(&self) -> Option<&T> {
        match self {
            Field::Value(value) => Some(value),
            Field::Absent | Field::Null => None,
        }
    }

    /// Converts the value with `f`, keeping absent and null as they are.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Field<U> {
        match self {
            Field::Absent => Field::Absent,
            Field::Null => Field::Null,
            Field::Value(value) => Field::Value(f(value)),
        }
    }

    /// Applies the field to a required record field: absent keeps `slot`, a value
    /// replaces it.
    ///
    /// # Errors
    ///
    /// [`NullNotAllowed`] if the field is null; `slot` is left as it was.
    pub fn apply_to(self, slot: &mut T) -> Result<(), NullNotAllowed> {
        match self {
            Field::Absent => Ok(()),
            Field::Null => Err(NullNotAllowed),
            Field::Value(value) => {
                *slot = value;
                Ok(())
            }
        }
    }

    /// Applies the field to an optional record field: absent keeps `slot`, null clears
    /// it, a value replaces it.
    pub fn apply_to_option(self, slot: &mut Option<T>) {
        match self {
            Field::Absent => {}
            Field::Null => *slot = None,
            Field::Value(value) => *slot = Some(value),
        }
    }
}

/// A patch supplied `null` for a field the record requires.
///
/// # Examples
///
/// ```
/// let mut year = 1979;
/// let err = verkv::Field::Null.apply_to(&mut year).unwrap_err();
/// assert_eq!(err.to_string(), "must not be null");
/// assert_eq!(year, 1979);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NullNotAllowed;

impl fmt::Display for NullNotAllowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("must not be null")
    }
}

impl std::error::Error for NullNotAllowed {}

#[cfg(feature = "serde")]
mod de {
    //! `Deserialize` for `Field`: null becomes `Null`; any other input is handed on to
    //! `T`. A missing key never reaches this code when the field is `#[serde(default)]`;
    //! without it, serde's missing-field stand-in refuses `deserialize_any` with
    //! "missing field", which is why `deserialize_option` (which it would answer with
    //! "none", indistinguishable from null) is not used.
    //!
    //! `deserialize_any` hands over what the format decoded (a string, a number, a map
    //! access, ...), and `T` must then read it again. serde's value deserializers do that
    //! for the shape itself, but answer `T`'s questions about newtypes and options with
    //! the bare value ("expected tuple struct", "expected option"), where a self-describing
    //! format reading `T` directly would see through both. [`Replay`] answers them as
    //! such a format does, so `Field<T>` accepts exactly the inputs `T` accepts.

    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::value::{
        BorrowedBytesDeserializer, BorrowedStrDeserializer, BytesDeserializer,
        EnumAccessDeserializer, MapAccessDeserializer, SeqAccessDeserializer, StrDeserializer,
        StringDeserializer,
    };
    use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, Visitor};

    use super::Field;

    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(FieldVisitor(PhantomData))
        }
    }

    /// A value the format already decoded, handed to `T` as JSON would hand it: a
    /// newtype struct or an option around it reads the value itself (never null, which
    /// `Field` took as [`Field::Null`]).
    struct Replay<D>(D);

    impl<'de, D: Deserializer<'de>> Deserializer<'de> for Replay<D> {
        type Error = D::Error;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.deserialize_any(visitor)
        }

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            visitor.visit_some(self)
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            visitor.visit_newtype_struct(self)
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            self.0.deserialize_enum(name, variants, visitor)
        }

        fn is_human_readable(&self) -> bool {
            self.0.is_human_readable()
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
            ignored_any
        }
    }

    struct FieldVisitor<T>(PhantomData<T>);

    impl<T> FieldVisitor<T> {
        fn value<'de, D: Deserializer<'de>>(input: D) -> Result<Field<T>, D::Error>
        where
            T: Deserialize<'de>,
        {
            T::deserialize(input).map(Field::Value)
        }

        fn replayed<'de, D: Deserializer<'de>>(input: D) -> Result<Field<T>, D::Error>
        where
            T: Deserialize<'de>,
        {
            Self::value(Replay(input))
        }
    }

    /// Hands a scalar the format decoded back to `T` as a deserializer of its own.
    macro_rules! forward_scalars {
        ($($method:ident($ty:ty);)*) => {$(
            fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                Self::replayed(v.into_deserializer())
            }
        )*};
    }

    impl<'de, T: Deserialize<'de>> Visitor<'de> for FieldVisitor<T> {
        type Value = Field<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("null or a value")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Field::Null)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Field::Null)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            Self::value(d)
        }

        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            Self::value(d)
        }

        forward_scalars! {
            visit_bool(bool);
            visit_i64(i64);
            visit_i128(i128);
            visit_u64(u64);
            visit_u128(u128);
            visit_f64(f64);
            visit_char(char);
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Self::replayed(StrDeserializer::new(v))
        }

        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Self::replayed(BorrowedStrDeserializer::new(v))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Self::replayed(StringDeserializer::new(v))
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            Self::replayed(BytesDeserializer::new(v))
        }

        fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
            Self::replayed(BorrowedBytesDeserializer::new(v))
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Self::replayed(SeqAccessDeserializer::new(seq))
        }

        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Self::replayed(MapAccessDeserializer::new(map))
        }

        fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
            Self::replayed(EnumAccessDeserializer::new(data))
        }
    }
}
