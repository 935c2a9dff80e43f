//! Pages, filters and tag counts.

use super::*;

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
                ..Default::default()
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
