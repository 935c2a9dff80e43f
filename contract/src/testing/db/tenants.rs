//! Tenants, their usage, and uploaders' own uploads.

use super::*;

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

/// A caller of several tenants pages through their images merged, newest first, neither
/// skipping nor repeating one.
pub async fn pages_over_several_tenants_merge_newest_first<
    F: Fixture<Handle = Arc<dyn MetadataDb>>,
>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let prefix = unique_prefix();
    let tenants = vec![format!("a{prefix}"), format!("b{prefix}")];
    let mut expected = Vec::new();
    for n in 0..9u32 {
        let mut d = doc(&format!("{prefix}-{n}"), n, Status::Done, &["tabby"]);
        d.tenant = tenants[(n % 2) as usize].clone();
        expected.push(d.id.clone());
        put(store.as_ref(), d).await;
    }
    expected.reverse();
    let mut walked = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(&ListQuery {
                tenants: tenants.clone(),
                limit: 2,
                cursor: cursor.clone(),
                tag: Some("TABBY".to_owned()),
                ..Default::default()
            })
            .await
            .expect("list");
        walked.extend(page.items.into_iter().map(|d| d.id));
        match page.next_cursor {
            Some(c) => cursor = Some(crate::db::Cursor::decode(&c).expect("cursor")),
            None => break,
        }
    }
    assert_eq!(walked, expected);
}
