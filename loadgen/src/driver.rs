//! The two ways to apply load, and the progress line while it runs.
//!
//! Closed loop: `concurrency` clients, each sending its next request as soon as the previous
//! one answered; it finds the most the system can do, but a slow system also slows the clients,
//! so queueing never shows in the latencies. Open loop: a request is due every `1 / rate`
//! seconds whatever happens, and its latency counts from when it was due, so waiting for a slow
//! system is measured (no coordinated omission).

use std::{
    future::Future,
    io::IsTerminal as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{sync::Semaphore, time::Instant};

use crate::{Recorder, RequestError};

/// One kind of request, sent again and again.
pub trait Workload: Send + Sync + 'static {
    /// Sends request number `sequence` (unique within a run) and checks its answer.
    fn call(&self, sequence: u64) -> impl Future<Output = Result<(), RequestError>> + Send;
}

/// How to apply load, and for how long.
#[derive(Debug, Clone)]
pub struct Load {
    pub mode: Mode,
    /// How long to measure.
    pub duration: Duration,
    /// How long to run first without measuring (connections, caches, JIT-free but still warm).
    pub warmup: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// This many clients, each waiting for its answer before sending again.
    Closed { concurrency: usize },
    /// Requests due at `rate` per second; at most `max_in_flight` wait for answers at once
    /// (beyond that, due requests wait, and that wait counts in their latency).
    Open { rate: f64, max_in_flight: usize },
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Closed { .. } => "closed",
            Self::Open { .. } => "open",
        }
    }

    pub fn concurrency(&self) -> usize {
        match *self {
            Self::Closed { concurrency } => concurrency,
            Self::Open { max_in_flight, .. } => max_in_flight,
        }
    }

    pub fn rate(&self) -> Option<f64> {
        match *self {
            Self::Closed { .. } => None,
            Self::Open { rate, .. } => Some(rate),
        }
    }
}

/// Counts shared with the progress printer.
#[derive(Debug, Default)]
struct Counts {
    done: AtomicU64,
    errors: AtomicU64,
}

impl Counts {
    fn add(&self, outcome: &Result<(), RequestError>) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if outcome.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs `workload` with `load`: the warm-up (not recorded), then the measured run. Progress
/// goes to stderr once a second under `label`.
pub async fn run<W: Workload>(workload: Arc<W>, load: &Load, label: &str) -> (Recorder, Duration) {
    let sequence = Arc::new(AtomicU64::new(0));
    if !load.warmup.is_zero() {
        let counts = Arc::new(Counts::default());
        let progress = spawn_progress(format!("{label} (warm-up)"), Arc::clone(&counts));
        phase(&workload, load.mode, load.warmup, &sequence, &counts).await;
        progress.abort();
    }
    let counts = Arc::new(Counts::default());
    let progress = spawn_progress(label.to_owned(), Arc::clone(&counts));
    let started = Instant::now();
    let recorder = phase(&workload, load.mode, load.duration, &sequence, &counts).await;
    let elapsed = started.elapsed();
    progress.abort();
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    (recorder, elapsed)
}

async fn phase<W: Workload>(
    workload: &Arc<W>,
    mode: Mode,
    duration: Duration,
    sequence: &Arc<AtomicU64>,
    counts: &Arc<Counts>,
) -> Recorder {
    match mode {
        Mode::Closed { concurrency } => closed_loop(workload, concurrency, duration, sequence, counts).await,
        Mode::Open { rate, max_in_flight } => {
            open_loop(workload, rate, max_in_flight, duration, sequence, counts).await
        }
    }
}

async fn closed_loop<W: Workload>(
    workload: &Arc<W>,
    concurrency: usize,
    duration: Duration,
    sequence: &Arc<AtomicU64>,
    counts: &Arc<Counts>,
) -> Recorder {
    let deadline = Instant::now() + duration;
    let clients: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (workload, sequence, counts) = (Arc::clone(workload), Arc::clone(sequence), Arc::clone(counts));
            tokio::spawn(async move {
                let mut recorder = Recorder::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let outcome = workload.call(sequence.fetch_add(1, Ordering::Relaxed)).await;
                    counts.add(&outcome);
                    recorder.record(started.elapsed(), outcome);
                }
                recorder
            })
        })
        .collect();
    let mut total = Recorder::new();
    for client in clients {
        match client.await {
            Ok(recorder) => total.merge(&recorder),
            Err(error) => total.record(Duration::ZERO, Err(RequestError::Unexpected(format!("client task: {error}")))),
        }
    }
    total
}

