//! rsoa's automation: `cargo xtask <task>`.
//!
//! - `ci`: everything CI checks: formatting, clippy with warnings as errors, the whole test suite, the docs with
//!   warnings as errors, and `cargo deny check` when cargo-deny is installed.
//! - `bench <codec|local|redis|pysoa>`: the benchmarks, in release mode, each reporting rsoa beside a baseline measured in the
//!   same run.
//! - `fuzz [seconds]`: a bounded coverage-guided run of the decoder fuzz targets (needs `cargo install cargo-fuzz`).
//! - `interop`: the interoperability cases against the real Python PySOA 1.4.9, both directions, over a Redis this
//!   task starts (it sets up a Python virtualenv under `target/interop-venv` the first time).

use std::process::ExitCode;

use xshell::{cmd, Shell};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(args.get(1).map(String::as_str)),
        Some("fuzz") => fuzz(args.get(1).map(String::as_str)),
        Some("interop") => interop(),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | interop | bench <codec|local|redis> | fuzz [seconds]>"
            );
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

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits (up to a deadline) until `ready` says so.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) -> Result {
    let start = std::time::Instant::now();
    while !ready() {
        if start.elapsed() > std::time::Duration::from_secs(60) {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}

fn redis_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut reply = [0_u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// Starts a program and waits for it to print `READY` on its standard output.
fn start_ready(mut command: std::process::Command, what: &str) -> Result<Child> {
    use std::io::BufRead;
    let mut child = Child(command.stdout(std::process::Stdio::piped()).spawn()?);
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if line.trim() == "READY" {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .map_err(|_| format!("{what} did not become ready"))?;
    Ok(child)
}

fn interop() -> Result {
    let sh = shell()?;
    let root = sh.current_dir();
    let venv = root.join("target/interop-venv");
    let python = venv.join("bin/python");
    let ready = cmd!(sh, "{python} -c 'import pysoa, msgpack, currint'")
        .quiet()
        .ignore_stderr()
        .run()
        .is_ok();
    if !ready {
        step("creating the PySOA 1.4.9 virtualenv under target/interop-venv");
        cmd!(sh, "python3 -m venv {venv}").run()?;
        cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check -r interop/python/requirements.txt").run()?;
    }
    cmd!(sh, "cargo build --quiet --locked -p interop").run()?;
    let port = free_port()?;
    let _redis = Child(
        std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()?,
    );
    wait_until("redis-server", || redis_answers(port))?;
    let target = root.join("target/debug");
    let mut rust_server = std::process::Command::new(target.join("interop-server"));
    rust_server.arg(port.to_string());
    let _rust_server = start_ready(rust_server, "the rsoa interop server")?;
    let mut python_server = std::process::Command::new(&python);
    python_server
        .arg(root.join("interop/python/service.py"))
        .args(["--port", &port.to_string()]);
    let _python_server = start_ready(python_server, "the PySOA interop server")?;

    step("rsoa client -> PySOA server");
    let port_text = port.to_string();
    let rust_cases = cmd!(sh, "{target}/interop-client {port_text} pyinterop")
        .ignore_status()
        .read()?;
    println!("{rust_cases}");
    step("PySOA client -> rsoa server");
    let python_cases = cmd!(
        sh,
        "{python} interop/python/client_cases.py --port {port_text} --service rsinterop --python-service pyinterop"
    )
    .ignore_status()
    .read()?;
    println!("{python_cases}");
    let count = |prefix: &str| {
        rust_cases
            .lines()
            .chain(python_cases.lines())
            .filter(|l| l.starts_with(prefix))
            .count()
    };
    let (passed, failed) = (count("PASS "), count("FAIL "));
    println!("interop: {passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        return Err(format!("{failed} interop cases failed").into());
    }
    Ok(())
}
