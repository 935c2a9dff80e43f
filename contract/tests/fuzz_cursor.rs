//! Bounded fuzzing of the page cursor, which clients send back as they got it (or not): no
//! input makes decoding panic, and every cursor the API hands out reads back as itself.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use imgpipe_contract::db::Cursor;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn any_string_is_refused_or_read_without_panic(raw in any::<String>()) {
        let _ = Cursor::decode(&raw);
    }

    /// Past the base64 layer: any bytes, valid UTF-8 or not, with or without the separator.
    #[test]
    fn any_encoded_bytes_are_refused_or_read_without_panic(bytes in any::<Vec<u8>>()) {
        let _ = Cursor::decode(&URL_SAFE_NO_PAD.encode(&bytes));
    }

    /// Near misses of real cursors: a number, a colon, anything.
    #[test]
    fn cursor_shaped_text_is_refused_or_read_without_panic(
        text in r"-?[0-9]{0,25}:?.{0,40}",
    ) {
        let _ = Cursor::decode(&URL_SAFE_NO_PAD.encode(text.as_bytes()));
    }

    #[test]
    fn every_cursor_reads_back_as_itself(created_at_ms in any::<i64>(), id in any::<String>()) {
        let cursor = Cursor { created_at_ms, id };
        let decoded = Cursor::decode(&cursor.encode());
        prop_assert!(decoded.is_ok(), "{decoded:?}");
        prop_assert_eq!(decoded.ok(), Some(cursor));
    }
}
