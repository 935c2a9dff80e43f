use std::sync::Arc;

use super::{Bus, BusError, RabbitBus, SqliteBus};
use crate::config::{BusKind, Config};

/// Opens the bus backend the config names, for a process that consumes from it.
pub async fn open(config: &Config) -> Result<Arc<dyn Bus>, BusError> {
    Ok(match config.bus.kind {
        BusKind::Embedded => Arc::new(SqliteBus::open(&config.bus_path()).await?),
        BusKind::Rabbitmq => Arc::new(RabbitBus::connect(&config.bus).await?),
    })
}

/// Opens the bus the config names beside the process that runs the pipeline, for operations
/// (listing and replaying dead letters): the embedded queue must already exist and keeps its
/// owner's leases (see [`SqliteBus::attach`]). RabbitMQ is shared anyway, so this is [`open`].
pub async fn attach(config: &Config) -> Result<Arc<dyn Bus>, BusError> {
    Ok(match config.bus.kind {
        BusKind::Embedded => Arc::new(SqliteBus::attach(&config.bus_path()).await?),
        BusKind::Rabbitmq => Arc::new(RabbitBus::connect(&config.bus).await?),
    })
}
