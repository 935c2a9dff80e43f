//! Bounded fuzzing of the filename sanitiser: for any string a client may send, and any budget
//! the key layout may leave, it does not panic, stays within the budget, drops every
//! bidirectional control, and is idempotent.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use imgpipe_upload_api::{filename_budget, sanitize_filename};
use proptest::prelude::*;

/// What the sanitiser must never let through, listed here independently of its own list.
const BIDI: &[char] = &[
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
];

/// Names built from the characters that make sanitising hard: separators, dots, spaces of
/// several kinds, controls, bidi controls, reserved characters, multi-byte letters and emoji.
fn hostile_name() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("/".to_owned()),
        Just("\\".to_owned()),
        Just(".".to_owned()),
        Just(" ".to_owned()),
        Just("\u{3000}".to_owned()),
        Just("\u{85}".to_owned()),
        Just("\t".to_owned()),
        Just("\0".to_owned()),
        Just(".jpg".to_owned()),
        Just("猫".to_owned()),
        Just("é".to_owned()),
        Just("👩‍👩‍👧".to_owned()),
        Just("?*<>%#".to_owned()),
        prop::sample::select(BIDI.to_vec()).prop_map(String::from),
        "[a-z]{1,8}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(pieces, 0..60).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_string_within_any_budget(raw in any::<String>(), max in 1usize..300) {
        check(&raw, max)?;
    }

    #[test]
    fn hostile_names_within_realistic_budgets(raw in hostile_name(), max in 1usize..130) {
        check(&raw, max)?;
    }

    #[test]
    fn the_budget_of_any_key_layout_leaves_room(
        bucket in "[a-z0-9.-]{3,63}",
        tenant in "[a-z0-9][a-z0-9-]{0,39}",
    ) {
        let prefix = format!("{tenant}/0190a3e5-0000-7000-8000-000000000000/");
        let budget = filename_budget(&bucket, &prefix);
        prop_assert!((1..=120).contains(&budget), "{budget}");
        // The sidecar s3s-fs names after the bucket and the key, with the widest name allowed.
        let key = format!("{prefix}{}", "x".repeat(budget));
        let encode = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let sidecar = format!(".bucket-{}.object-{}.metadata.json", encode(&bucket), encode(&key));
        prop_assert!(sidecar.len() <= 255, "{} bytes: {sidecar}", sidecar.len());
    }
}

fn check(raw: &str, max: usize) -> Result<(), TestCaseError> {
    let once = sanitize_filename(raw, max);
    prop_assert!(!once.is_empty());
    prop_assert!(once.len() <= max, "{} bytes > {max}: {once:?}", once.len());
    prop_assert!(!once.contains(BIDI), "bidi control kept: {once:?}");
    prop_assert!(
        !once.chars().any(char::is_control),
        "control kept: {once:?}"
    );
    prop_assert!(!once.contains(['/', '\\']), "separator kept: {once:?}");
    prop_assert!(!once.starts_with('.'), "hidden: {once:?}");
    prop_assert_eq!(
        sanitize_filename(&once, max),
        once.clone(),
        "not idempotent"
    );
    Ok(())
}
