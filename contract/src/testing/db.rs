//! What every metadata backend guarantees: atomic read-modify-write per document (no lost
//! updates under concurrency), no write when the change says so, newest-first keyset pages that
//! neither skip nor repeat, filters by tag (a label or a category name) and status, word search
//! (`q`) over file name, tags, categories and text, and tag counts.

use std::sync::Arc;

use chrono::{TimeZone, Utc};

use super::Fixture;
use crate::db::{Applied, Cursor, Decision, ListQuery, MAX_TERMS, MetadataDb};
use crate::document::{BBox, Category, ImageDocument, Original, Status, Tag, TextLine};

/// The tenant every document of the suite belongs to, but for the tenant property's.
const TENANT: &str = "conformance";

fn tenants() -> Vec<String> {
    vec![TENANT.to_owned()]
}

fn doc(id: &str, minute: u32, status: Status, tags: &[&str]) -> ImageDocument {
    ImageDocument {
        id: id.to_owned(),
        tenant: TENANT.to_owned(),
        status,
        created_at: Utc
            .with_ymd_and_hms(2026, 1, 1, 12, minute, 0)
            .single()
            .expect("time"),
        original: Original {
            bucket: "originals".into(),
            key: format!("{id}/photo.jpg"),
            filename: "photo.jpg".into(),
            content_type: Some("image/jpeg".into()),
            size: 1000,
            etag: Some("e".into()),
            sequencer: None,
            format: None,
            width: None,
            height: None,
            camera: None,
        },
        renditions: None,
        placeholder: None,
        tags: tags
            .iter()
            .map(|l| Tag {
                label: (*l).to_owned(),
                score: 0.5,
            })
            .collect(),
        categories: Vec::new(),
        text: Vec::new(),
        model: None,
        error: None,
    }
}

async fn put(store: &dyn MetadataDb, d: ImageDocument) {
    let id = d.id.clone();
    assert_eq!(
        store
            .update(&id, &move |_| Decision::write(d.clone()))
            .await
            .expect("update"),
        Applied::Written,
        "written"
    );
}

/// A prefix of ids unique to one test, so tests sharing a database keep apart.
fn unique_prefix() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Runs every metadata property as its own test (see [`crate::testing`]): `$factory` is an
/// async function or closure returning a [`Fixture`] whose `Handle` is `Arc<dyn MetadataDb>`.
#[macro_export]
macro_rules! db_conformance {
    ($factory:expr $(,)?) => {
        $crate::__conformance_tests!(
            db,
            $factory,
            [
                answers_ping,
                a_document_reads_back_as_written,
                a_change_that_declines_writes_nothing,
                a_change_not_possible_yet_writes_nothing_and_says_so,
                concurrent_updates_of_one_document_lose_nothing,
                pages_run_newest_first_and_neither_skip_nor_repeat,
                filters_by_tag_and_status,
                tag_counts_follow_the_document,
                categories_are_found_by_the_tag_filter,
                words_are_searched,
                tenants_see_only_their_own_images,
                usage_counts_a_tenants_images_and_bytes,
                an_uploader_finds_its_own_uploads,
            ]
        );
    };
}

pub async fn answers_ping<F: Fixture<Handle = Arc<dyn MetadataDb>>>(fixture: &F) {
    let store = fixture.open().await;
    store.ping().await.expect("ping");
}

/// Created through `update`, a document reads back whole; one never written reads as none.
pub async fn a_document_reads_back_as_written<F: Fixture<Handle = Arc<dyn MetadataDb>>>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let id = format!("{}-00", unique_prefix());
    assert!(store.get(&id).await.expect("get").is_none());
    put(store.as_ref(), doc(&id, 0, Status::Pending, &[])).await;
    let stored = store.get(&id).await.expect("get").expect("exists");
    assert_eq!(stored, doc(&id, 0, Status::Pending, &[]));
}

