//! The benchmark (`cargo xtask bench` builds it and the release binaries, then runs it): starts
//! the whole system on free ports with a fresh broker and fresh databases, measures cold start, runs every scenario with the load
//! generator (reference servers first), samples each process's memory and CPU, measures event
//! latency from the topics, stops everything it started, and writes `latest.json`, `latest.md`
//! and `latest.svg` under `bench/results/`.

mod kafka_stats;
mod report;
mod saga;
mod sample;
mod svg;

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use loadgen::Report;

use self::report::{ColdStart, Machine, MemoryFigures, Results, RunSettings, ScenarioResult};
use launcher::system::{self as local, PROCESSES, Settings, Started};

/// The OTLP receiver the traced scenarios export to: an example of test-support, which
/// `cargo xtask bench` builds beside the services, the load generator and this binary.
const RECEIVER: &str = "otlp_receiver";
/// The gateway's per-client limit during the run: all the load comes from one address.
const RATE_LIMIT: u32 = 10_000_000;
/// The gateway's per-client cap on open subscriptions during the run, for the same reason: the
/// order scenarios follow every order in flight (hundreds at 500/s), all from one address. The
/// gateway-wide cap (`MAX_SUBSCRIPTIONS`, 10,000) stays.
const SUBSCRIPTIONS_PER_CLIENT: u32 = 10_000;
/// How long the system rests before idle memory is read.
const SETTLE: Duration = Duration::from_secs(3);
/// How long idle CPU is measured, with no request at all.
const IDLE_WINDOW: Duration = Duration::from_secs(10);
/// How long after the last order scenario every order must have settled.
const SETTLE_AFTER_RUN: Duration = Duration::from_secs(30);
/// librdkafka reports its counters once a second; waiting a little longer than that after a
/// scenario puts all of its requests in the next reading.
const STATISTICS_DELAY: Duration = Duration::from_millis(1500);

/// Runs every scenario (or those of `--only`) and writes the figures.
#[derive(Debug, clap::Parser)]
#[command(name = "bench", about = "Benchmark the whole system (release build) and write the figures")]
pub struct BenchArgs {
    /// Seconds each scenario is measured.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds each scenario runs before measuring starts.
    #[arg(long, default_value_t = 5.0)]
    warmup: f64,
    /// Clients in the closed-loop scenarios.
    #[arg(long, default_value_t = 32)]
    concurrency: u32,
    /// Orders per second in the open-loop `create-order` scenario.
    #[arg(long, default_value_t = 500.0)]
    order_rate: f64,
    /// Orders per second in `create-order-overload`: past what the saga settles, on purpose.
    #[arg(long, default_value_t = 1500.0)]
    overload_rate: f64,
    /// Where the results go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Only these scenarios, comma-separated (all of them when left out).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// How a scenario is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drive {
    /// A fixed number of clients (`--concurrency`).
    Closed,
    /// An open loop at `--order-rate`.
    OrderRate,
    /// An open loop at `--overload-rate`.
    OverloadRate,
}

/// A scenario of the run and how it is driven.
#[derive(Debug)]
struct Planned {
    /// Its name in the results.
    name: &'static str,
    /// The load generator's scenario it runs.
    scenario: &'static str,
    reference: bool,
    drive: Drive,
    /// It places orders: the broker's work during it is read from the services' counters.
    places_orders: bool,
    /// The services export every span (to the bench's OTLP receiver) while it runs.
    traced: bool,
}

impl Planned {
    const fn new(name: &'static str, reference: bool, drive: Drive, places_orders: bool) -> Self {
        Self { name, scenario: name, reference, drive, places_orders, traced: false }
    }
}

const PLAN: [Planned; 14] = [
    Planned::new("hello", true, Drive::Closed, false),
    Planned::new("graphql-hello", true, Drive::Closed, false),
    Planned::new("grpc-health", true, Drive::Closed, false),
    Planned::new("product", false, Drive::Closed, false),
    // Right after `product`, so that the cost of tracing is measured against runs seconds
    // away, not a quarter of an hour: the services are restarted with export on for it, and
    // with export off after it, for `product-untraced`. The traced run is judged against the
    // mean of the two around it: one 20 s run alone differs from the next by up to 15 % here
    // (`product` at 42,581/s and 48,944/s in two full runs of nearly the same code).
    Planned {
        name: "product-traced",
        scenario: "product",
        traced: true,
        ..Planned::new("", false, Drive::Closed, false)
    },
    Planned { name: "product-untraced", scenario: "product", ..Planned::new("", false, Drive::Closed, false) },
    // product(id) again, while one account gets 200 wrong passwords from the same address; its
    // p99 is judged against the runs just before.
    Planned::new("product-failed-logins", false, Drive::Closed, false),
    Planned::new("products", false, Drive::Closed, false),
    Planned::new("user", false, Drive::Closed, false),
    Planned::new("user-orders", false, Drive::Closed, false),
    Planned::new("create-user", false, Drive::Closed, false),
    Planned::new("mixed", false, Drive::Closed, true),
    // Last: the orders' scenarios; the overload's backlog (bounded by backpressure) is drained
    // before anything is measured after it.
    Planned::new("create-order", false, Drive::OrderRate, true),
    Planned::new("create-order-overload", false, Drive::OverloadRate, true),
];

