//! `ks-client`: publishes wine records and models, reads topics back.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use ks_client::catalog::{self, ModelFile};
use ks_client::decode::{self, Format};
use ks_client::kafka::{self, Publisher};
use ks_client::provide::{self, ProvideOptions};
use ks_proto::{Message, ModelDescriptor, ModelType};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "ks-client",
    version,
    about = "Publishes wine records and models to Kafka and reads topics back"
)]
struct Cli {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        global = true,
        env = "KS_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    brokers: String,
    /// A properties file: `bootstrap.servers` and client properties passed through to
    /// librdkafka (security.protocol, sasl.*, ssl.*; consumer.*/producer.*/admin.* prefixed
    /// for one kind). --brokers and KS_BROKERS override the file; an unknown key is an error.
    #[arg(long, global = true, env = "KS_CLIENT_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Reads `--config` (if given): sets `bootstrap.servers` unless --brokers or KS_BROKERS gave
/// it, and the client properties of every client this process makes.
fn load_config(cli: &mut Cli, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    let Some(path) = &cli.config else {
        return Ok(());
    };
    let settings = ks_kafka::Settings::load(path, &["bootstrap.servers"])?;
    let given = matches!(
        matches.value_source("brokers"),
        Some(clap::parser::ValueSource::CommandLine) | Some(clap::parser::ValueSource::EnvVariable)
    );
    if !given {
        if let Some(b) = settings.get::<String>("bootstrap.servers")? {
            cli.brokers = b;
        }
    }
    ks_kafka::set_process_properties(settings.clients);
    Ok(())
}

#[derive(Subcommand)]
enum Command {
    /// Create the topics if missing, then publish wine records and, in turn, every model in the
    /// data directory. Starts an embedded broker if none answers at --brokers (stopped on exit).
    Provide(ProvideArgs),
    /// Print a topic's messages, decoded, one JSON object a line, with partition and offset.
    Read(ReadArgs),
    /// Publish one model now (`--role challenger`: scored in shadow beside the serving one).
    PublishModel(PublishModelArgs),
    /// Every server instance serves the data type's previous model version again.
    Rollback(ControlArgs),
    /// Every server instance serves the data type's challenger from now on.
    Promote(PromoteArgs),
}

#[derive(clap::Args)]
struct ControlArgs {
    #[arg(long, default_value = "wine")]
    data_type: String,
    #[arg(long, env = "KS_MODELS_TOPIC", default_value = "models_models")]
    models_topic: String,
}

#[derive(clap::Args)]
struct PromoteArgs {
    #[command(flatten)]
    control: ControlArgs,
    /// Promote only if the challenger is this version (`<partition>:<offset>`, as
    /// /models/{dataType}/versions lists it).
    #[arg(long)]
    version: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RoleArg {
    /// Serves (the default).
    Champion,
    /// Scored in shadow beside the serving model.
    Challenger,
}

#[derive(clap::Args)]
struct ProvideArgs {
    #[arg(long, env = "KS_DATA_TOPIC", default_value = "models_data")]
    data_topic: String,
    #[arg(long, env = "KS_MODELS_TOPIC", default_value = "models_models")]
    models_topic: String,
    #[arg(long, default_value_t = 4)]
    data_partitions: i32,
    #[arg(long, default_value_t = 1)]
    models_partitions: i32,
    /// Milliseconds between records (0 = as fast as possible).
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Stop after this many records (default: replay the file forever).
    #[arg(long)]
    count: Option<u64>,
    /// Seconds between models (0 = every model once, at once).
    #[arg(long, default_value_t = 60)]
    model_interval_s: u64,
    /// Where the wine CSV and the models are.
    #[arg(long, env = "KS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[arg(long, default_value = "wine")]
    data_type: String,
    /// Print progress every this many records (default: 10, or 10000 when --interval-ms is 0).
    #[arg(long)]
    progress_every: Option<u64>,
    /// Fail instead of starting an embedded broker when none answers.
    #[arg(long)]
    no_embedded_broker: bool,
}

#[derive(clap::Args)]
struct ReadArgs {
    #[arg(long)]
    topic: String,
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
    /// Stop once every partition has been read to its end.
    #[arg(long)]
    until_eof: bool,
    /// Stop after this many messages.
    #[arg(long)]
    max: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = u64::MAX / 1000)]
    timeout_s: u64,
}

