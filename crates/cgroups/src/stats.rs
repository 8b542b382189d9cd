//! What a cgroup has used: CPU time, memory, processes and block I/O, read
//! from the controllers' files as containerd's cgroups package reads them
//! for Docker's `stats` (v1: cpuacct, cpu, memory, pids, blkio; v2: the
//! unified directory's cpu.stat, memory.*, pids.*, io.stat).

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::{CgroupPath, Error, Hierarchies, Version};

/// One reading of a cgroup's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub io: Io,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cpu {
    pub total_ns: u64,
    pub user_ns: u64,
    pub system_ns: u64,
    /// Each CPU's share of `total_ns` (v1's cpuacct.usage_percpu; v2 has
    /// no such file).
    pub per_cpu_ns: Vec<u64>,
    /// CFS quota enforcement periods, and those the cgroup was throttled in.
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    /// Bytes charged now (v1 memory.usage_in_bytes, v2 memory.current).
    pub usage: u64,
    /// The most ever charged (v1 memory.max_usage_in_bytes, v2
    /// memory.peak on kernels that have it).
    pub max_usage: u64,
    /// The limit in bytes; `None` when v2 says `max`. v1 has no word for
    /// "none" and writes its largest page count instead.
    pub limit: Option<u64>,
    /// How often the limit was hit (v1 memory.failcnt; v2 memory.events'
    /// `oom`).
    pub failcnt: u64,
    /// memory.stat as the kernel writes it: the keys differ between v1
    /// (`cache`, `rss`, `total_inactive_file`, …) and v2 (`anon`, `file`,
    /// `inactive_file`, …).
    pub stat: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pids {
    pub current: u64,
    /// `None` when pids.max says `max`.
    pub limit: Option<u64>,
}

/// Block I/O, in each version's own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io {
    V1(Blkio),
    V2(Vec<DeviceIo>),
}

impl Default for Io {
    fn default() -> Self {
        Io::V1(Blkio::default())
    }
}

/// v1's blkio files, one list of entries each. Without the CFQ scheduler's
/// files (the usual case on multi-queue block devices) only the throttle
/// files' `serviced` and `service_bytes` are filled, as containerd does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blkio {
    pub service_bytes: Vec<BlkioEntry>,
    pub serviced: Vec<BlkioEntry>,
    pub queued: Vec<BlkioEntry>,
    pub service_time: Vec<BlkioEntry>,
    pub wait_time: Vec<BlkioEntry>,
    pub merged: Vec<BlkioEntry>,
    pub time: Vec<BlkioEntry>,
    pub sectors: Vec<BlkioEntry>,
}

/// One line of a blkio file: `8:0 Read 4096` (`op` is empty for files
/// without one, such as `sectors_recursive`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// One device's line of v2's io.stat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceIo {
    pub major: u64,
    pub minor: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub reads: u64,
    pub writes: u64,
}

impl Hierarchies {
    /// Reads what the cgroup at `path` has used, from whichever hierarchies
    /// carry the controllers. A controller that is not mounted reads as
    /// zero; a cgroup that does not exist (any more) is an error reading
    /// its CPU account, which every cgroup has.
    pub fn usage(&self, path: &CgroupPath) -> Result<Usage, Error> {
        let bases = self.bases(path)?;
        let dirs: Vec<(PathBuf, Vec<String>)> = bases
            .into_iter()
            .map(|(base, controllers)| (base.join(path.relative()), controllers))
            .collect();
        match self.version() {
            Version::V1 => {
                let dir = |controller: &str| {
                    dirs.iter()
                        .find(|(_, controllers)| controllers.iter().any(|c| c == controller))
                        .map(|(dir, _)| dir.as_path())
                };
                read_v1(&dir)
            }
            Version::V2 => match dirs.iter().find(|(_, controllers)| controllers.is_empty()) {
                Some((dir, _)) => read_v2(dir),
                None => Err(Error::NotMounted),
            },
        }
    }
}

