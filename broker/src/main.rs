//! `ks-broker`: runs the local tansu broker in the foreground (`--install` only installs it).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut port: u16 = 9092;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--install" => {
                return match ks_broker::tansu_binary() {
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
            "--port" => {
                let Some(p) = args.get(i + 1).and_then(|v| v.parse().ok()) else {
                    eprintln!("ks-broker: --port needs a port number");
                    return ExitCode::from(2);
                };
                port = p;
                i += 1;
            }
            "-h" | "--help" => {
                println!("Usage: ks-broker [--port PORT (default 9092)] [--install]\n\nRuns the local Kafka-compatible broker (tansu, in-memory storage) on 127.0.0.1 until killed.");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("ks-broker: unknown argument {other:?} (see --help)");
                return ExitCode::from(2);
            }
        }
        i += 1;
    }
    match ks_broker::Broker::start(Some(port)) {
        Ok(broker) => {
            println!("broker listening on {}", broker.bootstrap_servers());
            match broker.wait() {
                Ok(status) if status.success() => ExitCode::SUCCESS,
                Ok(status) => {
                    eprintln!("ks-broker: broker exited with {status}");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("ks-broker: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("ks-broker: {e}");
            ExitCode::FAILURE
        }
    }
}
