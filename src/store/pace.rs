//! The one rate limiter of a reconciler: every RPC to Temporal waits for its
//! turn here, and the pace adapts to the server's answers: slower after a
//! throttled answer, faster again while answers come back fine, never above
//! an optional ceiling.
//!
//! Until the server first throttles (and without a ceiling) calls are not
//! paced at all, so a server without a limit costs nothing. The first
//! throttled answer sets the pace to the calls sent over the last
//! [`WINDOW`] less that one (the answers to the others may still be on
//! their way). Each later throttled answer to a call sent after the last
//! slowdown sets it to [`SLOWDOWN`] times the rate at which the server
//! answered fine over the last [`WINDOW`] (or the pace, if lower), but
//! never cuts it below [`MAX_CUT`] of what it was. Each fine answer to a
//! call that had to wait for its turn adds [`GROWTH`] requests per second,
//! from [`GROWTH_HOLD`] after the last slowdown on: about 3% a second at
//! any pace, since a pace of `r` gets `r` answers a second.
//!
//! Calls in flight are bounded too, whatever the reconcile's concurrency.
//! Before the first throttle the bound starts at [`PACED_IN_FLIGHT`] and
//! grows by one with each fine answer (so a server without a limit soon
//! takes all the calls a reconcile sends at once, while a limited one is
//! not hit by a burst of them all: the calls of the burst beyond its
//! allowance are all throttled). While calls are paced it is
//! [`PACED_IN_FLIGHT`]: many calls waiting for their turns make the pace
//! grow with every answer and overshoot the server's limit, and then every
//! call in flight is throttled.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The slowest pace: one request per second.
pub const MIN_RATE: f64 = 1.0;
/// What a throttled answer does to the pace: this fraction of the rate the
/// server answered fine at over the last [`WINDOW`].
pub const SLOWDOWN: f64 = 0.95;
/// The most one throttled answer cuts: the pace before the slowdown is at
/// least this fraction of the pace before it (answers that are late, as
/// on a loaded server, must not pass for a low limit).
pub const MAX_CUT: f64 = 0.8;
/// What a fine answer to a call that waited for its turn adds to the pace,
/// in requests per second.
pub const GROWTH: f64 = 0.03;
/// How long after a slowdown the pace holds before fine answers speed it
/// up again: right after a cut the server's allowance is still empty, and a
/// pace that grew at once would be throttled again within seconds.
pub const GROWTH_HOLD: Duration = Duration::from_secs(5);
/// How far back fine answers count to estimate the server's rate.
pub const WINDOW: Duration = Duration::from_secs(1);
/// The most calls in flight at once while calls are paced, and the bound
/// before the first throttle starts at. A cold apply of 1,000 schedules
/// under a 10 per second limit with 16 writes at a time made 9.9 schedules
/// a second with 4% of its calls throttled; with 64 at a time and no such
/// bound, 7.0 a second with 12% throttled.
pub const PACED_IN_FLIGHT: usize = 16;
/// How long after its last throttled answer a reconciler counts as
/// throttled (in `/healthz`).
pub const THROTTLED_RECENTLY: Duration = Duration::from_secs(60);

/// A shared, adaptive rate limiter for the RPCs of one reconciler. Cheap to
/// clone: clones share the pace.
#[derive(Clone, Debug, Default)]
pub struct Pace {
    limiter: Arc<Mutex<Limiter>>,
    /// Wakes the calls waiting for one in flight to end.
    ended: Arc<Notify>,
    /// Once cancelled, no call gets a turn any more.
    stop: CancellationToken,
}

/// What the server answered to a paced call, as the pace sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A fine answer: the call was not refused for load.
    Fine,
    /// Throttled: `ResourceExhausted` for a rate or concurrency limit.
    Throttled,
    /// No answer (unreachable, or none in time): says nothing about the
    /// limit.
    Lost,
}

impl Answer {
    /// How the pace sees the outcome of a call: only a throttled answer
    /// slows it down, and only a call that got no answer at all tells
    /// nothing.
    pub fn of<T>(result: &Result<T, super::StoreError>) -> Answer {
        match result {
            Ok(_) => Answer::Fine,
            Err(error) if error.is_throttled() => Answer::Throttled,
            Err(error) if error.is_unreachable() => Answer::Lost,
            Err(_) => Answer::Fine,
        }
    }
}

