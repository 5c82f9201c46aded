//! The backend's configuration section: which model, on which device, in which precision.

use aki_core::{EmbedError, Result, paths::DEFAULT_MODEL};
use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

use crate::packed::isa::Level;

/// Configuration of a [`CandleBackend`](crate::CandleBackend).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CandleConfig {
    /// A Hugging Face model id (`org/name`) or a local model directory. Not a key of this
    /// section: servers set it from their top-level `model` (or the model a request names).
    #[serde(skip)]
    pub model: String,
    /// Hub revision (branch, tag or commit); `main` when unset.
    pub revision: Option<String>,
    /// `auto`, `cpu`, `cuda`, `cuda:N` or `metal`.
    pub device: String,
    /// `f32`, `f16`, `bf16` or `int8`; unset means bf16 on the packed CPU path of CPUs with
    /// AVX-512 BF16, f16 there where the kernels run at AVX2, and f32 elsewhere. On the CPU,
    /// `f16` and `bf16` keep the packed path's linear weights in that type (products
    /// accumulated in f32, everything else f32); `int8` (packed path only, never a default)
    /// multiplies int8 weights by activations rounded to int8, accumulated exactly in `i32`.
    pub dtype: Option<String>,
    /// Largest number of sequences one forward pass takes; larger calls are split
    /// into length-sorted chunks of this size.
    pub max_forward_batch: usize,
    /// Run f32 CPU inference on the packed path (no padding work, fused kernels); `false`
    /// uses candle-transformers' BERT, which every other device and dtype uses anyway.
    pub packed: bool,
    /// Compute threads of the packed path; unset means one per core.
    pub threads: Option<usize>,
    /// Widest instruction set the packed path's kernels may use: `auto` (what the CPU has),
    /// `avx512`, `avx2` or `scalar`; lower levels are for comparison and tests.
    pub cpu_isa: String,
}

impl Default for CandleConfig {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.to_string(),
            revision: None,
            device: "auto".to_string(),
            dtype: None,
            max_forward_batch: 32,
            packed: true,
            threads: None,
            cpu_isa: "auto".to_string(),
        }
    }
}

impl CandleConfig {
    /// The configuration for `model` with every other key at its default.
    pub fn for_model(model: impl Into<String>) -> Self {
        Self { model: model.into(), ..Self::default() }
    }

    /// The instruction sets the packed kernels use: the CPU's, capped by `cpu_isa`.
    ///
    /// # Errors
    /// [`EmbedError::Load`] for an unknown `cpu_isa`.
    pub fn isa(&self) -> Result<crate::packed::isa::Isa> {
        crate::packed::isa::Isa::detect(&self.cpu_isa).map_err(|e| EmbedError::Load(format!("backend.{e}")))
    }

    /// Whether the configured device is a CUDA GPU: `cuda`, `cuda:N`, or `auto` on a build with
    /// CUDA (whether one can be opened shows when it is).
    pub fn is_cuda(&self) -> bool {
        match self.device.as_str() {
            "cuda" => true,
            "auto" => candle_core::utils::cuda_is_available(),
            other => other.starts_with("cuda:"),
        }
    }

