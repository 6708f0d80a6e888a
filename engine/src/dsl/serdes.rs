//! How typed DSL keys and values become record bytes and back.
//!
//! Two layers: [`DefaultSerde`] gives a type its `ks_stores` [`Serde`] (implement it once for a
//! type of your own, e.g. with [`JsonSerde`] or [`ProstSerde`]); [`DslType`] adds what a serde
//! cannot express, the record's *absent* key or value. A plain `T` requires the bytes to be
//! there, `Option<T>` maps an absent key/value to `None`, and `()` ignores the bytes (keyless
//! topics). [`Codec`] is the resulting pair of functions the operators carry.

use ks_stores::{
    BytesSerde, Error as SerdeError, F64Serde, I32Serde, I64Serde, JsonSerde, ProstSerde,
    Result as SerdeResult, Serde, StoreKind, StringSerde, U32Serde, U64Serde,
};
use std::marker::PhantomData;
use std::sync::Arc;

/// A type with a serde the DSL picks by itself, so `map::<K2, V2>` needs no serde arguments.
pub trait DefaultSerde: Sized + Send + 'static {
    type S: Serde<Item = Self> + Clone + 'static;
    fn serde() -> Self::S;
}

macro_rules! default_serde {
    ($($ty:ty => $serde:ident),* $(,)?) => {
        $(impl DefaultSerde for $ty {
            type S = $serde;
            fn serde() -> $serde {
                $serde
            }
        })*
    };
}

default_serde!(
    String => StringSerde,
    Vec<u8> => BytesSerde,
    i64 => I64Serde,
    u64 => U64Serde,
    f64 => F64Serde,
    i32 => I32Serde,
    u32 => U32Serde,
);

/// A value carried as serde JSON; for types that do not implement [`DefaultSerde`] themselves.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Json<T>(pub T);

/// A prost (protobuf) message; for messages that do not implement [`DefaultSerde`] themselves.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Proto<M>(pub M);

/// The serde of [`Json`]: [`JsonSerde`] around the wrapper.
pub struct JsonWrapperSerde<T>(PhantomData<fn() -> T>);

impl<T> Clone for JsonWrapperSerde<T> {
    fn clone(&self) -> Self {
        JsonWrapperSerde(PhantomData)
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Serde for JsonWrapperSerde<T> {
    type Item = Json<T>;
    fn encode(&self, item: &Json<T>) -> SerdeResult<Vec<u8>> {
        JsonSerde::<T>::new().encode(&item.0)
    }
    fn decode(&self, bytes: &[u8]) -> SerdeResult<Json<T>> {
        JsonSerde::<T>::new().decode(bytes).map(Json)
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static> DefaultSerde for Json<T> {
    type S = JsonWrapperSerde<T>;
    fn serde() -> Self::S {
        JsonWrapperSerde(PhantomData)
    }
}

/// The serde of [`Proto`]: [`ProstSerde`] around the wrapper.
pub struct ProtoWrapperSerde<M>(PhantomData<fn() -> M>);

impl<M> Clone for ProtoWrapperSerde<M> {
    fn clone(&self) -> Self {
        ProtoWrapperSerde(PhantomData)
    }
}

impl<M: prost::Message + Default> Serde for ProtoWrapperSerde<M> {
    type Item = Proto<M>;
    fn encode(&self, item: &Proto<M>) -> SerdeResult<Vec<u8>> {
        ProstSerde::<M>::new().encode(&item.0)
    }
    fn decode(&self, bytes: &[u8]) -> SerdeResult<Proto<M>> {
        ProstSerde::<M>::new().decode(bytes).map(Proto)
    }
}

impl<M: prost::Message + Default + 'static> DefaultSerde for Proto<M> {
    type S = ProtoWrapperSerde<M>;
    fn serde() -> Self::S {
        ProtoWrapperSerde(PhantomData)
    }
}

/// A type the DSL can carry as a record key or value.
pub trait DslType: Sized + Send + 'static {
    fn codec() -> Codec<Self>;
}

impl<T: DefaultSerde> DslType for T {
    fn codec() -> Codec<T> {
        Codec::required(T::serde())
    }
}

impl<T: DefaultSerde> DslType for Option<T> {
    fn codec() -> Codec<Option<T>> {
        Codec::optional(T::serde())
    }
}

impl DslType for () {
    fn codec() -> Codec<()> {
        Codec::unit()
    }
}

trait CodecImpl<T>: Send + Sync {
    fn encode(&self, item: &T) -> SerdeResult<Option<Vec<u8>>>;
    fn decode(&self, bytes: Option<&[u8]>) -> SerdeResult<T>;
}

struct Required<S>(S);

impl<S: Serde> CodecImpl<S::Item> for Required<S> {
    fn encode(&self, item: &S::Item) -> SerdeResult<Option<Vec<u8>>> {
        self.0.encode(item).map(Some)
    }
    fn decode(&self, bytes: Option<&[u8]>) -> SerdeResult<S::Item> {
        match bytes {
            Some(b) => self.0.decode(b),
            None => Err(SerdeError::Decode {
                what: "a required key or value",
                reason: "the record has none (use an Option type to accept that)".into(),
            }),
        }
    }
}

struct Optional<S>(S);

impl<S: Serde> CodecImpl<Option<S::Item>> for Optional<S> {
    fn encode(&self, item: &Option<S::Item>) -> SerdeResult<Option<Vec<u8>>> {
        item.as_ref().map(|i| self.0.encode(i)).transpose()
    }
    fn decode(&self, bytes: Option<&[u8]>) -> SerdeResult<Option<S::Item>> {
        bytes.map(|b| self.0.decode(b)).transpose()
    }
}

struct Unit;

impl CodecImpl<()> for Unit {
    fn encode(&self, _: &()) -> SerdeResult<Option<Vec<u8>>> {
        Ok(None)
    }
    fn decode(&self, _: Option<&[u8]>) -> SerdeResult<()> {
        Ok(())
    }
}

/// Encodes a typed key or value into a record's optional bytes and back.
pub struct Codec<T>(Arc<dyn CodecImpl<T>>);

impl<T> Clone for Codec<T> {
    fn clone(&self) -> Self {
        Codec(self.0.clone())
    }
}

impl<T: 'static> Codec<T> {
    /// Absent bytes are a decoding error.
    pub fn required<S: Serde<Item = T> + 'static>(serde: S) -> Codec<T> {
        Codec(Arc::new(Required(serde)))
    }