/// A call's turn: when it was let go, and whether it had to wait for it.
/// The call counts as in flight until its turn is answered or dropped.
#[derive(Debug)]
pub struct Turn {
    at: Instant,
    waited: bool,
    _in_flight: InFlight,
}

/// One call in flight; dropping it ends the call for the pace.
#[derive(Debug)]
struct InFlight(Pace);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut limiter = self.0.lock();
        limiter.in_flight = limiter.in_flight.saturating_sub(1);
        drop(limiter);
        // Every waiter checks again: `notify_one` keeps a single permit, so
        // two calls ending before their waiters wait would wake only one.
        self.0.ended.notify_waiters();
    }
}

/// The pace as `/healthz` and the metrics show it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PaceStatus {
    /// The current pace in requests per second; `None` while calls are not
    /// paced (no ceiling, and the server has not throttled yet).
    pub rate: Option<f64>,
    /// The configured ceiling, if any.
    pub ceiling: Option<f64>,
    /// Throttled answers since the start.
    pub throttled: u64,
    /// When the last throttled answer came.
    pub last_throttled: Option<SystemTime>,
    /// Whether the last throttled answer came less than
    /// [`THROTTLED_RECENTLY`] ago.
    pub throttled_recently: bool,
}

#[derive(Debug, Default)]
struct Limiter {
    ceiling: Option<f64>,
    /// Requests per second; `None` while unpaced.
    rate: Option<f64>,
    /// The earliest time the next call may go.
    next: Option<Instant>,
    /// When the pace was last slowed down.
    slowed_at: Option<Instant>,
    /// The fine answers within the last [`WINDOW`].
    fine: VecDeque<Instant>,
    /// The turns given within the last [`WINDOW`].
    sent: VecDeque<Instant>,
    throttled: u64,
    last_throttled: Option<(Instant, SystemTime)>,
    /// Calls let go and not answered yet.
    in_flight: usize,
    /// Fine answers before the first throttle: each raises the bound on
    /// calls in flight by one.
    unpaced_fine: usize,
}

impl Limiter {
    /// The most calls in flight at once now.
    fn in_flight_bound(&self) -> usize {
        match self.rate {
            Some(_) => PACED_IN_FLIGHT,
            None => PACED_IN_FLIGHT.saturating_add(self.unpaced_fine),
        }
    }
}

impl Pace {
    /// A pace with at most `ceiling` requests per second (`None`: no
    /// ceiling; calls are unpaced until the server throttles). A ceiling
    /// below [`MIN_RATE`] counts as [`MIN_RATE`].
    pub fn new(ceiling: Option<f64>) -> Self {
        let ceiling = ceiling.map(|c| c.max(MIN_RATE));
        Pace {
            limiter: Arc::new(Mutex::new(Limiter {
                ceiling,
                rate: ceiling,
                ..Limiter::default()
            })),
            ended: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
        }
    }

