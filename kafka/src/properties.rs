//! Kafka Streams–style properties files: `key=value` lines read into a program's own settings
//! (`application.id`, `num.stream.threads`, …) and client properties passed through to
//! librdkafka — plain ones (`security.protocol`, `sasl.mechanism`, `ssl.ca.location`) to every
//! client, `consumer.*`, `producer.*` and `admin.*` ones to that kind of client only, as Kafka
//! Streams does with its prefixes.
//!
//! A key that is none of these is an error naming the key and its line: a typo must not
//! silently leave a cluster's security settings out. Client keys are checked against
//! librdkafka itself (an unknown property or a bad value is refused when the file is read,
//! not when the first client is made).
//!
//! The syntax is Java's `.properties` as Kafka's tools write it: `#` and `!` comment lines,
//! `key=value`, `key: value` or `key value`, a trailing `\` continues a line, `\=`, `\:`,
//! `\ ` and `\\` escape. A key set twice is an error.
//!
//! ```
//! use ks_kafka::properties::{ClientKind, PropertiesFile};
//!
//! let file = PropertiesFile::parse(
//!     "app.properties",
//!     "application.id=wine\nsecurity.protocol=SASL_PLAINTEXT\nconsumer.fetch.min.bytes=1\n",
//! )?;
//! let (own, clients) = file.split(&["application.id"])?;
//! assert_eq!(own["application.id"].value, "wine");
//! let consumer: Vec<_> = clients.for_kind(ClientKind::Consumer).collect();
//! assert_eq!(consumer, [("security.protocol", "SASL_PLAINTEXT"), ("fetch.min.bytes", "1")]);
//! assert_eq!(clients.for_kind(ClientKind::Producer).count(), 1);
//! # Ok::<(), ks_kafka::Error>(())
//! ```

use crate::{Error, Result};
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::path::Path;

/// One `key=value` of a properties file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The key, unescaped.
    pub key: String,
    /// The value, unescaped, leading whitespace removed.
    pub value: String,
    /// 1-based line the key starts on.
    pub line: usize,
}

/// A parsed properties file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertiesFile {
    /// The file's path (or the name given to [`PropertiesFile::parse`]), for error messages.
    pub origin: String,
    /// Every property, in file order.
    pub properties: Vec<Property>,
}

/// The kinds of Kafka client a program makes, each with its own prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// `consumer.*` (main, restore and global consumers).
    Consumer,
    /// `producer.*`.
    Producer,
    /// `admin.*`.
    Admin,
}

impl ClientKind {
    /// Every kind.
    pub const ALL: [ClientKind; 3] = [
        ClientKind::Consumer,
        ClientKind::Producer,
        ClientKind::Admin,
    ];

    /// The key prefix, dot included.
    pub fn prefix(self) -> &'static str {
        match self {
            ClientKind::Consumer => "consumer.",
            ClientKind::Producer => "producer.",
            ClientKind::Admin => "admin.",
        }
    }
}

/// librdkafka properties to pass through: `common` to every client, then the kind's own
/// (prefix removed), which win over common ones with the same key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientProperties {
    /// For every client.
    pub common: Vec<(String, String)>,
    /// `consumer.*`, prefix removed.
    pub consumer: Vec<(String, String)>,
    /// `producer.*`, prefix removed.
    pub producer: Vec<(String, String)>,
    /// `admin.*`, prefix removed.
    pub admin: Vec<(String, String)>,
}

impl ClientProperties {
    /// No property at all.
    pub fn is_empty(&self) -> bool {
        self.common.is_empty()
            && self.consumer.is_empty()
            && self.producer.is_empty()
            && self.admin.is_empty()
    }

    /// The properties of one kind only, prefix removed.
    pub fn kind(&self, kind: ClientKind) -> &[(String, String)] {
        match kind {
            ClientKind::Consumer => &self.consumer,
            ClientKind::Producer => &self.producer,
            ClientKind::Admin => &self.admin,
        }
    }

