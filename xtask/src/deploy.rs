//! Deployment: `cargo xtask image [--test]` builds `deploy/Dockerfile` with podman on a Debian
//! base made here (no image registry is reachable) and, with `--test`, runs the image and checks
//! its embeddings against the reference fixtures; `check_manifests` (part of `cargo xtask test`)
//! validates the Kubernetes manifests against a pinned Kubernetes version and lints `deploy/`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::server::{free_port, post_json};

/// The Kubernetes version the manifests are validated against.
const KUBERNETES: &str = "1.33.0";
/// The validation tools, pinned.
const TOOLS: [&str; 2] = ["kubernetes-validate==1.37.0", "yamllint==1.38.0"];
/// The base image `image` makes from Debian's packages.
const BASE: &str = "localhost/debian:bookworm-base";
/// The image `image` builds.
const IMAGE: &str = "localhost/aki-embed:latest";

/// Every manifest under `deploy/kubernetes` validated (strictly: unknown fields fail) against
/// Kubernetes [`KUBERNETES`], and every YAML file under `deploy/` linted.
pub fn check_manifests(root: &Path) -> Result<()> {
    let python =
        crate::python_venv(&root.join("target").join("deploy-venv"), &TOOLS, "import kubernetes_validate, yamllint")?;
    let bin = python.parent().context("venv bin")?.to_path_buf();
    let mut manifests = Vec::new();
    collect_yaml(&root.join("deploy/kubernetes"), &mut manifests)?;
    if manifests.is_empty() {
        bail!("no manifests under deploy/kubernetes");
    }
    crate::run(
        Command::new(bin.join("kubernetes-validate"))
            .args(["--strict", "--quiet", "--kubernetes-version", KUBERNETES])
            .args(&manifests),
    )?;
    crate::run(Command::new(bin.join("yamllint")).arg("-c").arg(root.join(".yamllint.yaml")).arg(root.join("deploy")))?;
    println!("deploy: {} manifests valid for Kubernetes {KUBERNETES}; deploy/ lints clean", manifests.len());
    Ok(())
}

fn collect_yaml(dir: &Path, found: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_yaml(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
    found.sort();
    Ok(())
}

/// Installs Debian packages that are missing (as root, with apt-get).
pub fn ensure_packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg")
                .args(["-s", p])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("installing {} with apt-get", missing.join(" "));
    let install = |update: bool| -> bool {
        if update {
            let _ = Command::new("apt-get").args(["update", "-q"]).status();
        }
        Command::new("apt-get").args(["install", "-y", "-q"]).args(&missing).status().is_ok_and(|s| s.success())
    };
    if !install(false) && !install(true) {
        bail!("could not install {} (Debian/Ubuntu: apt-get install {})", missing.join(" "), missing.join(" "));
    }
    Ok(())
}

/// `cargo xtask image [--test]`.
pub fn image(root: &Path, test: bool) -> Result<()> {
    let started = Instant::now();
    ensure_packages(&["podman", "buildah", "debootstrap"])?;
    base_image(root)?;
    crate::run(crate::cargo().args(["build", "--release", "-p", "aki-rest", "-p", "aki-grpc"]))?;
    // The release profile keeps line tables for profiling; the image takes stripped copies.
    let bin = root.join("target/image/bin");
    std::fs::create_dir_all(&bin)?;
    for name in ["aki-rest", "aki-grpc"] {
        crate::run(Command::new("strip").arg("-o").arg(bin.join(name)).arg(root.join("target/release").join(name)))?;
    }
    crate::run(
        Command::new("podman")
            .args(["build", "--isolation", "chroot", "--format", "docker", "-f", "deploy/Dockerfile"])
            .args(["--build-arg", &format!("BASE={BASE}"), "--build-arg", "BINARIES=prebuilt"])
            .args(["--build-arg", "PREBUILT=target/image/bin"])
            .args(["--build-arg", "MODEL=bake", "-t", IMAGE])
            // This machine's CA bundle, for pip behind a TLS-intercepting proxy.
            .args(["--secret", "id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt", "."])
            .current_dir(root),
    )?;
    let size = output(Command::new("podman").args(["image", "inspect", "--format", "{{.Size}}", IMAGE]))?;
    let mib = size.trim().parse::<f64>().unwrap_or(f64::NAN) / (1 << 20) as f64;
    println!("built {IMAGE} ({mib:.0} MiB) in {:.0} s", started.elapsed().as_secs_f64());
    if test {
        test_image(root)?;
    }
    Ok(())
}

