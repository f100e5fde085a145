//! The cudarc side of the GPU backend (feature `gpu`): context, NVRTC compile, launches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use cudarc::driver::{CudaContext, CudaFunction, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};

use super::{GpuError, GpuInitError, GpuMatrix, InitStage};
use crate::format::TernaryFormat;
use crate::matrix::TernaryMatrix;
use crate::quant::{CHUNK, QuantizedActivations};

const SOURCE: &str = include_str!("ternary_gemv.cu");
/// Warps (rows) per thread block.
const ROWS_PER_BLOCK: u32 = 4;

/// NVRTC-compiles the kernels (no device needed). fmad=false keeps `acc + d·s` two
/// roundings, as on the CPU.
pub(super) fn compile() -> Result<cudarc::nvrtc::Ptx, GpuInitError> {
    let opts = CompileOptions {
        fmad: Some(false),
        ..Default::default()
    };
    compile_ptx_with_opts(SOURCE, opts).map_err(|e| GpuInitError::Unavailable {
        reason: format!("NVRTC could not compile the kernels: {e}"),
    })
}

pub(super) struct Device {
    pub(super) name: String,
    stream: Arc<CudaStream>,
    gemm: CudaFunction,
}

fn driver(during: &'static str) -> impl Fn(cudarc::driver::DriverError) -> GpuError {
    move |e| GpuError::Driver {
        during,
        message: e.to_string(),
    }
}

impl Device {
    pub(super) fn init(stage: &AtomicU8) -> Result<Self, GpuInitError> {
        let unavailable = |what: &str, e: &dyn std::fmt::Display| GpuInitError::Unavailable {
            reason: format!("{what}: {e}"),
        };
        stage.store(InitStage::Context as u8, Ordering::SeqCst);
        let ctx = CudaContext::new(0).map_err(|e| unavailable("no usable CUDA device 0", &e))?;
        let name = ctx.name().unwrap_or_else(|_| "CUDA device 0".into());
        stage.store(InitStage::Compile as u8, Ordering::SeqCst);
        // fmad=false keeps `acc + d·s` two roundings, as on the CPU.
        let opts = CompileOptions {
            fmad: Some(false),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(SOURCE, opts)
            .map_err(|e| unavailable("NVRTC could not compile the kernels", &e))?;
        stage.store(InitStage::LoadModule as u8, Ordering::SeqCst);
        let module = ctx
            .load_module(ptx)
            .map_err(|e| unavailable("loading the kernel module failed", &e))?;
        let gemm = module
            .load_function("ternary_gemm")
            .map_err(|e| unavailable("kernel `ternary_gemm` missing", &e))?;
        Ok(Self {
            name,
            stream: ctx.default_stream(),
            gemm,
        })
    }

    pub(super) fn upload(&self, w: &TernaryMatrix<'_>) -> Result<GpuMatrix, GpuError> {
        let codes: Vec<u8> = (0..w.m()).flat_map(|i| w.row(i).iter().copied()).collect();
        let bytes = self
            .stream
            .clone_htod(&codes)
            .map_err(driver("uploading weights"))?;
        Ok(GpuMatrix {
            format: w.format(),
            m: w.m(),
            k: w.k(),
            tensor_scale: w.tensor_scale(),
            bytes,
        })
    }

    pub(super) fn gemm(
        &self,
        w: &GpuMatrix,
        x: &QuantizedActivations,
        want_dots: bool,
    ) -> Result<(Vec<f32>, Vec<i32>), GpuError> {
        let (m, k, n) = (w.m, w.k, x.n());
        let chunks = k.div_ceil(CHUNK);
        let values: Vec<i8> = (0..n).flat_map(|r| x.row(r).iter().copied()).collect();
        let inv: Vec<f32> = (0..n).map(|r| x.inv_scale(r)).collect();
        let d_x = self
            .stream
            .clone_htod(&values)
            .map_err(driver("uploading activations"))?;
        let d_inv = self
            .stream
            .clone_htod(&inv)
            .map_err(driver("uploading scales"))?;
        let mut d_y = self
            .stream
            .alloc_zeros::<f32>(m * n)
            .map_err(driver("allocating outputs"))?;
        let mut d_dots = self
            .stream
            .alloc_zeros::<i32>(if want_dots { n * m * chunks } else { 1 })
            .map_err(driver("allocating dots"))?;
        let format: i32 = if w.format == TernaryFormat::Tq2_0 {
            0
        } else {
            1
        };
        let (mi, ki) = (m as i32, k as i32);
        let cfg = LaunchConfig {
            grid_dim: ((m as u32).div_ceil(ROWS_PER_BLOCK), n as u32, 1),
            block_dim: (32 * ROWS_PER_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let null_dots: u64 = 0;
        let mut launch = self.stream.launch_builder(&self.gemm);
        launch.arg(&w.bytes).arg(&d_x).arg(&d_inv).arg(&mut d_y);
        if want_dots {
            launch.arg(&mut d_dots);
        } else {
            launch.arg(&null_dots);
        }
        launch.arg(&format).arg(&mi).arg(&ki).arg(&w.tensor_scale);
        // SAFETY: argument order and types match `ternary_gemm`'s signature; buffers
        // are sized for m × n outputs and n × m × chunks dots.
        unsafe { launch.launch(cfg) }.map_err(driver("launching ternary_gemm"))?;
        let y = self
            .stream
            .clone_dtoh(&d_y)
            .map_err(driver("reading outputs"))?;
        let dots = if want_dots {
            self.stream
                .clone_dtoh(&d_dots)
                .map_err(driver("reading dots"))?
        } else {
            Vec::new()
        };
        Ok((y, dots))
    }
}
