use std::path::PathBuf;

/// Why the embedded S3 endpoint could not be started. All are permanent: fix the configuration
/// or the file system and start again.
#[derive(Debug, thiserror::Error)]
pub enum S3ServerError {
    /// A configuration value is unusable (empty credentials, an invalid bucket name, ...).
    #[error("invalid embedded S3 configuration: {0}")]
    InvalidConfig(String),
    /// The objects directory or a bucket directory could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file-system backend refused to open the objects directory.
    #[error("cannot open object directory {path}: {message}")]
    Backend { path: PathBuf, message: String },
}
