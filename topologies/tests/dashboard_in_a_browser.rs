//! The dashboard in a real browser: Debian's chromium (headless, installed by
//! scripts/setup.sh), driven over the DevTools protocol, loads `/` of a ks-server on a tansu
//! broker while records flow, waits for live data, and checks what it rendered: the published
//! model's name, a record count that rises between polls, a records/s chart with points, the
//! instance with its partitions, and a bad record's reason among the latest errors. A
//! screenshot is saved to `$CARGO_TARGET_TMPDIR/dashboard/ks-server-dashboard.png`
//! (`target/tmp/…` of the target dir; the path is printed in the test log).
//!
//! Waits are generous and every check polls (a loaded 2-core machine may take seconds per
//! step); `KS_CHROMIUM` names another browser binary.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use base64::Engine as _;
use common::*;
use ks_topologies::topology::StoreVariant;
use serde_json::{json, Value};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// A headless chromium in its own process group, killed (the group) on drop.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    page: WebSocket<TcpStream>,
    next_id: u64,
}

impl Browser {
    fn launch() -> Browser {
        let binary = std::env::var("KS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&binary).exists(),
            "{binary} missing: run scripts/setup.sh (installs Debian's chromium)"
        );
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(&binary)
            .args([
                "--headless",
                // Tests run as root in CI, where chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-port=0",
                "--window-size=1280,1200",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        // Chromium writes the port it picked (and the browser's path) into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let mut port = None;
        assert!(
            wait_until(Duration::from_secs(60), || {
                port = std::fs::read_to_string(&port_file)
                    .ok()
                    .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u16>().ok()));
                port.is_some()
            }),
            "chromium wrote no DevToolsActivePort within 60 s"
        );
        let port = port.unwrap();
        let mut page_url = None;
        assert!(
            wait_until(Duration::from_secs(30), || {
                page_url = devtools_page(port);
                page_url.is_some()
            }),
            "chromium listed no page within 30 s"
        );
        let page_url = page_url.unwrap();
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let (page, _) = tungstenite::client(page_url.as_str(), stream).unwrap();
        Browser {
            child,
            _profile: profile,
            page,
            next_id: 0,
        }
    }

    /// Sends one DevTools command and returns its result (events in between are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({ "id": id, "method": method, "params": params });
        self.page.send(Message::text(command.to_string())).unwrap();
        loop {
            let message = self.page.read().unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(text.as_str()).unwrap();
            if answer["id"] == json!(id) {
                assert!(
                    answer["error"].is_null(),
                    "{method} failed: {}",
                    answer["error"]
                );
                return answer["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        r["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group: chromium's renderer and GPU processes go with it.
        // SAFETY: kill(2) with a negative pid signals the process group we created.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The DevTools websocket address of chromium's first page.
fn devtools_page(port: u16) -> Option<String> {
    let body = ureq::get(&format!("http://127.0.0.1:{port}/json/list"))
        .call()
        .ok()?
        .body_mut()
        .read_to_string()
        .ok()?;
    let targets: Vec<Value> = serde_json::from_str(&body).ok()?;
    targets
        .iter()
        .find(|t| t["type"] == "page")
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .map(str::to_string)
}

/// What the page shows, read from its DOM.
const READ_PAGE: &str = r##"JSON.stringify({
  status: document.getElementById("status").textContent,
  model: (document.getElementById("model-name-wine") || {}).textContent || null,
  records: Number(document.getElementById("records-total").dataset.value || -1),
  rate: document.getElementById("records-rate").textContent,
  points: Number(document.getElementById("chart-records").dataset.points),
  instances: Array.from(document.querySelectorAll("#instances tr")).map(r => r.textContent),
  errors: Array.from(document.querySelectorAll("#errors li")).map(r => r.textContent),
})"##;

fn read_page(browser: &mut Browser) -> Value {
    let text = browser.eval(READ_PAGE);
    serde_json::from_str(text.as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

/// Polls the page until `cond` holds; the last reading either way.
fn wait_for(
    browser: &mut Browser,
    timeout: Duration,
    cond: impl Fn(&Value) -> bool,
) -> (bool, Value) {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = read_page(browser);
        if cond(&seen) {
            return (true, seen);
        }
        if Instant::now() > deadline {
            return (false, seen);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("dashboard")
        .join("ks-server-dashboard.png")
}

#[test]
fn the_dashboard_shows_the_model_and_a_rising_record_count() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let server = env.start(StoreVariant::Memory, dir.path());
    let name = env.publish_model("winequalityDesisionTreeRegression.pmml");
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // Records keep flowing for the whole test: a few dozen a second.
        s.spawn(|| {
            let mut from = 0;
            while !stop.load(Ordering::Relaxed) {
                env.publish_records(from, 10);
                from += 10;
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_in_browser(&env, &server, &name);
        }));
        stop.store(true, Ordering::Relaxed);
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
}

fn check_in_browser(env: &Env, server: &ks_topologies::server::Server, model: &str) {
    let mut browser = Browser::launch();
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1280, "height": 1200, "deviceScaleFactor": 1, "mobile": false }),
    );
    let url = format!("http://{}/", server.http_addr());
    browser.call("Page.navigate", json!({ "url": url }));

    // Live data: the page polls, the model arrives, records are scored.
    let (ok, seen) = wait_for(&mut browser, Duration::from_secs(120), |v| {
        v["status"] == "live" && v["model"] == model && v["records"].as_i64() > Some(0)
    });
    assert!(
        ok,
        "the dashboard never showed model {model} with records: {seen}"
    );
    let first = seen["records"].as_i64().unwrap();
    // The count rises while the page stays open (no reload), and the chart gets points.
    let (ok, later) = wait_for(&mut browser, Duration::from_secs(90), |v| {
        v["records"].as_i64() > Some(first) && v["points"].as_i64() >= Some(5)
    });
    assert!(
        ok,
        "the record count did not rise past {first}, or no chart points: {later}"
    );
    let instances = later["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1, "{later}");
    let row = instances[0].as_str().unwrap();
    assert!(
        row.contains("(this one)") && row.contains("Running") && row.contains("-0"),
        "the instance row lacks its state or partitions: {row}"
    );
    // A record that is no wine record: its reason shows among the latest errors.
    env.publisher
        .send(&env.topics.data, None, b"\xff\xff not a wine record")
        .unwrap();
    env.publisher.flush(Duration::from_secs(10)).unwrap();
    let (ok, seen) = wait_for(&mut browser, Duration::from_secs(90), |v| {
        v["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains(&env.topics.data))
    });
    assert!(ok, "the bad record's error never showed: {seen}");
    eprintln!(
        "dashboard: model {model}, records {first} → {}, {} records/s, {} chart points, error {}",
        later["records"], later["rate"], later["points"], seen["errors"][0]
    );

    let shot = browser.call(
        "Page.captureScreenshot",
        json!({ "format": "png", "captureBeyondViewport": true }),
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &png).unwrap();
    eprintln!(
        "dashboard screenshot ({} bytes): {}",
        png.len(),
        path.display()
    );
}
