//! Entry point of `aki-rest`; the server itself is not built yet, so it says so and fails.

fn main() -> std::process::ExitCode {
    eprintln!(
        "aki-rest: this server is not implemented yet; embed from the command line with \
         `cargo run --release -p aki-backend-candle --example embed -- \"some text\"`"
    );
    std::process::ExitCode::from(2)
}