    /// What a client of `kind` gets: the common properties, then its own.
    pub fn for_kind(&self, kind: ClientKind) -> impl Iterator<Item = (&str, &str)> {
        self.common
            .iter()
            .chain(self.kind(kind))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets what a client of `kind` gets on `config`, overriding what is there.
    pub fn apply<'c>(
        &self,
        kind: ClientKind,
        config: &'c mut ClientConfig,
    ) -> &'c mut ClientConfig {
        crate::with_properties(config, self.for_kind(kind))
    }

    /// Adds `key=value` as a file line would: prefixed keys go to their kind. Checked against
    /// librdkafka; the error names the key.
    pub fn insert(&mut self, key: &str, value: &str) -> std::result::Result<(), String> {
        for kind in ClientKind::ALL {
            if let Some(rest) = key.strip_prefix(kind.prefix()) {
                check_librdkafka(rest, value)?;
                let list = match kind {
                    ClientKind::Consumer => &mut self.consumer,
                    ClientKind::Producer => &mut self.producer,
                    ClientKind::Admin => &mut self.admin,
                };
                list.push((rest.to_string(), value.to_string()));
                return Ok(());
            }
        }
        check_librdkafka(key, value)?;
        self.common.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

/// Whether librdkafka accepts `key=value` (an unknown key or a bad value is refused).
fn check_librdkafka(key: &str, value: &str) -> std::result::Result<(), String> {
    if key.is_empty() {
        return Err("empty property name".into());
    }
    let mut c = ClientConfig::new();
    c.set(key, value);
    c.create_native_config()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

impl PropertiesFile {
    /// Reads and parses `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<PropertiesFile> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadProperties {
            path: path.to_path_buf(),
            source,
        })?;
        PropertiesFile::parse(path.display().to_string(), &text)
    }

    /// Parses `text`; `origin` names it in errors.
    pub fn parse(origin: impl Into<String>, text: &str) -> Result<PropertiesFile> {
        let origin = origin.into();
        let mut properties: Vec<Property> = Vec::new();
        let mut lines = text.lines().enumerate();
        while let Some((index, first)) = lines.next() {
            let line = index + 1;
            let trimmed = first.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
                continue;
            }
            // Join continuation lines: an odd number of trailing backslashes continues.
            let mut logical = trimmed.to_string();
            while ends_in_continuation(&logical) {
                logical.pop();
                match lines.next() {
                    Some((_, next)) => logical.push_str(next.trim_start()),
                    None => break,
                }
            }
            let (key, value) = split_pair(&logical);
            if key.is_empty() {
                return Err(Error::PropertiesSyntax {
                    origin,
                    line,
                    reason: format!("no key before the separator in {logical:?}"),
                });
            }
            if let Some(earlier) = properties.iter().find(|p| p.key == key) {
                return Err(Error::PropertiesSyntax {
                    origin,
                    line,
                    reason: format!("`{key}` is already set on line {}", earlier.line),
                });
            }
            properties.push(Property { key, value, line });
        }
        Ok(PropertiesFile { origin, properties })
    }

    /// Splits the file into the program's own settings (the keys in `own`) and the client
    /// properties; any other key must be a librdkafka property (optionally prefixed
    /// `consumer.`, `producer.` or `admin.`) with a value librdkafka accepts.
    pub fn split(&self, own: &[&str]) -> Result<(BTreeMap<String, Property>, ClientProperties)> {
        let mut mine = BTreeMap::new();
        let mut clients = ClientProperties::default();
        for p in &self.properties {
            if own.contains(&p.key.as_str()) {
                mine.insert(p.key.clone(), p.clone());
                continue;
            }
            clients
                .insert(&p.key, &p.value)
                .map_err(|reason| Error::UnknownProperty {
                    origin: self.origin.clone(),
                    line: p.line,
                    key: p.key.clone(),
                    reason,
                })?;
        }
        Ok((mine, clients))
    }
}

/// A program's settings from a properties file: its own keys (read typed with
/// [`Settings::get`]) and the client properties to pass through.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The file, for error messages.
    pub origin: String,
    /// The program's own keys.
    pub own: BTreeMap<String, Property>,
    /// Everything else, for the Kafka clients.
    pub clients: ClientProperties,
}

impl Settings {
    /// Loads `path`, taking the keys in `own` as the program's and the rest as client
    /// properties (an unknown key is an error naming it).
    pub fn load(path: impl AsRef<Path>, own: &[&str]) -> Result<Settings> {
        let file = PropertiesFile::load(path)?;
        let (mine, clients) = file.split(own)?;
        Ok(Settings {
            origin: file.origin,
            own: mine,
            clients,
        })
    }

    /// The value of one of the program's keys, parsed; a value that does not parse is an
    /// error naming the key, its line and why.
    pub fn get<T>(&self, key: &str) -> Result<Option<T>>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let Some(p) = self.own.get(key) else {
            return Ok(None);
        };
        p.value
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|e| Error::UnknownProperty {
                origin: self.origin.clone(),
                line: p.line,
                key: key.to_string(),
                reason: format!("bad value {:?}: {e}", p.value),
            })
    }
}

impl Settings {
    /// Sets `field` from the file's `key` unless the flag `id` came from the command line or
    /// the environment, which win over the file (the one rule every binary's `--config`
    /// follows).
    pub fn fill<T>(
        &self,
        matches: &clap::ArgMatches,
        id: &str,
        key: &str,
        field: &mut T,
    ) -> Result<()>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let given = matches!(
            matches.value_source(id),
            Some(clap::parser::ValueSource::CommandLine)
                | Some(clap::parser::ValueSource::EnvVariable)
        );
        if !given {
            if let Some(v) = self.get::<T>(key)? {
                *field = v;
            }
        }
        Ok(())
    }
}