/// Processes the run started, stopped by pid when it ends, however it ends.
#[derive(Debug, Default)]
struct Running {
    system: Vec<Started>,
    reference: Option<Child>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.reference.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        local::stop_all(&self.system);
    }
}

fn main() -> ExitCode {
    let args = <BenchArgs as clap::Parser>::parse();
    match run(&args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.duration > 0.0 && args.warmup >= 0.0, "--duration must be positive and --warmup not negative");
    anyhow::ensure!(
        args.order_rate > 0.0 && args.overload_rate > 0.0 && args.concurrency > 0,
        "--order-rate, --overload-rate and --concurrency must be positive"
    );
    let plan: Vec<&Planned> = PLAN
        .iter()
        .filter(|planned| args.only.is_empty() || args.only.iter().any(|name| name == planned.name))
        .collect();
    let unknown: Vec<_> = args.only.iter().filter(|name| PLAN.iter().all(|planned| planned.name != *name)).collect();
    anyhow::ensure!(
        unknown.is_empty(),
        "--only: unknown scenario(s) {unknown:?}; choose from {:?}",
        PLAN.map(|p| p.name)
    );

    let root = launcher::workspace_root();
    // Every binary the run starts sits beside this one (`cargo xtask bench` builds them together).
    let target = std::env::current_exe()?.parent().context("the bench binary's folder")?.to_path_buf();
    let broker_binary = launcher::broker::tansu_binary(&root)?;

    let work = tempfile::Builder::new().prefix("bench-").tempdir()?;
    let log_dir = root.join(".dev").join("bench").join("logs");
    std::fs::create_dir_all(&log_dir)?;
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir)?;
    let [ports @ .., users, products, orders, gateway] = free_ports::<9>()?;
    let settings = Settings {
        ports,
        jwt_secret: local::local_jwt_secret(&data_dir)?,
        data_dir,
        log_dir: log_dir.clone(),
        extra_env: vec![
            ("RATE_LIMIT_PER_SECOND", RATE_LIMIT.to_string()),
            ("RATE_LIMIT_BURST", RATE_LIMIT.to_string()),
            ("MAX_SUBSCRIPTIONS_PER_CLIENT", SUBSCRIPTIONS_PER_CLIENT.to_string()),
        ],
        metrics_ports: vec![
            ("user-service", users),
            ("product-service", products),
            ("order-service", orders),
            ("api-gateway", gateway),
        ],
    };
    let mut running = Running::default();

    eprintln!("bench: starting the broker, then timing the four services from start to healthy");
    let broker = local::spawn(&PROCESSES[0], &broker_binary, &settings)?;
    local::wait_until_healthy(&broker, Duration::from_millis(50))?;
    running.system.push(broker);
    test_support::index_broker_storage(&launcher::broker::storage_file(&settings.data_dir), Duration::from_secs(10))?;
    let cold_start = start_services(&target, &settings, &mut running)?;
    eprintln!("bench: all four healthy in {:.0} ms", cold_start.all_healthy_ms);

    std::thread::sleep(SETTLE);
    let idle_start = memory_by_name(&running.system);
    eprintln!("bench: measuring idle CPU for {} s (no requests)", IDLE_WINDOW.as_secs());
    let idle_sampler =
        sample::Sampler::start(running.system.iter().map(|process| (process.name.clone(), process.pid)).collect());
    std::thread::sleep(IDLE_WINDOW);
    let idle_cpu = idle_sampler.finish();
    let (reference, http_target, grpc_target) = start_reference_server(&target, &log_dir)?;
    let reference_pid = reference.id();
    running.reference = Some(reference);
    let gateway = format!("http://127.0.0.1:{}", settings.ports[4]);

    let mut scenarios = Vec::new();
    let mut failures = Vec::new();
    let mut orders_ended = None;
    let mut traces = Traces::default();
    for planned in plan {
        traces.switch(planned.traced, &target, &settings, &mut running)?;
        let spans_before = traces.received();
        let target_url = match planned.name {
            "hello" | "graphql-hello" => &http_target,
            "grpc-health" => &grpc_target,
            _ => &gateway,
        };
        let mut watched: Vec<(String, u32)> =
            running.system.iter().map(|process| (process.name.clone(), process.pid)).collect();
        if planned.reference {
            watched = vec![("reference-server".to_owned(), reference_pid)];
        }
        watched.extend(traces.receiver_pid().map(|pid| (RECEIVER.to_owned(), pid)));
        let counters_before = planned.places_orders.then(|| kafka_stats::Counters::scrape(&settings.metrics_ports));
        let outcome = run_scenario(&target, planned, target_url, args, work.path(), watched)?;
        let spans_exported = planned.traced.then(|| traces.received() - spans_before);
        let broker = counters_before.map(|before| {
            std::thread::sleep(STATISTICS_DELAY);
            let confirmed = outcome.0.as_ref().map(|report| report.requests - report.errors - report.refused);
            kafka_stats::Counters::scrape(&settings.metrics_ports).since(&before, confirmed)
        });
        if planned.places_orders {
            orders_ended = Some(Instant::now());
        }
        match outcome {
            (Some(report), processes) => {
                if let Some(spans) = spans_exported.filter(|spans| *spans < report.requests) {
                    failures.push(format!(
                        "{}: {spans} spans arrived for {} requests: spans were dropped, so the cost shown is too low",
                        planned.name, report.requests
                    ));
                }
                if !report.passed() {
                    let kinds: Vec<String> = report
                        .error_kinds
                        .iter()
                        .map(|(kind, errors)| format!("{} × {kind} (e.g. {})", errors.count, errors.example))
                        .collect();
                    failures.push(format!("{}: {} errors: {}", report.scenario, report.errors, kinds.join("; ")));
                }
                scenarios.push(ScenarioResult {
                    reference: planned.reference,
                    report,
                    processes,
                    broker,
                    spans_exported,
                });
            }
            (None, _) => failures.push(format!("{}: the load generator could not run it", planned.name)),
        }
    }

    let event_latency = match orders_ended {
        Some(ended) => {
            eprintln!("bench: reading the order topics: event latency, and orders not settled");
            match saga::measure_settled(&format!("127.0.0.1:{}", settings.ports[0]), ended + SETTLE_AFTER_RUN) {
                Ok(latency) => Some(latency),
                Err(error) => {
                    failures.push(format!("event latency: could not read the order topics: {error:#}"));
                    None
                }
            }
        }
        None => None,
    };
    std::thread::sleep(SETTLE);
    let idle_end = memory_by_name(&running.system);
    let memory = idle_start
        .iter()
        .map(|(name, start)| {
            let end = idle_end.get(name).copied().unwrap_or(*start);
            let figures = MemoryFigures {
                idle_start_mib: sample::mib(start.rss),
                idle_end_mib: sample::mib(end.rss),
                peak_mib: sample::mib(end.peak_rss.max(start.peak_rss)),
            };
            (name.clone(), figures)
        })
        .collect();
    drop(running);

    let mut results = Results {
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        git_commit: git_commit(&root),
        machine: machine(),
        settings: RunSettings {
            duration_secs: args.duration,
            warmup_secs: args.warmup,
            concurrency: args.concurrency,
            order_rate_per_sec: args.order_rate,
            overload_rate_per_sec: args.overload_rate,
            gateway_rate_limit_per_sec: RATE_LIMIT,
        },
        cold_start,
        idle_cpu,
        scenarios,
        event_latency,
        memory,
        targets: Vec::new(),
        problems: failures.clone(),
    };
    results.targets = results.judge();
    write_results(&root.join(&args.out), &results)?;

    println!("\nTargets:");
    for target in &results.targets {
        println!(
            "  {} {:<45} {} (target {})",
            if target.met { "met   " } else { "MISSED" },
            target.what,
            target.measured,
            target.target
        );
    }
    println!("\nResults: {}", root.join(&args.out).join("latest.md").display());
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("bench: problems during the run:\n  {}", failures.join("\n  "));
        Ok(ExitCode::FAILURE)
    }
}