/// A change that decides [`Decision::Unchanged`] leaves the document as it was and says so.
pub async fn a_change_that_declines_writes_nothing<F: Fixture<Handle = Arc<dyn MetadataDb>>>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let id = format!("{}-00", unique_prefix());
    put(store.as_ref(), doc(&id, 0, Status::Pending, &[])).await;
    let seen = std::sync::Mutex::new(None);
    let decline = |current: Option<ImageDocument>| {
        *seen.lock().expect("lock") = Some(current);
        Decision::Unchanged
    };
    assert_eq!(
        store.update(&id, &decline).await.expect("update"),
        Applied::Unchanged,
        "no write"
    );
    assert_eq!(
        seen.into_inner().expect("lock"),
        Some(Some(doc(&id, 0, Status::Pending, &[]))),
        "the change saw the stored document"
    );
    assert_eq!(
        store.get(&id).await.expect("get"),
        Some(doc(&id, 0, Status::Pending, &[])),
        "left as it was"
    );

    let missing = format!("{}-01", unique_prefix());
    assert_eq!(
        store
            .update(&missing, &|_| Decision::Unchanged)
            .await
            .expect("update"),
        Applied::Unchanged
    );
    assert!(
        store.get(&missing).await.expect("get").is_none(),
        "not created"
    );
}

/// A change that decides [`Decision::NotYet`] leaves the store as it was, and `update` reports
/// it, so the caller can try again later.
pub async fn a_change_not_possible_yet_writes_nothing_and_says_so<
    F: Fixture<Handle = Arc<dyn MetadataDb>>,
>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let prefix = unique_prefix();
    let (missing, present) = (format!("{prefix}-00"), format!("{prefix}-01"));
    let not_yet = |current: Option<ImageDocument>| {
        assert!(current.is_none(), "the change saw no document");
        Decision::NotYet
    };
    assert_eq!(
        store.update(&missing, &not_yet).await.expect("update"),
        Applied::NotYet
    );
    assert!(
        store.get(&missing).await.expect("get").is_none(),
        "not created"
    );

    put(
        store.as_ref(),
        doc(&present, 1, Status::Processing, &["cat"]),
    )
    .await;
    assert_eq!(
        store
            .update(&present, &|_| Decision::NotYet)
            .await
            .expect("update"),
        Applied::NotYet
    );
    assert_eq!(
        store.get(&present).await.expect("get"),
        Some(doc(&present, 1, Status::Processing, &["cat"])),
        "left as it was"
    );
}

/// Concurrent read-modify-writes of one document lose nothing.
pub async fn concurrent_updates_of_one_document_lose_nothing<
    F: Fixture<Handle = Arc<dyn MetadataDb>>,
>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let id = format!("{}-00", unique_prefix());
    put(store.as_ref(), doc(&id, 0, Status::Pending, &[])).await;
    let mut tasks = Vec::new();
    for n in 0..16 {
        let (store, target) = (store.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let change = move |current: Option<ImageDocument>| {
                let mut d = current.expect("exists");
                d.tags.push(Tag {
                    label: format!("t{n}"),
                    score: 0.1,
                });
                Decision::write(d)
            };
            store.update(&target, &change).await.expect("update")
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), Applied::Written);
    }
    let mut labels: Vec<String> = store
        .get(&id)
        .await
        .expect("get")
        .expect("doc")
        .tags
        .into_iter()
        .map(|t| t.label)
        .collect();
    assert_eq!(labels.len(), 16);
    labels.sort();
    let mut expected: Vec<String> = (0..16).map(|n| format!("t{n}")).collect();
    expected.sort();
    assert_eq!(labels, expected, "every update kept");
}

/// Ten documents `{prefix}-00` (pending, no tags) to `{prefix}-09`, one minute apart: every
/// third failed and untagged, the others done and tagged `cat` and `animal`.
async fn ten_documents(store: &dyn MetadataDb, prefix: &str) {
    put(store, doc(&format!("{prefix}-00"), 0, Status::Pending, &[])).await;
    for n in 1..=9 {
        let (status, tags): (Status, &[&str]) = if n % 3 == 0 {
            (Status::Failed, &[])
        } else {
            (Status::Done, &["cat", "animal"])
        };
        put(store, doc(&format!("{prefix}-{n:02}"), n, status, tags)).await;
    }
}

