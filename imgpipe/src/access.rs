//! Access control at start: the embedded S3 endpoint's credentials, the refusal to serve a
//! network without access control, and the first admin key.

use std::io::IsTerminal;
use std::net::SocketAddr;

use anyhow::Context;
use imgpipe_auth::bootstrap::{admin_key_path, first_admin_key};
use imgpipe_contract::config::Config;
use imgpipe_runtime::Deps;

use crate::roles::Roles;

/// Fills in what the config leaves to this process: the embedded S3 endpoint's credentials
/// (made once, kept in `DATA_DIR`) when it serves the endpoint and none are configured. Refuses
/// to serve a non-loopback address with access control off unless `access.insecure` says so.
pub fn prepare(config: &mut Config, roles: Roles, addr: SocketAddr) -> anyhow::Result<()> {
    if !config.access.enabled && !addr.ip().is_loopback() && !config.access.insecure {
        anyhow::bail!(
            "refusing to serve {addr} with access control off (access.enabled = false): anyone \
             who reaches it could read and change every image; turn access control on, listen \
             on a loopback address, or pass --insecure if that is really meant"
        );
    }
    if roles.serves_s3(config) && config.object_store.access_key.is_empty() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let made = crate::s3_credentials::load_or_create(&config.data_dir)?;
        let os = &mut config.object_store;
        (os.access_key, os.secret_key) = (made.access_key, made.secret_key);
    }
    if config.object_store.access_key.is_empty() || config.object_store.secret_key.is_empty() {
        anyhow::bail!(
            "object_store.access_key and object_store.secret_key are not set \
             (IMGPIPE_OBJECT_STORE__ACCESS_KEY, IMGPIPE_OBJECT_STORE__SECRET_KEY): this process \
             does not serve the embedded S3 endpoint, so it needs the credentials of the one it uses"
        );
    }
    Ok(())
}

/// With no keys at all, the process that owns the documents makes the first admin key. It is
/// printed only to a terminal (a container's log is no place for a secret) and kept in
/// `DATA_DIR/admin-key` (mode 0600) either way.
pub async fn first_key(config: &Config, roles: Roles, deps: &Deps) -> anyhow::Result<()> {
    if !roles.metadata_store || !config.access.enabled {
        return Ok(());
    }
    let Some(key) = first_admin_key(deps.keys.as_ref(), &config.data_dir).await? else {
        return Ok(());
    };
    let path = admin_key_path(&config.data_dir);
    if std::io::stderr().is_terminal() {
        eprintln!(
            "\nFirst start: made an admin key for tenant \"default\" (also in {}):\n\n    {key}\n\n\
             Paste it into the page's sign-in. `imgpipe keys create` makes more.\n",
            path.display()
        );
    } else {
        eprintln!(
            "First start: made an admin key for tenant \"default\"; it is in {} (mode 0600)",
            path.display()
        );
    }
    Ok(())
}
