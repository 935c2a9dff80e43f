//! One decode memory budget for the whole process (`resizer.decode_memory_mb`), shared by all
//! of its concurrent renders, so a worker stays inside its memory limit however its images
//! are sized: each render reserves what its header says it will need before decoding, and
//! waits, first come first served, until that much is free.
//!
//! The reservation travels into the blocking thread that decodes: when a handler times out,
//! its future is dropped but the thread goes on decoding, and the memory stays reserved until
//! that thread is done with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use imgpipe_runtime::failure::run_blocking;
use imgpipe_runtime::worker::HandlerError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::RenderError;
use crate::footprint::mib;
use crate::render::{Rendered, Renderer};

/// The memory all concurrent decodes of a process may hold together, counted in MiB. Clones
/// share one budget.
#[derive(Debug, Clone)]
pub struct DecodeBudget {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// One permit per MiB; tokio's semaphore serves waiters in the order they came.
    permits: Arc<Semaphore>,
    total_mib: u32,
    in_use_mib: AtomicU64,
    peak_mib: AtomicU64,
}

/// Memory reserved for one render; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    mib: u32,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
}

impl DecodeBudget {
    /// A budget of `total_mib` MiB (at most `u32::MAX`, far beyond any machine).
    pub fn new(total_mib: u64) -> Self {
        let total_mib = u32::try_from(total_mib).unwrap_or(u32::MAX);
        let permits = usize::try_from(total_mib)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        DecodeBudget {
            shared: Arc::new(Shared {
                permits: Arc::new(Semaphore::new(permits)),
                total_mib,
                in_use_mib: AtomicU64::new(0),
                peak_mib: AtomicU64::new(0),
            }),
        }
    }

    /// The whole budget.
    pub fn total_mib(&self) -> u64 {
        u64::from(self.shared.total_mib)
    }

    /// MiB reserved right now.
    pub fn in_use_mib(&self) -> u64 {
        self.shared.in_use_mib.load(Ordering::SeqCst)
    }

    /// The most MiB ever reserved at once: never more than [`total_mib`](Self::total_mib).
    pub fn in_use_peak_mib(&self) -> u64 {
        self.shared.peak_mib.load(Ordering::SeqCst)
    }

    /// Refuses `bytes` over the whole budget: waiting for them would never end.
    pub fn check(&self, bytes: u64) -> Result<u32, RenderError> {
        let need_mib = mib(bytes);
        u32::try_from(need_mib)
            .ok()
            .filter(|&need| need <= self.shared.total_mib)
            .ok_or(RenderError::OverBudget {
                need_mib,
                budget_mib: self.total_mib(),
            })
    }

    /// Reserves `bytes` (rounded up to whole MiB), waiting behind earlier callers until they
    /// fit; more than the whole budget is refused at once.
    pub async fn reserve(&self, bytes: u64) -> Result<Reservation, RenderError> {
        let mib = self.check(bytes)?;
        let permit = self
            .shared
            .permits
            .clone()
            .acquire_many_owned(mib)
            .await
            // The semaphore is never closed.
            .map_err(|e| RenderError::Rendition(format!("decode budget: {e}")))?;
        let in_use = self
            .shared
            .in_use_mib
            .fetch_add(u64::from(mib), Ordering::SeqCst)
            + u64::from(mib);
        self.shared.peak_mib.fetch_max(in_use, Ordering::SeqCst);
        Ok(Reservation {
            mib,
            shared: self.shared.clone(),
            _permit: permit,
        })
    }
}

impl Reservation {
    /// MiB held.
    pub fn mib(&self) -> u64 {
        u64::from(self.mib)
    }

    /// Runs `work` on a blocking thread that holds this reservation until `work` returns, also
    /// when the caller stops waiting for it. A panic in `work` is bad input, as in
    /// [`run_blocking`].
    pub async fn run_blocking<T, F>(self, work: F) -> Result<T, HandlerError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        run_blocking(move || {
            let _held = self;
            work()
        })
        .await
    }
}

