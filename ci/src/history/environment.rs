//! The environment fingerprint that every run is recorded under.
//!
//! Durations are only comparable on the same kind of machine, so analysis groups by
//! this fingerprint: CPU model, core count, OS, architecture and toolchain. The
//! `label` is the human name of the environment kind (local, github-actions, wsl2,
//! gpu-runner), used for the per-environment charts.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long `rustc --version` may take before the toolchain is recorded as unknown.
const TOOLCHAIN_PROBE_DEADLINE: Duration = Duration::from_secs(10);

/// Facts that make two runs' timings comparable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Environment kind for charts: local, github-actions, wsl2, gpu-runner, …
    pub label: String,
    /// CPU model name as the OS reports it.
    pub cpu_model: String,
    /// Logical cores available to this process.
    pub cores: u32,
    /// OS name and version.
    pub os: String,
    /// CPU architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// `rustc --version`.
    pub toolchain: String,
}

impl Fingerprint {
    /// Detects the fingerprint of this machine.
    pub fn detect() -> Fingerprint {
        Fingerprint {
            label: super::label::detect(),
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".to_owned()),
            cores: std::thread::available_parallelism()
                .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
                .unwrap_or(1),
            os: os_name(),
            arch: std::env::consts::ARCH.to_owned(),
            toolchain: toolchain().unwrap_or_else(|| "unknown".to_owned()),
        }
    }

    /// The stable key under which runs are grouped.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}x{}|{}",
            self.label, self.os, self.arch, self.cores, self.cpu_model, self.toolchain
        )
    }

    /// A short human name: label, architecture and cores.
    pub fn short(&self) -> String {
        format!("{} ({}, {} cores)", self.label, self.arch, self.cores)
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| {
            l.starts_with("model name") || l.starts_with("Model") || l.starts_with("Hardware")
        })
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn os_name() -> String {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| std::env::consts::OS.to_owned())
}

fn toolchain() -> Option<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    output_within(
        Command::new(rustc).arg("--version"),
        TOOLCHAIN_PROBE_DEADLINE,
    )
    .map(|s| s.trim().to_owned())
}

/// Runs a short probe command, giving up (and killing it) at the deadline.
///
/// stdout is drained on a thread while waiting: a probe printing more than a pipe
/// buffer (dmesg) would otherwise block on its write and never exit.
pub fn output_within(cmd: &mut Command, deadline: Duration) -> Option<String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let start = Instant::now();
    let success = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.success(),
            Err(_) => break false,
            Ok(None) if start.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
            // A probe takes milliseconds; polling briefly keeps this std-only.
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    // The pipe closes when the child exits (or was killed), so this join ends.
    let out = reader.join().ok()?;
    success.then(|| String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_output_is_read_without_deadlock() {
        // 1 MiB is far beyond a pipe buffer.
        let out = output_within(
            Command::new("head").args(["-c", "1048576", "/dev/zero"]),
            Duration::from_secs(30),
        )
        .expect("head must finish");
        assert_eq!(out.len(), 1_048_576);
    }

    #[test]
    fn a_probe_past_its_deadline_is_killed_and_reported_unknown() {
        let start = Instant::now();
        assert!(
            output_within(Command::new("sleep").arg("30"), Duration::from_millis(200)).is_none()
        );
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_failing_probe_is_unknown() {
        assert!(output_within(&mut Command::new("false"), Duration::from_secs(10)).is_none());
    }
}
