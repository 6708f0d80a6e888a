//! Serdes: stores hold bytes; these turn typed keys and values into bytes and back, and
//! [`TypedStore`] / [`ReadOnlyTypedStore`] wrap any `Arc<dyn KeyValueStore>` with a pair of them.
//!
//! Integers are big-endian, like Kafka's serializers, so non-negative keys range in numeric
//! order (negative ones sort after the positive ones).

use std::marker::PhantomData;
use std::ops::{ControlFlow, Deref};
use std::sync::Arc;

use crate::store::{read_only, KeyValueStore, ReadOnlyKeyValueStore};
use crate::{Error, Result};

/// Encodes and decodes one type. Errors are values: bad bytes never panic.
pub trait Serde: Send + Sync {
    type Item;
    fn encode(&self, item: &Self::Item) -> Result<Vec<u8>>;
    fn decode(&self, bytes: &[u8]) -> Result<Self::Item>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

impl Serde for BytesSerde {
    type Item = Vec<u8>;
    fn encode(&self, item: &Vec<u8>) -> Result<Vec<u8>> {
        Ok(item.clone())
    }
    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        Ok(bytes.to_vec())
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

impl Serde for StringSerde {
    type Item = String;
    fn encode(&self, item: &String) -> Result<Vec<u8>> {
        Ok(item.as_bytes().to_vec())
    }
    fn decode(&self, bytes: &[u8]) -> Result<String> {
        String::from_utf8(bytes.to_vec()).map_err(|e| Error::Decode {
            what: "string",
            reason: e.to_string(),
        })
    }
}

macro_rules! int_serde {
    ($name:ident, $ty:ty, $what:literal) => {
        #[doc = concat!("Big-endian `", stringify!($ty), "`.")]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Serde for $name {
            type Item = $ty;
            fn encode(&self, item: &$ty) -> Result<Vec<u8>> {
                Ok(item.to_be_bytes().to_vec())
            }
            fn decode(&self, bytes: &[u8]) -> Result<$ty> {
                let array = bytes.try_into().map_err(|_| Error::Decode {
                    what: $what,
                    reason: format!(
                        "expected {} bytes, got {}",
                        std::mem::size_of::<$ty>(),
                        bytes.len()
                    ),
                })?;
                Ok(<$ty>::from_be_bytes(array))
            }
        }
    };
}

int_serde!(I32Serde, i32, "i32");
int_serde!(I64Serde, i64, "i64");
int_serde!(U32Serde, u32, "u32");
int_serde!(U64Serde, u64, "u64");
int_serde!(F64Serde, f64, "f64");

/// serde JSON.
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

impl<T> JsonSerde<T> {
    pub fn new() -> Self {
        JsonSerde(PhantomData)
    }
}

impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for JsonSerde<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Serde for JsonSerde<T> {
    type Item = T;
    fn encode(&self, item: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(item).map_err(|e| Error::Encode {
            what: "JSON",
            reason: e.to_string(),
        })
    }
    fn decode(&self, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| Error::Decode {
            what: "JSON",
            reason: e.to_string(),
        })
    }
}

/// A prost (protobuf) message.
pub struct ProstSerde<M>(PhantomData<fn() -> M>);

impl<M> ProstSerde<M> {
    pub fn new() -> Self {
        ProstSerde(PhantomData)
    }
}

impl<M> Default for ProstSerde<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> Clone for ProstSerde<M> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<M: prost::Message + Default> Serde for ProstSerde<M> {
    type Item = M;
    fn encode(&self, item: &M) -> Result<Vec<u8>> {
        Ok(item.encode_to_vec())
    }
    fn decode(&self, bytes: &[u8]) -> Result<M> {
        M::decode(bytes).map_err(|e| Error::Decode {
            what: "protobuf message",
            reason: e.to_string(),
        })
    }
}

/// Typed reads over any store: the queries written once for every implementation.
pub struct ReadOnlyTypedStore<KS, VS> {
    store: Arc<dyn ReadOnlyKeyValueStore>,
    keys: KS,
    values: VS,
}

impl<KS: Serde, VS: Serde> ReadOnlyTypedStore<KS, VS> {
    pub fn new(store: Arc<dyn ReadOnlyKeyValueStore>, keys: KS, values: VS) -> Self {
        ReadOnlyTypedStore {
            store,
            keys,
            values,
        }
    }

