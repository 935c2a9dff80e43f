//! The first key: a pipeline with no keys at all makes one admin key for the tenant `default`
//! at start, prints it once, and keeps it in `DATA_DIR/admin-key` (mode 0600) so the person who
//! started it can find it again. Nobody else can: there is no built-in key.

use std::path::{Path, PathBuf};

use imgpipe_contract::keys::{KeyError, KeyStore, Role};

use crate::keys_api::{MakeKeyError, make_key_with_id};
use crate::secret_file::write_private;

/// The tenant of the first key, and of documents written before tenants existed.
pub const DEFAULT_TENANT: &str = "default";

/// The id of the first admin key (revoke it with `imgpipe keys revoke first-admin`).
pub const FIRST_ADMIN_KEY_ID: &str = "first-admin";

/// The file the first admin key is written to.
pub fn admin_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-key")
}

/// Makes the first admin key when `keys` holds none; returns it (to print) or None.
pub async fn first_admin_key(
    keys: &dyn KeyStore,
    data_dir: &Path,
) -> Result<Option<String>, MakeKeyError> {
    if !keys
        .list_keys()
        .await
        .map_err(MakeKeyError::Store)?
        .is_empty()
    {
        return Ok(None);
    }
    // A fixed id: processes starting together on one empty database make one key between them,
    // and only the one that made it writes and prints it.
    let made = make_key_with_id(
        keys,
        FIRST_ADMIN_KEY_ID.to_owned(),
        Role::Admin,
        vec![DEFAULT_TENANT.to_owned()],
        "first admin key (made at first start)",
    )
    .await;
    let key = match made {
        Ok((_, key)) => key,
        Err(MakeKeyError::Store(KeyError::Duplicate)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let path = admin_key_path(data_dir);
    write_private(&path, format!("{key}\n").as_bytes())
        .map_err(|e| MakeKeyError::Invalid(format!("cannot write {}: {e}", path.display())))?;
    Ok(Some(key))
}
