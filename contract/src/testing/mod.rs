//! The conformance suite of each seam. Every backend runs every property as its own test through
//! one macro call ([`bus_conformance!`](crate::bus_conformance),
//! [`db_conformance!`](crate::db_conformance), [`store_conformance!`](crate::store_conformance)),
//! so a new backend gets the whole suite by adding one line, and a failure names the property.
//!
//! A macro takes a factory: an async function (or closure) that makes a fresh [`Fixture`], the
//! backend under test plus whatever keeps it alive (a temporary directory, a vhost, a schema, a
//! server). Each test calls the factory once, runs its property, then tears the fixture down,
//! whether the property passed or not. Properties keep to names of their own (queues, topics,
//! id prefixes made unique per test), so tests may share a backend and run in parallel.
//!
//! ```ignore
//! struct Embedded(tempfile::TempDir);
//!
//! impl imgpipe_contract::testing::Fixture for Embedded {
//!     type Handle = Arc<dyn Bus>;
//!     async fn open(&self) -> Arc<dyn Bus> {
//!         Arc::new(MyBus::open(&self.0.path().join("bus")).await.expect("open"))
//!     }
//! }
//!
//! async fn embedded() -> Embedded {
//!     Embedded(tempfile::tempdir().expect("tempdir"))
//! }
//!
//! mod my_bus {
//!     imgpipe_contract::bus_conformance!(super::embedded);
//! }
//! ```
//!
//! The expansion uses `#[tokio::test]`, so the calling crate needs `tokio` (with `macros` and
//! `rt-multi-thread`) among its dev-dependencies.

pub mod bus;
pub mod db;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A backend under test, made by a conformance macro's factory, one per test.
pub trait Fixture: Send + Sync + 'static {
    /// What a property works on: `Arc<dyn Bus>`, `Arc<dyn MetadataDb>` or `Arc<dyn ObjectStore>`.
    type Handle;

    /// A handle on the backend. The bus suite calls it again, once every earlier handle is
    /// dropped, to stand for a restarted process: the new handle must reach the same durable
    /// bus. The other suites call it once per test.
    fn open(&self) -> impl Future<Output = Self::Handle> + Send;

    /// Cleans up after the test (drops a schema, stops a server), whether it passed or not.
    fn teardown(self) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        async {}
    }
}

/// How long one property may take before its test fails instead of hanging (every wait inside
/// a property is bounded far below this; it catches a backend that never answers).
pub const PROPERTY_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs one conformance test: makes the fixture, runs `property` on it as a task of its own
/// (so a panic comes back as a value) within [`PROPERTY_TIMEOUT`], tears the fixture down, then
/// fails the test if the property failed. What the conformance macros expand to.
pub async fn run<Make, Made, F, P, Done>(make: Make, property: P)
where
    Make: FnOnce() -> Made,
    Made: Future<Output = F>,
    F: Fixture,
    P: FnOnce(Arc<F>) -> Done,
    Done: Future<Output = ()> + Send + 'static,
{
    let fixture = match tokio::time::timeout(PROPERTY_TIMEOUT, make()).await {
        Ok(fixture) => Arc::new(fixture),
        Err(_) => panic!("the backend under test was not ready within {PROPERTY_TIMEOUT:?}"),
    };
    let mut task = tokio::spawn(property(fixture.clone()));
    let outcome = match tokio::time::timeout(PROPERTY_TIMEOUT, &mut task).await {
        Ok(joined) => Some(joined),
        Err(_) => {
            task.abort();
            // Cancelled, the task drops its share of the fixture (unless it is stuck outside
            // an await, when the fixture is left as it is).
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
            None
        }
    };
    match Arc::try_unwrap(fixture) {
        Ok(fixture) => fixture.teardown().await,
        Err(_) if outcome.is_some() => panic!("a property kept its fixture beyond its end"),
        Err(_) => {}
    }
    match outcome {
        None => panic!("the property did not finish within {PROPERTY_TIMEOUT:?}"),
        Some(Err(failed)) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
        Some(Err(failed)) => panic!("the property's task ended abnormally: {failed}"),
        Some(Ok(())) => {}
    }
}

/// Expands to one test per property, each running `$crate::testing::$seam::$property` on a
/// fixture from `$factory`. Internal to the conformance macros.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($seam:ident, $factory:expr, [$($property:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $property() {
                $crate::testing::run($factory, |fixture| async move {
                    $crate::testing::$seam::$property(&*fixture).await
                })
                .await;
            }
        )*
    };
}
