//! Reading a process's memory and CPU time from `/proc`, and sampling them while load runs.

use std::{
    collections::BTreeMap,
    fs,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, SystemTime},
};

use serde::Serialize;

/// How often the sampler looks.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// Resident memory now and at its highest since the process started, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    pub rss: u64,
    pub peak_rss: u64,
}

/// `VmRSS` and `VmHWM` from a `/proc/<pid>/status` text.
pub fn parse_memory(status: &str) -> Option<Memory> {
    let kib = |key: &str| {
        status.lines().find_map(|line| line.strip_prefix(key)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
    };
    Some(Memory { rss: kib("VmRSS:")? * 1024, peak_rss: kib("VmHWM:")? * 1024 })
}

/// User plus system CPU time in clock ticks, from a `/proc/<pid>/stat` text.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) are the 12th and 13th after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

pub fn memory(pid: u32) -> Option<Memory> {
    parse_memory(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_cpu_ticks(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Clock ticks per second for `/proc` CPU times (`getconf CLK_TCK`; 100 on Linux in practice).
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// What one process used while a scenario ran.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Usage {
    /// The highest RSS seen by the sampler during the scenario, in MiB.
    pub peak_rss_mib: f64,
    /// CPU time over wall time, in percent of one core.
    pub cpu_percent: f64,
    /// CPU time used, in seconds.
    pub cpu_seconds: f64,
}

/// Samples named processes until stopped.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Readings>,
}

/// Every reading the sampler took: when, and each process's CPU ticks then.
#[derive(Debug, Default)]
struct Readings {
    names: Vec<String>,
    at: Vec<(SystemTime, Vec<u64>)>,
    peaks: Vec<u64>,
}

impl Sampler {
    pub fn start(processes: Vec<(String, u32)>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut readings = Readings {
                names: processes.iter().map(|(name, _)| name.clone()).collect(),
                at: Vec::new(),
                peaks: vec![0_u64; processes.len()],
            };
            // A process that has exited keeps its last reading: the generator has exited by the
            // time the sampler is stopped.
            let mut ticks: Vec<u64> = processes.iter().map(|(_, pid)| cpu_ticks(*pid).unwrap_or_default()).collect();
            loop {
                for (((_, pid), peak), ticks) in processes.iter().zip(&mut readings.peaks).zip(&mut ticks) {
                    if let Some(memory) = memory(*pid) {
                        *peak = (*peak).max(memory.rss);
                    }
                    if let Some(now) = cpu_ticks(*pid) {
                        *ticks = now;
                    }
                }
                readings.at.push((SystemTime::now(), ticks.clone()));
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(SAMPLE_INTERVAL);
            }
            readings
        });
        Self { stop, thread }
    }

    /// What each process used from the start until now.
    pub fn finish(self) -> BTreeMap<String, Usage> {
        self.finish_within(None)
    }

    /// What each process used within `window` (when a load run's measured seconds began, and
    /// how long they lasted), to the nearest reading; from the start until now when `window`
    /// is `None`. Peak memory is over the whole run.
    pub fn finish_within(self, window: Option<(SystemTime, Duration)>) -> BTreeMap<String, Usage> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default().usage_within(window, ticks_per_second())
    }
}

impl Readings {
    /// What each process used within `window` (all readings when `None`), with CPU times in
    /// clock ticks of which `ticks` make a second.
    fn usage_within(&self, window: Option<(SystemTime, Duration)>, ticks: f64) -> BTreeMap<String, Usage> {
        let (Some(first), Some(last)) = (self.at.first(), self.at.last()) else { return BTreeMap::new() };
        let (start, end) = match window {
            Some((began, lasted)) => {
                let from = |moment: SystemTime| self.at.iter().find(|(at, _)| *at >= moment);
                (from(began).unwrap_or(first), from(began + lasted).unwrap_or(last))
            }
            None => (first, last),
        };
        let seconds = end.0.duration_since(start.0).unwrap_or_default().as_secs_f64().max(f64::EPSILON);
        self.names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let used = end.1[index].saturating_sub(start.1[index]) as f64 / ticks;
                let usage = Usage {
                    peak_rss_mib: mib(self.peaks[index]),
                    cpu_percent: (used / seconds * 1000.0).round() / 10.0,
                    cpu_seconds: used,
                };
                (name.clone(), usage)
            })
            .collect()
    }
}

/// Bytes in MiB, to one decimal.
pub fn mib(bytes: u64) -> f64 {
    (bytes as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_counted_within_the_measured_window_only() {
        let at = |second: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(second);
        // A busy set-up (ticks 0 -> 300 in 3 s), then 10 s measured at half a core, then idle.
        let readings = Readings {
            names: vec!["gateway".to_owned()],
            at: vec![
                (at(0), vec![0]),
                (at(3), vec![300]),
                (at(8), vec![550]),
                (at(13), vec![800]),
                (at(15), vec![801]),
            ],
            peaks: vec![64 * 1024 * 1024],
        };
        let measured = readings.usage_within(Some((at(3), Duration::from_secs(10))), 100.0);
        assert_eq!(measured["gateway"].cpu_percent, 50.0);
        assert!((measured["gateway"].cpu_seconds - 5.0).abs() < 1e-9);
        assert_eq!(measured["gateway"].peak_rss_mib, 64.0);
        let whole = readings.usage_within(None, 100.0);
        assert!((whole["gateway"].cpu_seconds - 8.01).abs() < 1e-9, "{whole:?}");
    }

    #[test]
    fn memory_comes_from_vmrss_and_vmhwm() {
        let status = "Name:\tuser-service\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t4\n";
        assert_eq!(parse_memory(status), Some(Memory { rss: 10 * 1024 * 1024, peak_rss: 20 * 1024 * 1024 }));
        assert_eq!(parse_memory("Name:\tzombie\n"), None);
    }

    #[test]
    fn cpu_time_is_utime_plus_stime_even_with_spaces_in_the_name() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("4242 (short) S 1"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let pid = std::process::id();
        let memory = memory(pid).expect("our own /proc entry");
        assert!(memory.rss > 0 && memory.peak_rss >= memory.rss);
        let sampler = Sampler::start(vec![("self".to_owned(), pid)]);
        let usage = sampler.finish();
        assert!(usage["self"].peak_rss_mib > 0.0);
    }
}
