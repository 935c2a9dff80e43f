//! What every metadata backend guarantees: atomic read-modify-write per document (no lost
//! updates under concurrency), no write when the change says so, newest-first keyset pages that
//! neither skip nor repeat, filters by tag (a label or a category name) and status, word search
//! (`q`) over file name, tags, categories and text, and tag counts.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use imgpipe_contract::document::{BBox, Category, ImageDocument, Original, Status, Tag, TextLine};
use imgpipe_contract::db::{Cursor, ListQuery, MetadataDb};

fn doc(id: &str, minute: u32, status: Status, tags: &[&str]) -> ImageDocument {
    ImageDocument {
        id: id.to_owned(),
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
    assert!(
        store
            .update(&id, &move |_| Some(d.clone()))
            .await
            .expect("update"),
        "written"
    );
}

pub async fn suite(store: Arc<dyn MetadataDb>) {
    store.ping().await.expect("ping");
    let prefix = uuid::Uuid::now_v7().simple().to_string();
    let id = |n: u32| format!("{prefix}-{n:02}");

    // Create, read back, and a change that declines to write.
    assert!(store.get(&id(0)).await.expect("get").is_none());
    put(store.as_ref(), doc(&id(0), 0, Status::Pending, &[])).await;
    let stored = store.get(&id(0)).await.expect("get").expect("exists");
    assert_eq!(stored, doc(&id(0), 0, Status::Pending, &[]));
    assert!(
        !store.update(&id(0), &|_| None).await.expect("update"),
        "no write"
    );

    // Concurrent read-modify-writes of one document lose nothing.
    let mut tasks = Vec::new();
    for n in 0..16 {
        let (store, target) = (store.clone(), id(0));
        tasks.push(tokio::spawn(async move {
            let change = move |current: Option<ImageDocument>| {
                let mut d = current.expect("exists");
                d.tags.push(Tag {
                    label: format!("t{n}"),
                    score: 0.1,
                });
                Some(d)
            };
            store.update(&target, &change).await.expect("update")
        }));
    }
    for t in tasks {
        assert!(t.await.expect("task"));
    }
    assert_eq!(
        store
            .get(&id(0))
            .await
            .expect("get")
            .expect("doc")
            .tags
            .len(),
        16
    );

    // Newest first, keyset pages, filters.
    for n in 1..=9 {
        let (status, tags): (Status, &[&str]) = if n % 3 == 0 {
            (Status::Failed, &[])
        } else {
            (Status::Done, &["cat", "animal"])
        };
        put(store.as_ref(), doc(&id(n), n, status, tags)).await;
    }
    let mut walked = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store
            .list(&ListQuery {
                limit: 4,
                cursor: cursor.clone(),
                tag: None,
                status: None,
                q: None,
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

    let failed = store
        .list(&ListQuery {
            limit: 50,
            status: Some(Status::Failed),
            ..Default::default()
        })
        .await
        .expect("list");
    let failed: Vec<String> = failed
        .items
        .into_iter()
        .map(|d| d.id)
        .filter(|i| i.starts_with(&prefix))
        .collect();
    assert_eq!(failed, vec![id(9), id(6), id(3)]);
    let cats = store
        .list(&ListQuery {
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

    // Tags follow the document: replacing a document's tags updates the counts.
    let counts = store.tag_counts().await.expect("counts");
    let count = |label: &str| {
        counts
            .iter()
            .find(|c| c.label == label)
            .map_or(0, |c| c.count)
    };
    assert!(count("cat") >= 6 && count("animal") >= 6);
    put(store.as_ref(), doc(&id(1), 1, Status::Done, &["dog"])).await;
    let after = store.tag_counts().await.expect("counts");
    let count_after = |label: &str| {
        after
            .iter()
            .find(|c| c.label == label)
            .map_or(0, |c| c.count)
    };
    assert_eq!(count_after("cat"), count("cat") - 1);
    assert!(count_after("dog") >= 1);

    assert!(
        Cursor::decode("not a cursor!").is_err(),
        "malformed cursors are refused"
    );

    categories_are_found_by_the_tag_filter(store.as_ref(), &prefix).await;
    words_are_searched(store.as_ref(), &prefix).await;
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
async fn words_are_searched(store: &dyn MetadataDb, prefix: &str) {
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
            limit: 2,
            q: Some(run.clone()),
            ..Default::default()
        })
        .await
        .expect("search");
    let rest = store
        .list(&ListQuery {
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
    let too_many = ["a"; imgpipe_contract::db::MAX_TERMS + 1].join(" ");
    assert!(
        store
            .list(&ListQuery {
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
async fn categories_are_found_by_the_tag_filter(store: &dyn MetadataDb, prefix: &str) {
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

    let counts = store.tag_counts().await.expect("counts");
    assert!(
        counts.iter().all(|t| !t.label.starts_with(&animal)),
        "tag counts are of labels, not categories"
    );
}
