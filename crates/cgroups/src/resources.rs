//! Writing OCI `linux.resources` into cgroup files, for v1 and v2.

use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxResources,
};

use crate::{Cgroup, Error, Version, write_file};

/// A limit of the config that this kernel's cgroups cannot set, and why:
/// the runtime warns of it, as the spec asks, and goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub field: &'static str,
    pub reason: &'static str,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} skipped: {}", self.field, self.reason)
    }
}

impl Cgroup {
    /// Applies every limit in `resources`; returns those skipped.
    pub fn apply(&self, resources: &LinuxResources) -> Result<Vec<Skipped>, Error> {
        let mut skipped = Vec::new();
        match self.version {
            Version::V1 => self.apply_v1(resources, &mut skipped)?,
            Version::V2 => {
                self.apply_v2(resources)?;
                let memory = resources.memory().as_ref();
                for (field, limit, _) in memory.map(kernel_memory).into_iter().flatten() {
                    if limit.is_some() {
                        skipped.push(Skipped {
                            field,
                            reason: "cgroup v2 counts kernel memory in memory.max",
                        });
                    }
                }
            }
        }
        Ok(skipped)
    }

    fn controller(&self, name: &'static str) -> Result<&Path, Error> {
        self.dir_for(Some(name)).ok_or(Error::NoController(name))
    }

    fn apply_v1(&self, r: &LinuxResources, skipped: &mut Vec<Skipped>) -> Result<(), Error> {
        if let Some(memory) = r.memory() {
            let dir = self.controller("memory")?;
            memory_v1(dir, memory)?;
            kernel_memory_v1(dir, memory, skipped)?;
        }
        if let Some(cpu) = r.cpu() {
            cpu_v1(self, cpu)?;
        }
        if let Some(pids) = r.pids() {
            write_file(
                &self.controller("pids")?.join("pids.max"),
                &pids_max(pids.limit()),
            )?;
        }
        if let Some(devices) = r.devices()
            && !devices.is_empty()
        {
            let dir = self.controller("devices")?;
            for rule in devices {
                let file = if rule.allow() {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write_file(&dir.join(file), &device_rule(rule))?;
            }
        }
        if let Some(blkio) = r.block_io() {
            blkio_v1(self.controller("blkio")?, blkio)?;
        }
        if let Some(limits) = r.hugepage_limits() {
            for l in limits {
                let file = format!("hugetlb.{}.limit_in_bytes", l.page_size());
                write_file(
                    &self.controller("hugetlb")?.join(file),
                    &l.limit().to_string(),
                )?;
            }
        }
        if let Some(network) = r.network() {
            if let Some(class_id) = network.class_id() {
                let dir = self.controller("net_cls")?;
                write_file(&dir.join("net_cls.classid"), &class_id.to_string())?;
            }
            for p in network.priorities().iter().flatten() {
                let dir = self.controller("net_prio")?;
                write_file(
                    &dir.join("net_prio.ifpriomap"),
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
        self.apply_rdma(r)?;
        if let Some(unified) = r.unified()
            && let Some(key) = unified.keys().next()
        {
            return Err(Error::Unsupported {
                what: format!("linux.resources.unified ({key})"),
                version: "v1",
                reason: "unified keys name cgroup v2 files",
            });
        }
        Ok(())
    }

    fn apply_v2(&self, r: &LinuxResources) -> Result<(), Error> {
        let dir = self.dir_for(None).ok_or(Error::NotMounted)?;
        if let Some(memory) = r.memory() {
            memory_v2(dir, memory)?;
        }
        if let Some(cpu) = r.cpu() {
            cpu_v2(dir, cpu)?;
        }
        if let Some(limit) = set(r.pids().map(|p| p.limit())) {
            write_file(&dir.join("pids.max"), &pids_max(limit))?;
        }
        if let Some(blkio) = r.block_io() {
            blkio_v2(dir, blkio)?;
        }
        if let Some(limits) = r.hugepage_limits() {
            for l in limits {
                let file = format!("hugetlb.{}.max", l.page_size());
                write_file(&dir.join(file), &l.limit().to_string())?;
            }
        }
        if let Some(devices) = r.devices()
            && !devices.is_empty()
        {
            crate::devices::apply(dir, devices)?;
        }
        self.apply_rdma(r)?;
        for (key, value) in r.unified().iter().flatten() {
            if key.contains('/') || key.starts_with('.') {
                return Err(Error::InvalidValue {
                    field: "linux.resources.unified key",
                    value: key.clone(),
                    reason: "must be a file name such as memory.high".to_owned(),
                });
            }
            write_file(&dir.join(key), value)?;
        }
        Ok(())
    }

    fn apply_rdma(&self, r: &LinuxResources) -> Result<(), Error> {
        for (device, limit) in r.rdma().iter().flatten() {
            let dir = match self.version {
                Version::V1 => self.controller("rdma")?,
                Version::V2 => self.dir_for(None).ok_or(Error::NotMounted)?,
            };
            let mut line = device.clone();
            if let Some(h) = limit.hca_handles() {
                line.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = limit.hca_objects() {
                line.push_str(&format!(" hca_object={o}"));
            }
            write_file(&dir.join("rdma.max"), &line)?;
        }
        Ok(())
    }
}

/// runc's rule, which Docker relies on: a limit of 0 is not set.
fn set<T: Default + PartialEq>(value: Option<T>) -> Option<T> {
    value.filter(|v| *v != T::default())
}

fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_owned()
    }
}

/// `c 1:3 rwm`, with `*` for an absent major or minor.
fn device_rule(rule: &LinuxDeviceCgroup) -> String {
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::C | LinuxDeviceType::U => "c",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::P => "p",
        LinuxDeviceType::A => "a",
    };
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_owned(), |n| n.to_string())
    };
    let access = rule
        .access()
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    format!("{typ} {}:{} {access}", num(rule.major()), num(rule.minor()))
}