fn read_v1<'a>(dir: &dyn Fn(&str) -> Option<&'a Path>) -> Result<Usage, Error> {
    let mut usage = Usage::default();
    if let Some(dir) = dir("cpuacct") {
        let total = dir.join("cpuacct.usage");
        usage.cpu.total_ns = parse_number(&total, &crate::read_file(&total)?)?;
        if let Some(text) = read_optional(&dir.join("cpuacct.usage_percpu"))? {
            usage.cpu.per_cpu_ns = text
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
        }
        // In USER_HZ ticks, which containerd turns into nanoseconds.
        let ticks = keyed(&dir.join("cpuacct.stat"))?;
        let nanos_per_tick = 1_000_000_000 / rustix::param::clock_ticks_per_second().max(1);
        usage.cpu.user_ns = ticks.get("user").copied().unwrap_or(0) * nanos_per_tick;
        usage.cpu.system_ns = ticks.get("system").copied().unwrap_or(0) * nanos_per_tick;
    }
    if let Some(dir) = dir("cpu") {
        let stat = keyed(&dir.join("cpu.stat"))?;
        usage.cpu.periods = stat.get("nr_periods").copied().unwrap_or(0);
        usage.cpu.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
        usage.cpu.throttled_ns = stat.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(dir) = dir("memory") {
        usage.memory = Memory {
            usage: single(&dir.join("memory.usage_in_bytes"))?.unwrap_or(0),
            max_usage: single(&dir.join("memory.max_usage_in_bytes"))?.unwrap_or(0),
            limit: single(&dir.join("memory.limit_in_bytes"))?,
            failcnt: single(&dir.join("memory.failcnt"))?.unwrap_or(0),
            stat: keyed(&dir.join("memory.stat"))?,
        };
    }
    if let Some(dir) = dir("pids") {
        usage.pids = Pids {
            current: single(&dir.join("pids.current"))?.unwrap_or(0),
            limit: single(&dir.join("pids.max"))?,
        };
    }
    if let Some(dir) = dir("blkio") {
        usage.io = Io::V1(read_blkio(dir)?);
    }
    Ok(usage)
}

fn read_blkio(dir: &Path) -> Result<Blkio, Error> {
    let mut blkio = Blkio::default();
    let file = |name: &str| dir.join(format!("blkio.{name}"));
    // The CFQ scheduler's files, when the kernel has them.
    if file("io_serviced_recursive").exists() {
        for (name, entries) in [
            ("sectors_recursive", &mut blkio.sectors),
            ("io_service_bytes_recursive", &mut blkio.service_bytes),
            ("io_serviced_recursive", &mut blkio.serviced),
            ("io_queued_recursive", &mut blkio.queued),
            ("io_service_time_recursive", &mut blkio.service_time),
            ("io_wait_time_recursive", &mut blkio.wait_time),
            ("io_merged_recursive", &mut blkio.merged),
            ("time_recursive", &mut blkio.time),
        ] {
            *entries = blkio_entries(&file(name))?;
        }
    }
    if blkio.service_bytes.is_empty() && blkio.serviced.is_empty() {
        blkio.serviced = blkio_entries(&file("throttle.io_serviced"))?;
        blkio.service_bytes = blkio_entries(&file("throttle.io_service_bytes"))?;
    }
    Ok(blkio)
}

/// A blkio file's `MAJOR:MINOR [OP] VALUE` lines; the `Total` line sums
/// the others and is left out.
fn blkio_entries(path: &Path) -> Result<Vec<BlkioEntry>, Error> {
    let Some(text) = read_optional(path)? else {
        return Ok(Vec::new());
    };
    let mut entries = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (device, op, value) = match fields.as_slice() {
            [device, value] if *device != "Total" => (*device, "", *value),
            [device, op, value] => (*device, *op, *value),
            _ => continue,
        };
        let Some((major, minor)) = device.split_once(':') else {
            continue;
        };
        let number = |text: &str| parse_number(path, text);
        entries.push(BlkioEntry {
            major: number(major)?,
            minor: number(minor)?,
            op: op.to_owned(),
            value: number(value)?,
        });
    }
    Ok(entries)
}

fn read_v2(dir: &Path) -> Result<Usage, Error> {
    let mut usage = Usage::default();
    let cpu_stat = dir.join("cpu.stat");
    let cpu = parse_keyed(&cpu_stat, &crate::read_file(&cpu_stat)?)?;
    let micros = |key: &str| cpu.get(key).copied().unwrap_or(0) * 1000;
    usage.cpu = Cpu {
        total_ns: micros("usage_usec"),
        user_ns: micros("user_usec"),
        system_ns: micros("system_usec"),
        per_cpu_ns: Vec::new(),
        periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_ns: micros("throttled_usec"),
    };
    usage.memory = Memory {
        usage: single(&dir.join("memory.current"))?.unwrap_or(0),
        max_usage: single(&dir.join("memory.peak"))?.unwrap_or(0),
        limit: single(&dir.join("memory.max"))?,
        failcnt: keyed(&dir.join("memory.events"))?
            .get("oom")
            .copied()
            .unwrap_or(0),
        stat: keyed(&dir.join("memory.stat"))?,
    };
    usage.pids = Pids {
        current: single(&dir.join("pids.current"))?.unwrap_or(0),
        limit: single(&dir.join("pids.max"))?,
    };
    usage.io = Io::V2(read_io_stat(&dir.join("io.stat"))?);
    Ok(usage)
}

