//! Facet counts: each facet counted over the images the query selects without its own filter.

use imgpipe_contract::db::{DbError, FACET_TAGS, Facet, FacetCount, Facets, ListQuery};
use sqlx::{PgPool, Postgres, QueryBuilder, Row};

use crate::errors::on_read;
use crate::filter;

pub(crate) async fn facets(pool: &PgPool, query: &ListQuery) -> Result<Facets, DbError> {
    let tags = format!(
        "SELECT label, count(*) AS n FROM ( \
             SELECT DISTINCT f.id, x.label FROM f, LATERAL ( \
                 SELECT t ->> 'label' AS label FROM jsonb_array_elements(f.doc -> 'tags') t \
                 UNION SELECT e FROM jsonb_array_elements_text(f.doc -> 'editor_tags') e) x \
         ) pairs WHERE label IS NOT NULL \
         GROUP BY label ORDER BY n DESC, label COLLATE \"C\" LIMIT {FACET_TAGS}"
    );
    Ok(Facets {
        status: count(
            pool,
            query.without(Facet::Status),
            "SELECT status, count(*) AS n FROM f GROUP BY status ORDER BY n DESC, status",
        )
        .await?,
        categories: count(
            pool,
            query.without(Facet::Label),
            "SELECT c ->> 'name' AS name, count(*) AS n \
             FROM f, jsonb_array_elements(f.doc -> 'categories') c \
             GROUP BY 1 ORDER BY n DESC, 1",
        )
        .await?,
        tags: count(pool, query.without(Facet::Label), &tags).await?,
        cameras: count(
            pool,
            query.without(Facet::Camera),
            "SELECT camera, count(*) AS n FROM f WHERE camera IS NOT NULL \
             GROUP BY camera ORDER BY n DESC, camera LIMIT 100",
        )
        .await?,
        months: count(
            pool,
            query.without(Facet::Month),
            "SELECT month, count(*) AS n FROM f WHERE month IS NOT NULL \
             GROUP BY month ORDER BY month DESC LIMIT 240",
        )
        .await?,
    })
}

/// Runs `select` (reading `f`: the images `query` selects) into value counts.
async fn count(pool: &PgPool, query: ListQuery, select: &str) -> Result<Vec<FacetCount>, DbError> {
    let mut sql = QueryBuilder::<Postgres>::new(
        "WITH f AS (SELECT id, status, camera, month, doc FROM images WHERE ",
    );
    filter::push(&mut sql, &query)?;
    sql.push(") ").push(select);
    let rows = sql.build().fetch_all(pool).await.map_err(on_read)?;
    rows.iter()
        .map(|r| {
            Ok(FacetCount {
                value: r.try_get(0).map_err(on_read)?,
                count: u64::try_from(r.try_get::<i64, _>(1).map_err(on_read)?).unwrap_or_default(),
            })
        })
        .collect()
}
