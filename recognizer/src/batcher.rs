//! Micro-batching: many callers, one model.
//!
//! Each caller decodes and preprocesses its own image in its own thread, then hands the tensor to
//! the batcher and waits. One thread owns the model session and runs whatever is queued as one
//! batch: up to `max_images` images, or fewer once the first queued image has waited `wait` for
//! others. It waits only while some caller has announced an image that is still being prepared
//! ([`Batcher::reserve`]); with nobody else coming it runs at once, so a lone image pays no
//! latency for batching. Under load, images queue while a batch runs and the next batch takes
//! them all.
//!
//! Every caller gets its own rows of the output. A caller whose image fails to decode never
//! reaches the batcher, so it fails alone; a failed model run fails the images of that run.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::RecognizerError;

/// A model run: the input values of `images` images, stacked, to their outputs, stacked (the
/// same number of values per image).
pub(crate) type Model = Box<dyn FnMut(&[f32], usize) -> Result<Vec<f32>, String> + Send>;

/// The queue in front of the model, and the thread that runs it.
pub(crate) struct Batcher {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    max_images: usize,
    wait: Duration,
    runs: AtomicU64,
    images: AtomicU64,
}

/// Model runs so far and the images they held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchStats {
    pub runs: u64,
    pub images: u64,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    queued_images: usize,
    /// Callers that announced an image and have not queued it (or given up) yet.
    preparing: usize,
    closed: bool,
}

struct Job {
    input: Vec<f32>,
    images: usize,
    reply: mpsc::SyncSender<Result<Vec<f32>, String>>,
}

/// A caller's place in the next batch, taken before it starts preprocessing; queue the image
/// with [`Ticket::run`]. Dropping it unused (the image failed to decode) tells the batcher not
/// to wait for it.
pub(crate) struct Ticket<'a> {
    shared: &'a Shared,
    pending: bool,
}

