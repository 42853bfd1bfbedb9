//! Runs one kernel once on given inputs: the harness the kernel tests and the per-kernel
//! benchmarks use to compare a WGSL kernel with its CPU reference.

use super::kernels::{CallParams, Kernel, KernelCache};
use super::GpuContext;
use crate::error::Result;
use wgpu::util::DeviceExt;

/// Runs kernel `key` with storage buffers initialised from `storage` (raw bytes, in
/// binding order), the uniform `params` (when it has parameters), and `call` (when it uses
/// the per-call values); returns the final contents of storage buffer `read`.
pub async fn run_kernel(ctx: &GpuContext, key: &dyn Kernel, storage: &[Vec<u8>], params: &[u8], call: Option<CallParams>, groups: (u32, u32, u32), read: usize) -> Result<Vec<u8>> {
    run_kernel_n(ctx, key, storage, params, call, groups, read, 1).await
}

/// Like `run_kernel`, but dispatches the kernel `reps` times in one compute pass (for
/// timing: the caller measures the wall time around it, readback included).
#[allow(clippy::too_many_arguments)]
pub async fn run_kernel_n(ctx: &GpuContext, key: &dyn Kernel, storage: &[Vec<u8>], params: &[u8], call: Option<CallParams>, groups: (u32, u32, u32), read: usize, reps: usize) -> Result<Vec<u8>> {
    Ok(run_kernel_timed(ctx, key, storage, params, call, groups, read, reps).await?.0)
}

/// Like `run_kernel_n`, and also returns the GPU time of the pass of `reps` dispatches in
/// ms, from timestamp queries at its start and end (`None` without timestamp queries).
#[allow(clippy::too_many_arguments)]
pub async fn run_kernel_timed(ctx: &GpuContext, key: &dyn Kernel, storage: &[Vec<u8>], params: &[u8], call: Option<CallParams>, groups: (u32, u32, u32), read: usize, reps: usize) -> Result<(Vec<u8>, Option<f64>)> {
    let device = &ctx.device;
    let mut cache = KernelCache::default();
    let k = cache.get(device, key);
    assert_eq!(key.storage().len(), storage.len(), "{}: storage buffers", key.label());
    let bufs: Vec<wgpu::Buffer> = storage
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let mut d = data.clone();
            d.resize(d.len().max(16).div_ceil(4) * 4, 0);
            let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: Some(&format!("arg{i}")), contents: &d, usage })
        })
        .collect();
    let mut pbytes = params.to_vec();
    pbytes.resize(pbytes.len().max(16), 0);
    let pbuf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: Some("params"), contents: &pbytes, usage: wgpu::BufferUsages::UNIFORM });
    let cbuf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("call"),
        contents: bytemuck::bytes_of(&call.unwrap_or_default()),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let entries: Vec<wgpu::BindGroupEntry> = bufs.iter().enumerate().map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() }).collect();
    let sg = device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some("storage"), layout: &k.storage_layout, entries: &entries });
    // Group 1: the kernel's params (if it has any), then the call values (if it uses them).
    let mut ue: Vec<wgpu::BindGroupEntry> = Vec::new();
    if key.params().is_some() {
        ue.push(wgpu::BindGroupEntry { binding: 0, resource: pbuf.as_entire_binding() });
    }
    if key.uses_call() {
        ue.push(wgpu::BindGroupEntry { binding: ue.len() as u32, resource: cbuf.as_entire_binding() });
    }
    let ug = device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some("uniforms"), layout: &k.uniform_layout, entries: &ue });
    let size = bufs[read].size();
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("staging"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let stamps = ctx.timestamps.then(|| {
        let set = device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("pass"), ty: wgpu::QueryType::Timestamp, count: 2 });
        let resolve = device.create_buffer(&wgpu::BufferDescriptor { label: Some("pass/resolve"), size: 16, usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC, mapped_at_creation: false });
        let read = device.create_buffer(&wgpu::BufferDescriptor { label: Some("pass/read"), size: 16, usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
        (set, resolve, read)
    });
    let mut enc = device.create_command_encoder(&Default::default());
    {
        let writes = stamps.as_ref().map(|(set, ..)| wgpu::ComputePassTimestampWrites { query_set: set, beginning_of_pass_write_index: Some(0), end_of_pass_write_index: Some(1) });
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("kernel"), timestamp_writes: writes });
        pass.set_pipeline(&k.pipeline);
        pass.set_bind_group(0, &sg, &[]);
        pass.set_bind_group(1, &ug, &[]);
        for _ in 0..reps {
            pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        }
    }
    enc.copy_buffer_to_buffer(&bufs[read], 0, &staging, 0, size);
    if let Some((set, resolve, read)) = &stamps {
        enc.resolve_query_set(set, 0..2, resolve, 0);
        enc.copy_buffer_to_buffer(resolve, 0, read, 0, 16);
    }
    ctx.queue.submit([enc.finish()]);
    let mut out = ctx.read_back(&staging, size).await?;
    out.truncate(storage[read].len());
    let gpu_ms = match &stamps {
        Some((_, _, buf)) => {
            let t: Vec<u64> = bytemuck::pod_collect_to_vec(&ctx.read_back(buf, 16).await?);
            Some(t[1].saturating_sub(t[0]) as f64 * ctx.queue.get_timestamp_period() as f64 * 1e-6)
        }
        None => None,
    };
    Ok((out, gpu_ms))
}