/// `localhost/debian:bookworm-base`, from `debootstrap --variant=minbase`, made once.
fn base_image(root: &Path) -> Result<()> {
    if Command::new("podman").args(["image", "exists", BASE]).status().is_ok_and(|s| s.success()) {
        return Ok(());
    }
    let rootfs = root.join("target").join("image").join("rootfs");
    if !rootfs.join("bin").exists() {
        std::fs::create_dir_all(&rootfs)?;
        println!("making a Debian bookworm base with debootstrap in {}", rootfs.display());
        crate::run(Command::new("debootstrap").args(["--variant=minbase", "bookworm"]).arg(&rootfs))?;
    }
    let tar = Command::new("tar").arg("-C").arg(&rootfs).args(["-c", "."]).stdout(Stdio::piped()).spawn()?;
    let status = Command::new("podman")
        .args(["import", "-", BASE])
        .stdin(tar.stdout.context("tar output")?)
        .status()
        .context("podman import")?;
    if !status.success() {
        bail!("podman import failed: {status}");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `aki-rest` from the image (buildah, chroot isolation, host network: `podman run` needs
/// cgroups and rlimits this sandbox does not give), embeds the reference fixtures through it,
/// and compares them with the reference.
fn test_image(root: &Path) -> Result<()> {
    let container = output(Command::new("buildah").args(["from", IMAGE]))?.trim().to_string();
    let port = free_port()?;
    let mut server = Command::new("buildah")
        .args(["run", "--isolation", "chroot", "--network", "host", &container, "--", "aki-rest", "--port"])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .context("buildah run")?;
    let checked = check_fixtures(root, port, &mut server);
    // SIGTERM to the server itself (buildah runs it by its path in the image; buildah's own
    // command line names it without), which must then drain and exit 0.
    let _ = Command::new("pkill").args(["-TERM", "-f", &format!("^/usr/local/bin/aki-rest --port {port}$")]).status();
    let stopped = server.wait();
    let _ = Command::new("buildah").args(["rm", &container]).status();
    checked?;
    let status = stopped?;
    if !status.success() {
        bail!("the server in the image did not stop cleanly on SIGTERM: {status}");
    }
    println!("image: the server stopped cleanly on SIGTERM");
    Ok(())
}

fn check_fixtures(root: &Path, port: u16, server: &mut Child) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(120);
    while crate::server::get(port, "/ready").map_or(true, |r| !r.starts_with("HTTP/1.1 200")) {
        if server.try_wait()?.is_some() || Instant::now() > until {
            bail!("the server in the image did not become ready");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let fixtures: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("crates/backend-candle/tests/fixtures/reference.json"),
    )?)?;
    let items = fixtures["items"].as_array().context("fixture items")?;
    let texts: Vec<&str> = items.iter().filter_map(|i| i["text"].as_str()).collect();
    let (status, body) = post_json(port, "/api/v1/embed", &serde_json::json!({"texts": texts}).to_string())?;
    if status != 200 {
        bail!("the image answered {status}: {body}");
    }
    let reply: serde_json::Value = serde_json::from_str(&body)?;
    let vectors = reply["embeddings"].as_array().context("embeddings")?;
    let floats = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).collect()).unwrap_or_default()
    };
    let worst = items
        .iter()
        .zip(vectors)
        .map(|(item, vector)| cosine(&floats(&item["embedding"]), &floats(vector)))
        .fold(1.0f64, f64::min);
    if vectors.len() != items.len() || worst < 0.9999 {
        bail!("the image's vectors are off the reference: {} vectors, worst cosine {worst}", vectors.len());
    }
    println!("image: {} fixtures embedded through the running image, worst cosine {worst:.6}", items.len());
    Ok(())
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}
