//! Facet counts: each facet counted over the images the query selects without its own filter.

use imgpipe_contract::db::{DbError, FACET_TAGS, Facet, FacetCount, Facets, ListQuery};
use sqlx::{Row, SqlitePool};

use crate::filter::{Filter, bind_all};
use crate::unavailable;

pub(crate) async fn facets(pool: &SqlitePool, query: &ListQuery) -> Result<Facets, DbError> {
    let tags = format!(
        "SELECT t.label, COUNT(*) AS n FROM image_tags t JOIN f ON f.id = t.image_id \
         GROUP BY t.label ORDER BY n DESC, t.label LIMIT {FACET_TAGS}"
    );
    Ok(Facets {
        status: count(
            pool,
            query.without(Facet::Status),
            "SELECT status, COUNT(*) AS n FROM f GROUP BY status ORDER BY n DESC, status",
        )
        .await?,
        categories: count(
            pool,
            query.without(Facet::Label),
            "SELECT c.name, COUNT(*) AS n FROM image_categories c JOIN f ON f.id = c.image_id \
             GROUP BY c.name ORDER BY n DESC, c.name",
        )
        .await?,
        tags: count(pool, query.without(Facet::Label), &tags).await?,
        cameras: count(
            pool,
            query.without(Facet::Camera),
            "SELECT camera, COUNT(*) AS n FROM f WHERE camera IS NOT NULL \
             GROUP BY camera ORDER BY n DESC, camera LIMIT 100",
        )
        .await?,
        months: count(
            pool,
            query.without(Facet::Month),
            "SELECT month, COUNT(*) AS n FROM f WHERE month IS NOT NULL \
             GROUP BY month ORDER BY month DESC LIMIT 240",
        )
        .await?,
    })
}

/// Runs `select` (reading `f`: the images `query` selects) into value counts.
async fn count(
    pool: &SqlitePool,
    query: ListQuery,
    select: &str,
) -> Result<Vec<FacetCount>, DbError> {
    let filter = Filter::of(&query)?;
    let sql = format!(
        "WITH f AS (SELECT i.id, i.status, i.camera, i.month FROM images i WHERE {}) {select}",
        filter.sql
    );
    let rows = bind_all(sqlx::query(&sql), filter.args)
        .fetch_all(pool)
        .await
        .map_err(unavailable)?;
    Ok(rows
        .iter()
        .map(|r| FacetCount {
            value: r.get::<String, _>(0),
            count: u64::try_from(r.get::<i64, _>(1)).unwrap_or_default(),
        })
        .collect())
}