fn memory_v1(dir: &Path, m: &LinuxMemory) -> Result<(), Error> {
    let limit_file = dir.join("memory.limit_in_bytes");
    let swap_file = dir.join("memory.memsw.limit_in_bytes");
    match (set(m.limit()), set(m.swap())) {
        (Some(limit), Some(swap)) => {
            check_swap(limit, swap)?;
            ensure_swap_accounting(&swap_file)?;
            // memsw may never be below the memory limit, so the order of the
            // two writes depends on whether the limits grow or shrink.
            if write_file(&limit_file, &limit.to_string()).is_err() {
                write_file(&swap_file, &swap.to_string())?;
                write_file(&limit_file, &limit.to_string())?;
            } else {
                write_file(&swap_file, &swap.to_string())?;
            }
        }
        (Some(limit), None) => write_file(&limit_file, &limit.to_string())?,
        (None, Some(swap)) => {
            ensure_swap_accounting(&swap_file)?;
            write_file(&swap_file, &swap.to_string())?;
        }
        (None, None) => {}
    }
    if let Some(reservation) = m.reservation() {
        write_file(
            &dir.join("memory.soft_limit_in_bytes"),
            &reservation.to_string(),
        )?;
    }
    if let Some(swappiness) = m.swappiness() {
        if swappiness > 100 {
            return Err(Error::InvalidValue {
                field: "linux.resources.memory.swappiness",
                value: swappiness.to_string(),
                reason: "must be between 0 and 100".to_owned(),
            });
        }
        write_file(&dir.join("memory.swappiness"), &swappiness.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write_file(&dir.join("memory.oom_control"), "1")?;
    }
    Ok(())
}

/// `kernel` and `kernelTCP`: the config's field, its limit, and the v1
/// file that sets it, where the kernel has one.
fn kernel_memory(m: &LinuxMemory) -> [(&'static str, Option<i64>, &'static str); 2] {
    [
        (
            "linux.resources.memory.kernel",
            m.kernel(),
            "memory.kmem.limit_in_bytes",
        ),
        (
            "linux.resources.memory.kernelTCP",
            m.kernel_tcp(),
            "memory.kmem.tcp.limit_in_bytes",
        ),
    ]
}

/// `kernel` and `kernelTCP`, where the kernel still has their files.
fn kernel_memory_v1(dir: &Path, m: &LinuxMemory, skipped: &mut Vec<Skipped>) -> Result<(), Error> {
    for (field, limit, file) in kernel_memory(m) {
        let Some(limit) = limit else { continue };
        let path = dir.join(file);
        if path.exists() {
            write_file(&path, &limit.to_string())?;
        } else {
            skipped.push(Skipped {
                field,
                reason: "this kernel's memory cgroup has no file for it",
            });
        }
    }
    Ok(())
}

fn ensure_swap_accounting(swap_file: &Path) -> Result<(), Error> {
    if swap_file.exists() {
        Ok(())
    } else {
        Err(Error::Unsupported {
            what: "linux.resources.memory.swap".to_owned(),
            version: "v1",
            reason: "the kernel has no swap accounting (boot with swapaccount=1)",
        })
    }
}

/// In OCI, `swap` is the memory+swap total, so it cannot be below `limit`.
fn check_swap(limit: i64, swap: i64) -> Result<(), Error> {
    if limit > 0 && swap >= 0 && swap < limit {
        return Err(Error::InvalidValue {
            field: "linux.resources.memory.swap",
            value: swap.to_string(),
            reason: format!("memory+swap must be at least the memory limit {limit}"),
        });
    }
    Ok(())
}

fn memory_v2(dir: &Path, m: &LinuxMemory) -> Result<(), Error> {
    let max = |v: i64| {
        if v < 0 {
            "max".to_owned()
        } else {
            v.to_string()
        }
    };
    if let Some(limit) = set(m.limit()) {
        write_file(&dir.join("memory.max"), &max(limit))?;
    }
    if let Some(swap) = set(m.swap()) {
        // v2 limits swap alone; OCI gives memory+swap.
        let swap_only = match set(m.limit()) {
            _ if swap < 0 => -1,
            Some(limit) if limit > 0 => {
                check_swap(limit, swap)?;
                swap - limit
            }
            _ => {
                return Err(Error::InvalidValue {
                    field: "linux.resources.memory.swap",
                    value: swap.to_string(),
                    reason: "on cgroup v2 a swap limit needs a memory limit too".to_owned(),
                });
            }
        };
        write_file(&dir.join("memory.swap.max"), &max(swap_only))?;
    }
    if let Some(reservation) = set(m.reservation()) {
        write_file(&dir.join("memory.low"), &max(reservation))?;
    }
    if m.swappiness().is_some() {
        return Err(Error::Unsupported {
            what: "linux.resources.memory.swappiness".to_owned(),
            version: "v2",
            reason: "cgroup v2 has no per-group swappiness",
        });
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(Error::Unsupported {
            what: "linux.resources.memory.disableOOMKiller".to_owned(),
            version: "v2",
            reason: "cgroup v2 cannot turn the OOM killer off",
        });
    }
    Ok(())
}

fn cpu_v1(cgroup: &Cgroup, c: &LinuxCpu) -> Result<(), Error> {
    let writes: [(&str, Option<String>); 7] = [
        ("cpu.shares", c.shares().map(|v| v.to_string())),
        // The period goes first: the kernel checks the quota against it.
        ("cpu.cfs_period_us", c.period().map(|v| v.to_string())),
        ("cpu.cfs_quota_us", c.quota().map(|v| v.to_string())),
        ("cpu.cfs_burst_us", c.burst().map(|v| v.to_string())),
        (
            "cpu.rt_period_us",
            c.realtime_period().map(|v| v.to_string()),
        ),
        (
            "cpu.rt_runtime_us",
            c.realtime_runtime().map(|v| v.to_string()),
        ),
        ("cpu.idle", c.idle().map(|v| v.to_string())),
    ];
    for (file, value) in writes {
        if let Some(value) = value {
            write_file(&cgroup.controller("cpu")?.join(file), &value)?;
        }
    }
    cpuset(cgroup.dir_for(Some("cpuset")), c)
}

fn cpu_v2(dir: &Path, c: &LinuxCpu) -> Result<(), Error> {
    if let Some(shares) = set(c.shares()) {
        // The conversion runc and crun use: shares 2..262144 to weight 1..10000.
        let weight = 1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142;
        write_file(&dir.join("cpu.weight"), &weight.to_string())?;
    }
    if c.quota().is_some() || c.period().is_some() {
        let quota = c
            .quota()
            .filter(|q| *q > 0)
            .map_or("max".to_owned(), |q| q.to_string());
        let period = c.period().unwrap_or(100_000);
        write_file(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
    }
    if let Some(burst) = c.burst() {
        write_file(&dir.join("cpu.max.burst"), &burst.to_string())?;
    }
    if let Some(idle) = set(c.idle()) {
        write_file(&dir.join("cpu.idle"), &idle.to_string())?;
    }
    if set(c.realtime_runtime()).is_some() || set(c.realtime_period()).is_some() {
        return Err(Error::Unsupported {
            what: "linux.resources.cpu.realtimeRuntime".to_owned(),
            version: "v2",
            reason: "cgroup v2 has no realtime CPU budget",
        });
    }
    cpuset(Some(dir), c)
}

fn cpuset(dir: Option<&Path>, c: &LinuxCpu) -> Result<(), Error> {
    for (file, value) in [("cpuset.cpus", c.cpus()), ("cpuset.mems", c.mems())] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            let dir = dir.ok_or(Error::NoController("cpuset"))?;
            write_file(&dir.join(file), value)?;
        }
    }
    Ok(())
}

