//! Declarative macros that derive the XDR encoding of protocol structs,
//! enums and unions. Fields are encoded in declaration order; enum and
//! union discriminants are always written out explicitly, never derived
//! from variant order.

/// Declares a struct and its XDR encoding (fields in order).
///
/// ```text
/// xdr_struct! {
///     /// doc
///     pub struct DomainGetStateArgs { pub dom: NonnullDomain, pub flags: u32 }
/// }
/// xdr_struct! { pub struct DefineArgs<'a> { pub xml: &'a str } } // borrows
/// ```
macro_rules! xdr_struct {
    ($(#[$m:meta])* pub struct $name:ident { $( $(#[$fm:meta])* pub $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $name { $( $(#[$fm])* pub $field: $ty, )* }

        impl $crate::xdr::XdrEncode for $name {
            #[allow(unused_variables)]
            fn encode(&self, w: &mut $crate::xdr::Writer) {
                $( $crate::xdr::XdrEncode::encode(&self.$field, w); )*
            }
        }

        impl<'de> $crate::xdr::XdrDecode<'de> for $name {
            #[allow(unused_variables)]
            fn decode(r: &mut $crate::xdr::Reader<'de>) -> Result<Self, $crate::xdr::XdrError> {
                Ok($name { $( $field: $crate::xdr::XdrDecode::decode(r)?, )* })
            }
        }
    };
    ($(#[$m:meta])* pub struct $name:ident<$lt:lifetime> { $( $(#[$fm:meta])* pub $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $name<$lt> { $( $(#[$fm])* pub $field: $ty, )* }

        impl<$lt> $crate::xdr::XdrEncode for $name<$lt> {
            fn encode(&self, w: &mut $crate::xdr::Writer) {
                $( $crate::xdr::XdrEncode::encode(&self.$field, w); )*
            }
        }

        impl<$lt> $crate::xdr::XdrDecode<$lt> for $name<$lt> {
            fn decode(r: &mut $crate::xdr::Reader<$lt>) -> Result<Self, $crate::xdr::XdrError> {
                Ok($name { $( $field: $crate::xdr::XdrDecode::decode(r)?, )* })
            }
        }
    };
}

/// Declares a C-style enum encoded as its explicit `i32` value.
macro_rules! xdr_enum {
    ($(#[$m:meta])* pub enum $name:ident { $( $(#[$vm:meta])* $variant:ident = $val:expr ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum $name { $( $(#[$vm])* $variant = $val, )* }

        impl $name {
            /// The value for a discriminant, if known.
            pub fn from_i32(v: i32) -> Option<$name> {
                match v { $( x if x == $val => Some($name::$variant), )* _ => None }
            }
        }

        impl $crate::xdr::XdrEncode for $name {
            fn encode(&self, w: &mut $crate::xdr::Writer) {
                w.put_i32(*self as i32);
            }
        }

        impl<'de> $crate::xdr::XdrDecode<'de> for $name {
            fn decode(r: &mut $crate::xdr::Reader<'de>) -> Result<Self, $crate::xdr::XdrError> {
                let v = r.get_i32(stringify!($name))?;
                $name::from_i32(v).ok_or($crate::xdr::XdrError::BadDiscriminant {
                    what: stringify!($name),
                    value: v,
                })
            }
        }
    };
}

/// Declares a discriminated union: `switch (int type) { case N: T x; }`.
/// Each arm names its discriminant explicitly.
macro_rules! xdr_union {
    ($(#[$m:meta])* pub enum $name:ident { $( $(#[$vm:meta])* $variant:ident($ty:ty) = $val:expr ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name { $( $(#[$vm])* $variant($ty), )* }

        impl $name {
            /// The discriminant written before the arm.
            pub fn discriminant(&self) -> i32 {
                match self { $( $name::$variant(_) => $val, )* }
            }
        }

        impl $crate::xdr::XdrEncode for $name {
            fn encode(&self, w: &mut $crate::xdr::Writer) {
                w.put_i32(self.discriminant());
                match self { $( $name::$variant(v) => $crate::xdr::XdrEncode::encode(v, w), )* }
            }
        }

        impl<'de> $crate::xdr::XdrDecode<'de> for $name {
            fn decode(r: &mut $crate::xdr::Reader<'de>) -> Result<Self, $crate::xdr::XdrError> {
                let d = r.get_i32(stringify!($name))?;
                $( if d == $val { return Ok($name::$variant($crate::xdr::XdrDecode::decode(r)?)); } )*
                Err($crate::xdr::XdrError::BadDiscriminant { what: stringify!($name), value: d })
            }
        }
    };
}