    /// Opens the configured device.
    ///
    /// # Errors
    /// [`EmbedError::Load`] for an unknown device name, or a device this build or machine
    /// cannot open (CUDA without the `cuda` feature, for example).
    pub fn open_device(&self) -> Result<Device> {
        let bad = |e: candle_core::Error| EmbedError::Load(format!("device `{}`: {e}", self.device));
        match self.device.as_str() {
            "cpu" => Ok(Device::Cpu),
            "auto" => {
                if candle_core::utils::cuda_is_available() {
                    Device::new_cuda(0).map_err(bad)
                } else if candle_core::utils::metal_is_available() {
                    Device::new_metal(0).map_err(bad)
                } else {
                    Ok(Device::Cpu)
                }
            }
            "metal" => Device::new_metal(0).map_err(bad),
            "cuda" => Device::new_cuda(0).map_err(bad),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(ordinal)) => Device::new_cuda(ordinal).map_err(bad),
                _ => Err(EmbedError::Load(format!("device `{other}` is not one of auto, cpu, cuda, cuda:N, metal"))),
            },
        }
    }

    /// The configured numeric type (f32 for `int8`, whose model is read in f32 and rounded by
    /// the packed path).
    ///
    /// # Errors
    /// [`EmbedError::Load`] for a name other than f32, f16, bf16 or int8.
    pub fn dtype(&self) -> Result<DType> {
        self.dtype_on(&Device::Cpu, true).map(|(dtype, _)| dtype)
    }

    /// The numeric type used on `device` for a model the packed path can run (`packable`) or
    /// not: the configured one, or when none is configured, on the packed CPU path, bf16 on a
    /// CPU with AVX-512 BF16 and f16 weights where the kernels run at AVX2 (each passes the
    /// quality gate there and measured faster: docs/performance.md); f32 everywhere else. The
    /// flag says whether it was chosen so.
    ///
    /// # Errors
    /// [`EmbedError::Load`] for a name other than f32, f16, bf16 or int8, or an unknown
    /// `cpu_isa`.
    pub fn dtype_on(&self, device: &Device, packable: bool) -> Result<(DType, bool)> {
        let Some(name) = self.dtype.as_deref() else {
            if !(device.is_cpu() && self.packed && packable) {
                return Ok((DType::F32, false));
            }
            let isa = self.isa()?;
            return Ok(match isa.level() {
                _ if isa.bf16() => (DType::BF16, true),
                Level::Avx2 => (DType::F16, true),
                _ => (DType::F32, false),
            });
        };
        let dtype = match name {
            "f32" => Ok(DType::F32),
            "f16" => Ok(DType::F16),
            "bf16" => Ok(DType::BF16),
            "int8" => Ok(DType::F32),
            other => return Err(EmbedError::Load(format!("dtype `{other}` is not one of f32, f16, bf16, int8"))),
        };
        dtype.map(|d| (d, false))
    }

    /// Whether `dtype` asks for int8 products (W8A8) on the packed path.
    pub fn int8(&self) -> bool {
        self.dtype.as_deref() == Some("int8")
    }
}

/// How a device is named in [`aki_core::ModelInfo::device`].
pub(crate) fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_string(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_dtype_the_cpu_gets_bf16_with_avx512_bf16_and_f16_at_avx2() {
        let c = CandleConfig::default();
        assert_eq!(c.model, DEFAULT_MODEL);
        let auto = c.isa().expect("isa");
        let default = |cap: &str| CandleConfig { cpu_isa: cap.into(), ..c.clone() }.dtype_on(&Device::Cpu, true);
        if auto.bf16() {
            assert_eq!(default("auto").expect("dtype"), (DType::BF16, true));
        }
        if auto.level() >= Level::Avx2 {
            assert_eq!(default("avx2").expect("dtype"), (DType::F16, true));
        }
        assert_eq!(c.dtype_on(&Device::Cpu, false).expect("dtype"), (DType::F32, false), "not packable: f32");
        for f32_only in [
            CandleConfig { cpu_isa: "scalar".into(), ..c.clone() },
            CandleConfig { packed: false, ..c.clone() },
            CandleConfig { dtype: Some("f32".into()), ..c.clone() },
        ] {
            assert_eq!(f32_only.dtype_on(&Device::Cpu, true).expect("dtype"), (DType::F32, false), "{f32_only:?}");
        }
        assert!(matches!(CandleConfig { device: "cpu".into(), ..c }.open_device(), Ok(Device::Cpu)));
    }

    #[test]
    fn int8_is_read_in_f32_and_only_when_asked_for() {
        let int8 = CandleConfig { dtype: Some("int8".into()), ..Default::default() };
        assert_eq!(int8.dtype_on(&Device::Cpu, true).expect("dtype"), (DType::F32, false));
        assert!(int8.int8() && !CandleConfig::default().int8());
    }

    #[test]
    fn bad_device_and_dtype_names_are_errors() {
        let c = CandleConfig { device: "tpu".into(), dtype: Some("f8".into()), ..Default::default() };
        assert!(c.open_device().expect_err("bad device").to_string().contains("tpu"));
        assert!(c.dtype().expect_err("bad dtype").to_string().contains("f8"));
        let c = CandleConfig { device: "cuda:x".into(), ..Default::default() };
        assert!(c.open_device().is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_json::from_str::<CandleConfig>(r#"{"modle": "x"}"#).expect_err("unknown key");
        assert!(err.to_string().contains("modle"));
    }
}
