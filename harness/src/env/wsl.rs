//! Telling WSL1, WSL2 and Docker Desktop apart from the kernel release and a few markers.
//!
//! Kernel release strings seen in the wild:
//! - WSL1: `4.4.0-19041-Microsoft` (capital M, no "standard").
//! - WSL2: `5.15.153.1-microsoft-standard-WSL2`, earlier `4.19.112-microsoft-WSL2-standard`,
//!   and the first kernels `4.19.104-microsoft-standard` without any "WSL2".
//! - Docker Desktop on macOS / Hyper-V: `6.10.14-linuxkit`; never WSL.
//! - Docker Desktop with the WSL2 backend: containers share the WSL2 kernel (same release
//!   string) but run inside Docker's own `docker-desktop` distribution, not the user's; their
//!   files are not on drvfs unless a Windows path is bind-mounted (the mount check still sees
//!   that), so they are not treated as a WSL2 distribution.
//! - Azure and other Microsoft-built cloud kernels may contain lowercase "microsoft" too, which
//!   is why the bare `microsoft-standard` form needs a positive WSL marker.

use super::Probe;

/// Which Windows Subsystem for Linux the process runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wsl {
    /// The translation layer (syscalls emulated by the NT kernel): every file access is slow.
    V1,
    /// A lightweight VM; Windows drives are reached over 9p (`/mnt/c`), which is slow.
    V2,
}

/// How the kernel release and markers were classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WslFinding {
    pub wsl: Option<Wsl>,
    pub docker_desktop: bool,
    pub container: Option<&'static str>,
}

pub(super) fn classify(probe: &Probe, release: Option<&str>) -> WslFinding {
    let container = container_marker(probe);
    let Some(release) = release else {
        return WslFinding {
            wsl: None,
            docker_desktop: false,
            container,
        };
    };
    let lower = release.to_ascii_lowercase();
    if lower.contains("linuxkit") {
        return WslFinding {
            wsl: None,
            docker_desktop: true,
            container,
        };
    }
    let wsl_kernel = lower.contains("microsoft") || lower.contains("wsl");
    if !wsl_kernel {
        return WslFinding {
            wsl: None,
            docker_desktop: false,
            container,
        };
    }
    let distro = probe.var("WSL_DISTRO_NAME");
    let docker_distro = distro
        .as_deref()
        .is_some_and(|d| d.starts_with("docker-desktop"));
    if container.is_some() || docker_distro {
        return WslFinding {
            wsl: None,
            docker_desktop: true,
            container,
        };
    }
    let wsl1 =
        release.contains("Microsoft") && !lower.contains("standard") && !lower.contains("wsl2");
    if wsl1 {
        return WslFinding {
            wsl: Some(Wsl::V1),
            docker_desktop: false,
            container,
        };
    }
    let explicit = lower.contains("wsl2");
    let marker = distro.is_some()
        || probe.var("WSL_INTEROP").is_some()
        || probe.exists("/proc/sys/fs/binfmt_misc/WSLInterop")
        || probe.exists("/run/WSL");
    let wsl = (explicit || (lower.contains("microsoft-standard") && marker)).then_some(Wsl::V2);
    WslFinding {
        wsl,
        docker_desktop: false,
        container,
    }
}

fn container_marker(probe: &Probe) -> Option<&'static str> {
    if probe.exists("/.dockerenv") {
        Some("docker")
    } else if probe.exists("/run/.containerenv") {
        Some("podman")
    } else {
        None
    }
}
