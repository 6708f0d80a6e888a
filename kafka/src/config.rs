//! Client configuration: the settings every ks client shares, and pass-through of any
//! librdkafka property (`security.protocol`, `sasl.*`, `ssl.*`, …) on top.

use crate::{ClientKind, ClientProperties, Error, Result};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;
use std::time::{Duration, Instant};
use watch::Watch;

/// The client properties of this process (a binary's `--config` file), set once at start by
/// [`set_process_properties`].
static PROCESS_PROPERTIES: std::sync::OnceLock<ClientProperties> = std::sync::OnceLock::new();

/// Sets the client properties every [`client_config`] and [`client_config_for`] of this process
/// applies: what a binary read from its `--config` file. Only the first call counts (false
/// after); a binary calls it once, before it makes a client.
pub fn set_process_properties(properties: ClientProperties) -> bool {
    PROCESS_PROPERTIES.set(properties).is_ok()
}

/// The client properties set by [`set_process_properties`], if any.
pub fn process_properties() -> Option<&'static ClientProperties> {
    PROCESS_PROPERTIES.get()
}

/// The prefetch and fetch settings of a consumer that streams a backlog: the engine's stream
/// consumer, as-server's data consumer and the benchmark's bare copy and reader, so all of them
/// read alike. librdkafka's defaults prefetch up to 100 000 messages per partition
/// (`queued.min.messages`) or 64 MiB: on a backlog that is most of it in memory, each message
/// with a few hundred bytes of bookkeeping on top of its payload (ks-server peaked at 84-93 MB at
/// 500 000 records). Small queues are enough once the fetch that refills them is not postponed
/// by `fetch.queue.backoff.ms`' default second: with it, a consumer whose queue passed the
/// threshold stalls a whole second (that starved a 4 MiB cap, and the bench's bare copy with
/// librdkafka's defaults, benches/README.md). 5 000 messages per partition hold tens of
/// milliseconds of work at full rate. `fetch.wait.max.ms` is how long the broker may hold a
/// fetch that finds nothing new; the local broker (tansu) holds it that long even when records
/// arrive meanwhile, so the default 500 ms was most of a caught-up server's latency.
pub const STREAM_CONSUMER_PREFETCH: &[(&str, &str)] = &[
    ("queued.min.messages", "5000"),
    ("queued.max.messages.kbytes", "4096"),
    ("fetch.queue.backoff.ms", "5"),
    ("max.partition.fetch.bytes", "524288"),
    ("fetch.max.bytes", "2097152"),
    ("fetch.wait.max.ms", "10"),
];

/// Sets each of [`STREAM_CONSUMER_PREFETCH`] that `config` does not set yet, so properties
/// applied before (a user's `consumer.*` tuning) win.
pub fn with_stream_prefetch(config: &mut ClientConfig) -> &mut ClientConfig {
    for (k, v) in STREAM_CONSUMER_PREFETCH {
        if config.get(k).is_none() {
            config.set(*k, *v);
        }
    }
    config
}

/// A configuration for `bootstrap` with the shared defaults: a 10 s socket timeout and
/// librdkafka's own logging at errors only; then the process's common client properties
/// ([`set_process_properties`]: security, SASL, …). Settings a caller makes afterwards (a
/// group id, `linger.ms`) win over them.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "10000")
        .set("log_level", "3");
    if let Some(p) = process_properties() {
        with_properties(
            &mut c,
            p.common.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
    }
    c
}

