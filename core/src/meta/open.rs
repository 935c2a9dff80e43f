use std::sync::Arc;

use super::{MetaError, MetadataStore, PostgresMetadataStore, SqliteMetadataStore};
use crate::config::{Config, MetadataKind};

/// Opens the metadata backend the config names.
pub async fn open(config: &Config) -> Result<Arc<dyn MetadataStore>, MetaError> {
    Ok(match config.metadata.kind {
        MetadataKind::Sqlite => Arc::new(SqliteMetadataStore::open(&config.metadata_path()).await?),
        MetadataKind::Postgres => Arc::new(PostgresMetadataStore::connect(&config.metadata).await?),
    })
}
