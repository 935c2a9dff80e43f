//! The WHERE clause of a list or facet query, shared so both select exactly the same images.

use imgpipe_contract::db::{DbError, ListQuery, like_patterns};

/// A value bound to a `?` of the clause, in order.
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
}

pub(crate) struct Filter {
    /// Conditions on `images i`, joined by AND (never empty: the tenant condition is always
    /// there).
    pub sql: String,
    pub args: Vec<Arg>,
}

impl Filter {
    pub(crate) fn of(query: &ListQuery) -> Result<Filter, DbError> {
        // One tenant (nearly every caller) as an equality, so the newest-first index of that
        // tenant serves the order and a page reads its rows only: with an IN list SQLite sorts
        // every row of the tenants (a third of a second over 100,000 documents).
        let (mut conditions, mut args) = match query.tenants.as_slice() {
            [tenant] => (
                vec!["i.tenant = ?".to_owned()],
                vec![Arg::Text(Some(tenant.clone()))],
            ),
            tenants => {
                let json = serde_json::to_string(tenants)
                    .map_err(|e| DbError::InvalidQuery(e.to_string()))?;
                (
                    vec!["i.tenant IN (SELECT value FROM json_each(?))".to_owned()],
                    vec![Arg::Text(Some(json))],
                )
            }
        };
        if let Some(key) = &query.uploaded_by {
            conditions.push("i.id IN (SELECT u.image_id FROM uploads u WHERE u.key_id = ?)".into());
            args.push(Arg::Text(Some(key.clone())));
        }
        if let Some(status) = query.status {
            conditions.push("i.status = ?".into());
            args.push(Arg::Text(Some(status.as_str().to_owned())));
        }
        if let Some(tag) = &query.tag {
            conditions.push(
                "EXISTS (SELECT 1 FROM image_labels l WHERE l.image_id = i.id AND l.label = ?)"
                    .into(),
            );
            args.push(Arg::Text(Some(tag.to_lowercase())));
        }
        if let Some(camera) = &query.camera {
            conditions.push("i.camera = ?".into());
            args.push(Arg::Text(Some(camera.clone())));
        }
        if let Some(month) = &query.month {
            conditions.push("i.month = ?".into());
            args.push(Arg::Text(Some(month.clone())));
        }
        let patterns = like_patterns(query.q.as_deref().unwrap_or(""))?;
        if !patterns.is_empty() {
            let words: Vec<&str> = patterns
                .iter()
                .map(|_| "s.body LIKE ? ESCAPE '\\'")
                .collect();
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM image_search s WHERE s.image_id = i.id AND {})",
                words.join(" AND ")
            ));
            args.extend(patterns.into_iter().map(|p| Arg::Text(Some(p))));
        }
        Ok(Filter {
            sql: conditions.join(" AND "),
            args,
        })
    }
}

/// Binds `args` in order to `query`.
pub(crate) fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for arg in args {
        query = match arg {
            Arg::Text(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
        };
    }
    query
}

/// The SELECT of one page (`limit` + 1 rows, to know whether there is more) and its arguments.
/// Several tenants are read one index scan each and merged: an `IN` list of tenants would make
/// SQLite sort every row of them for each page.
pub(crate) fn page_sql(query: &ListQuery, limit: u32) -> Result<(String, Vec<Arg>), DbError> {
    let one_tenant = |query: &ListQuery, args: &mut Vec<Arg>| -> Result<String, DbError> {
        let filter = Filter::of(query)?;
        args.extend(filter.args);
        let after = match &query.cursor {
            Some(c) => {
                args.push(Arg::Int(Some(c.created_at_ms)));
                args.push(Arg::Int(Some(c.created_at_ms)));
                args.push(Arg::Text(Some(c.id.clone())));
                " AND (i.created_at < ? OR (i.created_at = ? AND i.id < ?))"
            }
            None => "",
        };
        args.push(Arg::Int(Some(i64::from(limit) + 1)));
        Ok(format!(
            "SELECT i.id, i.created_at, i.doc FROM images i WHERE {}{after} \
             ORDER BY i.created_at DESC, i.id DESC LIMIT ?",
            filter.sql
        ))
    };
    let mut args = Vec::new();
    if query.tenants.len() < 2 {
        let sql = one_tenant(query, &mut args)?;
        return Ok((sql, args));
    }
    let mut scans = Vec::with_capacity(query.tenants.len());
    for tenant in &query.tenants {
        let alone = ListQuery {
            tenants: vec![tenant.clone()],
            ..query.clone()
        };
        scans.push(format!(
            "SELECT * FROM ({})",
            one_tenant(&alone, &mut args)?
        ));
    }
    args.push(Arg::Int(Some(i64::from(limit) + 1)));
    let sql = format!(
        "SELECT id, created_at, doc FROM ({}) ORDER BY created_at DESC, id DESC LIMIT ?",
        scans.join(" UNION ALL ")
    );
    Ok((sql, args))
}
