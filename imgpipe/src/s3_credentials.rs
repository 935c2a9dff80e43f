//! The embedded S3 endpoint's own credentials: made at random on first start and kept in
//! `DATA_DIR/s3-credentials.json` (mode 0600), unless the config names them. There is no built-in
//! key: a default anyone can read in the README would open every original to anyone.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use imgpipe_auth::secret_file::{random_hex, write_private};

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
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Credentials> {
    let path = data_dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is unreadable", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let credentials = Credentials {
                access_key: format!("imgpipe-{}", random_hex(8)?),
                secret_key: random_hex(30)?,
            };
            write_private(
                &path,
                &serde_json::to_vec_pretty(&credentials).unwrap_or_default(),
            )
            .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(credentials)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
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
