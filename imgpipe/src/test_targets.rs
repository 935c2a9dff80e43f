//! The end-to-end tests live in the repository's `tests/` folder but belong to this package (they
//! start the real binary), so Cargo cannot discover them: each needs a `[[test]]` entry. This
//! check fails loudly when a file in `tests/` has none, so a new test never silently goes unrun.

use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn every_file_in_tests_is_a_test_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("read Cargo.toml");
    let listed: BTreeSet<String> = manifest
        .lines()
        .filter_map(|line| line.trim().strip_prefix("path = \"../tests/"))
        .filter_map(|rest| rest.strip_suffix('"'))
        .map(str::to_owned)
        .collect();
    let files: BTreeSet<String> = std::fs::read_dir(root.join("../tests"))
        .expect("read tests/")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".rs"))
        .collect();
    assert!(!files.is_empty(), "no test files found in tests/");
    let missing: Vec<_> = files.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "tests/{missing:?} have no [[test]] entry in imgpipe/Cargo.toml, so they would never run"
    );
    let stale: Vec<_> = listed.difference(&files).collect();
    assert!(
        stale.is_empty(),
        "imgpipe/Cargo.toml lists missing tests {stale:?}"
    );
}