    pub fn get(&self, key: &KS::Item) -> Result<Option<VS::Item>> {
        match self.store.get(&self.keys.encode(key)?)? {
            Some(v) => self.values.decode(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Entries with `from <= key <= to` in the order of their encoded keys.
    pub fn range(
        &self,
        from: Option<&KS::Item>,
        to: Option<&KS::Item>,
    ) -> Result<Vec<(KS::Item, VS::Item)>> {
        let from = from.map(|k| self.keys.encode(k)).transpose()?;
        let to = to.map(|k| self.keys.encode(k)).transpose()?;
        let mut out = Vec::new();
        let mut failed = None;
        self.store
            .scan(from.as_deref(), to.as_deref(), &mut |k, v| match self
                .keys
                .decode(k)
                .and_then(|k| Ok((k, self.values.decode(v)?)))
            {
                Ok(kv) => {
                    out.push(kv);
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    pub fn all(&self) -> Result<Vec<(KS::Item, VS::Item)>> {
        self.range(None, None)
    }

    pub fn approximate_num_entries(&self) -> Result<u64> {
        self.store.approximate_num_entries()
    }

    pub fn store(&self) -> &Arc<dyn ReadOnlyKeyValueStore> {
        &self.store
    }
}

/// Typed reads and writes over any store; derefs to its [`ReadOnlyTypedStore`].
pub struct TypedStore<KS, VS> {
    store: Arc<dyn KeyValueStore>,
    view: ReadOnlyTypedStore<KS, VS>,
}

impl<KS: Serde, VS: Serde> TypedStore<KS, VS> {
    pub fn new(store: Arc<dyn KeyValueStore>, keys: KS, values: VS) -> Self {
        TypedStore {
            view: ReadOnlyTypedStore::new(read_only(store.clone()), keys, values),
            store,
        }
    }

    pub fn put(&self, key: &KS::Item, value: &VS::Item) -> Result<()> {
        self.store.put(
            &self.view.keys.encode(key)?,
            &self.view.values.encode(value)?,
        )
    }

    pub fn put_if_absent(&self, key: &KS::Item, value: &VS::Item) -> Result<Option<VS::Item>> {
        let existing = self.store.put_if_absent(
            &self.view.keys.encode(key)?,
            &self.view.values.encode(value)?,
        )?;
        existing.map(|v| self.view.values.decode(&v)).transpose()
    }

    pub fn delete(&self, key: &KS::Item) -> Result<Option<VS::Item>> {
        let old = self.store.delete(&self.view.keys.encode(key)?)?;
        old.map(|v| self.view.values.decode(&v)).transpose()
    }

    pub fn store(&self) -> &Arc<dyn KeyValueStore> {
        &self.store
    }
}

impl<KS: Clone, VS: Clone> TypedStore<KS, VS> {
    /// A read-only typed view for query threads.
    pub fn read_only(&self) -> ReadOnlyTypedStore<KS, VS> {
        ReadOnlyTypedStore {
            store: self.view.store.clone(),
            keys: self.view.keys.clone(),
            values: self.view.values.clone(),
        }
    }
}

impl<KS, VS> Deref for TypedStore<KS, VS> {
    type Target = ReadOnlyTypedStore<KS, VS>;
    fn deref(&self) -> &Self::Target {
        &self.view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryKeyValueStore;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Score {
        #[prost(string, tag = "1")]
        player: String,
        #[prost(int64, tag = "2")]
        points: i64,
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Totals {
        count: u32,
    }

    #[test]
    fn typed_store_round_trips_each_serde() {
        let raw: Arc<dyn KeyValueStore> = Arc::new(InMemoryKeyValueStore::new("s"));
        let scores = TypedStore::new(raw.clone(), StringSerde, ProstSerde::<Score>::new());
        let s = Score {
            player: "ann".into(),
            points: 7,
        };
        scores.put(&"ann".to_string(), &s).unwrap();
        assert_eq!(scores.get(&"ann".to_string()).unwrap(), Some(s));

        let totals = TypedStore::new(raw.clone(), I64Serde, JsonSerde::<Totals>::new());
        for k in [3i64, 1, 2] {
            totals.put(&k, &Totals { count: k as u32 }).unwrap();
        }
        let keys: Vec<i64> = totals
            .read_only()
            .range(Some(&1), Some(&2))
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![1, 2]);
        assert_eq!(totals.delete(&3).unwrap(), Some(Totals { count: 3 }));
    }

    #[test]
    fn bad_bytes_are_decode_errors() {
        assert!(matches!(I64Serde.decode(b"abc"), Err(Error::Decode { .. })));
        assert!(matches!(
            StringSerde.decode(&[0xff, 0xfe]),
            Err(Error::Decode { .. })
        ));
        assert!(matches!(
            JsonSerde::<Totals>::new().decode(b"{"),
            Err(Error::Decode { .. })
        ));
        assert!(matches!(
            ProstSerde::<Score>::new().decode(&[0xff]),
            Err(Error::Decode { .. })
        ));
        // A range over entries that do not decode fails instead of skipping them.
        let raw: Arc<dyn KeyValueStore> = Arc::new(InMemoryKeyValueStore::new("s"));
        raw.put(b"k", b"not eight bytes").unwrap();
        let typed = TypedStore::new(raw, BytesSerde, U64Serde);
        assert!(matches!(typed.all(), Err(Error::Decode { .. })));
    }
}
