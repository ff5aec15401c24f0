//! The benchmark's child processes: the SQS stand-in (built in release once a run) and the
//! adapter, started as a user runs them, each held by a `Process` guard that kills it when
//! dropped; and their RSS and CPU readings from `/proc`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;

/// Clock ticks per second of `/proc/<pid>/stat`'s utime and stime. `getconf CLK_TCK` is 100 on
/// Linux; assumed here because `libc` (for `sysconf(_SC_CLK_TCK)`) is not a dependency.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

pub struct Process {
    child: Child,
    pub addr: String,
    /// The adapter's metrics address (empty for the stand-in).
    pub metrics: String,
}

impl Process {
    /// CPU seconds the process has used so far.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs(&self.child.id().to_string())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The stand-in with `extra` arguments; `addr` is its base URL. Built (in release) once a run.
pub fn start_standin(extra: &[&str]) -> Process {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--quiet", "--example", "sqs_standin"])
            .current_dir(root())
            .status()
            .expect("cargo build --example sqs_standin");
        assert!(status.success());
    });
    // Next to this benchmark's own build (`target/release/deps/end_to_end-…`), wherever
    // `CARGO_TARGET_DIR` put it.
    let release = std::env::current_exe().expect("the benchmark's path");
    let release = release
        .parent()
        .and_then(Path::parent)
        .expect("target/release");
    let mut child = Command::new(release.join("examples/sqs_standin"))
        .args(["--addr", "127.0.0.1:0", "--queue", "bench"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the stand-in");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().trim_start_matches("listening on ").to_string();
    Process {
        child,
        addr,
        metrics: String::new(),
    }
}

/// The adapter with `manifest`; `addr` is its HTTP address (from its `listening` log line).
pub fn start_adapter(manifest: &str, standin: &str, dir: &Path) -> Process {
    let config = dir.join("config.yaml");
    std::fs::write(&config, manifest).unwrap();
    // `BENCH_ADAPTER` runs another build of the adapter (e.g. an older commit's, to compare
    // two versions in one run on this noisy machine).
    let binary = std::env::var_os("BENCH_ADAPTER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_aws-event-adapter")));
    let mut child = Command::new(binary)
        .args(["run", "--config"])
        .arg(&config)
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env("RUST_LOG", "warn,aws_event_adapter::app=info")
        .env("AWS_ENDPOINT_URL", standin)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the adapter");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let (addr, metrics) = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("the adapter ended before listening: {}", log.join("\n"));
        };
        log.push(line.clone());
        if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
            && entry["message"] == "listening"
        {
            break (
                entry["http"].as_str().unwrap().to_string(),
                entry["metrics"].as_str().unwrap().to_string(),
            );
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Process {
        child,
        addr,
        metrics,
    }
}

/// (VmRSS, VmHWM) in MiB.
pub fn rss_mib(pid: u32) -> (f64, f64) {
    let [rss, peak] = status_mib(pid, ["VmRSS:", "VmHWM:"]);
    (rss, peak)
}

/// VmRSS in MiB as "total (anon A + file F)": what the process allocated against the pages of
/// its program and libraries that are mapped (shared, clean, reclaimable).
pub fn rss_parts(pid: u32) -> String {
    let [rss, anon, file] = status_mib(pid, ["VmRSS:", "RssAnon:", "RssFile:"]);
    format!("{rss:.1} (anon {anon:.1} + file {file:.1})")
}

fn status_mib<const N: usize>(pid: u32, names: [&str; N]) -> [f64; N] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    names.map(|name| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    })
}

/// CPU seconds (user + system: fields 14 and 15 of `/proc/<pid>/stat`) a process has used so
/// far; `pid` may be `self`.
pub fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Field 2, the command name, is in parentheses and may hold spaces: count from after it,
    // where field 3 starts.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    (field(14).unwrap_or(0.0) + field(15).unwrap_or(0.0)) / CLOCK_TICKS_PER_SEC
}

/// Microseconds of CPU per event.
pub fn micros_per_event(cpu_secs: f64, events: u64) -> f64 {
    cpu_secs * 1e6 / events.max(1) as f64
}