/// Newest first, keyset pages that neither skip nor repeat; malformed cursors are refused.
pub async fn pages_run_newest_first_and_neither_skip_nor_repeat<
    F: Fixture<Handle = Arc<dyn MetadataDb>>,
>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let prefix = unique_prefix();
    let id = |n: u32| format!("{prefix}-{n:02}");
    ten_documents(store.as_ref(), &prefix).await;
    let mut walked = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store
            .list(&ListQuery {
                tenants: tenants(),
                limit: 4,
                cursor: cursor.clone(),
                tag: None,
                status: None,
                q: None,
                uploaded_by: None,
            })
            .await
            .expect("list");
        walked.extend(
            page.items
                .iter()
                .map(|d| d.id.clone())
                .filter(|i| i.starts_with(&prefix)),
        );
        match page.next_cursor {
            Some(c) => cursor = Some(Cursor::decode(&c).expect("cursor")),
            None => break,
        }
    }
    let expected: Vec<String> = (0..=9).rev().map(id).collect();
    assert_eq!(walked, expected, "newest first, every document once");

    assert!(
        Cursor::decode("not a cursor!").is_err(),
        "malformed cursors are refused"
    );
}

/// Filters by status, by tag, and by both at once.
pub async fn filters_by_tag_and_status<F: Fixture<Handle = Arc<dyn MetadataDb>>>(fixture: &F) {
    let store = fixture.open().await;
    let prefix = unique_prefix();
    let id = |n: u32| format!("{prefix}-{n:02}");
    ten_documents(store.as_ref(), &prefix).await;

    let failed = store
        .list(&ListQuery {
            tenants: tenants(),
            limit: 50,
            status: Some(Status::Failed),
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(failed.items.iter().all(|d| d.status == Status::Failed));
    let failed: Vec<String> = failed
        .items
        .into_iter()
        .map(|d| d.id)
        .filter(|i| i.starts_with(&prefix))
        .collect();
    assert_eq!(failed, vec![id(9), id(6), id(3)]);
    let cats = store
        .list(&ListQuery {
            tenants: tenants(),
            limit: 50,
            tag: Some("cat".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(
        cats.items
            .iter()
            .filter(|d| d.id.starts_with(&prefix))
            .count(),
        6
    );
    assert!(
        cats.items
            .iter()
            .all(|d| d.tags.iter().any(|t| t.label == "cat"))
    );
    let both = ListQuery {
        tenants: tenants(),
        limit: 50,
        tag: Some("cat".into()),
        status: Some(Status::Failed),
        ..Default::default()
    };
    assert_eq!(
        store
            .list(&both)
            .await
            .expect("list")
            .items
            .iter()
            .filter(|d| d.id.starts_with(&prefix))
            .count(),
        0
    );
}

/// Tags follow the document: replacing a document's tags updates the counts. The labels are
/// unique to the test, so the counts are exact even in a shared database.
pub async fn tag_counts_follow_the_document<F: Fixture<Handle = Arc<dyn MetadataDb>>>(fixture: &F) {
    let store = fixture.open().await;
    let prefix = unique_prefix();
    let (cat, animal, dog) = (
        format!("cat-{prefix}"),
        format!("animal-{prefix}"),
        format!("dog-{prefix}"),
    );
    for n in 1..=9 {
        let tags: &[&str] = if n % 3 == 0 { &[] } else { &[&cat, &animal] };
        put(
            store.as_ref(),
            doc(&format!("{prefix}-{n:02}"), n, Status::Done, tags),
        )
        .await;
    }
    let counts = store.tag_counts(&tenants()).await.expect("counts");
    let count = |label: &str| {
        counts
            .iter()
            .find(|c| c.label == label)
            .map_or(0, |c| c.count)
    };
    assert_eq!((count(&cat), count(&animal)), (6, 6), "each image once");
    put(
        store.as_ref(),
        doc(&format!("{prefix}-01"), 1, Status::Done, &[&dog]),
    )
    .await;
    let after = store.tag_counts(&tenants()).await.expect("counts");
    let count_after = |label: &str| {
        after
            .iter()
            .find(|c| c.label == label)
            .map_or(0, |c| c.count)
    };
    assert_eq!(count_after(&cat), count(&cat) - 1);
    assert_eq!(
        (count_after(&animal), count_after(&dog)),
        (5, 1),
        "the replaced tags no longer count"
    );
    let position = |label: &str| after.iter().position(|c| c.label == label);
    assert!(
        position(&cat) < position(&dog),
        "most common first: {after:?}"
    );
}

fn line(text: &str) -> TextLine {
    TextLine {
        text: text.to_owned(),
        score: 0.9,
        bbox: BBox {
            x: 0,
            y: 0,
            width: 100,
            height: 20,
        },
    }
}

/// `q` finds documents whose file name, tags, categories or text contain every word, in any
/// case; `%` and `_` are literal; results are newest first, page like any list, combine with the
/// other filters and follow the document when it changes.
pub async fn words_are_searched<F: Fixture<Handle = Arc<dyn MetadataDb>>>(fixture: &F) {
    let store = fixture.open().await;
    let store = store.as_ref();
    let prefix = &unique_prefix();
    // A word unique to this run, in every document, so a shared database's others never match.
    let run = format!("zq{prefix}");
    let id = |n: u32| format!("{prefix}-s{n}");
    let mut scanned = doc(&id(1), 40, Status::Done, &["tabby"]);
    scanned.text = vec![
        line("Region-based SEGMENTATION"),
        line(&format!("ref {run}")),
    ];
    let mut coffee = doc(&id(2), 41, Status::Done, &["espresso"]);
    coffee.original.filename = format!("{run}-morning.jpg");
    let mut sale = doc(&id(3), 42, Status::Failed, &[]);
    sale.categories = vec![Category {
        name: format!("shop/{run}"),
        score: 0.8,
    }];
    sale.text = vec![line("Everything 50%_off")];
    for d in [&scanned, &coffee, &sale] {
        put(store, d.clone()).await;
    }
    let search = |q: String, status: Option<Status>| async move {
        let page = store
            .list(&ListQuery {
                tenants: tenants(),
                limit: 50,
                q: Some(q),
                status,
                ..Default::default()
            })
            .await
            .expect("search");
        page.items.into_iter().map(|d| d.id).collect::<Vec<_>>()
    };
    assert_eq!(
        search(run.clone(), None).await,
        [id(3), id(2), id(1)],
        "newest first"
    );
    assert_eq!(
        search(format!("segmentation {}", run.to_uppercase()), None).await,
        [id(1)],
        "text, any case, every word"
    );
    assert_eq!(
        search(format!("{run} espresso"), None).await,
        [id(2)],
        "tags"
    );
    assert_eq!(
        search(format!("{run} morning"), None).await,
        [id(2)],
        "file name"
    );
    assert_eq!(
        search(format!("shop {run}"), None).await,
        [id(3)],
        "categories"
    );
    assert_eq!(search(format!("{run} 0%_"), None).await, [id(3)]);
    assert!(
        search(format!("{run} 5_%"), None).await.is_empty(),
        "% and _ are literal"
    );
    assert_eq!(
        search(run.clone(), Some(Status::Done)).await,
        [id(2), id(1)],
        "combines with status"
    );

    let first = store
        .list(&ListQuery {
            tenants: tenants(),
            limit: 2,
            q: Some(run.clone()),
            ..Default::default()
        })
        .await
        .expect("search");
    let rest = store
        .list(&ListQuery {
            tenants: tenants(),
            limit: 2,
            q: Some(run.clone()),
            cursor: Some(
                Cursor::decode(first.next_cursor.as_deref().expect("more")).expect("cursor"),
            ),
            ..Default::default()
        })
        .await
        .expect("search");
    let ids: Vec<String> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(ids, [id(3), id(2), id(1)], "pages");
    assert!(rest.next_cursor.is_none());

    scanned.text.clear();
    put(store, scanned).await;
    assert!(
        search(format!("segmentation {run}"), None).await.is_empty(),
        "the index follows the document"
    );
    let too_many = ["a"; MAX_TERMS + 1].join(" ");
    assert!(
        store
            .list(&ListQuery {
                tenants: tenants(),
                limit: 5,
                q: Some(too_many),
                ..Default::default()
            })
            .await
            .is_err(),
        "an unbounded query is refused"
    );
}

/// The tag filter matches a category name as well as a label, so `tag=animal` finds cats and
/// dogs; categories follow the document; tag counts stay counts of labels.
pub async fn categories_are_found_by_the_tag_filter<F: Fixture<Handle = Arc<dyn MetadataDb>>>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let store = store.as_ref();
    let prefix = &unique_prefix();
    // Names unique to this run, so other runs' documents in a shared database do not count.
    let (animal, cat, dog) = (
        format!("animal-{prefix}"),
        format!("animal-{prefix}/cat"),
        format!("animal-{prefix}/dog"),
    );
    let with_categories = |n: u32, label: &str, names: &[&str]| {
        let mut d = doc(&format!("{prefix}-c{n}"), 30 + n, Status::Done, &[label]);
        d.categories = names
            .iter()
            .map(|name| Category {
                name: (*name).to_owned(),
                score: 0.9,
            })
            .collect();
        d
    };
    put(store, with_categories(1, "tabby", &[&animal, &cat])).await;
    put(store, with_categories(2, "beagle", &[&animal, &dog])).await;
    put(store, with_categories(3, "espresso", &[])).await;
    let found = |tag: String| async move {
        let page = store
            .list(&ListQuery {
                tenants: tenants(),
                limit: 50,
                tag: Some(tag),
                ..Default::default()
            })
            .await
            .expect("list");
        let mut ids: Vec<String> = page
            .items
            .into_iter()
            .map(|d| d.id)
            .filter(|i| i.starts_with(prefix))
            .collect();
        ids.sort();
        ids
    };
    let c = |n: u32| format!("{prefix}-c{n}");
    assert_eq!(found(animal.clone()).await, [c(1), c(2)]);
    assert_eq!(found(cat.clone()).await, [c(1)]);
    assert_eq!(found(dog.clone()).await, [c(2)]);
    assert_eq!(
        found("beagle".to_owned()).await,
        [c(2)],
        "labels still match"
    );
    let stored = store.get(&c(1)).await.expect("get").expect("doc");
    assert_eq!(
        stored,
        with_categories(1, "tabby", &[&animal, &cat]),
        "kept whole"
    );

    // Re-tagged as a dog: the category index follows the document.
    put(store, with_categories(1, "beagle", &[&animal, &dog])).await;
    assert!(found(cat.clone()).await.is_empty());
    assert_eq!(found(dog).await, [c(1), c(2)]);

    let counts = store.tag_counts(&tenants()).await.expect("counts");
    assert!(
        counts.iter().all(|t| !t.label.starts_with(&animal)),
        "tag counts are of labels, not categories"
    );
}

/// Lists, searches, tag filters and tag counts see only the tenants asked for; asking for none
/// finds nothing.
pub async fn tenants_see_only_their_own_images<F: Fixture<Handle = Arc<dyn MetadataDb>>>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let prefix = unique_prefix();
    let label = format!("{prefix}-cat");
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    for (n, tenant) in [(1, &a), (2, &a), (3, &b)] {
        let mut d = doc(&format!("{prefix}-{n}"), n, Status::Done, &[&label]);
        d.tenant = tenant.clone();
        put(store.as_ref(), d).await;
    }
    let ids = |page: crate::db::Page| page.items.into_iter().map(|d| d.id).collect::<Vec<_>>();
    let query = |tenants: Vec<String>, q: Option<String>, tag: Option<String>| ListQuery {
        tenants,
        limit: 50,
        q,
        tag,
        ..Default::default()
    };
    let of_a = store
        .list(&query(vec![a.clone()], None, Some(label.clone())))
        .await
        .expect("list");
    assert_eq!(ids(of_a), [format!("{prefix}-2"), format!("{prefix}-1")]);
    let searched = store
        .list(&query(vec![b.clone()], Some(label.clone()), None))
        .await
        .expect("search");
    assert_eq!(ids(searched), [format!("{prefix}-3")]);
    let both = store
        .list(&query(
            vec![a.clone(), b.clone()],
            None,
            Some(label.clone()),
        ))
        .await
        .expect("list");
    assert_eq!(both.items.len(), 3);
    let none = store
        .list(&query(Vec::new(), None, Some(label.clone())))
        .await
        .expect("list");
    assert!(none.items.is_empty(), "no tenant named, nothing found");
    let count = |counts: Vec<crate::db::TagCount>| {
        counts
            .into_iter()
            .find(|c| c.label == label)
            .map_or(0, |c| c.count)
    };
    assert_eq!(
        count(
            store
                .tag_counts(std::slice::from_ref(&a))
                .await
                .expect("counts")
        ),
        2
    );
    assert_eq!(
        count(
            store
                .tag_counts(std::slice::from_ref(&b))
                .await
                .expect("counts")
        ),
        1
    );
    assert_eq!(count(store.tag_counts(&[]).await.expect("counts")), 0);
}

/// A tenant's usage: its images and the bytes of their originals, nobody else's.
pub async fn usage_counts_a_tenants_images_and_bytes<F: Fixture<Handle = Arc<dyn MetadataDb>>>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let prefix = unique_prefix();
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    assert_eq!(
        store.usage(&a).await.expect("usage"),
        crate::db::Usage::default()
    );
    for (n, tenant, size) in [(1, &a, 1000), (2, &a, 2500), (3, &b, 7)] {
        let mut d = doc(&format!("{prefix}-{n}"), n, Status::Done, &[]);
        d.tenant = tenant.clone();
        d.original.size = size;
        put(store.as_ref(), d).await;
    }
    let usage = store.usage(&a).await.expect("usage");
    assert_eq!((usage.images, usage.bytes), (2, 3500));
    let usage = store.usage(&b).await.expect("usage");
    assert_eq!((usage.images, usage.bytes), (1, 7));
}

/// Uploads recorded per key: the list filtered by `uploaded_by` shows that key's images only,
/// and `uploader` names the key; recording twice is harmless.
pub async fn an_uploader_finds_its_own_uploads<F: Fixture<Handle = Arc<dyn MetadataDb>>>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let prefix = unique_prefix();
    let (mine, theirs) = (format!("{prefix}-mine"), format!("{prefix}-theirs"));
    for (n, key) in [(1, &mine), (2, &theirs), (3, &mine)] {
        let id = format!("{prefix}-{n}");
        store
            .record_upload(&id, TENANT, key)
            .await
            .expect("recorded");
        store
            .record_upload(&id, TENANT, key)
            .await
            .expect("recorded again");
        put(store.as_ref(), doc(&id, n, Status::Done, &[])).await;
    }
    let page = store
        .list(&ListQuery {
            tenants: tenants(),
            uploaded_by: Some(mine.clone()),
            limit: 50,
            ..Default::default()
        })
        .await
        .expect("list");
    let ids: Vec<String> = page.items.into_iter().map(|d| d.id).collect();
    assert_eq!(ids, [format!("{prefix}-3"), format!("{prefix}-1")]);
    assert_eq!(
        store
            .uploader(&format!("{prefix}-2"))
            .await
            .expect("uploader"),
        Some(theirs)
    );
    assert_eq!(
        store
            .uploader(&format!("{prefix}-9"))
            .await
            .expect("uploader"),
        None
    );
}
