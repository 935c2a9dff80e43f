//! How many images are decoded and preprocessed at once.
//!
//! Callers outnumber cores (twice the batch size, so that one batch is prepared while the
//! previous one runs). Left alone, every one of them decodes at once, and the model threads,
//! the stage's bottleneck, get only their fair share of the cores among dozens of decoding
//! threads: a batch then waits for the CPU while the images of the next one are decoded, and
//! the cores idle when they are done. The gate lets through only as many preprocessing callers
//! as there are cores the model does not use, so decoding fills the spare cores and the model
//! keeps its own.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// A counting semaphore over the preprocessing of images.
#[derive(Debug)]
pub(crate) struct Gate {
    free: Mutex<usize>,
    freed: Condvar,
    size: usize,
}

/// One caller's turn to preprocess; the next caller goes when it is dropped.
pub(crate) struct Turn<'a> {
    gate: &'a Gate,
}

impl Gate {
    /// A gate letting `size` callers (at least one) through at once.
    pub(crate) fn new(size: usize) -> Self {
        let size = size.max(1);
        Gate {
            free: Mutex::new(size),
            freed: Condvar::new(),
            size,
        }
    }

    /// Preprocessing callers for a machine of `cores` cores of which the model runs use
    /// `model_threads`: the rest. When the model takes every core, one per core: the cores are
    /// shared anyway, and fewer would leave them idle whenever the model waits for input.
    pub(crate) fn spare_cores(cores: usize, model_threads: usize) -> usize {
        if model_threads < cores {
            cores - model_threads
        } else {
            cores.max(1)
        }
    }

    /// Waits for a turn.
    pub(crate) fn enter(&self) -> Turn<'_> {
        let mut free = self.lock();
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Turn { gate: self }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        // A counter updated in one step under the lock: consistent after a panic elsewhere.
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *self.gate.lock() += 1;
        self.gate.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn spare_cores_leave_the_model_its_own() {
        assert_eq!(Gate::spare_cores(8, 2), 6);
        assert_eq!(Gate::spare_cores(2, 1), 1);
        assert_eq!(Gate::spare_cores(4, 0), 4);
        // Every core busy with the model: one per core, never none.
        assert_eq!(Gate::spare_cores(2, 2), 2);
        assert_eq!(Gate::spare_cores(2, 4), 2);
        assert_eq!(Gate::spare_cores(0, 1), 1);
    }

    #[test]
    fn no_more_than_its_size_at_once() {
        let gate = Gate::new(2);
        let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let _turn = gate.enter();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                    inside.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
        // Every turn was given back.
        drop((gate.enter(), gate.enter()));
    }

    #[test]
    fn a_panicking_caller_gives_its_turn_back() {
        let gate = Gate::new(1);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _turn = gate.enter();
            panic!("decoder bug");
        }));
        assert!(result.is_err());
        let _turn = gate.enter();
    }
}
