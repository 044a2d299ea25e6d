//! The reconciler's lifecycle as a pure state machine: [`State`], [`Event`]
//! and [`transition`]. No I/O, no clock, no tokio: times come in with the
//! events, and the jitter of a backoff comes in as a number.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::runtime::retry::RetryPolicy;

/// Where the reconciler is. Each variant says what happens next.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum State {
    /// Started; the first attempt is under way. Next: `Synced`, `Retrying`
    /// or `Failed`.
    Pending,
    /// The last attempt failed with an error that may heal; the next attempt
    /// starts at `next_retry_at`. Next: `Synced`, `Retrying` (again) or
    /// `Failed` once the retry budget is spent.
    Retrying {
        /// How many attempts in a row have failed (1 after the first).
        attempt: u32,
        /// When the next attempt starts.
        next_retry_at: SystemTime,
        /// The error of the last attempt, with secrets removed.
        last_error: String,
        /// When the first failure of this run of failures happened.
        failing_since: SystemTime,
    },
    /// The last reconcile converged, or finished with errors that retrying
    /// will not heal (they are reported per schedule). Next: `Synced` after
    /// a resync or reload, `Retrying` or `Failed` if one fails.
    Synced {
        /// When it finished.
        at: SystemTime,
    },
    /// The retry budget is spent, or the error will not heal by retrying. A
    /// slow retry still runs at `next_retry_at`; success leads to `Synced`.
    Failed {
        /// Why retrying fast stopped.
        reason: FailedReason,
        /// How many attempts in a row have failed.
        attempt: u32,
        /// When the slow retry starts.
        next_retry_at: SystemTime,
        /// The error of the last attempt, with secrets removed.
        last_error: String,
    },
    /// Shutdown was requested. Absorbing: no event leaves it.
    ShuttingDown,
}

/// Why a reconciler is [`State::Failed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailedReason {
    /// Retryable errors went on for longer than the retry budget.
    BudgetSpent,
    /// The error will not heal by retrying: permission denied, an unknown
    /// namespace, an invalid project.
    Fatal,
}

/// Whether an error may heal by retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Temporal is away, slow or busy: back off and try again.
    Retryable,
    /// Retrying the same thing will fail the same way.
    Fatal,
}

/// What happens to a reconciler.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// An attempt finished: Temporal holds what the project declares, apart
    /// from errors that retrying will not heal.
    Succeeded {
        /// When.
        at: SystemTime,
    },
    /// An attempt failed.
    Failed {
        /// When.
        at: SystemTime,
        /// Whether it may heal.
        kind: ErrorKind,
        /// The error, with secrets removed.
        error: String,
        /// A number in `[0, 1]` that scales the backoff (full jitter); 1
        /// when jitter is off.
        jitter: f64,
    },
    /// The host asked for shutdown.
    ShutdownRequested,
}

/// The next state after `event`, under `policy`.
///
/// | from | event | to |
/// |---|---|---|
/// | any but `ShuttingDown` | `ShutdownRequested` | `ShuttingDown` |
/// | `ShuttingDown` | any | `ShuttingDown` |
/// | `Pending`, `Retrying`, `Synced`, `Failed` | `Succeeded` | `Synced` |
/// | `Pending`, `Retrying`, `Synced` | `Failed` fatal | `Failed { Fatal }`, slow retry |
/// | `Pending`, `Synced` | `Failed` retryable | `Retrying { attempt: 1 }` |
/// | `Retrying { n }` | `Failed` retryable, within the budget | `Retrying { n + 1 }` |
/// | `Retrying { n }` | `Failed` retryable, budget spent | `Failed { BudgetSpent }`, slow retry |
/// | `Failed` | `Failed` (any kind) | `Failed`, same reason unless it turned fatal, slow retry |
///
/// The budget is spent when the failure comes at least
/// [`RetryPolicy::budget`] after the first failure of the run. The delay of
/// `Retrying { n }` is [`RetryPolicy::backoff`]`(n)` scaled by the event's
/// jitter; the slow retry comes [`RetryPolicy::slow_retry`] after the failure.
pub fn transition(state: State, event: Event, policy: &RetryPolicy) -> State {
    match (state, event) {
        (State::ShuttingDown, _) | (_, Event::ShutdownRequested) => State::ShuttingDown,
        (_, Event::Succeeded { at }) => State::Synced { at },
        (
            state,
            Event::Failed {
                at,
                kind,
                error,
                jitter,
            },
        ) => failed(state, at, kind, error, jitter, policy),
    }
}