#[derive(clap::Args)]
struct PublishModelArgs {
    file: PathBuf,
    /// Model type: pmml, tensorflow or onnx (default: from the extension, .pmml, .pb or .onnx).
    #[arg(long = "type", value_parser = parse_model_type)]
    model_type: Option<ModelType>,
    /// Model name (default: the file stem).
    #[arg(long)]
    name: Option<String>,
    #[arg(long, default_value = "")]
    description: String,
    #[arg(long, default_value = "wine")]
    data_type: String,
    /// Send the file's absolute path (ModelDescriptor.location) instead of its bytes.
    #[arg(long)]
    by_reference: bool,
    /// champion (serves) or challenger (scored in shadow; header ks.role=challenger).
    #[arg(long, value_enum, default_value_t = RoleArg::Champion)]
    role: RoleArg,
    #[arg(long, env = "KS_MODELS_TOPIC", default_value = "models_models")]
    models_topic: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    Wine,
    Model,
    Text,
    Raw,
}

fn parse_model_type(s: &str) -> Result<ModelType, String> {
    s.parse::<ModelType>().map_err(|e| e.to_string())
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGINT/SIGTERM ask for a clean stop, so queued messages are flushed, not lost.
fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

fn stopped() -> bool {
    STOP.load(Ordering::SeqCst)
}

fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Err(e) = load_config(&mut cli, &matches) {
        eprintln!("ks-client: {}", one_line(&e));
        return ExitCode::FAILURE;
    }
    install_signal_handlers();
    let runtime = match tokio_runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ks-client: {}", one_line(&e));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ks-client: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping a cause its parent already quotes.
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Provide(args) => provide_cmd(&cli.brokers, args).await,
        Command::Read(args) => read_cmd(&cli.brokers, args),
        Command::PublishModel(args) => publish_model_cmd(&cli.brokers, args).await,
        Command::Rollback(args) => {
            control_cmd(&cli.brokers, args, ks_proto::control::ROLLBACK, None).await
        }
        Command::Promote(args) => {
            control_cmd(
                &cli.brokers,
                args.control,
                ks_proto::control::PROMOTE,
                args.version,
            )
            .await
        }
    }
}

/// `ks-client rollback` and `ks-client promote`: a control message on the model topic, read by
/// every server instance.
async fn control_cmd(
    brokers: &str,
    args: ControlArgs,
    action: &str,
    version: Option<String>,
) -> anyhow::Result<()> {
    let ControlArgs {
        data_type,
        models_topic,
    } = args;
    if data_type.is_empty() {
        bail!("--data-type must not be empty");
    }
    kafka::require_broker(brokers, Duration::from_secs(5))?;
    kafka::ensure_topics(brokers, &[(&models_topic, 1)]).await?;
    let publisher = Publisher::connect(brokers)?;
    let mut headers: Vec<(&str, &[u8])> =
        vec![(ks_proto::control::ACTION_HEADER, action.as_bytes())];
    if let Some(v) = &version {
        headers.push((ks_proto::control::VERSION_HEADER, v.as_bytes()));
    }
    publisher.send_with_headers(
        &models_topic,
        Some(data_type.as_bytes()),
        &ks_proto::control::descriptor(&data_type).encode_to_vec(),
        &headers,
    )?;
    publisher.flush(Duration::from_secs(20))?;
    println!("published {action} of {data_type} to {models_topic}");
    Ok(())
}

/// `ks-client provide`.
async fn provide_cmd(brokers: &str, args: ProvideArgs) -> anyhow::Result<()> {
    let ProvideArgs {
        data_topic,
        models_topic,
        data_partitions,
        models_partitions,
        interval_ms,
        count,
        model_interval_s,
        data_dir,
        data_type,
        progress_every,
        no_embedded_broker,
    } = args;
    if data_partitions < 1 || models_partitions < 1 {
        bail!("partition counts must be at least 1");
    }
    let data_dir = data_dir.unwrap_or_else(catalog::default_data_dir);
    let models: Vec<ModelFile> = catalog::models_in(&data_dir)?;
    let _embedded = embedded_broker_if_needed(brokers, no_embedded_broker)?;
    kafka::ensure_topics(
        brokers,
        &[
            (&data_topic, data_partitions),
            (&models_topic, models_partitions),
        ],
    )
    .await?;
    let publisher = Publisher::connect(brokers)?;
    let opts = ProvideOptions {
        data_topic,
        models_topic,
        interval: Duration::from_millis(interval_ms),
        count,
        model_interval: Duration::from_secs(model_interval_s),
        data_file: data_dir.join("winequality_red.csv"),
        models,
        data_type,
        progress_every: progress_every.unwrap_or(if interval_ms == 0 { 10_000 } else { 10 }),
    };
    // The runtime is single-threaded and has nothing else to do: blocking here is fine.
    let summary = provide::run(&opts, &publisher, &stopped, &mut |line| println!("{line}"))?;
    println!(
        "done: {} records, {} models",
        summary.records, summary.models
    );
    Ok(())
}