/// Whether the services export traces, and the receiver they export to (started the first
/// time a scenario needs it).
#[derive(Debug, Default)]
struct Traces {
    on: bool,
    receiver: Option<Receiver>,
    /// How often the services have been restarted: each restart logs to a directory of its own.
    restarts: u32,
}

/// The OTLP receiver (test-support's example, optimised like the services), a process of its
/// own so that its CPU shows apart; stopped by pid when dropped.
#[derive(Debug)]
struct Receiver {
    child: Child,
    endpoint: String,
    /// The span count it last printed (it prints one a second).
    received: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Receiver {
    fn start(target: &Path, log_dir: &Path) -> anyhow::Result<Self> {
        let log = std::fs::File::create(log_dir.join("otlp-receiver.log"))?;
        let mut child = Command::new(target.join("examples").join(RECEIVER))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {RECEIVER}"))?;
        let mut lines = BufReader::new(child.stdout.take().context("receiver stdout")?).lines();
        let endpoint = announced(&mut lines, "OTEL_EXPORTER_OTLP_ENDPOINT=", RECEIVER)?;
        let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = std::sync::Arc::clone(&received);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(count) = line.strip_suffix(" spans received").and_then(|count| count.parse().ok()) {
                    counter.store(count, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        Ok(Self { child, endpoint, received })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Traces {
    /// Restarts the services with export on (`traced`) or off, unless they already are.
    fn switch(
        &mut self,
        traced: bool,
        target: &Path,
        settings: &Settings,
        running: &mut Running,
    ) -> anyhow::Result<()> {
        if traced == self.on {
            return Ok(());
        }
        self.restarts += 1;
        let mut phase = settings.clone();
        phase.log_dir = settings.log_dir.join(format!("restart-{}", self.restarts));
        std::fs::create_dir_all(&phase.log_dir)?;
        if traced {
            let receiver = match &mut self.receiver {
                Some(receiver) => receiver,
                None => self.receiver.insert(Receiver::start(target, &settings.log_dir)?),
            };
            phase.extra_env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.clone()));
            phase.extra_env.push(("OTEL_TRACES_SAMPLER", "always_on".to_owned()));
        }
        eprintln!(
            "\nbench: restarting the services with trace export {} (logs in {})",
            if traced { "on, every span, to a local OTLP receiver" } else { "off" },
            phase.log_dir.display()
        );
        local::stop_all(&running.system[1..]);
        running.system.truncate(1);
        start_services(target, &phase, running)?;
        self.on = traced;
        Ok(())
    }

    /// The receiver's pid, to sample beside the system while traces are on.
    fn receiver_pid(&self) -> Option<u32> {
        self.receiver.as_ref().filter(|_| self.on).map(|receiver| receiver.child.id())
    }

    /// Spans received so far (as of the receiver's last report, at most a second old).
    fn received(&self) -> u64 {
        self.receiver.as_ref().map_or(0, |receiver| receiver.received.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// `N` free loopback ports: one per process, then one per metrics listener.
fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    // Held together so the same port is not handed out twice, then released for the processes.
    let listeners: Vec<_> = (0..N).map(|_| std::net::TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let ports: Vec<u16> =
        listeners.iter().map(|listener| listener.local_addr().map(|addr| addr.port())).collect::<Result<_, _>>()?;
    Ok(ports.try_into().expect("N ports"))
}

/// Starts the four services at once and times each until healthy.
fn start_services(target: &Path, settings: &Settings, running: &mut Running) -> anyhow::Result<ColdStart> {
    let started = Instant::now();
    let first = running.system.len();
    for process in &PROCESSES[1..] {
        running.system.push(local::spawn(process, &target.join(process.name), settings)?);
    }
    // Each awaited on a thread of its own, so each is timed to the moment it became healthy.
    let healthy = std::thread::scope(|scope| {
        let waits: Vec<_> = running.system[first..]
            .iter()
            .map(|process| {
                scope.spawn(move || {
                    local::wait_until_healthy(process, Duration::from_millis(10))?;
                    anyhow::Ok((process.name.clone(), started.elapsed()))
                })
            })
            .collect();
        waits.into_iter().map(|wait| wait.join().expect("a health wait panicked")).collect::<anyhow::Result<Vec<_>>>()
    })?;
    let all = healthy.iter().map(|(_, elapsed)| *elapsed).max().unwrap_or_default();
    Ok(ColdStart {
        all_healthy_ms: millis(all),
        per_service_ms: healthy.into_iter().map(|(name, elapsed)| (name, millis(elapsed))).collect(),
    })
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

fn memory_by_name(processes: &[Started]) -> BTreeMap<String, sample::Memory> {
    processes.iter().filter_map(|process| Some((process.name.clone(), sample::memory(process.pid)?))).collect()
}

/// Starts the reference server and returns it with its HTTP and gRPC URLs.
fn start_reference_server(target: &Path, log_dir: &Path) -> anyhow::Result<(Child, String, String)> {
    let log = std::fs::File::create(log_dir.join("reference-server.log"))?;
    let mut child = Command::new(target.join("reference-server"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .context("starting reference-server")?;
    let mut lines = BufReader::new(child.stdout.take().context("reference-server stdout")?).lines();
    let http = format!("http://{}", announced(&mut lines, "http=", "reference-server")?);
    let grpc = format!("http://{}", announced(&mut lines, "grpc=", "reference-server")?);
    Ok((child, http, grpc))
}

/// What a helper process announces on its next line of output after `prefix`.
fn announced(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    prefix: &str,
    who: &str,
) -> anyhow::Result<String> {
    let line = lines.next().with_context(|| format!("{who} printed no {prefix}"))??;
    let value = line.strip_prefix(prefix).with_context(|| format!("{who}: unexpected line {line:?}"))?;
    Ok(value.to_owned())
}

/// Runs the load generator for one scenario while sampling `watched` (and the generator).
fn run_scenario(
    target: &Path,
    planned: &Planned,
    url: &str,
    args: &BenchArgs,
    work: &Path,
    mut watched: Vec<(String, u32)>,
) -> anyhow::Result<(Option<Report>, BTreeMap<String, sample::Usage>)> {
    let output = work.join(format!("{}.json", planned.name));
    let mut command = Command::new(target.join("loadgen"));
    command
        .args(["--scenario", planned.scenario, "--target", url])
        .args(["--duration", &args.duration.to_string(), "--warmup", &args.warmup.to_string()])
        .arg("--output")
        .arg(&output);
    match planned.drive {
        Drive::Closed => command.args(["--concurrency", &args.concurrency.to_string()]),
        Drive::OrderRate => command.args(["--rate", &args.order_rate.to_string()]),
        Drive::OverloadRate => command.args(["--rate", &args.overload_rate.to_string()]),
    };
    let drive = if planned.drive == Drive::Closed { "closed loop" } else { "open loop" };
    eprintln!("\nbench: {} ({drive})", planned.name);
    let mut child = command.spawn().context("starting loadgen")?;
    watched.push(("loadgen".to_owned(), child.id()));
    let sampler = sample::Sampler::start(watched);
    let status = child.wait()?;
    let mut report: Option<Report> = std::fs::read(&output).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
    // CPU is counted over the measured seconds only: the set-up and the warm-up before them
    // would otherwise dilute it, by more when a restart made the set-up slow.
    let measured = report.as_ref().and_then(|report| {
        let began = std::time::UNIX_EPOCH + Duration::from_millis(report.began_unix_ms?);
        Some((began, Duration::from_secs_f64(report.duration_secs)))
    });
    let usage = sampler.finish_within(measured);
    if let Some(report) = &mut report {
        // The same load generator scenario may run twice (with and without traces).
        planned.name.clone_into(&mut report.scenario);
    }
    if report.is_none() {
        eprintln!("bench: loadgen {} ended {status} without a report", planned.name);
    }
    Ok((report, usage))
}

fn git_commit(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|status| !status.is_empty());
    if dirty { format!("{commit}-dirty") } else { commit }
}

fn machine() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu_model = read("/proc/cpuinfo")
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':').map(|(_, model)| model.trim().to_owned()))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let memory_kib: f64 = read("/proc/meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_default();
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        cpu_model,
        memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
    }
}

fn write_results(dir: &Path, results: &Results) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("latest.json"), serde_json::to_string_pretty(results)? + "\n")?;
    std::fs::write(dir.join("latest.md"), results.markdown())?;
    let labels: Vec<String> = results
        .scenarios
        .iter()
        .map(|result| {
            let label = match result.report.rate_per_sec {
                Some(rate) => format!("{} (open {rate}/s)", result.report.scenario),
                None => result.report.scenario.clone(),
            };
            if result.report.any_succeeded() { label } else { format!("{label}: no success") }
        })
        .collect();
    let rows: Vec<svg::Row<'_>> = results
        .scenarios
        .iter()
        .zip(&labels)
        .map(|(result, label)| {
            let latency = result.report.latency_ms;
            svg::Row { label, values: [latency.p50, latency.p90, latency.p99, latency.p999] }
        })
        .collect();
    let title =
        format!("Latency per scenario (ms, log scale) — {} CPUs, commit {}", results.machine.cpus, results.git_commit);
    std::fs::write(dir.join("latest.svg"), svg::latency_chart(&title, &rows))?;
    Ok(())
}