fn failed(
    state: State,
    at: SystemTime,
    kind: ErrorKind,
    error: String,
    jitter: f64,
    policy: &RetryPolicy,
) -> State {
    let slow = |reason, attempt| State::Failed {
        reason,
        attempt,
        next_retry_at: later(at, policy.slow_retry),
        last_error: error.clone(),
    };
    match (state, kind) {
        (
            State::Failed {
                reason, attempt, ..
            },
            kind,
        ) => {
            let reason = match kind {
                ErrorKind::Fatal => FailedReason::Fatal,
                ErrorKind::Retryable => reason,
            };
            slow(reason, attempt.saturating_add(1))
        }
        (State::Retrying { attempt, .. }, ErrorKind::Fatal) => {
            slow(FailedReason::Fatal, attempt.saturating_add(1))
        }
        (_, ErrorKind::Fatal) => slow(FailedReason::Fatal, 1),
        (
            State::Retrying {
                attempt,
                failing_since,
                ..
            },
            ErrorKind::Retryable,
        ) => {
            let attempt = attempt.saturating_add(1);
            let spent = at.duration_since(failing_since).unwrap_or(Duration::ZERO);
            if spent >= policy.budget {
                slow(FailedReason::BudgetSpent, attempt)
            } else {
                retrying(attempt, at, failing_since, error, jitter, policy)
            }
        }
        (_, ErrorKind::Retryable) => retrying(1, at, at, error, jitter, policy),
    }
}

fn retrying(
    attempt: u32,
    at: SystemTime,
    failing_since: SystemTime,
    last_error: String,
    jitter: f64,
    policy: &RetryPolicy,
) -> State {
    State::Retrying {
        attempt,
        next_retry_at: later(at, jittered(policy.backoff(attempt), jitter)),
        last_error,
        failing_since,
    }
}

/// `delay` scaled by `jitter` (clamped to `[0, 1]`), without overflow.
fn jittered(delay: Duration, jitter: f64) -> Duration {
    Duration::try_from_secs_f64(delay.as_secs_f64() * jitter.clamp(0.0, 1.0)).unwrap_or(delay)
}

