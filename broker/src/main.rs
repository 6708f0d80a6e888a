//! `ks-broker`: runs a broker in the foreground until SIGINT/SIGTERM (`--install` only installs).

use ks_broker::{Broker, BrokerKind, BrokerOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const USAGE: &str = "Usage: ks-broker [--kind tansu|kafka] [--port PORT (default 9092)] [--data-dir DIR] [--install]

Runs a Kafka-compatible broker on 127.0.0.1 until SIGINT or SIGTERM, then stops it gracefully.
  --kind tansu   in-memory tansu (default; $KS_BROKER): starts in milliseconds, keeps nothing
  --kind kafka   Apache Kafka in KRaft combined mode, log directory in --data-dir
                 (default .ks/kafka-data), heap $KS_KAFKA_HEAP_MB MB (default 512)
  --install      install the broker of --kind and print where it is";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

struct Args {
    kind: BrokerKind,
    options: BrokerOptions,
    install: bool,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let mut kind = BrokerKind::from_env().map_err(|e| e.to_string())?;
    let mut options = BrokerOptions::port(9092);
    let mut install = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--install" => install = true,
            "--kind" => kind = value("--kind")?.parse().map_err(|e| format!("{e}"))?,
            "--port" => {
                let v = value("--port")?;
                let port = v
                    .parse()
                    .map_err(|_| format!("--port needs a port number, not {v:?}"))?;
                options.port = Some(port);
            }
            "--data-dir" => options.data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(Some(Args {
        kind,
        options,
        install,
    }))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut args = match parse(&args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ks-broker: {e}");
            return ExitCode::from(2);
        }
    };
    if args.install {
        let installed = match args.kind {
            BrokerKind::Tansu => ks_broker::tansu_binary(),
            BrokerKind::Kafka => ks_broker::kafka_libs(),
        };
        return match installed {
            Ok(p) => {
                println!("{}", p.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ks-broker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.kind == BrokerKind::Kafka && args.options.data_dir.is_none() {
        args.options.data_dir = Some(PathBuf::from(".ks/kafka-data"));
    }
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let mut broker = match Broker::start(args.kind, args.options) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ks-broker: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "ks-broker: {} listening on {} (log: {})",
        broker.kind(),
        broker.bootstrap_servers(),
        broker.log_path().display()
    );
    while !STOP.load(Ordering::SeqCst) {
        if !broker.is_running() {
            eprintln!(
                "ks-broker: the broker exited; log: {}",
                broker.log_path().display()
            );
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("ks-broker: stopping");
    broker.stop();
    ExitCode::SUCCESS
}
