//! What a run measured: a latency histogram of the successful requests, and the errors by kind.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime},
};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::RequestError;

/// The longest latency a histogram keeps exactly; anything slower is recorded as this.
const MAX_LATENCY_MICROS: u64 = 120_000_000;

/// Latencies (in microseconds, 3 significant digits) and error counts. One per worker, merged.
#[derive(Debug, Clone)]
pub struct Recorder {
    latencies: Histogram<u64>,
    /// How long the requests refused by backpressure took to be refused.
    refusals: Histogram<u64>,
    errors: BTreeMap<String, ErrorCount>,
}

/// How often one kind of error happened, with the first message as an example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    pub count: u64,
    pub example: String,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        let histogram = || Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3).expect("valid histogram bounds");
        Self { latencies: histogram(), refusals: histogram(), errors: BTreeMap::new() }
    }

    /// Records one request: its latency when it succeeded or was refused by backpressure, its
    /// kind when it failed.
    pub fn record(&mut self, latency: Duration, outcome: Result<(), RequestError>) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_LATENCY_MICROS);
        match outcome {
            Ok(()) => self.latencies.saturating_record(micros),
            Err(RequestError::Refused(_)) => self.refusals.saturating_record(micros),
            Err(error) => {
                self.errors
                    .entry(error.kind())
                    .or_insert_with(|| ErrorCount { count: 0, example: error.to_string() })
                    .count += 1;
            }
        }
    }

    pub fn merge(&mut self, other: &Self) {
        self.latencies.add(&other.latencies).expect("histograms with the same bounds");
        self.refusals.add(&other.refusals).expect("histograms with the same bounds");
        for (kind, count) in &other.errors {
            self.errors
                .entry(kind.clone())
                .or_insert_with(|| ErrorCount { count: 0, example: count.example.clone() })
                .count += count.count;
        }
    }

    pub fn successes(&self) -> u64 {
        self.latencies.len()
    }

    pub fn errors(&self) -> u64 {
        self.errors.values().map(|count| count.count).sum()
    }

    /// Requests refused by backpressure.
    pub fn refused(&self) -> u64 {
        self.refusals.len()
    }

    /// How long the refusals took, in milliseconds.
    pub fn percentiles_of_refusals(&self) -> Percentiles {
        Percentiles::of(&self.refusals)
    }

    /// The latency percentiles of the successful requests so far, in milliseconds.
    pub fn percentiles(&self) -> Percentiles {
        Percentiles::of(&self.latencies)
    }

    /// The report for a run of `scenario` whose measured part began at `began` and lasted
    /// `elapsed`.
    pub fn report(&self, scenario: &str, load: &crate::Load, began: SystemTime, elapsed: Duration) -> Report {
        let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
        Report {
            began_unix_ms: began
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .and_then(|since| since.as_millis().try_into().ok()),
            scenario: scenario.to_owned(),
            mode: load.mode.name().to_owned(),
            concurrency: load.mode.concurrency(),
            rate_per_sec: load.mode.rate(),
            duration_secs: round(seconds, 3),
            requests: self.successes() + self.errors() + self.refused(),
            errors: self.errors(),
            throughput_per_sec: round(self.successes() as f64 / seconds, 1),
            latency_ms: self.percentiles(),
            refused: self.refused(),
            refused_latency_ms: (self.refused() > 0).then(|| self.percentiles_of_refusals()),
            error_kinds: self.errors.clone(),
        }
    }
}

