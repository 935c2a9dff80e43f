//! Word search (`q`) and categories found by the tag filter.

use super::*;

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