impl Drop for Reservation {
    /// Runs before the permit field is dropped, so `in_use_mib` never counts memory the
    /// semaphore has already handed to the next render.
    fn drop(&mut self) {
        self.shared
            .in_use_mib
            .fetch_sub(u64::from(self.mib), Ordering::SeqCst);
    }
}

/// Renders `original` within `renderer`'s decode budget: reads the header on a blocking thread
/// for the memory estimate, reserves it, then renders on a blocking thread holding the
/// reservation. Every render failure, an image over the whole budget included, is bad input.
pub async fn render_in_budget(
    renderer: Arc<Renderer>,
    original: Bytes,
) -> Result<Rendered, HandlerError> {
    let bad_input = |e: RenderError| HandlerError::BadInput(e.to_string());
    let need = {
        let (renderer, original) = (renderer.clone(), original.clone());
        run_blocking(move || renderer.decode_memory(&original))
            .await?
            .map_err(bad_input)?
    };
    let reservation = renderer.budget().reserve(need).await.map_err(bad_input)?;
    reservation
        .run_blocking(move || renderer.render(&original))
        .await?
        .map_err(bad_input)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MIB: u64 = 1024 * 1024;

    /// Lets every other task on this (single-threaded) test runtime run until it waits.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn over_the_whole_budget_is_refused_at_once() {
        let budget = DecodeBudget::new(64);
        let error = budget.reserve(65 * MIB).await.expect_err("over budget");
        assert_eq!(
            error.to_string(),
            "image needs ~65 MiB to decode, over the decode memory budget of 64 MiB"
        );
        let held = budget.reserve(64 * MIB).await.expect("the whole budget");
        assert_eq!((held.mib(), budget.in_use_mib()), (64, 64));
        drop(held);
        assert_eq!(budget.in_use_mib(), 0);
    }

    #[tokio::test]
    async fn a_reservation_waits_for_room_first_come_first_served() {
        let budget = DecodeBudget::new(100);
        let first = budget.reserve(60 * MIB).await.expect("fits");
        let (second, third) = (budget.clone(), budget.clone());
        let second = tokio::spawn(async move { second.reserve(50 * MIB).await });
        settle().await;
        // 10 MiB would fit now, but the 50 MiB asked for earlier goes first.
        let third = tokio::spawn(async move { third.reserve(10 * MIB).await });
        settle().await;
        assert!(!second.is_finished() && !third.is_finished());
        drop(first);
        let second = second.await.expect("joins").expect("reserved");
        let third = third.await.expect("joins").expect("reserved");
        assert_eq!(budget.in_use_mib(), 60);
        assert_eq!(budget.in_use_peak_mib(), 60);
        drop((second, third));
        assert_eq!(budget.in_use_mib(), 0);
    }

    #[tokio::test]
    async fn memory_stays_reserved_until_the_blocking_work_ends_after_a_timeout() {
        let budget = DecodeBudget::new(64);
        let reservation = budget.reserve(48 * MIB).await.expect("fits");
        let (finish, finished) = std::sync::mpsc::channel::<()>();
        let work = reservation.run_blocking(move || finished.recv().is_ok());
        // The handler's timeout drops the future; the decode thread runs on.
        let timed_out = tokio::time::timeout(Duration::from_millis(50), work).await;
        assert!(timed_out.is_err(), "the work is still blocked");
        assert_eq!(budget.in_use_mib(), 48);
        let next = budget.clone();
        let next = tokio::spawn(async move { next.reserve(32 * MIB).await });
        settle().await;
        assert!(
            !next.is_finished(),
            "the abandoned decode still holds its memory"
        );
        finish.send(()).expect("the work is waiting");
        let next = tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("reserved once the work ended")
            .expect("joins")
            .expect("fits");
        assert_eq!(next.mib(), 32);
        assert_eq!(budget.in_use_peak_mib(), 48);
    }
}
