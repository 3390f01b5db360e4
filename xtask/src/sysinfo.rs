//! CPU and memory figures from /proc (Linux), for the benchmark.

use std::time::Instant;

/// Clock ticks per second of /proc times (`CLK_TCK`; 100 on every Linux
/// platform we run on).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU counters at one instant.
pub(crate) struct CpuSample {
    at: Instant,
    process_ticks: Option<u64>,
    machine: Option<(u64, u64)>, // (busy, total) ticks over all CPUs
}

impl CpuSample {
    pub(crate) fn now() -> CpuSample {
        CpuSample {
            at: Instant::now(),
            process_ticks: process_ticks(),
            machine: machine_ticks(),
        }
    }

    /// (cores this process kept busy, cores the whole machine kept busy)
    /// since the sample; 0 where /proc is unavailable.
    pub(crate) fn cores_busy_since(&self) -> (f64, f64) {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let process = match (self.process_ticks, process_ticks()) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / TICKS_PER_SEC / wall,
            _ => 0.0,
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let machine = match (self.machine, machine_ticks()) {
            (Some((busy_a, total_a)), Some((busy_b, total_b))) if total_b > total_a => {
                (busy_b - busy_a) as f64 / (total_b - total_a) as f64 * cores
            }
            _ => 0.0,
        };
        (process, machine)
    }
}

/// utime + stime of this process, in ticks.
fn process_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) in ")".
    let rest = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// (busy, total) ticks of all CPUs from the first line of /proc/stat.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest counted in user)
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Peak resident memory (VmHWM) of this process in KiB.
pub(crate) fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

/// This process's resident memory now (VmRSS), in KiB.
pub(crate) fn current_rss_kib() -> Option<u64> {
    status_kib("VmRSS:")
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
