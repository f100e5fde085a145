//! Which mount a path sits on, from `/proc/self/mountinfo`.

use std::path::{Path, PathBuf};

use super::Probe;

/// The mount that holds a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// File-system type (`ext4`, `9p`, `drvfs`, …).
    pub fs_type: String,
    /// Mount source (`/dev/sda1`, `drvfs`, `C:\134`, …).
    pub source: String,
}

impl Mount {
    /// Whether this is a Windows drive seen from WSL: `drvfs` on WSL1, 9p (source `drvfs` or
    /// any 9p share) on WSL2. Reads there cross the VM boundary and are many times slower.
    pub fn is_windows_drive(&self) -> bool {
        matches!(self.fs_type.as_str(), "9p" | "v9fs" | "drvfs") || self.source == "drvfs"
    }
}

/// The mount with the longest mount point that is a prefix of `path`.
pub(super) fn mount_of(probe: &Probe, path: &Path) -> Option<Mount> {
    let path = probe.absolute(path);
    let table = probe.read("/proc/self/mountinfo")?;
    let mut best: Option<Mount> = None;
    for line in table.lines() {
        let Some(mount) = parse_line(line) else {
            continue;
        };
        if !path.starts_with(&mount.mount_point) {
            continue;
        }
        let longer = best
            .as_ref()
            .is_none_or(|b| mount.mount_point.as_os_str().len() >= b.mount_point.as_os_str().len());
        if longer {
            best = Some(mount);
        }
    }
    best
}

/// `36 35 98:0 /root /mnt/point rw,noatime master:1 - ext3 /dev/root rw`
fn parse_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let mount_point = left.split(' ').nth(4)?;
    let mut right = right.split(' ');
    let fs_type = right.next()?.to_owned();
    let source = unescape(right.next().unwrap_or(""));
    Some(Mount {
        mount_point: PathBuf::from(unescape(mount_point)),
        fs_type,
        source,
    })
}

/// mountinfo escapes space, tab, newline and backslash as three octal digits.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(u8::try_from(value).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
