use super::*;
use crate::protocol::header::{Header, MessageType, Status, encode_message};
use crate::protocol::remote::*;

#[test]
fn header_only_call_matches_libvirts_virnetmessagetest_vector() {
    let h = Header {
        prog: 0x1122_3344,
        vers: 1,
        proc_: 0x666,
        kind: MessageType::Call,
        serial: 0x99,
        status: Status::Ok,
    };
    let bytes = encode_message(&h, &Void).unwrap();
    assert_eq!(
        bytes,
        [
            0x00, 0x00, 0x00, 0x1c, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
            0x06, 0x66, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00
        ]
    );
    let (back, body) = crate::protocol::header::split(&bytes[4..]).unwrap();
    assert_eq!(back, h);
    assert!(body.is_empty());
}

#[test]
fn strings_are_length_prefixed_and_padded() {
    assert_eq!(to_bytes("abc"), [0, 0, 0, 3, b'a', b'b', b'c', 0]);
    assert_eq!(to_bytes("abcd"), [0, 0, 0, 4, b'a', b'b', b'c', b'd']);
    assert_eq!(to_bytes(""), [0, 0, 0, 0]);
    let s: &str = from_bytes(&[0, 0, 0, 2, b'h', b'i', 0, 0]).unwrap();
    assert_eq!(s, "hi");
}

#[test]
fn optional_string_and_uuid_layouts() {
    assert_eq!(to_bytes(&None::<String>), [0, 0, 0, 0]);
    assert_eq!(
        to_bytes(&Some("x".to_string())),
        [0, 0, 0, 1, 0, 0, 0, 1, b'x', 0, 0, 0]
    );
    let d = NonnullDomain {
        name: "t".into(),
        uuid: [7; 16],
        id: -1,
    };
    let b = to_bytes(&d);
    assert_eq!(b.len(), 4 + 4 + 16 + 4);
    assert_eq!(&b[8..24], &[7; 16]);
    assert_eq!(&b[24..], &[0xff; 4]);
    assert_eq!(from_bytes::<NonnullDomain>(&b).unwrap(), d);
}

#[test]
fn union_writes_its_explicit_discriminant() {
    // serde-xdr wrote the variant index (0) here; libvirt expects 1.
    assert_eq!(to_bytes(&TypedParamValue::Int(5)), [0, 0, 0, 1, 0, 0, 0, 5]);
    assert_eq!(
        to_bytes(&TypedParamValue::String("a".into())),
        [0, 0, 0, 7, 0, 0, 0, 1, b'a', 0, 0, 0]
    );
    let v: TypedParamValue = from_bytes(&[0, 0, 0, 6, 0, 0, 0, 1]).unwrap();
    assert_eq!(v, TypedParamValue::Boolean(1));
    assert!(matches!(
        from_bytes::<TypedParamValue>(&[0, 0, 0, 9, 0, 0, 0, 1]),
        Err(XdrError::BadDiscriminant { value: 9, .. })
    ));
}

#[test]
fn chars_take_a_word_each() {
    let m = NodeGetInfoRet {
        model: CharArray("i686".into()),
        ..NodeGetInfoRet::default()
    };
    let b = to_bytes(&m);
    assert_eq!(b.len(), 32 * 4 + 8 + 6 * 4);
    assert_eq!(&b[..8], &[0, 0, 0, b'i', 0, 0, 0, b'6']);
    assert_eq!(from_bytes::<NodeGetInfoRet>(&b).unwrap().model.0, "i686");
    let l = to_bytes(&CharVec::<10>("ab".into()));
    assert_eq!(l, [0, 0, 0, 3, 0, 0, 0, b'a', 0, 0, 0, b'b', 0, 0, 0, 0]);
    assert_eq!(from_bytes::<CharVec<10>>(&l).unwrap().0, "ab");
}

#[test]
fn lengths_above_the_maximum_or_the_input_are_refused_before_allocating() {
    let huge = [0xff, 0xff, 0xff, 0xf0];
    assert!(matches!(
        from_bytes::<String>(&huge),
        Err(XdrError::TooLong { .. })
    ));
    // 16384 domains announced, 4 bytes present: refused without reserving.
    let b = [0, 0, 0x40, 0, 0, 0, 0, 0];
    assert!(matches!(
        from_bytes::<ListAllDomainsRet>(&b),
        Err(XdrError::Truncated { .. })
    ));
    let b = [0, 0, 0x40, 1];
    assert!(matches!(
        from_bytes::<ListAllDomainsRet>(&b),
        Err(XdrError::TooLong { max: 16384, .. })
    ));
}

#[test]
fn bad_markers_truncation_and_trailing_bytes_are_errors() {
    assert!(matches!(
        from_bytes::<Option<u32>>(&[0, 0, 0, 2]),
        Err(XdrError::BadMarker { value: 2, .. })
    ));
    assert!(matches!(
        from_bytes::<u64>(&[0, 0, 0, 2]),
        Err(XdrError::Truncated { needed: 4, .. })
    ));
    assert!(matches!(
        from_bytes::<u32>(&[0, 0, 0, 2, 0]),
        Err(XdrError::Trailing { count: 1 })
    ));
    assert!(matches!(
        from_bytes::<String>(&[0, 0, 0, 1, 0xff, 0, 0, 0]),
        Err(XdrError::NotUtf8 { .. })
    ));
}

#[test]
fn decoding_arbitrary_bytes_never_panics() {
    // A deterministic xorshift stream of inputs of every small length.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in 0..200usize {
        for _ in 0..50 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x & 0xff) as u8
                })
                .collect();
            let _ = from_bytes::<RemoteError>(&buf);
            let _ = from_bytes::<ListAllDomainsRet>(&buf);
            let _ = from_bytes::<NodeGetInfoRet>(&buf);
            let _ = from_bytes::<DomainEventCallbackRegisterAnyArgs>(&buf);
            let _ = from_bytes::<XmlFlagsArgs<'_>>(&buf);
            let _ = Header::decode(&buf);
        }
    }
}

#[test]
fn remote_error_round_trips_a_core_error() {
    let e = virtkit_core::Error::operation_invalid("domain is not running");
    let w = RemoteError::from_error(&e);
    assert_eq!(w.code, 55);
    let back: RemoteError = from_bytes(&to_bytes(&w)).unwrap();
    let e2 = back.into_error();
    assert_eq!(e2.to_string(), e.to_string());
    assert_eq!(e2.kind(), e.kind());
}