fn micros_to_ms(micros: u64) -> f64 {
    round(micros as f64 / 1000.0, 3)
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10_f64.powi(decimals);
    (value * scale).round() / scale
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Self {
        let at = |quantile: f64| micros_to_ms(histogram.value_at_quantile(quantile));
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: micros_to_ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

/// The result of one scenario run, as the JSON output and the summary line show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    /// `closed` (a fixed number of clients) or `open` (a fixed arrival rate).
    pub mode: String,
    /// Clients (closed loop) or the most requests in flight at once (open loop).
    pub concurrency: usize,
    /// The arrival rate asked for, in an open-loop run.
    pub rate_per_sec: Option<f64>,
    pub duration_secs: f64,
    /// When the measured run began (after set-up and warm-up), in milliseconds since the Unix
    /// epoch: what the bench samples each process's CPU time from.
    #[serde(default)]
    pub began_unix_ms: Option<u64>,
    /// Every request sent (successes and errors).
    pub requests: u64,
    pub errors: u64,
    /// Successful requests per second.
    pub throughput_per_sec: f64,
    pub latency_ms: Percentiles,
    /// Requests refused at once by backpressure (only a scenario that allows refusals has any;
    /// elsewhere a refusal is an error).
    #[serde(default)]
    pub refused: u64,
    /// How long the refusals took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_latency_ms: Option<Percentiles>,
    pub error_kinds: BTreeMap<String, ErrorCount>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.errors == 0 && self.requests > 0
    }

    /// Whether any request succeeded: the latency figures are those of successful requests, so
    /// without one there are none.
    pub fn any_succeeded(&self) -> bool {
        self.requests > self.errors + self.refused
    }

    /// One line for a terminal, then one line per kind of error.
    pub fn summary(&self) -> String {
        let load = match self.rate_per_sec {
            Some(rate) => format!("open {rate}/s"),
            None => format!("closed c={}", self.concurrency),
        };
        let latency = self.latency_ms;
        let mut summary = format!(
            "{}: {load}, {:.1} s, {} requests, {:.1}/s, latency ms p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}, ",
            self.scenario,
            self.duration_secs,
            self.requests,
            self.throughput_per_sec,
            latency.p50,
            latency.p90,
            latency.p99,
            latency.p999,
            latency.max,
        );
        if let Some(refused) = self.refused_latency_ms {
            summary.push_str(&format!("{} refused (p99 {:.2} ms), ", self.refused, refused.p99));
        }
        if self.passed() {
            summary.push_str("0 errors: PASSED");
        } else if self.requests == 0 {
            summary.push_str("no request completed: FAILED");
        } else {
            summary.push_str(&format!("{} errors: FAILED", self.errors));
            for (kind, count) in &self.error_kinds {
                summary.push_str(&format!("\n  {} x {kind} (e.g. {})", count.count, count.example));
            }
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Load, Mode};

    fn load() -> Load {
        Load { mode: Mode::Closed { concurrency: 4 }, duration: Duration::from_secs(1), warmup: Duration::ZERO }
    }

    #[test]
    fn percentiles_come_from_the_recorded_latencies() {
        let mut recorder = Recorder::new();
        for millis in 1..=100 {
            recorder.record(Duration::from_millis(millis), Ok(()));
        }
        let percentiles = recorder.percentiles();
        assert!((percentiles.p50 - 50.0).abs() < 0.1, "{percentiles:?}");
        assert!((percentiles.p99 - 99.0).abs() < 0.1, "{percentiles:?}");
        assert!((percentiles.max - 100.0).abs() < 0.1, "{percentiles:?}");
    }

    #[test]
    fn errors_fail_the_report_and_are_listed_by_kind() {
        let mut first = Recorder::new();
        first.record(Duration::from_millis(1), Ok(()));
        first.record(Duration::from_millis(1), Err(RequestError::Status(429)));
        let mut second = Recorder::new();
        second.record(Duration::from_millis(1), Err(RequestError::Status(429)));
        first.merge(&second);

        let report = first.report("product", &load(), SystemTime::UNIX_EPOCH, Duration::from_secs(1));
        assert_eq!((report.requests, report.errors), (3, 2));
        assert!(!report.passed());
        assert!(report.summary().contains("2 errors: FAILED"), "{}", report.summary());
        assert!(report.summary().contains("2 x http 429"), "{}", report.summary());
    }

    #[test]
    fn a_run_without_requests_fails() {
        let report = Recorder::new().report("product", &load(), SystemTime::UNIX_EPOCH, Duration::from_secs(1));
        assert!(!report.passed());
        assert!(report.summary().ends_with("FAILED"));
    }

    #[test]
    fn a_clean_run_passes_and_reports_throughput() {
        let mut recorder = Recorder::new();
        for _ in 0..500 {
            recorder.record(Duration::from_micros(800), Ok(()));
        }
        let report = recorder.report("product", &load(), SystemTime::UNIX_EPOCH, Duration::from_secs(2));
        assert!(report.passed());
        assert!((report.throughput_per_sec - 250.0).abs() < f64::EPSILON);
        assert!(report.summary().ends_with("0 errors: PASSED"));
    }
}
