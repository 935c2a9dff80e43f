//! The conditions of a list or facet query, shared so both select exactly the same images.
//! Only the filters asked for go into the SQL, so each combination gets a plan that can use its
//! index (a generic plan for `$1 IS NULL OR ...` could not).

use imgpipe_contract::db::{DbError, ListQuery, like_patterns};
use sqlx::{Postgres, QueryBuilder};

/// Appends the query's conditions on `images` (unqualified columns), joined by AND.
pub(crate) fn push(sql: &mut QueryBuilder<'_, Postgres>, query: &ListQuery) -> Result<(), DbError> {
    sql.push("tenant = ANY(")
        .push_bind(query.tenants.clone())
        .push(")");
    if let Some(key_id) = &query.uploaded_by {
        sql.push(" AND id IN (SELECT image_id FROM uploads WHERE key_id = ")
            .push_bind(key_id.clone())
            .push(")");
    }
    if let Some(status) = query.status {
        sql.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(tag) = &query.tag {
        // Tag labels, category names and editor tags, lowercased (`ImageDocument::labels`).
        sql.push(" AND labels @> ARRAY[")
            .push_bind(tag.to_lowercase())
            .push("]::text[]");
    }
    if let Some(camera) = &query.camera {
        sql.push(" AND camera = ").push_bind(camera.clone());
    }
    if let Some(month) = &query.month {
        sql.push(" AND month = ").push_bind(month.clone());
    }
    // Served by the trigram index where the database has pg_trgm (`migrate::trigram_index`),
    // else by reading the search column of every row.
    for pattern in like_patterns(query.q.as_deref().unwrap_or(""))? {
        sql.push(" AND search LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\'");
    }
    Ok(())
}
