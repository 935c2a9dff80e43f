//! Per-test isolation on the real engines: a RabbitMQ vhost and a PostgreSQL schema that no
//! other test (or run) uses, removed afterwards whether the test passed or not.

use std::process::Command;

use imgpipe_contract::config::{BusConfig, BusKind, MetadataConfig, MetadataKind};

pub fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs (install RabbitMQ and run the tests as root)");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?} failed (is RabbitMQ running on this machine?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A vhost for one test, deleted (with everything in it) when dropped, even after a failure.
pub struct Vhost {
    pub name: String,
}

impl Vhost {
    pub fn create() -> Self {
        let name = format!("imgpipe-test-{}", uuid::Uuid::now_v7().simple());
        rabbitmqctl(&["add_vhost", &name]);
        let vhost = Vhost { name };
        rabbitmqctl(&[
            "set_permissions",
            "-p",
            &vhost.name,
            "guest",
            ".*",
            ".*",
            ".*",
        ]);
        vhost
    }

    pub fn config(&self) -> BusConfig {
        BusConfig {
            kind: BusKind::Rabbitmq,
            // The name holds only [a-z0-9-], so it needs no percent-encoding.
            url: format!("amqp://guest:guest@127.0.0.1:5672/{}", self.name),
            prefix: "test".to_owned(),
            prefetch: 16,
        }
    }

    pub fn close_connections(&self) {
        rabbitmqctl(&["close_all_connections", "--vhost", &self.name, "test"]);
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.name])
            .output();
    }
}

/// Settings for PostgreSQL at 127.0.0.1:5432 (database `test`, or `IMGPIPE_TEST_POSTGRES_URL`) in
/// a schema of its own; drop it with `PostgresDb::drop_schema`.
pub fn fresh_postgres() -> MetadataConfig {
    MetadataConfig {
        kind: MetadataKind::Postgres,
        url: std::env::var("IMGPIPE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
        schema: format!("test_{}", uuid::Uuid::now_v7().simple()),
        max_connections: 8,
    }
}
