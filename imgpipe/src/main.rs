//! `imgpipe`: run the whole pipeline (`up`) or any one service. Reads config, composes, runs.

mod cli;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::Cli::parse().run().await
}