    pub fn encode(&self, item: &T) -> SerdeResult<Option<Vec<u8>>> {
        self.0.encode(item)
    }

    pub fn decode(&self, bytes: Option<&[u8]>) -> SerdeResult<T> {
        self.0.decode(bytes)
    }
}

impl<T: 'static> Codec<Option<T>> {
    /// Absent bytes are `None`.
    pub fn optional<S: Serde<Item = T> + 'static>(serde: S) -> Codec<Option<T>> {
        Codec(Arc::new(Optional(serde)))
    }
}

struct Nullable<T>(Codec<T>);

impl<T: 'static> CodecImpl<Option<T>> for Nullable<T> {
    fn encode(&self, item: &Option<T>) -> SerdeResult<Option<Vec<u8>>> {
        match item {
            Some(i) => self.0.encode(i),
            None => Ok(None),
        }
    }
    fn decode(&self, bytes: Option<&[u8]>) -> SerdeResult<Option<T>> {
        bytes.map(|b| self.0.decode(Some(b))).transpose()
    }
}

impl<T: 'static> Codec<Option<T>> {
    /// `codec` for present bytes, `None` for absent ones (a table's deletes as a stream).
    pub fn nullable(codec: Codec<T>) -> Codec<Option<T>> {
        Codec(Arc::new(Nullable(codec)))
    }
}

impl Codec<()> {
    /// Always `()`; encodes to no bytes.
    pub fn unit() -> Codec<()> {
        Codec(Arc::new(Unit))
    }
}

/// How a source topic is read: explicit key and value serdes instead of the defaults.
pub struct Consumed<K, V> {
    pub(crate) keys: Codec<K>,
    pub(crate) values: Codec<V>,
}

impl<K: 'static, V: 'static> Consumed<K, V> {
    pub fn with<KS, VS>(keys: KS, values: VS) -> Consumed<K, V>
    where
        KS: Serde<Item = K> + 'static,
        VS: Serde<Item = V> + 'static,
    {
        Consumed {
            keys: Codec::required(keys),
            values: Codec::required(values),
        }
    }

    /// Codecs as they are, e.g. [`Codec::optional`] for a topic with keyless records.
    pub fn with_codecs(keys: Codec<K>, values: Codec<V>) -> Consumed<K, V> {
        Consumed { keys, values }
    }
}

impl<K: DslType, V: DslType> Default for Consumed<K, V> {
    fn default() -> Self {
        Consumed {
            keys: K::codec(),
            values: V::codec(),
        }
    }
}

/// Where a table or an aggregation keeps its state: a store name (generated Kafka Streams style
/// when absent), a [`StoreKind`], and whether writes are changelogged.
#[derive(Debug, Clone)]
pub struct Materialized {
    pub(crate) name: Option<String>,
    pub(crate) kind: StoreKind,
    pub(crate) logging: bool,
}

impl Materialized {
    /// A store named `name` (queryable by that name, e.g. `driver.store(name)`).
    pub fn as_(name: impl Into<String>, kind: StoreKind) -> Materialized {
        Materialized {
            name: Some(name.into()),
            kind,
            logging: true,
        }
    }

    /// A store with a generated name.
    pub fn with_kind(kind: StoreKind) -> Materialized {
        Materialized {
            name: None,
            kind,
            logging: true,
        }
    }

    /// Without a changelog the store starts empty after a restart or a task move.
    pub fn with_logging(mut self, logging: bool) -> Materialized {
        self.logging = logging;
        self
    }
}

impl Default for Materialized {
    /// Persistent, as Kafka Streams' default, so a restart restores only the changelog tail.
    fn default() -> Self {
        Materialized::with_kind(StoreKind::RocksDb)
    }
}
