//! Home of aki-embed's criterion benchmarks and their corpora; the suites are added by the
//! benchmark issue and run with `cargo xtask bench`.