/// [`client_config`] for a client of `kind`, with the process's `consumer.*`, `producer.*` or
/// `admin.*` properties on top of the common ones.
pub fn client_config_for(kind: ClientKind, bootstrap: &str) -> ClientConfig {
    let mut c = client_config(bootstrap);
    if let Some(p) = process_properties() {
        with_properties(
            &mut c,
            p.kind(kind).iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
    }
    c
}

/// Sets every `(key, value)` on `config`, overriding what is there: librdkafka properties passed
/// through as given.
pub fn with_properties<K, V>(
    config: &mut ClientConfig,
    properties: impl IntoIterator<Item = (K, V)>,
) -> &mut ClientConfig
where
    K: Into<String>,
    V: Into<String>,
{
    for (k, v) in properties {
        config.set(k, v);
    }
    config
}

/// Connects with `config` (the bootstrap servers and any security properties) and waits up to
/// `timeout` for the cluster's metadata, so a program fails at start with a clear reason rather
/// than retrying in the background for ever. A refused authentication (wrong SASL credentials,
/// a mechanism the broker does not enable) fails at once, with librdkafka's reason; the check's
/// client is dropped before returning, so nothing keeps reconnecting.
pub fn check_brokers(config: &ClientConfig, timeout: Duration) -> Result<()> {
    let brokers = config.get("bootstrap.servers").unwrap_or("").to_string();
    let probe: BaseProducer<Watch> = config
        .create_with_context(Watch::default())
        .map_err(Error::context(format!("creating a client for {brokers}")))?;
    let deadline = Instant::now() + timeout;
    loop {
        // Short slices, so an authentication failure reported in between ends the wait.
        match probe
            .client()
            .fetch_metadata(None, Duration::from_millis(500))
        {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(Error::Unreachable {
                    brokers,
                    timeout,
                    reason: probe.context().last_error().unwrap_or(e.to_string()),
                });
            }
            Err(_) => {}
        }
        probe.poll(Duration::ZERO);
        if let Some(reason) = probe.context().authentication_failure() {
            return Err(Error::Authentication { brokers, reason });
        }
    }
}

mod watch {
    //! The connection check's client context: it keeps the errors librdkafka reports.
    use rdkafka::client::ClientContext;
    use rdkafka::error::KafkaError;
    use rdkafka::producer::{DeliveryResult, ProducerContext};
    use rdkafka::types::RDKafkaErrorCode;
    use std::sync::Mutex;

    #[derive(Default)]
    pub(super) struct Watch {
        auth: Mutex<Option<String>>,
        last: Mutex<Option<String>>,
    }

    impl Watch {
        pub(super) fn authentication_failure(&self) -> Option<String> {
            self.auth.lock().ok().and_then(|g| g.clone())
        }
        pub(super) fn last_error(&self) -> Option<String> {
            self.last.lock().ok().and_then(|g| g.clone())
        }
    }

    impl ClientContext for Watch {
        fn error(&self, error: KafkaError, reason: &str) {
            let auth = matches!(
                error.rdkafka_error_code(),
                Some(RDKafkaErrorCode::Authentication)
                    | Some(RDKafkaErrorCode::SaslAuthenticationFailed)
            );
            let slot = if auth { &self.auth } else { &self.last };
            if let Ok(mut g) = slot.lock() {
                *g = Some(reason.to_string());
            }
        }
    }

    impl ProducerContext for Watch {
        type DeliveryOpaque = ();
        fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
    }
}

/// The partition ids of `topic` as `metadata` lists them (empty when the topic is missing or
/// reports an error).
pub fn partition_ids(metadata: &rdkafka::metadata::Metadata, topic: &str) -> Vec<i32> {
    metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_prefetch_fills_in_what_a_user_did_not_set() {
        let mut c = ClientConfig::new();
        c.set("queued.min.messages", "100");
        with_stream_prefetch(&mut c);
        assert_eq!(
            c.get("queued.min.messages"),
            Some("100"),
            "the user's value wins"
        );
        assert_eq!(c.get("fetch.queue.backoff.ms"), Some("5"));
        for (k, v) in STREAM_CONSUMER_PREFETCH.iter().skip(1) {
            assert_eq!(c.get(k), Some(*v), "{k}");
        }
    }

    #[test]
    fn no_broker_fails_the_check_within_its_timeout_naming_the_servers() {
        let started = Instant::now();
        let e = check_brokers(&client_config("127.0.0.1:1"), Duration::from_secs(1)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(e, Error::Unreachable { .. }), "{e}");
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    }

    #[test]
    fn properties_pass_through_and_override() {
        let mut c = client_config("b:9092");
        with_properties(
            &mut c,
            [("security.protocol", "SSL"), ("socket.timeout.ms", "5")],
        );
        assert_eq!(c.get("bootstrap.servers"), Some("b:9092"));
        assert_eq!(c.get("security.protocol"), Some("SSL"));
        assert_eq!(c.get("socket.timeout.ms"), Some("5"));
    }
}
