//! Which instruction set the packed kernels use: what the CPU has (read at run time), capped by
//! `backend.cpu_isa` so every path can run, and be tested, on one machine.

/// A level of vector instructions, widest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Plain Rust; the compiler's baseline vectorisation.
    Scalar,
    /// AVX2 with FMA and F16C.
    Avx2,
    /// AVX-512 (F, VL, BW, DQ) with AVX2, FMA and F16C.
    Avx512,
}

impl Level {
    /// The name used in configuration and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }
}

/// The instruction sets the kernels may use. Only [`Isa::detect`] makes one, so a kernel handed
/// an `Isa` may rely on the CPU having what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Isa {
    level: Level,
    bf16: bool,
    vnni: bool,
}

impl Isa {
    /// What this CPU has, capped by `cap` (`auto`, `avx512`, `avx2` or `scalar`): never more
    /// than the CPU has.
    ///
    /// # Errors
    /// A message naming `cap` when it is not one of those names.
    pub fn detect(cap: &str) -> Result<Self, String> {
        let cap = match cap {
            "auto" | "avx512" => Level::Avx512,
            "avx2" => Level::Avx2,
            "scalar" => Level::Scalar,
            other => return Err(format!("cpu_isa `{other}` is not one of auto, avx512, avx2, scalar")),
        };
        let (level, bf16, vnni) = cpu();
        let level = level.min(cap);
        Ok(Self { level, bf16: bf16 && level == Level::Avx512, vnni: vnni && level == Level::Avx512 })
    }

    /// The vector level in use.
    pub fn level(self) -> Level {
        self.level
    }

    /// Whether the AVX-512 BF16 dot product (`vdpbf16ps`) is in use.
    pub fn bf16(self) -> bool {
        self.bf16
    }

    /// Whether the AVX-512 VNNI dot product of bytes (`vpdpbusd`) is in use.
    pub fn vnni(self) -> bool {
        self.vnni
    }

    /// The level with the extensions in use: `avx512+bf16+vnni`, `avx512+vnni`, `avx512`,
    /// `avx2` or `scalar`, for logs and `/info`.
    pub fn describe(self) -> String {
        let mut name = self.level.name().to_string();
        for (on, extension) in [(self.bf16, "+bf16"), (self.vnni, "+vnni")] {
            if on {
                name.push_str(extension);
            }
        }
        name
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu() -> (Level, bool, bool) {
    use std::arch::is_x86_feature_detected as has;
    let avx2 = has!("avx2") && has!("fma") && has!("f16c");
    let avx512 = avx2 && has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq");
    let level = if avx512 {
        Level::Avx512
    } else if avx2 {
        Level::Avx2
    } else {
        Level::Scalar
    };
    (level, avx512 && has!("avx512bf16"), avx512 && has!("avx512vnni"))
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu() -> (Level, bool, bool) {
    (Level::Scalar, false, false)
}

/// Defines `fn $name(isa: Isa, args..)` that runs `$body` compiled for the widest level
/// `isa` allows: the body is one `#[inline(always)]` function, instantiated inside a
/// `#[target_feature]` function per level, so loops the compiler vectorises get that level's
/// vectors.
macro_rules! for_each_level {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(isa: $crate::packed::isa::Isa, $($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn generic($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")]
            #[allow(clippy::too_many_arguments)]
            fn avx512($($arg: $ty),*) {
                generic($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,f16c")]
            #[allow(clippy::too_many_arguments)]
            fn avx2($($arg: $ty),*) {
                generic($($arg),*)
            }

            match isa.level() {
                // SAFETY: an `Isa` only names levels the CPU has (`Isa::detect`).
                #[cfg(target_arch = "x86_64")]
                $crate::packed::isa::Level::Avx512 => {
                    #[allow(unsafe_code)]
                    unsafe { avx512($($arg),*) }
                }
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                $crate::packed::isa::Level::Avx2 => {
                    #[allow(unsafe_code)]
                    unsafe { avx2($($arg),*) }
                }
                _ => generic($($arg),*),
            }
        }
    };
}

pub(crate) use for_each_level;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_never_raises_the_level_and_bad_names_are_refused() {
        let auto = Isa::detect("auto").expect("auto");
        for (cap, most) in [("avx512", Level::Avx512), ("avx2", Level::Avx2), ("scalar", Level::Scalar)] {
            let capped = Isa::detect(cap).expect("known cap");
            assert!(capped.level() <= most && capped.level() <= auto.level(), "{cap}: {capped:?}");
            assert!(!capped.bf16() || capped.level() == Level::Avx512);
            assert!(!capped.vnni() || capped.level() == Level::Avx512);
        }
        assert_eq!(Isa::detect("scalar").expect("scalar").describe(), "scalar");
        assert!(Isa::detect("sse2").expect_err("unknown").contains("sse2"));
    }
}