/// `ks-client read`.
fn read_cmd(brokers: &str, args: ReadArgs) -> anyhow::Result<()> {
    let ReadArgs {
        topic,
        format,
        until_eof,
        max,
        timeout_s,
    } = args;
    kafka::require_broker(brokers, Duration::from_secs(5))?;
    let format = match format {
        FormatArg::Auto => Format::Auto,
        FormatArg::Wine => Format::Wine,
        FormatArg::Model => Format::Model,
        FormatArg::Text => Format::Text,
        FormatArg::Raw => Format::Raw,
    };
    let mut seen = 0u64;
    let mut out = std::io::stdout().lock();
    kafka::read_topic(
        brokers,
        &topic,
        until_eof,
        Duration::from_secs(timeout_s),
        |m| {
            let mut v = decode::decode(&m.payload, format);
            v["partition"] = m.partition.into();
            v["offset"] = m.offset.into();
            if let Some(k) = &m.key {
                v["key"] = String::from_utf8_lossy(k).into_owned().into();
            }
            // A closed pipe (`| head`) ends the read quietly instead of panicking.
            if writeln!(out, "{v}").is_err() {
                return false;
            }
            seen += 1;
            max.is_none_or(|n| seen < n)
        },
        &stopped,
    )?;
    Ok(())
}

/// `ks-client publish-model`.
async fn publish_model_cmd(brokers: &str, args: PublishModelArgs) -> anyhow::Result<()> {
    let PublishModelArgs {
        file,
        model_type,
        name,
        description,
        data_type,
        by_reference,
        role,
        models_topic,
    } = args;
    let model_type = match model_type {
        Some(t) => t,
        None => catalog::model_type_of(&file)?,
    };
    let model = ModelFile {
        path: file.clone(),
        model_type,
    };
    let mut md = if by_reference {
        if !file.is_file() {
            bail!("cannot read {}: no such file", file.display());
        }
        let abs = std::fs::canonicalize(&file)
            .with_context(|| format!("cannot resolve {}", file.display()))?;
        ModelDescriptor::with_location(
            &model.name(),
            &description,
            &data_type,
            model_type,
            &abs.to_string_lossy(),
        )
    } else {
        provide::descriptor_for(&model, &data_type)?
    };
    if let Some(n) = name {
        md.name = n;
    }
    if !description.is_empty() {
        md.description = description;
    }
    kafka::require_broker(brokers, Duration::from_secs(5))?;
    kafka::ensure_topics(brokers, &[(&models_topic, 1)]).await?;
    let publisher = Publisher::connect(brokers)?;
    let headers: &[(&str, &[u8])] = match role {
        RoleArg::Champion => &[],
        RoleArg::Challenger => &[(
            ks_proto::control::ROLE_HEADER,
            ks_proto::control::CHALLENGER.as_bytes(),
        )],
    };
    publisher.send_with_headers(
        &models_topic,
        Some(data_type.as_bytes()),
        &md.encode_to_vec(),
        headers,
    )?;
    publisher.flush(Duration::from_secs(20))?;
    println!(
        "published model {} ({}{}) to {models_topic}",
        md.name,
        model_type.as_str_name(),
        if role == RoleArg::Challenger {
            ", challenger"
        } else {
            ""
        }
    );
    Ok(())
}

/// The tutorial's client embeds Kafka; so does ours, when nothing answers on a local address.
fn embedded_broker_if_needed(
    brokers: &str,
    refuse: bool,
) -> anyhow::Result<Option<ks_broker::Broker>> {
    if ks_broker::is_reachable(brokers, Duration::from_secs(2)) {
        return Ok(None);
    }
    if refuse {
        bail!("no broker answers at {brokers}");
    }
    let first = brokers.split(',').next().unwrap_or_default().trim();
    let (host, port) = first
        .rsplit_once(':')
        .with_context(|| format!("--brokers {first:?} is not host:port"))?;
    if !matches!(host, "127.0.0.1" | "localhost") {
        bail!("no broker answers at {brokers} (an embedded broker is only started on 127.0.0.1)");
    }
    let port: u16 = port
        .parse()
        .with_context(|| format!("bad port in --brokers {first:?}"))?;
    let broker = ks_broker::Broker::start(
        ks_broker::BrokerKind::Tansu,
        ks_broker::BrokerOptions::port(port),
    )?;
    println!(
        "no broker answered at {brokers}: started an embedded one (log: {}), stopped on exit",
        broker.log_path().display()
    );
    Ok(Some(broker))
}
