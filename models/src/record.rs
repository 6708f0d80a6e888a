//! Generic records: field name -> value, the input of every model type.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use ks_proto::{WineRecord, WINE_FEATURES};

/// One field value. Text is reference-counted so that copying a category between
/// evaluation slots does not allocate.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Missing,
    Number(f64),
    Text(Arc<str>),
}

impl Value {
    /// A text value.
    pub fn text(s: &str) -> Value {
        Value::Text(Arc::from(s))
    }

    /// Parses a CSV-like cell: empty is missing, everything else is kept as text so
    /// that the model's declared data type decides how to read it.
    pub fn from_cell(s: &str) -> Value {
        if s.is_empty() {
            Value::Missing
        } else {
            Value::text(s)
        }
    }

    pub fn is_missing(&self) -> bool {
        matches!(self, Value::Missing)
    }

    /// The numeric reading of the value, if it has one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Text(t) => t.trim().parse().ok(),
            Value::Missing => None,
        }
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Number(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::text(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(Arc::from(v))
    }
}

impl fmt::Display for Value {
    /// Numbers in shortest round-trip form (as Java prints doubles for the usual ranges),
    /// missing as the empty string, like a CSV cell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Missing => Ok(()),
            Value::Number(n) => write!(f, "{n:?}"),
            Value::Text(t) => f.write_str(t),
        }
    }
}

/// A record to score: field name -> value. Fields the model does not use are ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    fields: HashMap<String, Value>,
}

impl Record {
    pub fn new() -> Record {
        Record::default()
    }

    /// Sets a field, replacing an earlier value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) -> &mut Record {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// Builder form of [`Record::insert`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Record {
        self.insert(name, value);
        self
    }

    /// The value of a field; absent fields are missing.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The wine record under the PMML field names ("fixed acidity", ..., "alcohol").
    pub fn from_wine(wine: &WineRecord) -> Record {
        WINE_FEATURES
            .iter()
            .zip(wine.features())
            .map(|(name, v)| (name.to_string(), Value::Number(v)))
            .collect()
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Record {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Record {
        Record {
            fields: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wine_record_uses_pmml_names() {
        let wine = WineRecord {
            fixed_acidity: 7.4,
            alcohol: 9.4,
            ..Default::default()
        };
        let r = Record::from_wine(&wine);
        assert_eq!(r.len(), 11);
        assert_eq!(r.get("fixed acidity"), Some(&Value::Number(7.4)));
        assert_eq!(r.get("alcohol"), Some(&Value::Number(9.4)));
    }

    #[test]
    fn cells_and_display() {
        assert!(Value::from_cell("").is_missing());
        assert_eq!(Value::from_cell("3.5").as_f64(), Some(3.5));
        assert_eq!(Value::Number(5.0).to_string(), "5.0");
        assert_eq!(Value::text("a").to_string(), "a");
    }
}
