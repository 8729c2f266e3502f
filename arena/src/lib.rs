//! One CPU memory arena shared by the ONNX Runtime sessions of a process that ask for it
//! (`session.use_env_allocators`), instead of one arena per session.
//!
//! A DeepFilterNet3 call runs three sessions (the encoder and two decoders). Each used to own an arena that grew
//! to its own peak and kept it, so the three peaks added up. Shared, the memory the encoder's intermediate
//! tensors used holds the decoders' next, and the process holds about the largest of the three instead of their
//! sum. The arena starts as one region of [`INITIAL_REGION_BYTES`] (address space; only the pages a run touches
//! become resident) rather than growing region by region, so the tensors of scenes of every length are fitted
//! into one region instead of being spread over several (docs/BENCHMARKS.md, "A lean worker").
//!
//! The arena lives in ONNX Runtime's environment. [`renew`] registers a fresh, empty one; the one it replaces is
//! freed when the last session using it is dropped, so dropping a job's sessions and renewing returns the
//! memory as dropping a session with its own arena did. ort (2.0 rc) wraps none of the calls this takes, so they
//! are made here through its C API; [`trim_heap`] is the other C call the worker makes. This crate is the
//! project's only unsafe code.

#![allow(unsafe_code)]

use ort::AsPointer;
use ort::environment::Environment;
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use std::ffi::CStr;

/// The arena's first region, bytes: more than a DeepFilterNet3 call on a 30 s window needs (about 300 MiB), so
/// such calls never extend it.
pub const INITIAL_REGION_BYTES: usize = 512 << 20;

/// Registers a fresh CPU arena in `env`, replacing the one registered before; sessions created from now on with
/// `session.use_env_allocators` share it. Must not race with the creation of such a session: the caller
/// serialises the two.
pub fn renew(env: &Environment) -> ort::Result<()> {
    let api = ort::api();
    // The CPU execution provider's own allocator, as it names it.
    let info = MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Arena, MemoryType::Default)?;
    let env_ptr = env.ptr().cast_mut();
    // SAFETY: `env_ptr` and `info` point to live ONNX Runtime objects for the whole call. With nothing registered
    // yet the call returns an error status, which `result_from_status` releases; it is ignored, since only the
    // registration below matters.
    let _ = unsafe { ort::Error::result_from_status((api.UnregisterAllocator)(env_ptr, info.ptr())) };
    let keys: [&CStr; 1] = [c"initial_chunk_size_bytes"];
    let key_ptrs = keys.map(CStr::as_ptr);
    let values: [usize; 1] = [INITIAL_REGION_BYTES];
    let mut config: *mut ort::sys::OrtArenaCfg = std::ptr::null_mut();
    // SAFETY: both arrays hold `keys.len()` elements and outlive the call; `config` is a valid out-pointer; the
    // status is consumed by `result_from_status`.
    unsafe {
        ort::Error::result_from_status((api.CreateArenaCfgV2)(
            key_ptrs.as_ptr(),
            values.as_ptr(),
            keys.len(),
            &mut config,
        ))?;
    }
    // SAFETY: `env_ptr`, `info` and `config` are live; ONNX Runtime copies what it needs from `config`, which is
    // released right after on both outcomes; the status is consumed by `result_from_status`.
    unsafe {
        let status = (api.CreateAndRegisterAllocator)(env_ptr, info.ptr(), config);
        (api.ReleaseArenaCfg)(config);
        ort::Error::result_from_status(status)
    }
}

/// Returns the C heap's free memory to the system (glibc's `malloc_trim`), so the resident memory measured after a
/// job is what is still in use, not what the allocator keeps for reuse: without it the figure wandered by 50 MiB
/// from job to job and hid any real growth. A no-op elsewhere.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim takes no pointers and may be called at any time from any thread.
        unsafe {
            malloc_trim(0);
        }
    }
}