    /// The pace, giving no turn any more once `stop` is cancelled (the
    /// reconciler's shutdown: no new RPC starts after it, even one that
    /// was waiting for its turn).
    #[must_use]
    pub fn stopping_at(mut self, stop: CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the caller's turn to send one RPC; `None` once the pace is
    /// stopped (see [`Pace::stopping_at`]): the call must not be sent.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future gives up the turn; the turns after it keep their
    /// places.
    pub async fn turn(&self) -> Option<Turn> {
        let (at, in_flight) = loop {
            if self.stop.is_cancelled() {
                return None;
            }
            // Made before the check, so that a call ending after it still
            // wakes this one (`notify_waiters` wakes every `Notified` made
            // before it, polled or not).
            let ended = self.ended.notified();
            if let Some(taken) = self.take_turn() {
                break taken;
            }
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return None,
                () = ended => {}
            }
        };
        let now = Instant::now();
        if at > now {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return None,
                () = tokio::time::sleep_until(at) => {}
            }
        }
        Some(Turn {
            at,
            waited: at > now,
            _in_flight: in_flight,
        })
    }

    /// Takes the next turn, counting the call in flight, unless as many
    /// calls as the bound allows are in flight already.
    fn take_turn(&self) -> Option<(Instant, InFlight)> {
        let now = Instant::now();
        let mut limiter = self.lock();
        if limiter.in_flight >= limiter.in_flight_bound() {
            return None;
        }
        let at = match limiter.rate {
            None => now,
            Some(rate) => {
                let at = limiter.next.map_or(now, |next| next.max(now));
                limiter.next = Some(at + Duration::from_secs_f64(1.0 / rate));
                at
            }
        };
        limiter.sent.push_back(at);
        prune(&mut limiter.sent, now);
        limiter.in_flight += 1;
        Some((at, InFlight(self.clone())))
    }

    /// Tells the pace how the server answered the call sent at `turn`.
    pub fn answered(&self, turn: Turn, answer: Answer) {
        let Turn {
            at: sent_at,
            waited,
            _in_flight: in_flight,
        } = turn;
        let now = Instant::now();
        let mut limiter = self.lock();
        // A call sent before the last slowdown tells nothing new.
        let fresh = limiter.slowed_at.is_none_or(|slowed| sent_at > slowed);
        match answer {
            Answer::Lost => {}
            Answer::Fine => {
                limiter.fine.push_back(now);
                prune(&mut limiter.fine, now);
                if limiter.rate.is_none() {
                    limiter.unpaced_fine = limiter.unpaced_fine.saturating_add(1);
                }
                let held = limiter
                    .slowed_at
                    .is_some_and(|slowed| now.duration_since(slowed) < GROWTH_HOLD);
                if waited && fresh && !held {
                    let ceiling = limiter.ceiling.unwrap_or(f64::INFINITY);
                    limiter.rate = limiter.rate.map(|rate| (rate + GROWTH).min(ceiling));
                }
            }
            Answer::Throttled => {
                limiter.throttled += 1;
                limiter.last_throttled = Some((now, SystemTime::now()));
                crate::telemetry::throttled();
                if fresh {
                    prune(&mut limiter.fine, now);
                    prune(&mut limiter.sent, now);
                    let per_second = |count: usize| count as f64 / WINDOW.as_secs_f64();
                    let rate = match limiter.rate {
                        // The first throttle: the calls let go but this one.
                        None => per_second(limiter.sent.len().saturating_sub(1)),
                        Some(rate) => {
                            let served = per_second(limiter.fine.len());
                            rate.min(served).max(rate * MAX_CUT) * SLOWDOWN
                        }
                    };
                    let ceiling = limiter.ceiling.unwrap_or(f64::INFINITY);
                    let rate = rate.clamp(MIN_RATE, ceiling.max(MIN_RATE));
                    tracing::debug!(rate, "throttled by Temporal; slowing down");
                    limiter.rate = Some(rate);
                    limiter.slowed_at = Some(now);
                    // The server's allowance is spent: the next call waits a
                    // turn at the new pace.
                    let after = now + Duration::from_secs_f64(1.0 / rate);
                    limiter.next = Some(limiter.next.map_or(after, |next| next.max(after)));
                }
            }
        }
        if let Some(rate) = limiter.rate {
            crate::telemetry::pace(rate);
        }
        // The call ends once the lock is let go (ending it takes the lock).
        drop(limiter);
        drop(in_flight);
    }

    /// The pace now.
    pub fn status(&self) -> PaceStatus {
        let limiter = self.lock();
        PaceStatus {
            rate: limiter.rate,
            ceiling: limiter.ceiling,
            throttled: limiter.throttled,
            last_throttled: limiter.last_throttled.map(|(_, wall)| wall),
            throttled_recently: limiter
                .last_throttled
                .is_some_and(|(at, _)| at.elapsed() < THROTTLED_RECENTLY),
        }
    }
}

