//! Work on local files for the `tag` and `thumbnail` tools: worker threads take the files in
//! turn, and the results come back in input order as soon as those before them are done.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Runs `work` on every file (a path, or a path with what to do with it) on `workers` threads
/// and passes each result to `emit`, in the order of `files`. Stops at the first error `emit`
/// returns.
pub(crate) fn in_order<F: Sync, T: Send>(
    files: &[F],
    workers: usize,
    work: impl Fn(&F) -> T + Sync,
    mut emit: impl FnMut(&F, T) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let next = AtomicUsize::new(0);
    let (done, results) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, files.len().max(1)) {
            let (next, done, work) = (&next, done.clone(), &work);
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(index) else { break };
                    if done.send((index, work(file))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        let (mut pending, mut emitted) = (BTreeMap::new(), 0);
        for (index, result) in results {
            pending.insert(index, result);
            while let Some(result) = pending.remove(&emitted) {
                emit(&files[emitted], result)?;
                emitted += 1;
            }
        }
        Ok(())
    })
}
