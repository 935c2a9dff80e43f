//! The embedded endpoint's own credentials: made at random on first start and kept in
//! `DATA_DIR/s3-credentials.json` (mode 0600), unless the config names them. There is no built-in
//! key: a default anyone can read in the README would open every original to anyone.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::S3ServerError;

const FILE: &str = "s3-credentials.json";

/// An access key and its secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// The credentials kept in `data_dir`, made and saved (0600) on first use.
pub fn load_or_create(data_dir: &Path) -> Result<Credentials, S3ServerError> {
    let path = data_dir.join(FILE);
    let invalid = |message: String| S3ServerError::InvalidConfig(message);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("{} is unreadable: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let credentials = Credentials {
                access_key: format!("imgpipe-{}", random_text(8)?),
                secret_key: random_text(30)?,
            };
            write_private(
                &path,
                &serde_json::to_vec_pretty(&credentials).unwrap_or_default(),
            )
            .map_err(|source| S3ServerError::CreateDir {
                path: path.clone(),
                source,
            })?;
            Ok(credentials)
        }
        Err(e) => Err(invalid(format!("cannot read {}: {e}", path.display()))),
    }
}

fn random_text(bytes: usize) -> Result<String, S3ServerError> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf)
        .map_err(|e| S3ServerError::InvalidConfig(format!("no random numbers: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes a file only its owner may read, created with that mode (never readable in between).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_private_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = load_or_create(dir.path()).expect("made");
        let again = load_or_create(dir.path()).expect("read");
        assert_eq!(first, again);
        assert!(first.secret_key.len() >= 40 && first.access_key.starts_with("imgpipe-"));
        assert_ne!(first.secret_key, "imgpipe-local-secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().expect("tempdir");
        assert_ne!(load_or_create(other.path()).expect("made"), first);
        assert!(!format!("{first:?}").contains(&first.secret_key));
    }
}
