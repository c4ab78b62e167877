//! A PostgreSQL cluster of a test's own, with durable settings (`fsync` and synchronous
//! commit on), that the test can stop abruptly and start again. Its binaries come from
//! `VERKV_PG_BIN`, which `.ci/test` sets.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

/// Whether this process runs as root (whose files the server refuses to use).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0\n"))
}

/// A command running `program` of the server's binaries: as the `postgres` user when
/// root, as oneself otherwise.
fn server_command(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    }
}

/// Runs `program` of the server's binaries with `args`; panics if it fails.
fn as_postgres(bin: &Path, program: &str, args: &[&str]) -> Output {
    let output = server_command(bin, program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

impl Cluster {
    /// Creates and starts a cluster on a free loopback port.
    pub(crate) fn start() -> Cluster {
        let bin = PathBuf::from(std::env::var("VERKV_PG_BIN").unwrap_or_else(|_| {
            panic!(
                "no PostgreSQL binaries for this test: VERKV_PG_BIN is not set. Run the \
                 suite with `bash .ci/test`, which installs PostgreSQL and sets it"
            )
        }));
        let dir = std::env::temp_dir().join(format!("verkv-faults-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let chown = Command::new("chown").arg("postgres").arg(&dir).status();
        assert!(
            chown.is_ok_and(|status| status.success()),
            "cannot chown {dir:?}"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("data");
        as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let cluster = Cluster { bin, dir, port };
        cluster.resume();
        cluster
    }

    /// The cluster's URL.
    pub(crate) fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`).
    pub(crate) fn crash(&self) {
        let data = self.dir.join("data");
        as_postgres(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }

    /// Starts the server (again), durable: `fsync` and synchronous commit on.
    pub(crate) fn resume(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=on -c synchronous_commit=on",
            self.port,
            self.dir.display()
        );
        as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = server_command(&self.bin, "pg_ctl")
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
