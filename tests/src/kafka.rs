//! Kafka peers: the tansu broker, kcat with a librdkafka new enough to talk
//! to it, and the python client libraries (tests/peers/kafka_client.py).

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::{poll, run_ok, workspace_root, Netns, Proc};

/// The tansu binary: on PATH or where `cargo install` puts it.
pub fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let installed = PathBuf::from(home).join(".cargo/bin/tansu");
    if installed.exists() {
        return installed;
    }
    let on_path = Command::new("sh")
        .args(["-c", "command -v tansu"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    on_path.unwrap_or_else(|| {
        panic!("tansu not found: scripts/install-peers.sh installs it (cargo install --locked tansu --features dynostore)")
    })
}

/// A tansu broker (in-memory storage) listening on `listen` inside `ns`,
/// telling clients to connect to `advertised`.
pub struct Tansu {
    _proc: Proc,
    pub listen: String,
    pub log: PathBuf,
    ns: Option<String>,
}

impl Tansu {
    /// A broker on the host's loopback.
    pub fn start(listen: &str, advertised: &str) -> Tansu {
        let t = Self::spawn(Command::new(tansu_bin()), listen, advertised, None);
        crate::wait_for_port(listen.parse().unwrap(), Duration::from_secs(20));
        t
    }

    pub fn start_in(ns: &Netns, listen: &str, advertised: &str) -> Tansu {
        let cmd = ns.command(tansu_bin().to_str().unwrap());
        let t = Self::spawn(cmd, listen, advertised, Some(ns.name.clone()));
        ns.wait_for_port(listen.parse().unwrap(), Duration::from_secs(20));
        t
    }

    fn spawn(mut cmd: Command, listen: &str, advertised: &str, ns: Option<String>) -> Tansu {
        let log = std::env::temp_dir().join(format!(
            "tansu-{}-{}.log",
            std::process::id(),
            listen.replace([':', '.'], "-")
        ));
        let child = cmd
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                &format!("tcp://{listen}"),
                "--advertised-listener-url",
                &format!("tcp://{advertised}"),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("spawn tansu");
        Tansu {
            _proc: Proc {
                child,
                name: "tansu".into(),
            },
            listen: listen.into(),
            log,
            ns,
        }
    }

    /// Creates a topic directly on the broker (tansu does not auto-create).
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let mut cmd = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(tansu_bin());
                c
            }
            None => Command::new(tansu_bin()),
        };
        run_ok(cmd.args([
            "topic",
            "create",
            "--broker",
            &format!("tcp://{}", self.listen),
            "--partitions",
            &partitions.to_string(),
            name,
        ]));
    }
}

/// A directory holding `librdkafka.so.1` → the librdkafka inside the
/// confluent-kafka wheel: Debian's kcat links librdkafka 2.0.2, which
/// cannot talk to tansu's ApiVersions v3; with LD_LIBRARY_PATH pointing
/// here it runs with the wheel's 2.16.
pub fn librdkafka_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("portcullis-librdkafka");
    let link = dir.join("librdkafka.so.1");
    if link.exists() {
        return dir;
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import confluent_kafka, glob, os; d = os.path.dirname(os.path.dirname(confluent_kafka.__file__)); print(glob.glob(os.path.join(d, 'confluent_kafka.libs', 'librdkafka*.so*'))[0])",
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "confluent-kafka is not installed (pip install confluent-kafka): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lib = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!("link-{}", std::process::id()));
    std::os::unix::fs::symlink(&lib, &tmp).unwrap();
    std::fs::rename(&tmp, &link).unwrap();
    dir
}

/// kcat, run inside `ns` with the wheel's librdkafka.
pub fn kcat_in(ns: &Netns, args: &[&str], stdin: &str) -> (i32, String) {
    let (code, out, err) = run_kcat(ns.command("kcat"), args, stdin.as_bytes());
    (code, out + &err)
}

/// kcat on the host, with the wheel's librdkafka: (exit code, stdout,
/// stderr).
pub fn kcat(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    run_kcat(Command::new("kcat"), args, stdin)
}

/// Feeds `stdin` and collects the output concurrently (either can be
/// megabytes); killed after 40 s.
fn run_kcat(mut cmd: Command, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    use std::io::{Read, Write};
    let mut child = cmd
        .args(args)
        .env("LD_LIBRARY_PATH", librdkafka_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kcat");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    // Polled rather than waited on, so that the child is killed by its
    // handle (never by a pid that may have been reused) when it overstays.
    let exited = poll(Duration::from_secs(40), || {
        child.try_wait().expect("wait for kcat")
    });
    let status = exited.unwrap_or_else(|| {
        let _ = child.kill();
        child.wait().expect("wait for killed kcat")
    });
    let _ = writer.join();
    (
        status.code().unwrap_or(-1),
        stdout.join().unwrap(),
        stderr.join().unwrap(),
    )
}

/// tests/peers/kafka_client.py inside `ns`: (exit code, output).
pub fn kafka_client_in(ns: &Netns, args: &[&str]) -> (i32, String) {
    let script = workspace_root().join("tests/peers/kafka_client.py");
    let out = ns
        .command("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("run kafka_client.py");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

// ---- Raw Kafka frames, for requests no client library sends as wanted ----

/// One request frame: length, header (client ID `raw`), body.
pub fn frame(key: ApiKey, version: i16, correlation: i32, body: &RequestKind) -> Bytes {
    let mut b = BytesMut::new();
    b.extend_from_slice(&[0; 4]);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("raw")))
        .encode(&mut b, key.request_header_version(version))
        .unwrap();
    body.encode(&mut b, version).unwrap();
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

/// The next response: its correlation ID and body, decoded unless it is a
/// Fetch (tansu 0.6 writes a tagged field Fetch v12 does not define, which
/// kafka-protocol refuses; the proxy passes responses through untouched).
pub fn read_response(s: &mut TcpStream, key: ApiKey, version: i16) -> (i32, Option<ResponseKind>) {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("response length");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    let mut buf = Bytes::from(body);
    let h = ResponseHeader::decode(&mut buf, key.response_header_version(version)).unwrap();
    if key == ApiKey::Fetch {
        return (h.correlation_id, None);
    }
    let r = ResponseKind::decode(key, &mut buf, version).unwrap();
    assert!(!buf.has_remaining());
    (h.correlation_id, Some(r))
}
