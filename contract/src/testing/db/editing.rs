//! Editors' tags, facets, deletion and the change feed.

use std::sync::Arc;

use super::{doc, put, unique_prefix};
use crate::db::{FacetCount, ListQuery, MetadataDb};
use crate::document::{CameraInfo, Category, ImageDocument, Status};
use crate::testing::Fixture;

/// The ids of `query`'s first page.
async fn ids(store: &dyn MetadataDb, query: ListQuery) -> Vec<String> {
    let page = store.list(&query).await.expect("list");
    page.items.into_iter().map(|d| d.id).collect()
}

fn in_tenant(tenant: &str) -> ListQuery {
    ListQuery {
        tenants: vec![tenant.to_owned()],
        limit: 50,
        ..Default::default()
    }
}

fn counts(pairs: &[(&str, u64)]) -> Vec<FacetCount> {
    pairs
        .iter()
        .map(|(value, count)| FacetCount {
            value: (*value).to_owned(),
            count: *count,
        })
        .collect()
}

/// `?tag=` ignores case and finds model tags, categories and an editor's tags; `?q=` finds an
/// editor's tags too.
pub async fn editor_tags_are_found_like_the_models_in_any_case<
    F: Fixture<Handle = Arc<dyn MetadataDb>>,
>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let tenant = format!("t{}", unique_prefix());
    let mut d = doc(&format!("{tenant}-1"), 1, Status::Done, &["Egyptian cat"]);
    d.tenant = tenant.clone();
    d.editor_tags = vec!["Election 2026".to_owned()];
    let mut other = doc(&format!("{tenant}-2"), 2, Status::Done, &["tabby"]);
    other.tenant = tenant.clone();
    put(store.as_ref(), d.clone()).await;
    put(store.as_ref(), other).await;
    for tag in [
        "egyptian CAT",
        "Egyptian cat",
        "election 2026",
        "ELECTION 2026",
    ] {
        let query = ListQuery {
            tag: Some(tag.to_owned()),
            ..in_tenant(&tenant)
        };
        assert_eq!(
            ids(store.as_ref(), query).await,
            vec![d.id.clone()],
            "tag {tag}"
        );
    }
    let query = ListQuery {
        q: Some("election".to_owned()),
        ..in_tenant(&tenant)
    };
    assert_eq!(ids(store.as_ref(), query).await, vec![d.id.clone()]);
    let back = store.get(&d.id).await.expect("get").expect("there");
    assert_eq!(back.editor_tags, vec!["Election 2026".to_owned()]);
}

fn camera(make: &str, model: &str, taken_at: Option<&str>) -> Option<CameraInfo> {
    Some(CameraInfo {
        make: Some(make.to_owned()),
        model: Some(model.to_owned()),
        taken_at: taken_at.map(str::to_owned),
        ..Default::default()
    })
}

/// Facets count status, categories, tags, cameras and months of the query's images, each
/// without its own filter; the camera and month filters select what their facet counted.
pub async fn facets_count_each_value_without_their_own_filter<
    F: Fixture<Handle = Arc<dyn MetadataDb>>,
