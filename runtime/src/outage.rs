//! How a worker rides out an outage of something it depends on (the metadata database, the object
//! store, the broker). A transient failure says nothing about the message, so it spends none of
//! the message's attempts: the message is postponed, and the worker itself stops taking new
//! messages for a while, longer with each failure in a row, so an outage costs a few probes
//! instead of the whole queue's retry budget. One success ends the pause.
//!
//! A message that fails "transiently" while everything else works would then loop forever, so
//! each message has a patience: once its transient failures have gone on for longer than that,
//! they count as attempts again and the message ends dead-lettered like any other.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use imgpipe_contract::config::RetryPolicy;

/// Messages whose transient streak is remembered at once; beyond it the oldest streaks are
/// forgotten (which only grants those messages more patience).
const MAX_STREAKS: usize = 10_000;

pub(crate) struct Outage {
    policy: RetryPolicy,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Transient failures in a row, over all messages.
    in_a_row: u32,
    paused_until: Option<Instant>,
    /// When each postponed message first failed transiently.
    streaks: HashMap<String, Instant>,
}

impl Outage {
    pub(crate) fn new(policy: &RetryPolicy) -> Self {
        Outage {
            policy: policy.clone(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A transient failure of `message_id`. Returns how long to postpone it without spending an
    /// attempt, or None once the message has used up its patience.
    pub(crate) fn failed(&self, message_id: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut state = self.state();
        state.in_a_row = state.in_a_row.saturating_add(1);
        let pause = self.policy.delay(state.in_a_row);
        state.paused_until = Some(now + pause);
        if state.streaks.len() >= MAX_STREAKS {
            let oldest = state.streaks.values().min().copied();
            state.streaks.retain(|_, since| Some(*since) != oldest);
        }
        let since = *state.streaks.entry(message_id.to_owned()).or_insert(now);
        (now.duration_since(since) < self.policy.transient_patience).then_some(pause)
    }

    /// The message was settled otherwise (done, retried as bad input, dead-lettered): its streak
    /// ends, and a success ends the outage.
    pub(crate) fn settled(&self, message_id: &str, succeeded: bool) {
        let mut state = self.state();
        state.streaks.remove(message_id);
        if succeeded {
            state.in_a_row = 0;
            state.paused_until = None;
        }
    }

    /// How long to wait before taking the next message, if the worker is pausing.
    pub(crate) fn pause(&self) -> Option<Duration> {
        let until = self.state().paused_until?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(patience: Duration) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
            handler_timeout: Duration::from_secs(1),
            transient_patience: patience,
        }
    }

    #[test]
    fn failures_in_a_row_pause_longer_up_to_the_maximum_and_a_success_ends_it() {
        let outage = Outage::new(&policy(Duration::from_secs(60)));
        assert_eq!(outage.pause(), None);
        let delays: Vec<_> = (0..4).filter_map(|_| outage.failed("m")).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 400].map(Duration::from_millis).to_vec()
        );
        assert!(
            outage
                .pause()
                .is_some_and(|p| p > Duration::from_millis(300))
        );
        outage.settled("other", true);
        assert_eq!(outage.pause(), None);
        assert_eq!(outage.failed("m"), Some(Duration::from_millis(100)));
    }

    #[test]
    fn a_message_that_keeps_failing_runs_out_of_patience() {
        let outage = Outage::new(&policy(Duration::from_millis(50)));
        assert!(outage.failed("m").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(outage.failed("m"), None, "past its patience");
        assert!(outage.failed("n").is_some(), "another message has its own");
        outage.settled("m", false);
        assert!(outage.failed("m").is_some(), "a new streak");
    }
}
