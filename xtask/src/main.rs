//! rsoa's automation: `cargo xtask <task>`.
//!
//! - `ci`: everything CI checks: formatting, clippy with warnings as errors, the whole test suite, the docs with
//!   warnings as errors, and `cargo deny check` when cargo-deny is installed.
//! - `bench <codec|local|redis>`: the benchmarks, in release mode, each reporting rsoa beside a baseline measured in the
//!   same run.
//! - `fuzz [seconds]`: a bounded coverage-guided run of the decoder fuzz targets (needs `cargo install cargo-fuzz`).

use std::process::ExitCode;

use xshell::{cmd, Shell};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(args.get(1).map(String::as_str)),
        Some("fuzz") => fuzz(args.get(1).map(String::as_str)),
        _ => {
            eprintln!("usage: cargo xtask <ci | bench <codec|local|redis> | fuzz [seconds]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn shell() -> Result<Shell> {
    let sh = Shell::new()?;
    // Run from the workspace root whatever the caller's directory.
    sh.change_dir(env!("CARGO_MANIFEST_DIR"));
    sh.change_dir("..");
    Ok(sh)
}

fn step(name: &str) {
    println!("\n==> {name}");
}

fn ci() -> Result {
    let sh = shell()?;
    step("cargo fmt --check");
    cmd!(sh, "cargo fmt --all -- --check").run()?;
    step("cargo clippy -D warnings");
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --locked -- -D warnings"
    )
    .run()?;
    step("cargo test");
    cmd!(sh, "cargo test --workspace --all-targets --locked").run()?;
    cmd!(sh, "cargo test --workspace --doc --locked").run()?;
    step("cargo doc -D warnings");
    cmd!(sh, "cargo doc --workspace --no-deps --locked")
        .env("RUSTDOCFLAGS", "-D warnings")
        .run()?;
    if cmd!(sh, "cargo deny --version")
        .quiet()
        .ignore_stderr()
        .read()
        .is_ok()
    {
        step("cargo deny check");
        cmd!(sh, "cargo deny check bans licenses sources").run()?;
        // Advisories are reported but do not fail the build; they change without any change of ours.
        let _ = cmd!(sh, "cargo deny check advisories").run();
    } else {
        println!("\n(cargo-deny is not installed; skipping `cargo deny check`)");
    }
    Ok(())
}

fn bench(which: Option<&str>) -> Result {
    let sh = shell()?;
    match which {
        Some("codec") => cmd!(sh, "cargo bench --locked -p rsoa-codec --bench codec").run()?,
        Some("local") => cmd!(
            sh,
            "cargo bench --locked -p rsoa-transport-local --bench local"
        )
        .run()?,
        Some("redis") => cmd!(
            sh,
            "cargo bench --locked -p rsoa-transport-redis --bench redis"
        )
        .run()?,
        other => {
            return Err(format!("unknown benchmark {other:?}; choose codec, local or redis").into())
        }
    }
    Ok(())
}

fn fuzz(seconds: Option<&str>) -> Result {
    let sh = shell()?;
    let seconds = seconds.unwrap_or("60");
    if cmd!(sh, "cargo fuzz --version")
        .quiet()
        .ignore_stderr()
        .read()
        .is_err()
    {
        return Err("cargo-fuzz is not installed: run `cargo install cargo-fuzz --locked`".into());
    }
    sh.change_dir("fuzz");
    for target in ["msgpack_decode", "json_decode"] {
        step(&format!("fuzz {target} for {seconds} s"));
        // libFuzzer needs nightly-only flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
        cmd!(sh, "cargo fuzz run {target} -- -max_total_time={seconds}")
            .env("RUSTC_BOOTSTRAP", "1")
            .run()?;
    }
    Ok(())
}