/// io.stat's lines: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`.
fn read_io_stat(path: &Path) -> Result<Vec<DeviceIo>, Error> {
    let Some(text) = read_optional(path)? else {
        return Ok(Vec::new());
    };
    let mut devices = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let mut device = DeviceIo {
            major: parse_number(path, major)?,
            minor: parse_number(path, minor)?,
            ..DeviceIo::default()
        };
        for (key, value) in fields.filter_map(|f| f.split_once('=')) {
            let Ok(value) = value.parse() else { continue };
            match key {
                "rbytes" => device.read_bytes = value,
                "wbytes" => device.write_bytes = value,
                "rios" => device.reads = value,
                "wios" => device.writes = value,
                _ => {}
            }
        }
        devices.push(device);
    }
    Ok(devices)
}

/// A file's text, or `None` if the kernel has no such file (an older
/// kernel, or a controller option it was built without).
fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// A one-number file; `max` (no limit) and a missing file are `None`.
fn single(path: &Path) -> Result<Option<u64>, Error> {
    match read_optional(path)?.as_deref().map(str::trim) {
        None | Some("max") => Ok(None),
        Some(text) => parse_number(path, text).map(Some),
    }
}

/// A `key value` file (memory.stat, cpu.stat); missing is empty.
fn keyed(path: &Path) -> Result<BTreeMap<String, u64>, Error> {
    match read_optional(path)? {
        Some(text) => parse_keyed(path, &text),
        None => Ok(BTreeMap::new()),
    }
}

fn parse_keyed(path: &Path, text: &str) -> Result<BTreeMap<String, u64>, Error> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(key, value)| Ok((key.to_owned(), parse_number(path, value.trim())?)))
        .collect()
}

fn parse_number(path: &Path, text: &str) -> Result<u64, Error> {
    text.trim().parse().map_err(|_| Error::InvalidValue {
        field: "cgroup counter",
        value: text.to_owned(),
        reason: format!("{} should hold a whole number", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn v1_blkio_lines_keep_their_op_and_leave_the_total_out() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "blkio.throttle.io_service_bytes",
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n",
        );
        write(dir.path(), "blkio.throttle.io_serviced", "Total 0\n");
        let blkio = read_blkio(dir.path()).unwrap();
        assert_eq!(blkio.service_bytes.len(), 4);
        assert_eq!(
            blkio.service_bytes[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".to_owned(),
                value: 8192
            }
        );
        assert!(blkio.serviced.is_empty());
        assert!(blkio.sectors.is_empty());
    }

    #[test]
    fn v2_counters_are_read_in_nanoseconds_and_max_is_no_limit() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\nnr_throttled 1\nthrottled_usec 7\n",
        );
        write(dir.path(), "memory.current", "2097152\n");
        write(dir.path(), "memory.max", "max\n");
        write(dir.path(), "memory.stat", "anon 1024\ninactive_file 4096\n");
        write(
            dir.path(),
            "memory.events",
            "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
        );
        write(dir.path(), "pids.current", "3\n");
        write(dir.path(), "pids.max", "100\n");
        write(
            dir.path(),
            "io.stat",
            "8:0 rbytes=4096 wbytes=512 rios=2 wios=1 dbytes=0 dios=0\n",
        );
        let usage = read_v2(dir.path()).unwrap();
        assert_eq!(usage.cpu.total_ns, 1_500_000);
        assert_eq!(usage.cpu.system_ns, 500_000);
        assert_eq!(usage.cpu.throttled_ns, 7000);
        assert_eq!(usage.memory.usage, 2 << 20);
        assert_eq!(usage.memory.limit, None);
        assert_eq!(usage.memory.failcnt, 1);
        assert_eq!(usage.memory.stat["inactive_file"], 4096);
        assert_eq!(
            usage.pids,
            Pids {
                current: 3,
                limit: Some(100)
            }
        );
        assert_eq!(
            usage.io,
            Io::V2(vec![DeviceIo {
                major: 8,
                minor: 0,
                read_bytes: 4096,
                write_bytes: 512,
                reads: 2,
                writes: 1
            }])
        );
    }

    #[test]
    fn a_cgroup_that_is_gone_is_an_error_not_zeros() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_v2(&dir.path().join("gone")),
            Err(Error::Read { .. })
        ));
        let gone = dir.path().join("gone");
        let v1 = |_: &str| Some(gone.as_path());
        assert!(matches!(read_v1(&v1), Err(Error::Read { .. })));
    }

    #[test]
    fn a_counter_that_is_not_a_number_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "pids.current", "lots\n");
        let error = single(&dir.path().join("pids.current")).unwrap_err();
        assert!(error.to_string().contains("\"lots\""), "{error}");
    }
}