>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let tenant = format!("t{}", unique_prefix());
    let make = |n: u32, status: Status, tags: &[&str], category: &str, cam: Option<CameraInfo>| {
        let mut d: ImageDocument = doc(&format!("{tenant}-{n}"), n, status, tags);
        d.tenant = tenant.clone();
        d.categories = vec![Category {
            name: category.to_owned(),
            score: 0.9,
        }];
        d.original.camera = cam;
        d
    };
    let docs = [
        make(
            1,
            Status::Done,
            &["tabby"],
            "animal/cat",
            camera("Canon", "Canon EOS R5", Some("2019-05-01T10:00:00")),
        ),
        make(
            2,
            Status::Done,
            &["tabby", "lynx"],
            "animal/cat",
            camera("FUJIFILM", "X-T4", Some("2019-05-03T10:00:00")),
        ),
        make(
            3,
            Status::Failed,
            &["tram"],
            "vehicle",
            camera("Canon", "Canon EOS R5", None),
        ),
        make(4, Status::Done, &["lynx"], "animal", None),
    ];
    for d in &docs {
        put(store.as_ref(), d.clone()).await;
    }
    let all = store.facets(&in_tenant(&tenant)).await.expect("facets");
    assert_eq!(all.status, counts(&[("done", 3), ("failed", 1)]));
    assert_eq!(
        all.categories,
        counts(&[("animal/cat", 2), ("animal", 1), ("vehicle", 1)])
    );
    assert_eq!(all.tags, counts(&[("lynx", 2), ("tabby", 2), ("tram", 1)]));
    assert_eq!(
        all.cameras,
        counts(&[("Canon EOS R5", 2), ("FUJIFILM X-T4", 1)])
    );
    // Taken in May 2019 when the camera says so, else the upload's month (the fixture's 2026-01).
    assert_eq!(all.months, counts(&[("2026-01", 2), ("2019-05", 2)]));

    let failed = ListQuery {
        status: Some(Status::Failed),
        ..in_tenant(&tenant)
    };
    let facets = store.facets(&failed).await.expect("facets");
    assert_eq!(
        facets.status,
        counts(&[("done", 3), ("failed", 1)]),
        "the status facet ignores the status filter"
    );
    assert_eq!(facets.categories, counts(&[("vehicle", 1)]));
    assert_eq!(facets.cameras, counts(&[("Canon EOS R5", 1)]));

    let by_camera = ListQuery {
        camera: Some("Canon EOS R5".to_owned()),
        ..in_tenant(&tenant)
    };
    assert_eq!(
        ids(store.as_ref(), by_camera).await,
        vec![docs[2].id.clone(), docs[0].id.clone()]
    );
    let by_month = ListQuery {
        month: Some("2019-05".to_owned()),
        ..in_tenant(&tenant)
    };
    assert_eq!(
        ids(store.as_ref(), by_month).await,
        vec![docs[1].id.clone(), docs[0].id.clone()]
    );
    let other = store
        .facets(&in_tenant(&format!("{tenant}-other")))
        .await
        .expect("facets");
    assert!(
        other.status.is_empty() && other.tags.is_empty(),
        "{other:?}"
    );
}

/// Every write and deletion adds a feed entry, in order, per tenant; a deleted document is
/// gone from reads, lists and facets, and deleting it again says there was nothing.
pub async fn the_feed_lists_writes_and_deletions_in_order<
    F: Fixture<Handle = Arc<dyn MetadataDb>>,
>(
    fixture: &F,
) {
    let store = fixture.open().await;
    let tenant = format!("t{}", unique_prefix());
    let mut a = doc(&format!("{tenant}-a"), 1, Status::Pending, &[]);
    a.tenant = tenant.clone();
    let mut b = doc(&format!("{tenant}-b"), 2, Status::Pending, &["tabby"]);
    b.tenant = tenant.clone();
    put(store.as_ref(), a.clone()).await;
    put(store.as_ref(), b.clone()).await;
    a.status = Status::Done;
    put(store.as_ref(), a.clone()).await;
    assert!(store.delete(&b.id).await.expect("delete"), "it was there");
    assert!(!store.delete(&b.id).await.expect("delete again"), "gone");
    assert!(store.was_deleted(&b.id).await.expect("was deleted"));
    assert!(!store.was_deleted(&a.id).await.expect("was deleted"));

    let tenants = vec![tenant.clone()];
    let feed = store.feed(0, &tenants, 100).await.expect("feed");
    let seen: Vec<(&str, bool)> = feed
        .iter()
        .map(|e| (e.image_id.as_str(), e.deleted))
        .collect();
    assert_eq!(
        seen,
        vec![
            (a.id.as_str(), false),
            (b.id.as_str(), false),
            (a.id.as_str(), false),
            (b.id.as_str(), true)
        ]
    );
    assert!(feed.windows(2).all(|w| w[0].seq < w[1].seq), "{feed:?}");
    assert!(feed.iter().all(|e| e.tenant == tenant));
    let head = store.feed_head().await.expect("head");
    assert!(head >= feed[3].seq, "the head is at least the newest entry");
    let rest = store.feed(feed[1].seq, &tenants, 100).await.expect("feed");
    assert_eq!(rest, feed[2..].to_vec(), "resumes after the last seen");
    let limited = store.feed(0, &tenants, 1).await.expect("feed");
    assert_eq!(limited, feed[..1].to_vec());
    let others = store
        .feed(0, &[format!("{tenant}-other")], 100)
        .await
        .expect("feed");
    assert!(others.is_empty(), "another tenant's feed: {others:?}");

    assert_eq!(store.get(&b.id).await.expect("get"), None);
    assert_eq!(
        ids(store.as_ref(), in_tenant(&tenant)).await,
        vec![a.id.clone()]
    );
    let facets = store.facets(&in_tenant(&tenant)).await.expect("facets");
    assert_eq!(facets.status, counts(&[("done", 1)]));
    assert!(facets.tags.is_empty(), "{facets:?}");
}
