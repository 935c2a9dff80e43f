//! Writes: one document at a time, atomically, only when the change says so.

use super::*;

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
