//! Client configuration: the settings every ks client shares, and pass-through of any
//! librdkafka property (`security.protocol`, `sasl.*`, `ssl.*`, …) on top.

use rdkafka::ClientConfig;

/// A configuration for `bootstrap` with the shared defaults: a 10 s socket timeout and
/// librdkafka's own logging at errors only.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "10000")
        .set("log_level", "3");
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