/// Drops the times older than [`WINDOW`] before `now`.
fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|at| now.duration_since(*at) > WINDOW)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `count` calls one after another, each answered at once with
    /// `answer`, and returns when each was let go, relative to the start.
    async fn send(pace: &Pace, count: usize, answer: Answer) -> Vec<Duration> {
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..count {
            let turn = pace.turn().await.unwrap();
            sent.push(turn.at - start);
            pace.answered(turn, answer);
        }
        sent
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_ceiling_calls_go_at_once_until_the_server_throttles() {
        let pace = Pace::new(None);
        let sent = send(&pace, 50, Answer::Fine).await;
        assert!(sent.iter().all(|at| at.is_zero()), "{sent:?}");
        assert_eq!(pace.status().rate, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_ceiling_spaces_the_calls_evenly() {
        let pace = Pace::new(Some(10.0));
        let sent = send(&pace, 5, Answer::Fine).await;
        assert_eq!(sent, [ms(0), ms(100), ms(200), ms(300), ms(400)]);
        // Growth never passes the ceiling.
        assert_eq!(pace.status().rate, Some(10.0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_throttle_sets_the_pace_to_the_calls_of_the_last_second() {
        let pace = Pace::new(None);
        // 8 sent and answered fine within the last second, then a throttle.
        send(&pace, 8, Answer::Fine).await;
        send(&pace, 1, Answer::Throttled).await;
        assert_eq!(pace.status().rate, Some(8.0));
        assert_eq!(pace.status().throttled, 1);
        assert!(pace.status().throttled_recently);
        // The next call waits one turn at that pace, and the next one more.
        let sent = send(&pace, 2, Answer::Fine).await;
        assert_eq!(sent, [ms(125), ms(250)]);
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_of_calls_sent_before_the_slowdown_do_not_slow_it_again() {
        let pace = Pace::new(None);
        send(&pace, 20, Answer::Fine).await;
        // Three calls in flight at once, all throttled.
        let mut turns = Vec::new();
        for _ in 0..3 {
            turns.push(pace.turn().await.unwrap());
        }
        for turn in turns {
            pace.answered(turn, Answer::Throttled);
        }
        // One slowdown, to the 23 calls of the last second but the one.
        assert_eq!(pace.status().rate, Some(22.0));
        assert_eq!(pace.status().throttled, 3);
        // A call sent after it, throttled: 95% of the 20 served.
        send(&pace, 1, Answer::Throttled).await;
        assert_eq!(pace.status().rate, Some(19.0));
        // And again: the server served none in the last second, but one
        // throttle cuts at most to 80%.
        tokio::time::sleep(Duration::from_secs(2)).await;
        send(&pace, 1, Answer::Throttled).await;
        let rate = pace.status().rate.unwrap();
        assert!((rate - 19.0 * MAX_CUT * SLOWDOWN).abs() < 1e-9, "{rate}");
    }

    #[tokio::test(start_paused = true)]
    async fn fine_answers_speed_it_up_again_by_three_percent_a_second_after_a_hold() {
        let pace = Pace::new(None);
        send(&pace, 10, Answer::Fine).await;
        send(&pace, 1, Answer::Throttled).await;
        assert_eq!(pace.status().rate, Some(10.0));
        // For 5 s after the slowdown, the pace holds.
        let start = Instant::now();
        send(&pace, 49, Answer::Fine).await;
        assert!(start.elapsed() < GROWTH_HOLD);
        assert_eq!(pace.status().rate, Some(10.0));
        send(&pace, 1, Answer::Fine).await;
        assert_eq!(start.elapsed(), GROWTH_HOLD);
        // Then each answer adds 0.03.
        let start = Instant::now();
        send(&pace, 100, Answer::Fine).await;
        let rate = pace.status().rate.unwrap();
        assert!((rate - 13.03).abs() < 1e-9, "{rate}");
        // 100 calls at 10 to 13 a second took between 7.7 and 10 s.
        let took = start.elapsed();
        assert!(took > ms(7_700) && took < ms(10_000), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn calls_that_did_not_wait_do_not_speed_it_up() {
        let pace = Pace::new(None);
        send(&pace, 5, Answer::Fine).await;
        send(&pace, 1, Answer::Throttled).await;
        assert_eq!(pace.status().rate, Some(5.0));
        // One call every second, each finding its turn free.
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            send(&pace, 1, Answer::Fine).await;
        }
        assert_eq!(pace.status().rate, Some(5.0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_pace_never_drops_below_one_call_a_second() {
        let pace = Pace::new(None);
        for _ in 0..10 {
            send(&pace, 1, Answer::Throttled).await;
        }
        assert_eq!(pace.status().rate, Some(MIN_RATE));
        let sent = send(&pace, 2, Answer::Fine).await;
        assert_eq!(sent[1] - sent[0], Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn no_answer_changes_nothing() {
        let pace = Pace::new(Some(10.0));
        send(&pace, 10, Answer::Lost).await;
        let status = pace.status();
        assert_eq!(status.rate, Some(10.0));
        assert_eq!(status.throttled, 0);
        assert!(!status.throttled_recently);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_pace_gives_no_more_turns_even_to_calls_waiting_for_one() {
        let stop = CancellationToken::new();
        let pace = Pace::new(Some(1.0)).stopping_at(stop.clone());
        send(&pace, 1, Answer::Fine).await;
        let waiting = tokio::spawn({
            let pace = pace.clone();
            async move { pace.turn().await.map(|_| ()) }
        });
        tokio::time::sleep(ms(500)).await;
        stop.cancel();
        assert_eq!(waiting.await.unwrap(), None);
        assert!(pace.turn().await.is_none());
    }

    /// Takes `count` turns at once and keeps them in flight.
    async fn hold(pace: &Pace, count: usize) -> Vec<Turn> {
        let mut turns = Vec::new();
        for _ in 0..count {
            turns.push(pace.turn().await.unwrap());
        }
        turns
    }

    /// Whether a call can get a turn now (a turn taken to tell is given
    /// up at once).
    async fn a_turn_is_free(pace: &Pace) -> bool {
        tokio::time::timeout(Duration::from_secs(5), pace.turn())
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn unpaced_each_fine_answer_lets_one_more_call_in_flight() {
        let pace = Pace::new(None);
        let mut turns = hold(&pace, PACED_IN_FLIGHT).await;
        assert!(!a_turn_is_free(&pace).await);
        // 48 answered fine: 16 + 48 = 64 may be in flight, 48 are.
        for _ in 0..48 {
            pace.answered(turns.pop().unwrap(), Answer::Fine);
            turns.extend(hold(&pace, 2).await);
        }
        assert_eq!(turns.len(), 64);
        assert!(!a_turn_is_free(&pace).await);
        // None of them waited: the calls are not paced.
        assert_eq!(pace.status().rate, None);
        assert!(turns.iter().all(|turn| !turn.waited));
    }

    #[tokio::test(start_paused = true)]
    async fn paced_calls_wait_for_one_in_flight_to_end_past_the_bound() {
        let pace = Pace::new(Some(1_000.0));
        let mut turns = hold(&pace, PACED_IN_FLIGHT).await;
        let next = tokio::spawn({
            let pace = pace.clone();
            async move { pace.turn().await }
        });
        // The turn is due in a millisecond, but no call has ended.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!next.is_finished());
        let answered = Instant::now();
        pace.answered(turns.pop().unwrap(), Answer::Fine);
        let taken = next.await.unwrap().unwrap();
        assert!(taken.at >= answered, "let go before a call ended");
        turns.push(taken);
        // A turn dropped unanswered (its call cancelled) ends its call too.
        let next = tokio::spawn({
            let pace = pace.clone();
            async move { pace.turn().await.is_some() }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!next.is_finished());
        drop(turns.pop());
        assert!(next.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn calls_beyond_the_bound_when_pacing_starts_finish_before_new_ones_go() {
        let pace = Pace::new(None);
        let mut turns = hold(&pace, PACED_IN_FLIGHT).await;
        for _ in 0..4 {
            pace.answered(turns.pop().unwrap(), Answer::Fine);
            turns.extend(hold(&pace, 2).await);
        }
        // 20 in flight; one of them throttled starts the pacing.
        pace.answered(turns.pop().unwrap(), Answer::Throttled);
        assert!(pace.status().rate.is_some());
        // 19 in flight: a new call waits until fewer than 16 are.
        let next = tokio::spawn({
            let pace = pace.clone();
            async move { pace.turn().await.is_some() }
        });
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert!(!next.is_finished());
            pace.answered(turns.pop().unwrap(), Answer::Fine);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!next.is_finished());
        pace.answered(turns.pop().unwrap(), Answer::Fine);
        assert!(next.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn throttled_recently_wears_off_after_a_minute() {
        let pace = Pace::new(None);
        send(&pace, 1, Answer::Throttled).await;
        assert!(pace.status().throttled_recently);
        tokio::time::sleep(THROTTLED_RECENTLY).await;
        assert!(!pace.status().throttled_recently);
        assert_eq!(pace.status().throttled, 1);
    }
}
