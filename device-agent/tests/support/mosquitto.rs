//! mosquitto 2 with mTLS and a per-client ACL on a free 127.0.0.1 port, and finding its binary.

use super::*;

/// The mosquitto binary, or `None` (and a message saying why the test is skipped).
pub fn mosquitto_binary(test: &str) -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("mosquitto"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .chain([
            PathBuf::from("/usr/sbin/mosquitto"),
            PathBuf::from("/usr/local/sbin/mosquitto"),
        ]);
    for candidate in candidates {
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    // CI installs mosquitto (`make setup`); there a missing broker is a failure, not a skip.
    assert!(
        std::env::var_os("REQUIRE_TEST_TOOLS").is_none(),
        "{test}: REQUIRE_TEST_TOOLS is set but the `mosquitto` binary is not installed"
    );
    report_skipped(
        test,
        "mosquitto not found (apt-get install -y mosquitto; REQUIRE_TEST_TOOLS=1 makes this a failure)",
    );
    None
}

/// Say on the real stderr that `test` did not run: libtest captures `eprintln!` of passing tests, and a
/// test that returns early is reported `ok`, so without this a missing tool would look like a pass.
pub fn report_skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {why} [{test}]");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// mosquitto 2 with mTLS (`use_identity_as_username`: the certificate CN is the user) and an ACL that
/// scopes each device to its own topics, like the AWS device policy (architecture section 3).
pub struct Mosquitto {
    binary: PathBuf,
    pub port: u16,
    conf: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Mosquitto {
    pub fn start(binary: PathBuf, pki: &Pki, dir: &Path) -> Self {
        let port = free_port();
        let data = dir.join("mosquitto");
        std::fs::create_dir_all(&data).unwrap();
        let acl = data.join("acl");
        std::fs::write(
            &acl,
            "pattern write data/%u/#\n\
             pattern write device/%u/lwt\n\
             pattern write $aws/things/%u/shadow/get\n\
             pattern write $aws/things/%u/shadow/update\n\
             pattern read $aws/things/%u/shadow/get/#\n\
             pattern read $aws/things/%u/shadow/update/#\n\
             \n\
             user observer\n\
             topic read data/#\n\
             topic read device/#\n\
             topic readwrite $aws/things/#\n",
        )
        .unwrap();
        let conf = data.join("mosquitto.conf");
        // Started as root, mosquitto drops to user `mosquitto`, which cannot read our private temp dir.
        let running_as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.trim_ascii() == b"0")
            .unwrap_or(false);
        let user = if running_as_root { "user root\n" } else { "" };
        std::fs::write(
            &conf,
            format!(
                "{user}per_listener_settings false\n\
                 persistence true\n\
                 persistence_location {data}/\n\
                 log_dest stdout\n\
                 log_type all\n\
                 allow_anonymous false\n\
                 acl_file {acl}\n\
                 listener {port} 127.0.0.1\n\
                 cafile {ca}\n\
                 certfile {cert}\n\
                 keyfile {key}\n\
                 require_certificate true\n\
                 use_identity_as_username true\n",
                data = data.display(),
                acl = acl.display(),
                ca = pki.ca_cert.display(),
                cert = pki.server.cert.display(),
                key = pki.server.key.display(),
            ),
        )
        .unwrap();
        let mut broker = Self {
            binary,
            port,
            conf,
            log: data.join("mosquitto.log"),
            child: None,
        };
        broker.resume();
        broker
    }

    /// (Re)start on the same port and persistence file.
    pub fn resume(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop (SIGTERM, so it saves its persistence file) and wait.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            let _ = child.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid} failed");
}
