//! The reducer's rules, one table row each: the document before (or none), the change, and what
//! `reduce` must answer (write exactly this document, unchanged, or not yet).
//!
//! The rows pin the behaviour. Rows marked `QUESTIONABLE` are rules that may deserve a change.

mod fixtures;

use fixtures::*;

// --- the table ---------------------------------------------------------------------------------

fn rows() -> Vec<Row> {
    let second = upload(Some("e2"), Some("0B"), 5);
    // The key overwritten: `e2` is current, `e1` what it held before.
    let replaced = || with_earlier(fresh(&second), &["e1"]);
    let replaced_processing = || with_status(with_renditions(replaced(), "e2"), Status::Processing);
    let replaced_done = || {
        with_status(
            with_tags(replaced_processing(), "e2", "tabby"),
            Status::Done,
        )
    };
    vec![
        // Uploads.
        Row {
            rule: "first upload: a pending document",
            current: None,
            change: uploaded(Some("e1"), Some("0A"), 0),
            expect: write(pending()),
        },
        Row {
            rule: "duplicate notification (same eTag): unchanged",
            current: Some(done()),
            change: uploaded(Some("e1"), Some("0A"), 0),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "same eTag under a newer sequencer (same bytes again): unchanged",
            current: Some(done()),
            change: uploaded(Some("e1"), Some("0B"), 5),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "new eTag for the same key, newer sequencer: starts over from the new original, \
                   remembering the old eTag",
            current: Some(done()),
            change: DocChange::Uploaded(second.clone()),
            expect: write(replaced()),
        },
        Row {
            rule: "stale sequencer (older upload of the key arriving late): only its eTag is \
                   remembered, so its results are known to be outdated",
            current: Some(fresh(&second)),
            change: uploaded(Some("e1"), Some("0A"), 0),
            expect: write(replaced()),
        },
        Row {
            rule: "stale sequencer whose eTag is already remembered: unchanged",
            current: Some(replaced()),
            change: uploaded(Some("e1"), Some("0A"), 0),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "equal sequencer with another eTag: not newer, only its eTag remembered",
            current: Some(pending()),
            change: uploaded(Some("e2"), Some("0A"), 5),
            expect: write(with_earlier(pending(), &["e2"])),
        },
        Row {
            rule: "sequencers compare as hex numbers, not strings: 100 is newer than FF",
            current: Some(fresh(&upload(Some("e1"), Some("FF"), 0))),
            change: uploaded(Some("e2"), Some("100"), 5),
            expect: write(with_earlier(
                fresh(&upload(Some("e2"), Some("100"), 5)),
                &["e1"],
            )),
        },
        Row {
            rule: "sequencers ignore leading zeros and case: 000ff is not newer than FF",
            current: Some(fresh(&upload(Some("e1"), Some("FF"), 0))),
            change: uploaded(Some("e2"), Some("000ff"), 5),
            expect: write(with_earlier(
                fresh(&upload(Some("e1"), Some("FF"), 0)),
                &["e2"],
            )),
        },
        Row {
            // QUESTIONABLE: with no sequencer to order them, whichever upload arrives last wins,
            // even an older one delivered late.
            rule: "new eTag without a sequencer: starts over (last arrival wins)",
            current: Some(done()),
            change: uploaded(Some("e0"), None, 5),
            expect: write(with_earlier(fresh(&upload(Some("e0"), None, 5)), &["e1"])),
        },
        Row {
            rule: "the key goes back to bytes it held before: that eTag is current, not earlier",
            current: Some(with_earlier(pending(), &["e0", "e2"])),
            change: DocChange::Uploaded(second.clone()),
            expect: write(with_earlier(fresh(&second), &["e0", "e1"])),
        },
        Row {
            rule: "earlier eTags are bounded: the oldest is forgotten",
            current: Some(with_earlier(
                pending(),
                &["a", "b", "c", "d", "e", "f", "g", "h"],
            )),
            change: DocChange::Uploaded(second.clone()),
            expect: write(with_earlier(
                fresh(&second),
                &["b", "c", "d", "e", "f", "g", "h", "e1"],
            )),
        },
        // Changes before the upload.
        Row {
            rule: "renditions before the upload: not yet",
            current: None,
            change: renditions("e1"),
            expect: Expect::NotYet,
        },
        Row {
            rule: "tags before the upload: not yet",
            current: None,
            change: tags("e1", "tabby"),
            expect: Expect::NotYet,
        },
        Row {
            rule: "failure before the upload: not yet",
            current: None,
            change: failed("resizer", 5),
            expect: Expect::NotYet,
        },
        // Renditions.
        Row {
            rule: "renditions of a pending image: processing",
            current: Some(pending()),
            change: renditions("e1"),
            expect: write(processing()),
        },
        Row {
            rule: "duplicate renditions: unchanged",
            current: Some(processing()),
            change: renditions("e1"),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "renditions after a failure: processing again, error cleared",
            current: Some(with_error(pending(), "resizer", 5)),
            change: renditions("e1"),
            expect: write(processing()),
        },
        Row {
            rule: "renditions replayed on a done image: unchanged",
            current: Some(done()),
            change: renditions("e1"),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "renditions arriving after the tags: added, the image stays done",
            current: Some(with_status(
                with_tags(pending(), "e1", "tabby"),
                Status::Done,
            )),
            change: renditions("e1"),
            expect: write(done()),
        },
        Row {
            rule: "renditions for an earlier original (late, after the key was overwritten): \
                   ignored",
            current: Some(replaced()),
            change: renditions("e1"),
            expect: ignored_earlier("e1", "e2"),
        },
        Row {
            rule: "renditions for an earlier original after the current one's: ignored, the \
                   current renditions kept",
            current: Some(replaced_processing()),
            change: renditions("e1"),
            expect: ignored_earlier("e1", "e2"),
        },
        Row {
            rule: "renditions for bytes whose upload is not applied yet: not yet",
            current: Some(pending()),
            change: renditions("e3"),
            expect: Expect::NotYet,
        },
        Row {
            rule: "renditions naming no eTag (older resizers): applied to the current original",
            current: Some(pending()),
            change: renditions_without_etag(),
            expect: write({
                let mut doc = processing();
                if let Some(r) = doc.renditions.as_mut() {
                    r.source_etag = None;
                }
                doc
            }),
        },
        Row {
            rule: "the source eTag compares without quotes",
            current: Some(pending()),
            change: renditions("\"e1\""),
            expect: write(with_status(
                with_renditions(pending(), "\"e1\""),
                Status::Processing,
            )),
        },
        // Tags.
        Row {
            rule: "tags of a processing image: done",
            current: Some(processing()),
            change: tags("e1", "tabby"),
            expect: write(done()),
        },
        Row {
            rule: "duplicate tags: unchanged",
            current: Some(done()),
            change: tags("e1", "tabby"),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "tags before the renditions (events reordered): done without renditions",
            current: Some(pending()),
            change: tags("e1", "tabby"),
            expect: write(with_status(
                with_tags(pending(), "e1", "tabby"),
                Status::Done,
            )),
        },
        Row {
            rule: "other tags for the same original (a new model): replace the old ones",
            current: Some(done()),
            change: tags("e1", "tiger cat"),
            expect: write(with_status(
                with_tags(processing(), "e1", "tiger cat"),
                Status::Done,
            )),
        },
        Row {
            rule: "tags after a failure of the same original (a retry that worked, a replayed \
                   dead letter): done, error cleared",
            current: Some(with_error(processing(), "recognizer", 5)),
            change: tags("e1", "tabby"),
            expect: write(done()),
        },
        Row {
            rule: "tags for an earlier original (late, after the key was overwritten): ignored, \
                   the image is not done",
            current: Some(replaced_processing()),
            change: tags("e1", "tabby"),
            expect: ignored_earlier("e1", "e2"),
        },
        Row {
            rule: "tags for an earlier original after the current one's: ignored",
            current: Some(replaced_done()),
            change: tags("e1", "tiger cat"),
            expect: ignored_earlier("e1", "e2"),
        },
        Row {
            rule: "tags for bytes whose upload is not applied yet: not yet",
            current: Some(processing()),
            change: tags("e3", "tabby"),
            expect: Expect::NotYet,
        },
        Row {
            rule: "tags for the current original after the key was overwritten: done",
            current: Some(replaced_processing()),
            change: tags("e2", "tabby"),
            expect: write(replaced_done()),
        },
        // Failures.
        Row {
            rule: "failure of a pending image: failed, with the stage's error",
            current: Some(pending()),
            change: failed("resizer", 5),
            expect: write(with_error(pending(), "resizer", 5)),
        },
        Row {
            rule: "failure of a processing image: failed, renditions kept",
            current: Some(processing()),
            change: failed("recognizer", 5),
            expect: write(with_error(processing(), "recognizer", 5)),
        },
        Row {
            rule: "duplicate failure: unchanged",
            current: Some(with_error(processing(), "recognizer", 5)),
            change: failed("recognizer", 5),
            expect: Expect::Unchanged,
        },
        Row {
            rule: "another failure report: replaces the error",
            current: Some(with_error(processing(), "recognizer", 5)),
            change: failed("recognizer", 7),
            expect: write(with_error(processing(), "recognizer", 7)),
        },
        Row {
            rule: "failure of the current original: failed",
            current: Some(replaced_processing()),
            change: failed_from("e2", "recognizer", 5),
            expect: write(with_error(replaced_processing(), "recognizer", 5)),
        },
        Row {
            rule: "failure after success for the same original (a redelivered message that \
                   failed late): ignored, the image stays done",
            current: Some(done()),
            change: failed_from("e1", "recognizer", 5),
            expect: Expect::Ignored(Ignored::FailureAfterSuccess),
        },
        Row {
            rule: "failure after success, naming no original: ignored, the image stays done",
            current: Some(done()),
            change: failed("recognizer", 5),
            expect: Expect::Ignored(Ignored::FailureAfterSuccess),
        },
        Row {
            rule: "failure of an earlier original (late, after the key was overwritten): \
                   ignored",
            current: Some(replaced_processing()),
            change: failed_from("e1", "resizer", 5),
            expect: ignored_earlier("e1", "e2"),
        },
        Row {
            rule: "failure of an earlier original on the done current one: ignored",
            current: Some(replaced_done()),
            change: failed_from("e1", "resizer", 5),
            expect: ignored_earlier("e1", "e2"),
        },
        Row {
            rule: "failure of bytes whose upload is not applied yet: not yet",
            current: Some(processing()),
            change: failed_from("e3", "resizer", 5),
            expect: Expect::NotYet,
        },
    ]
}

#[test]
fn every_rule() {
    let mut wrong = Vec::new();
    for row in rows() {
        let got = reduce(row.current.as_ref(), &row.change);
        let ok = match (&row.expect, &got) {
            (Expect::Write(want), Outcome::Write(got)) => want == got,
            (Expect::Unchanged, Outcome::Unchanged) | (Expect::NotYet, Outcome::NotYet) => true,
            (Expect::Ignored(want), Outcome::Ignored(got)) => want == got,
            _ => false,
        };
        if !ok {
            wrong.push(format!(
                "{}:\n  expected {:?}\n  got      {got:?}",
                row.rule, row.expect
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Whatever a rule writes, the same change applied to the result changes nothing: a replayed
/// message is harmless.
#[test]
fn every_write_is_idempotent() {
    for row in rows() {
        if let Outcome::Write(next) = reduce(row.current.as_ref(), &row.change) {
            assert_eq!(
                reduce(Some(&next), &row.change),
                Outcome::Unchanged,
                "{}: applying the change twice wrote again",
                row.rule
            );
        }
    }
}

#[test]
fn rule_names_are_unique() {
    let rows = rows();
    let mut names: Vec<&str> = rows.iter().map(|r| r.rule).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), rows.len(), "two rows share a name");
}
