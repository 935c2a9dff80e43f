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
            earlier_etags: Vec::new(),
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
        editor_tags: Vec::new(),
        retrying: None,
        stages: Default::default(),
        links: None,
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
                editor_tags_are_found_like_the_models_in_any_case,
                facets_count_each_value_without_their_own_filter,
                the_feed_lists_writes_and_deletions_in_order,
                pages_over_several_tenants_merge_newest_first,
            ]
        );
    };
}

mod editing;
mod queries;
mod search;
mod tenants;
mod writes;

pub use editing::*;
pub use queries::*;
pub use search::*;
pub use tenants::*;
pub use writes::*;
