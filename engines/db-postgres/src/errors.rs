//! Sorting PostgreSQL errors by what the caller should do about them: retry (`Unavailable`) or
//! give up (`Corrupt` for a document, `InvalidQuery` for a request).

use imgpipe_contract::db::DbError;

/// An error while reading: a value the database refuses (a NUL byte in a tag filter or cursor)
/// is the request's fault.
pub(crate) fn on_read(e: sqlx::Error) -> DbError {
    classify(e, DbError::InvalidQuery)
}

/// An error while writing: a value the database refuses (a NUL character, which JSONB cannot
/// hold) is the document's fault, and retrying would only fail again.
pub(crate) fn on_write(e: sqlx::Error) -> DbError {
    classify(e, DbError::Corrupt)
}

fn classify(e: sqlx::Error, refused: fn(String) -> DbError) -> DbError {
    match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            DbError::Corrupt(e.to_string())
        }
        // SQLSTATE class 22 is "data exception": the value, not the server, is at fault.
        sqlx::Error::Database(db) if db.code().is_some_and(|code| code.starts_with("22")) => {
            refused(format!("the database refused a value: {db}"))
        }
        // Connection loss, pool timeouts, deadlocks, serialisation failures: worth a retry.
        other => DbError::Unavailable(other.to_string()),
    }
}

/// Any other database error: the server is unreachable or busy; worth a retry.
pub(crate) fn unavailable(e: sqlx::Error) -> DbError {
    DbError::Unavailable(e.to_string())
}
