//! Memory telemetry: what the GPU holds (NVML: device-wide and this process's share) and the process's resident
//! memory. NVML is loaded at run time, so a machine without an NVIDIA driver simply has no GPU figures.

use crate::runtime::Device;
use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;
use serde::{Deserialize, Serialize};

const MIB: f64 = 1024.0 * 1024.0;

/// One reading, MiB. A field is None where it cannot be measured here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MemorySample {
    /// Memory in use on the whole device.
    pub gpu_device_mb: Option<f32>,
    /// Memory held by this process on the device (None where the driver does not say, e.g. in some containers).
    pub gpu_process_mb: Option<f32>,
    /// Resident memory of this process.
    pub rss_mb: Option<f32>,
}

impl MemorySample {
    /// What this worker holds on the GPU: its own share where known, else the device's use.
    pub fn gpu_held_mb(&self) -> Option<f32> {
        self.gpu_process_mb.or(self.gpu_device_mb)
    }

    /// The figure a memory-threshold policy compares: GPU memory held, else resident memory.
    pub fn held_mb(&self) -> Option<f32> {
        self.gpu_held_mb().or(self.rss_mb)
    }
}

/// Takes memory readings for one device: GPU memory through NVML (CUDA only) and the process's resident memory.
pub struct MemoryProbe {
    nvml: Option<Nvml>,
    index: u32,
}

impl MemoryProbe {
    /// A probe for `device`; on the CPU, or where NVML cannot be loaded, it reads resident memory only.
    pub fn new(device: Device) -> Self {
        let (nvml, index) = match device {
            Device::Cuda { device_id } => match Nvml::init() {
                Ok(nvml) => (Some(nvml), device_id.max(0) as u32),
                Err(e) => {
                    tracing::warn!(error = %e, "NVML unavailable: no GPU memory telemetry");
                    (None, 0)
                }
            },
            Device::Cpu => (None, 0),
        };
        Self { nvml, index }
    }

    /// The GPU's name and total memory (MiB), where NVML answers.
    pub fn gpu_info(&self) -> Option<(String, f32)> {
        let device = self.nvml.as_ref()?.device_by_index(self.index).ok()?;
        let total = device.memory_info().ok()?.total;
        Some((device.name().ok()?, (total as f64 / MIB) as f32))
    }

    /// One reading now, MiB.
    pub fn sample(&self) -> MemorySample {
        let mut sample = MemorySample { rss_mb: rss_mb(), ..MemorySample::default() };
        let Some(device) = self.nvml.as_ref().and_then(|n| n.device_by_index(self.index).ok()) else {
            return sample;
        };
        sample.gpu_device_mb = device.memory_info().ok().map(|m| (m.used as f64 / MIB) as f32);
        let pid = std::process::id();
        sample.gpu_process_mb = device.running_compute_processes().ok().and_then(|procs| {
            procs.iter().find(|p| p.pid == pid).and_then(|p| match p.used_gpu_memory {
                UsedGpuMemory::Used(bytes) => Some((bytes as f64 / MIB) as f32),
                UsedGpuMemory::Unavailable => None,
            })
        });
        sample
    }
}

/// Resident set size from /proc (Linux); None elsewhere.
pub fn rss_mb() -> Option<f32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some((kb / 1024.0) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_probe_has_rss_and_no_gpu() {
        let sample = MemoryProbe::new(Device::Cpu).sample();
        assert!(sample.rss_mb.is_some_and(|mb| mb > 1.0), "{sample:?}");
        assert_eq!(sample.gpu_held_mb(), None);
        assert_eq!(sample.held_mb(), sample.rss_mb);
    }
}
