//! Device creation and readback; knows nothing of Glow.

use crate::error::{GlowError, Result};

/// An adapter, device and queue, shareable by several models (the browser widget
/// shares one between every element on a page).
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Whether the device was opened with timestamp queries (used only by profiling).
    pub timestamps: bool,
    /// Whether kernels may use WGSL's `unpack2x16float` (f16 weights stored in pairs in
    /// u32s). Core WGSL, so every WebGPU adapter has it, and Vulkan and GL natively; wgpu
    /// withholds it only where a driver lacks it (llvmpipe without shaderFloat16).
    pub f16_weights: bool,
}

impl GpuContext {
    /// Picks the default adapter (lavapipe on machines without a GPU, the browser's
    /// WebGPU adapter on the web) and asks for its own limits.
    pub async fn new() -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| GlowError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        // Timestamp queries where the adapter has them, for per-dispatch profiling. shader-f16
        // where it has that: llvmpipe compiles `unpack2x16float` only with f16 enabled.
        let features = adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16);
        let f16_weights = adapter.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::SHADER_F16_IN_F32);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("glow"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GlowError::Gpu(format!("could not open the GPU device: {e}")))?;
        let timestamps = features.contains(wgpu::Features::TIMESTAMP_QUERY);
        Ok(GpuContext { device, queue, info, limits, timestamps, f16_weights })
    }

    pub fn adapter_description(&self) -> String {
        let i = &self.info;
        if i.name.is_empty() {
            // Browsers do not name the adapter through wgpu (the page reads
            // GPUAdapter.info itself).
            return format!("WebGPU adapter ({:?})", i.device_type);
        }
        format!("{} ({:?}, {:?}, driver {} {})", i.name, i.backend, i.device_type, i.driver, i.driver_info)
            .replace("  ", " ")
    }

    /// Copies `size` bytes of `src` into a mappable staging buffer and reads them back.
    pub async fn read_back(&self, staging: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
        let slice = staging.slice(..size);
        let (tx, rx) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GlowError::DeviceLost(format!("device poll failed: {e}")))?;
        rx.await
            .map_err(|_| GlowError::DeviceLost("readback was cancelled".into()))?
            .map_err(|e| GlowError::DeviceLost(format!("readback failed: {e}")))?;
        let bytes = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| GlowError::Gpu(format!("could not map the readback buffer: {e}")))?;
            view.to_vec()
        };
        staging.unmap();
        Ok(bytes)
    }
}
