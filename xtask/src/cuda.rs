//! `cargo xtask build-cuda [--compute-cap N]`: builds `aki-rest` and `aki-grpc` with
//! `--features cuda` on a machine without a GPU, driver or system CUDA: the CUDA 13.0 toolkit
//! from PyPI wheels (pinned: newer nvcc emits PTX the 580 driver cannot load) unpacked under
//! `target/cuda/`, unversioned library links, a link-time `libcuda.so` stub (the driver brings
//! the real one at run time), then cargo with its own target directory so the CPU build is left
//! alone. Idempotent: what is already there is kept.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The toolkit wheels, pinned to CUDA 13.0 (the README's "GPU" section says why).
const WHEELS: [&str; 8] = [
    "nvidia-cuda-nvcc==13.0.88",
    "nvidia-cuda-crt==13.0.88",
    "nvidia-nvvm==13.0.88",
    "nvidia-cuda-runtime==13.0.96",
    "nvidia-cuda-cccl==13.0.85",
    "nvidia-cuda-nvrtc==13.0.88",
    "nvidia-curand==10.4.0.35",
    "nvidia-cublas==13.0.2.14",
];

/// Installs the toolkit if needed and builds both servers; prints where the binaries are.
pub fn run(root: &Path, compute_cap: &str) -> Result<()> {
    let started = std::time::Instant::now();
    let cuda = root.join("target").join("cuda");
    let home = toolkit(&cuda)?;
    let target_dir = cuda.join("build");
    let path = format!("{}:{}", home.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let libraries = format!("{}:{}", home.join("lib").display(), home.join("lib").join("stubs").display());
    crate::run(
        crate::cargo()
            .args(["build", "--release", "-p", "aki-rest", "-p", "aki-grpc", "--features"])
            .arg("aki-rest/cuda,aki-grpc/cuda")
            .arg("--target-dir")
            .arg(&target_dir)
            .env("CUDA_HOME", &home)
            .env("CUDA_PATH", &home)
            .env("CUDA_COMPUTE_CAP", compute_cap)
            .env("PATH", path)
            .env("LIBRARY_PATH", &libraries)
            .env("RUSTFLAGS", format!("-L {} -L {}", home.join("lib").display(), home.join("lib/stubs").display())),
    )?;
    let release = target_dir.join("release");
    println!(
        "built {} and {} for compute capability {compute_cap} in {:.0} s; they need libcuda.so.1 (the driver), \
         libcublas.so.13, libcublasLt.so.13, libcurand.so.10 and libcudart.so.13 at run time (in {})",
        release.join("aki-rest").display(),
        release.join("aki-grpc").display(),
        started.elapsed().as_secs_f64(),
        home.join("lib").display()
    );
    Ok(())
}

/// The unpacked toolkit under `cuda/root`, downloaded and prepared once; returns `CUDA_HOME`.
fn toolkit(cuda: &Path) -> Result<PathBuf> {
    let (wheels, root) = (cuda.join("wheels"), cuda.join("root"));
    let home = root.join("nvidia").join("cu13");
    if !home.join("bin").join("nvcc").is_file() {
        std::fs::create_dir_all(&wheels)?;
        println!("downloading the CUDA 13.0 toolkit wheels from PyPI into {}", wheels.display());
        crate::run(
            Command::new("python3")
                .args(["-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check", "--dest"])
                .arg(&wheels)
                .args(WHEELS),
        )?;
        for wheel in std::fs::read_dir(&wheels)? {
            let wheel = wheel?.path();
            if wheel.extension().is_some_and(|e| e == "whl") {
                crate::run(Command::new("python3").args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&root))?;
            }
        }
        if !home.join("bin").join("nvcc").is_file() {
            bail!("the wheels did not unpack into {}", home.display());
        }
        make_executable(&home)?;
        link_unversioned(&home.join("lib"))?;
    }
    // Made anew each time (one compiler call), so a stub from an older recipe cannot linger.
    libcuda_stub(&home)?;
    Ok(home)
}

/// `zipfile` drops the executable bits: give them back to the tools.
fn make_executable(home: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for dir in [home.join("bin"), home.join("nvvm").join("bin")] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry?.path();
            if path.is_file() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            }
        }
    }
    Ok(())
}

/// `libfoo.so` next to every `libfoo.so.N` (the wheels ship only versioned names).
fn link_unversioned(lib: &Path) -> Result<()> {
    for entry in std::fs::read_dir(lib)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some((stem, _)) = name.split_once(".so.") {
            let link = lib.join(format!("{stem}.so"));
            if !link.exists() {
                std::os::unix::fs::symlink(&name, &link).with_context(|| format!("linking {}", link.display()))?;
            }
        }
    }
    Ok(())
}

/// A `libcuda.so` (soname `libcuda.so.1`) for the linker only (no wheel ships the driver
/// library): one function for every driver-API name in `cuda.h` and `cudaProfiler.h`, versioned
/// names included (`cuMemAlloc` is a macro for `cuMemAlloc_v2`, which cudarc links against).
fn libcuda_stub(home: &Path) -> Result<()> {
    let include = home.join("include");
    let mut header = std::fs::read_to_string(include.join("cuda.h")).context("reading cuda.h")?;
    header.push_str(&std::fs::read_to_string(include.join("cudaProfiler.h")).unwrap_or_default());
    let mut names: Vec<&str> = header
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| {
            word.strip_prefix("cu").and_then(|rest| rest.chars().next()).is_some_and(|c| c.is_ascii_uppercase())
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let stubs = home.join("lib").join("stubs");
    std::fs::create_dir_all(&stubs)?;
    let source = stubs.join("libcuda_stub.c");
    let body: String = names.iter().map(|name| format!("int {name}(void) {{ return 999; }}\n")).collect();
    std::fs::write(&source, body)?;
    crate::run(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o"])
            .arg(stubs.join("libcuda.so"))
            .arg(&source),
    )?;
    println!("wrote a link-time libcuda.so stub with {} functions", names.len());
    Ok(())
}