async fn open_loop<W: Workload>(
    workload: &Arc<W>,
    rate: f64,
    max_in_flight: usize,
    duration: Duration,
    sequence: &Arc<AtomicU64>,
    counts: &Arc<Counts>,
) -> Recorder {
    let period = Duration::from_secs_f64(1.0 / rate.max(f64::MIN_POSITIVE));
    let max_in_flight = max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let recorder = Arc::new(std::sync::Mutex::new(Recorder::new()));
    let started = Instant::now();
    for index in 0_u32.. {
        let due = started + period * index;
        if due >= started + duration {
            break;
        }
        tokio::time::sleep_until(due).await;
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { break };
        let (workload, recorder, counts) = (Arc::clone(workload), Arc::clone(&recorder), Arc::clone(counts));
        let number = sequence.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let outcome = workload.call(number).await;
            counts.add(&outcome);
            // From when it was due, not from when it was sent: time spent waiting counts.
            recorder.lock().expect("recorder lock").record(due.elapsed(), outcome);
            drop(slot);
        });
    }
    // Every slot back means every request answered.
    let _all = slots.acquire_many(u32::try_from(max_in_flight).unwrap_or(u32::MAX)).await;
    let recorder = recorder.lock().expect("recorder lock");
    recorder.clone()
}

/// Prints the counts once a second: rewriting one line on a terminal, a line every 5 s otherwise.
fn spawn_progress(label: String, counts: Arc<Counts>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let terminal = std::io::stderr().is_terminal();
        let started = Instant::now();
        let mut last_done = 0;
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let done = counts.done.load(Ordering::Relaxed);
            let errors = counts.errors.load(Ordering::Relaxed);
            let seconds = started.elapsed().as_secs();
            let line = format!("{label}: {seconds:>3} s  {:>8} req/s  {done} done  {errors} errors", done - last_done);
            last_done = done;
            if terminal {
                eprint!("\r{line}   ");
            } else if seconds.is_multiple_of(5) {
                eprintln!("{line}");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers after `delay`; every `fail_every`-th request fails.
    struct Fake {
        delay: Duration,
        fail_every: u64,
    }

    impl Workload for Fake {
        async fn call(&self, sequence: u64) -> Result<(), RequestError> {
            tokio::time::sleep(self.delay).await;
            if self.fail_every > 0 && sequence.is_multiple_of(self.fail_every) {
                return Err(RequestError::Status(500));
            }
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn closed_loop_keeps_each_client_busy() {
        let load =
            Load { mode: Mode::Closed { concurrency: 4 }, duration: Duration::from_secs(1), warmup: Duration::ZERO };
        let (recorder, _) =
            run(Arc::new(Fake { delay: Duration::from_millis(10), fail_every: 0 }), &load, "test").await;
        // 4 clients x 100 requests of 10 ms in one second.
        assert_eq!(recorder.successes(), 400);
        assert_eq!(recorder.errors(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_sends_at_the_rate_and_counts_errors() {
        let load = Load {
            mode: Mode::Open { rate: 200.0, max_in_flight: 100 },
            duration: Duration::from_secs(2),
            warmup: Duration::from_millis(500),
        };
        let (recorder, _) =
            run(Arc::new(Fake { delay: Duration::from_millis(5), fail_every: 10 }), &load, "test").await;
        assert_eq!(recorder.successes() + recorder.errors(), 400);
        assert_eq!(recorder.errors(), 40);
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_counts_the_wait_of_requests_that_could_not_start() {
        // One slot and 50 ms answers at 100/s: requests queue, and their latency shows it.
        let load = Load {
            mode: Mode::Open { rate: 100.0, max_in_flight: 1 },
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
        };
        let (recorder, _) =
            run(Arc::new(Fake { delay: Duration::from_millis(50), fail_every: 0 }), &load, "test").await;
        assert_eq!(recorder.successes(), 100);
        assert!(recorder.percentiles().max > 4000.0, "{:?}", recorder.percentiles());
    }
}