fn blkio_v1(dir: &Path, b: &LinuxBlockIo) -> Result<(), Error> {
    // Kernels with the BFQ scheduler name the weight files differently.
    let weight_file = |name: &str| {
        let plain = dir.join(format!("blkio.{name}"));
        if plain.exists() {
            plain
        } else {
            dir.join(format!("blkio.bfq.{name}"))
        }
    };
    if let Some(weight) = set(b.weight()) {
        write_file(&weight_file("weight"), &weight.to_string())?;
    }
    if let Some(weight) = set(b.leaf_weight()) {
        write_file(&dir.join("blkio.leaf_weight"), &weight.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(weight) = d.weight() {
            let line = format!("{}:{} {weight}", d.major(), d.minor());
            write_file(&weight_file("weight_device"), &line)?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, devices) in throttles {
        for d in devices.iter().flatten() {
            write_file(
                &dir.join(file),
                &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}

fn blkio_v2(dir: &Path, b: &LinuxBlockIo) -> Result<(), Error> {
    if let Some(weight) = set(b.weight()) {
        let bfq = dir.join("io.bfq.weight");
        if bfq.exists() {
            write_file(&bfq, &weight.to_string())?;
        } else {
            // blkio weights run 10..1000, io.weight 1..10000.
            let w = 1 + (u32::from(weight).clamp(10, 1000) - 10) * 9999 / 990;
            write_file(&dir.join("io.weight"), &w.to_string())?;
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, devices) in throttles {
        for d in devices.iter().flatten() {
            let line = format!("{}:{} {key}={}", d.major(), d.minor(), d.rate());
            write_file(&dir.join("io.max"), &line)?;
        }
    }
    Ok(())
}