/// `delay` after `at`; a delay too long to represent (a [`Duration::MAX`]
/// option, meaning "never") gives a time some 136 years after `at`.
fn later(at: SystemTime, delay: Duration) -> SystemTime {
    at.checked_add(delay)
        .or_else(|| at.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(at)
}

impl State {
    /// The state's name, as the `state` label of metrics and `/healthz` show it.
    pub fn name(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Retrying { .. } => "retrying",
            State::Synced { .. } => "synced",
            State::Failed { .. } => "failed",
            State::ShuttingDown => "shutting_down",
        }
    }

    /// Every state name, for metrics that show 0 for the states not held.
    pub const NAMES: [&'static str; 5] =
        ["pending", "retrying", "synced", "failed", "shutting_down"];

    /// When the next attempt is due, if one waits on a timer.
    pub fn next_retry_at(&self) -> Option<SystemTime> {
        match self {
            State::Retrying { next_retry_at, .. } | State::Failed { next_retry_at, .. } => {
                Some(*next_retry_at)
            }
            _ => None,
        }
    }

    /// How many attempts in a row have failed (0 when none).
    pub fn attempt(&self) -> u32 {
        match self {
            State::Retrying { attempt, .. } | State::Failed { attempt, .. } => *attempt,
            _ => 0,
        }
    }

    /// The last error, when the state keeps one.
    pub fn last_error(&self) -> Option<&str> {
        match self {
            State::Retrying { last_error, .. } | State::Failed { last_error, .. } => {
                Some(last_error)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + seconds)
    }

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    fn fail(at: u64, kind: ErrorKind) -> Event {
        Event::Failed {
            at: t(at),
            kind,
            error: "boom".into(),
            jitter: 1.0,
        }
    }

    fn retrying(attempt: u32, at: u64, since: u64, delay: u64) -> State {
        State::Retrying {
            attempt,
            next_retry_at: t(at + delay),
            last_error: "boom".into(),
            failing_since: t(since),
        }
    }

    fn failed(reason: FailedReason, attempt: u32, at: u64) -> State {
        State::Failed {
            reason,
            attempt,
            next_retry_at: t(at + 300),
            last_error: "boom".into(),
        }
    }

    fn step(state: State, event: Event) -> State {
        transition(state, event, &policy())
    }

    #[test]
    fn pending_goes_to_synced_retrying_or_failed() {
        assert_eq!(
            step(State::Pending, Event::Succeeded { at: t(1) }),
            State::Synced { at: t(1) }
        );
        assert_eq!(
            step(State::Pending, fail(1, ErrorKind::Retryable)),
            retrying(1, 1, 1, 1)
        );
        assert_eq!(
            step(State::Pending, fail(1, ErrorKind::Fatal)),
            failed(FailedReason::Fatal, 1, 1)
        );
    }

    #[test]
    fn retrying_counts_attempts_and_doubles_the_backoff() {
        let second = step(retrying(1, 0, 0, 1), fail(1, ErrorKind::Retryable));
        assert_eq!(second, retrying(2, 1, 0, 2));
        let third = step(second, fail(3, ErrorKind::Retryable));
        assert_eq!(third, retrying(3, 3, 0, 4));
    }

    #[test]
    fn retrying_gives_up_after_the_budget() {
        let late = step(retrying(8, 200, 0, 30), fail(299, ErrorKind::Retryable));
        assert_eq!(late, retrying(9, 299, 0, 30), "still within 5 minutes");
        let spent = step(late, fail(300, ErrorKind::Retryable));
        assert_eq!(spent, failed(FailedReason::BudgetSpent, 10, 300));
    }

    #[test]
    fn a_fatal_error_fails_at_once_from_every_working_state() {
        assert_eq!(
            step(retrying(2, 0, 0, 2), fail(5, ErrorKind::Fatal)),
            failed(FailedReason::Fatal, 3, 5)
        );
        assert_eq!(
            step(State::Synced { at: t(0) }, fail(5, ErrorKind::Fatal)),
            failed(FailedReason::Fatal, 1, 5)
        );
    }

    #[test]
    fn retrying_and_failed_return_to_synced_on_success() {
        assert_eq!(
            step(retrying(3, 0, 0, 4), Event::Succeeded { at: t(9) }),
            State::Synced { at: t(9) }
        );
        assert_eq!(
            step(
                failed(FailedReason::BudgetSpent, 12, 0),
                Event::Succeeded { at: t(301) }
            ),
            State::Synced { at: t(301) }
        );
    }

    #[test]
    fn synced_starts_a_new_run_of_retries_or_stays_synced() {
        assert_eq!(
            step(State::Synced { at: t(0) }, fail(60, ErrorKind::Retryable)),
            retrying(1, 60, 60, 1)
        );
        assert_eq!(
            step(State::Synced { at: t(0) }, Event::Succeeded { at: t(60) }),
            State::Synced { at: t(60) }
        );
    }

    #[test]
    fn failed_keeps_slow_retrying_and_turns_fatal_on_a_fatal_error() {
        let again = step(
            failed(FailedReason::BudgetSpent, 12, 0),
            fail(300, ErrorKind::Retryable),
        );
        assert_eq!(again, failed(FailedReason::BudgetSpent, 13, 300));
        let fatal = step(again, fail(600, ErrorKind::Fatal));
        assert_eq!(fatal, failed(FailedReason::Fatal, 14, 600));
        let still = step(fatal, fail(900, ErrorKind::Retryable));
        assert_eq!(still, failed(FailedReason::Fatal, 15, 900));
    }

    #[test]
    fn shutting_down_is_reached_from_every_state_and_never_left() {
        for state in [
            State::Pending,
            retrying(1, 0, 0, 1),
            State::Synced { at: t(0) },
            failed(FailedReason::Fatal, 1, 0),
            State::ShuttingDown,
        ] {
            assert_eq!(step(state, Event::ShutdownRequested), State::ShuttingDown);
        }
        assert_eq!(
            step(State::ShuttingDown, Event::Succeeded { at: t(1) }),
            State::ShuttingDown
        );
        assert_eq!(
            step(State::ShuttingDown, fail(1, ErrorKind::Fatal)),
            State::ShuttingDown
        );
    }

    #[test]
    fn the_longest_durations_never_overflow() {
        let never = RetryPolicy {
            initial: Duration::MAX,
            max: Duration::MAX,
            budget: Duration::MAX,
            slow_retry: Duration::MAX,
            ..policy()
        };
        let retrying = transition(State::Pending, fail(0, ErrorKind::Retryable), &never);
        assert!(retrying.next_retry_at().unwrap() > t(100 * 365 * 86_400));
        let failed = transition(State::Pending, fail(0, ErrorKind::Fatal), &never);
        assert!(failed.next_retry_at().unwrap() > t(100 * 365 * 86_400));
        let half = transition(
            State::Pending,
            Event::Failed {
                at: t(0),
                kind: ErrorKind::Retryable,
                error: "boom".into(),
                jitter: 0.5,
            },
            &never,
        );
        assert!(half.next_retry_at().unwrap() > t(100 * 365 * 86_400));
    }

    #[test]
    fn jitter_scales_the_backoff() {
        let state = transition(
            State::Pending,
            Event::Failed {
                at: t(0),
                kind: ErrorKind::Retryable,
                error: "boom".into(),
                jitter: 0.25,
            },
            &policy(),
        );
        assert_eq!(
            state.next_retry_at(),
            Some(t(0) + Duration::from_millis(250))
        );
    }
}
