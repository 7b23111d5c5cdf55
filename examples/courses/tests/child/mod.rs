//! The courses binary as a child process on a given store: started and waited for until
//! `/health` answers, stopped with SIGKILL or SIGTERM. On the embedded store the process
//! never sees `FAIRWAY_FDB_CLUSTER_FILE` (the app would read it and run on the cluster).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::store::TestStore;

/// The courses binary with the flags that put it on `store`.
pub fn command(store: &TestStore) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_courses"));
    match store {
        TestStore::Embedded { data_dir, namespace } => {
            command.arg("--data-dir").arg(data_dir).args(["--namespace", namespace]);
            command.env_remove("FAIRWAY_FDB_CLUSTER_FILE");
        }
        #[cfg(feature = "fdb")]
        TestStore::Fdb { cluster_file, namespace } => {
            command.args(["--fdb-cluster-file", cluster_file, "--namespace", namespace]);
        }
    }
    command
}

/// One courses process, serving on a free loopback port; SIGKILLed when dropped.
pub struct Child {
    process: Mutex<Option<std::process::Child>>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Child {
    /// Starts the binary on `store`, its log (`RUST_LOG=warn`) appended to `log_path`;
    /// returns once `/health` answers 200 (fails the test after 60 s).
    pub async fn start(store: &TestStore, log_path: &Path) -> Child {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log_path).unwrap();
        let process = command(store)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let child = Child { process: Mutex::new(Some(process)), base: format!("http://127.0.0.1:{port}") };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/health", child.base)).await
                && response.status() == 200
            {
                return child;
            }
            assert!(tokio::time::Instant::now() < deadline, "the app did not start; see {}", log_path.display());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL (nothing if it was stopped already).
    pub fn kill(&self) {
        if let Some(mut process) = self.process.lock().unwrap().take() {
            process.kill().unwrap();
            process.wait().unwrap();
        }
    }

    /// SIGTERM: a graceful stop; returns whether the process exited with success.
    pub fn terminate(&self) -> bool {
        let Some(mut process) = self.process.lock().unwrap().take() else { return false };
        let sent = Command::new("kill").args(["-TERM", &process.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -TERM runs");
        process.wait().unwrap().success()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}
