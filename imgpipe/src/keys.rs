//! `imgpipe keys create|list|revoke`: API keys, managed beside a running pipeline (they live in
//! the metadata database, which every process reads).

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use imgpipe_auth::keys_api::make_key;
use imgpipe_contract::config::Config;
use imgpipe_contract::keys::{KeyRecord, Role};

#[derive(Debug, Args)]
pub struct KeysCommand {
    #[command(subcommand)]
    action: KeysAction,
    /// Directory of the embedded pipeline's data (its metadata database).
    #[arg(long, global = true)]
    data_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Make a key and print it once (it is stored only as a hash).
    Create {
        /// uploader, editor or admin.
        #[arg(long)]
        role: Role,
        /// The tenant the key acts for; an admin key may name several.
        #[arg(long = "tenant", required = true)]
        tenants: Vec<String>,
        /// A name for people (who or what uses the key).
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Every key (prefix, role, tenants, state), newest first; never the keys themselves.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id: every process refuses it within seconds.
    Revoke { id: String },
}

impl KeysCommand {
    pub async fn run(self, mut config: Config, out: &mut impl Write) -> anyhow::Result<()> {
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let (_, keys) = crate::backends::open_db_and_keys(&config).await?;
        match self.action {
            KeysAction::Create {
                role,
                tenants,
                name,
            } => {
                let (record, key) = make_key(keys.as_ref(), role, tenants, &name).await?;
                writeln!(out, "{key}")?;
                eprintln!(
                    "made {} key {} ({}) for {}: this is the only time the key is shown",
                    record.role,
                    record.id,
                    record.prefix,
                    record.tenants.join(", ")
                );
            }
            KeysAction::List { json } => {
                for key in keys.list_keys().await? {
                    if json {
                        writeln!(out, "{}", serde_json::to_string(&key)?)?;
                    } else {
                        writeln!(out, "{}", line(&key))?;
                    }
                }
            }
            KeysAction::Revoke { id } => {
                let record = keys.revoke_key(&id, chrono::Utc::now()).await?;
                writeln!(out, "{}", line(&record))?;
            }
        }
        Ok(())
    }
}

fn line(key: &KeyRecord) -> String {
    let state = match key.revoked_at {
        Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
        None => "active".to_owned(),
    };
    format!(
        "{}  {}  {:8}  {:24}  {}  {}",
        key.id,
        key.prefix,
        key.role,
        key.tenants.join(","),
        state,
        key.name
    )
}