impl Batcher {
    /// Starts one thread per model; each takes the next batch when its model is free, so
    /// several batches can run at once (one session each).
    pub(crate) fn start(
        max_images: usize,
        wait: Duration,
        models: Vec<Model>,
    ) -> Result<Self, RecognizerError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            max_images: max_images.max(1),
            wait,
            runs: AtomicU64::new(0),
            images: AtomicU64::new(0),
        });
        let mut batcher = Batcher {
            shared,
            threads: Vec::with_capacity(models.len()),
        };
        for (n, model) in models.into_iter().enumerate() {
            let thread = std::thread::Builder::new()
                .name(format!("recognizer-batch-{n}"))
                .spawn({
                    let shared = batcher.shared.clone();
                    move || serve(&shared, model)
                })
                .map_err(|e| {
                    RecognizerError::Inference(format!("cannot start the batcher: {e}"))
                })?;
            batcher.threads.push(thread);
        }
        Ok(batcher)
    }

    /// Announces an image about to be prepared, so a batch forming meanwhile waits for it
    /// (at most the batch wait).
    pub(crate) fn reserve(&self) -> Ticket<'_> {
        self.shared.lock().preparing += 1;
        Ticket {
            shared: &self.shared,
            pending: true,
        }
    }

    pub(crate) fn max_images(&self) -> usize {
        self.shared.max_images
    }

    pub(crate) fn stats(&self) -> BatchStats {
        BatchStats {
            runs: self.shared.runs.load(Ordering::Relaxed),
            images: self.shared.images.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Ticket<'_> {
    /// Queues the input of `images` images (stacked) and waits for their outputs, in order.
    pub(crate) fn run(
        mut self,
        input: Vec<f32>,
        images: usize,
    ) -> Result<Vec<f32>, RecognizerError> {
        let (reply, outcome) = mpsc::sync_channel(1);
        {
            let mut state = self.shared.lock();
            state.preparing -= 1;
            self.pending = false;
            if state.closed {
                return Err(RecognizerError::Inference(
                    "the classifier is shutting down".to_owned(),
                ));
            }
            state.queued_images += images;
            state.queue.push_back(Job {
                input,
                images,
                reply,
            });
        }
        self.shared.wake.notify_all();
        match outcome.recv() {
            Ok(result) => result.map_err(RecognizerError::Inference),
            Err(_) => Err(RecognizerError::Inference(
                "the batcher stopped before answering".to_owned(),
            )),
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.pending {
            self.shared.lock().preparing -= 1;
            self.shared.wake.notify_all();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a queue and counters updated under the lock in one step each: still
        // consistent after a panic elsewhere.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next batch, waiting for one; None once closed and drained.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let mut state = self.lock();
        while state.queue.is_empty() {
            if state.closed {
                return None;
            }
            state = self
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let deadline = Instant::now() + self.wait;
        while state.queued_images < self.max_images && state.preparing > 0 && !state.closed {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .wake
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let mut jobs = Vec::new();
        let mut images = 0;
        while let Some(job) = state.queue.front() {
            // A job larger than a batch still runs, alone and whole.
            if !jobs.is_empty() && images + job.images > self.max_images {
                break;
            }
            images += job.images;
            jobs.extend(state.queue.pop_front());
        }
        state.queued_images -= images;
        Some(jobs)
    }
}

fn serve(shared: &Shared, mut model: Model) {
    while let Some(jobs) = shared.next_batch() {
        let images: usize = jobs.iter().map(|j| j.images).sum();
        let started = Instant::now();
        let result = if let [job] = jobs.as_slice() {
            run_guarded(&mut model, &job.input, images)
        } else {
            let mut input = Vec::with_capacity(jobs.iter().map(|j| j.input.len()).sum());
            for job in &jobs {
                input.extend_from_slice(&job.input);
            }
            run_guarded(&mut model, &input, images)
        };
        shared.runs.fetch_add(1, Ordering::Relaxed);
        shared.images.fetch_add(images as u64, Ordering::Relaxed);
        tracing::debug!(
            images,
            callers = jobs.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "ran a batch"
        );
        match result {
            Ok(outputs) if !outputs.is_empty() && outputs.len() % images == 0 => {
                let per_image = outputs.len() / images;
                let mut rest = outputs.as_slice();
                for job in jobs {
                    let (mine, others) = rest.split_at(job.images * per_image);
                    rest = others;
                    // A caller that gave up (timed out) no longer listens: nothing to do.
                    let _ = job.reply.send(Ok(mine.to_vec()));
                }
            }
            other => {
                let reason = match other {
                    Err(reason) => reason,
                    Ok(outputs) => {
                        format!(
                            "model returned {} values for {images} images",
                            outputs.len()
                        )
                    }
                };
                for job in jobs {
                    let _ = job.reply.send(Err(reason.clone()));
                }
            }
        }
    }
}

/// A panic inside the model fails the images of this run, not the batcher.
fn run_guarded(model: &mut Model, input: &[f32], images: usize) -> Result<Vec<f32>, String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| model(input, images)))
        .unwrap_or_else(|_| Err("the model run panicked".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    /// A model whose output for each image is its first input value doubled, recording the
    /// size of every batch it ran.
    fn doubling(sizes: Arc<Mutex<Vec<usize>>>) -> Model {
        Box::new(move |input: &[f32], images: usize| {
            sizes.lock().expect("lock").push(images);
            let per_image = input.len() / images;
            Ok(input.chunks(per_image).map(|c| c[0] * 2.0).collect())
        })
    }

    #[test]
    fn a_lone_image_runs_at_once() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::start(8, Duration::from_secs(10), vec![doubling(sizes.clone())])
            .expect("start");
        let started = Instant::now();
        let out = batcher.reserve().run(vec![3.0, 0.0], 1).expect("run");
        assert_eq!(out, [6.0]);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited for nobody"
        );
        assert_eq!(*sizes.lock().expect("lock"), [1]);
    }

    #[test]
    fn concurrent_callers_share_a_batch_and_get_their_own_rows() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::start(4, Duration::from_secs(10), vec![doubling(sizes.clone())])
            .expect("start");
        let barrier = Barrier::new(4);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let (batcher, barrier) = (&batcher, &barrier);
                    s.spawn(move || {
                        let ticket = batcher.reserve();
                        barrier.wait(); // all four announced before any queues
                        ticket.run(vec![i as f32, 0.0], 1).expect("run")
                    })
                })
                .collect();
            for (i, handle) in handles.into_iter().enumerate() {
                assert_eq!(handle.join().expect("thread"), [i as f32 * 2.0]);
            }
        });
        assert_eq!(*sizes.lock().expect("lock"), [4], "one full batch");
        assert_eq!(batcher.stats(), BatchStats { runs: 1, images: 4 });
    }

    #[test]
    fn a_caller_that_gives_up_does_not_hold_the_batch() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::start(4, Duration::from_secs(30), vec![doubling(sizes.clone())])
            .expect("start");
        let failed = batcher.reserve();
        let good = batcher.reserve();
        let started = Instant::now();
        std::thread::scope(|s| {
            let run = s.spawn(move || good.run(vec![1.0], 1));
            std::thread::sleep(Duration::from_millis(50));
            drop(failed); // its image did not decode
            assert_eq!(run.join().expect("thread").expect("run"), [2.0]);
        });
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(*sizes.lock().expect("lock"), [1]);
    }

    #[test]
    fn the_wait_is_bounded() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::start(4, Duration::from_millis(20), vec![doubling(sizes.clone())])
            .expect("start");
        let _slow = batcher.reserve(); // never arrives while we wait
        let out = batcher.reserve().run(vec![5.0], 1).expect("run");
        assert_eq!(out, [10.0]);
    }

    #[test]
    fn a_failed_or_panicking_run_fails_its_callers_only() {
        let mut calls = 0;
        let model: Model = Box::new(move |input: &[f32], _| {
            calls += 1;
            match calls {
                1 => Err("out of memory".to_owned()),
                2 => panic!("kernel bug"),
                _ => Ok(input.to_vec()),
            }
        });
        let batcher = Batcher::start(2, Duration::ZERO, vec![model]).expect("start");
        let err = batcher.reserve().run(vec![1.0], 1).expect_err("fails");
        assert!(err.to_string().contains("out of memory"), "{err}");
        let err = batcher.reserve().run(vec![1.0], 1).expect_err("panics");
        assert!(err.to_string().contains("panicked"), "{err}");
        assert_eq!(batcher.reserve().run(vec![7.0], 1).expect("runs"), [7.0]);
    }

    #[test]
    fn an_oversized_request_runs_whole() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let batcher =
            Batcher::start(2, Duration::ZERO, vec![doubling(sizes.clone())]).expect("start");
        let out = batcher
            .reserve()
            .run(vec![1.0, 2.0, 3.0, 4.0, 5.0], 5)
            .expect("run");
        assert_eq!(out, [2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(*sizes.lock().expect("lock"), [5]);
    }

    #[test]
    fn several_models_run_batches_side_by_side() {
        // Each model holds its run until both runs have started: with one model thread this
        // would wait forever (the barrier times out and the test fails).
        let started = Arc::new(Barrier::new(2));
        let model = |started: Arc<Barrier>| -> Model {
            Box::new(move |input: &[f32], images: usize| {
                started.wait();
                Ok(input
                    .chunks(input.len() / images)
                    .map(|c| c[0] + 1.0)
                    .collect())
            })
        };
        let batcher = Batcher::start(
            1,
            Duration::ZERO,
            vec![model(started.clone()), model(started)],
        )
        .expect("start");
        let outputs: Vec<Vec<f32>> = std::thread::scope(|s| {
            let handles: Vec<_> = [1.0, 2.0]
                .into_iter()
                .map(|v| {
                    let batcher = &batcher;
                    s.spawn(move || batcher.reserve().run(vec![v], 1).expect("run"))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("join"))
                .collect()
        });
        assert_eq!(outputs, [vec![2.0], vec![3.0]]);
        assert_eq!(batcher.stats().runs, 2);
    }
}