fn ends_in_continuation(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits at the first unescaped `=`, `:` or whitespace, unescaping both sides.
fn split_pair(logical: &str) -> (String, String) {
    let mut key = String::new();
    let mut chars = logical.chars().peekable();
    let mut escaped = false;
    while let Some(&c) = chars.peek() {
        if escaped {
            key.push(unescape(c));
            escaped = false;
            chars.next();
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => break,
            c if c.is_whitespace() => break,
            c => key.push(c),
        }
        chars.next();
    }
    // Whitespace, then at most one `=` or `:`, then whitespace.
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
    if matches!(chars.peek(), Some('=') | Some(':')) {
        chars.next();
    }
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
    let mut value = String::new();
    let mut escaped = false;
    for c in chars {
        if escaped {
            value.push(unescape(c));
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            value.push(c);
        }
    }
    (key, value.trim_end().to_string())
}

fn unescape(c: char) -> char {
    match c {
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_of_java_properties() {
        let f = PropertiesFile::parse(
            "t",
            "# comment\n! also\n\napplication.id = wine\nstate.dir:/tmp/x\n\
             bootstrap.servers  a:1,\\\n    b:2\nsasl.password=p\\=w\\:d\\\\\n",
        )
        .unwrap();
        let kv: Vec<(&str, &str, usize)> = f
            .properties
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str(), p.line))
            .collect();
        assert_eq!(
            kv,
            [
                ("application.id", "wine", 4),
                ("state.dir", "/tmp/x", 5),
                ("bootstrap.servers", "a:1,b:2", 6),
                ("sasl.password", "p=w:d\\", 8),
            ]
        );
    }

    #[test]
    fn a_key_set_twice_is_an_error_naming_both_lines() {
        let e = PropertiesFile::parse("f.properties", "a=1\n\na=2\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.properties:3: `a` is already set on line 1"
        );
        let e = PropertiesFile::parse("f", "=1\n").unwrap_err();
        assert!(e.to_string().contains("f:1: no key"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name_and_line() {
        let f = PropertiesFile::parse(
            "app.properties",
            "application.id=x\nsecurity.protocol=SASL_PLAINTEXT\nnum.stream.thread=2\n",
        )
        .unwrap();
        let e = f
            .split(&["application.id", "num.stream.threads"])
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("app.properties:3: unknown or invalid property `num.stream.thread`"),
            "{msg}"
        );
        // A bad value of a real property is refused as well, and a prefixed unknown key.
        for bad in [
            "security.protocol=CARRIER_PIGEON",
            "consumer.no.such.thing=1",
        ] {
            let f = PropertiesFile::parse("p", bad).unwrap();
            let e = f.split(&[]).unwrap_err();
            let key = bad.split('=').next().unwrap();
            assert!(e.to_string().contains(&format!("`{key}`")), "{e}");
        }
    }

    #[test]
    fn prefixed_properties_go_to_their_kind_and_win_over_common_ones() {
        let f = PropertiesFile::parse(
            "p",
            "client.id=all\nproducer.client.id=prod\nadmin.socket.timeout.ms=5000\n\
             consumer.fetch.min.bytes=10\n",
        )
        .unwrap();
        let (own, clients) = f.split(&[]).unwrap();
        assert!(own.is_empty());
        let mut producer = ClientConfig::new();
        clients.apply(ClientKind::Producer, &mut producer);
        assert_eq!(producer.get("client.id"), Some("prod"));
        assert_eq!(producer.get("fetch.min.bytes"), None);
        let mut consumer = ClientConfig::new();
        clients.apply(ClientKind::Consumer, &mut consumer);
        assert_eq!(consumer.get("client.id"), Some("all"));
        assert_eq!(consumer.get("fetch.min.bytes"), Some("10"));
        assert_eq!(
            clients.kind(ClientKind::Admin),
            [("socket.timeout.ms".to_string(), "5000".to_string())]
        );
    }

    #[test]
    fn settings_parse_typed_values_naming_the_key() {
        let dir = std::env::temp_dir().join(format!("ks-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.properties");
        std::fs::write(&path, "num.stream.threads=3\ncommit.interval.ms=soon\n").unwrap();
        let s = Settings::load(&path, &["num.stream.threads", "commit.interval.ms"]).unwrap();
        assert_eq!(s.get::<usize>("num.stream.threads").unwrap(), Some(3));
        assert_eq!(s.get::<usize>("state.dir").unwrap(), None);
        let e = s.get::<u64>("commit.interval.ms").unwrap_err().to_string();
        assert!(
            e.contains(":2: unknown or invalid property `commit.interval.ms`: bad value"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_names_a_missing_file() {
        let e = PropertiesFile::load("/no/such/ks.properties").unwrap_err();
        assert!(e.to_string().contains("/no/such/ks.properties"), "{e}");
    }
}
