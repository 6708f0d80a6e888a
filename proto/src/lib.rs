//! Wire types of ks: the Lightbend tutorial's protobuf messages, compiled with prost.
//!
//! - [`ModelDescriptor`]: a model update (PMML, TensorFlow or ONNX, by value or by location).
//! - [`WineRecord`]: one row of the red-wine data set, with its `dataType`.
//!
//! Field numbers match the tutorial's `.proto` files (in `proto/proto/`), so bytes written by its
//! Scala/Java side decode here and ours decode there.
//!
//! ```
//! use ks_proto::{Message, WineRecord};
//! let rec = WineRecord::from_csv_line("7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4;5", "wine").unwrap();
//! let bytes = rec.encode_to_vec();
//! assert_eq!(WineRecord::decode(bytes.as_slice()).unwrap(), rec);
//! ```

pub use prost::Message;

/// Generated code for package `com.lightbend.model`.
pub mod model {
    include!(concat!(env!("OUT_DIR"), "/com.lightbend.model.rs"));
}

pub use model::model_descriptor::{MessageContent, ModelType};
pub use model::{ModelDescriptor, WineRecord};

/// Wall-clock milliseconds since the epoch, the unit of Kafka record timestamps and of every
/// `*_ms` time in ks (0 if the clock is before the epoch). Re-exported by ks-kafka, the plumbing
/// layer, as its time helper; here so the engine-free crates share it too.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The data type the tutorial publishes wine records under.
pub const WINE_DATA_TYPE: &str = "wine";

/// The 11 wine features in CSV column order, named as the PMML models' DataDictionary names them.
pub const WINE_FEATURES: [&str; 11] = [
    "fixed acidity",
    "volatile acidity",
    "citric acid",
    "residual sugar",
    "chlorides",
    "free sulfur dioxide",
    "total sulfur dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
];

/// Control messages on the model topic: Kafka headers beside an unchanged `ModelDescriptor`
/// payload (the tutorial's wire format stays as it is; a reader that ignores headers sees a
/// model message). Shared by the publisher (ks-client) and the servers.
///
/// - `ks.role=challenger` on a model message: score it in shadow beside the current model.
/// - `ks.action=rollback` on a descriptor naming only a `dataType`: serve the previous version.
/// - `ks.action=promote` (optionally `ks.version=<partition>:<offset>` of the challenger):
///   the challenger becomes the current model.
pub mod control {
    use crate::ModelDescriptor;

    /// Header naming a control action (`rollback`, `promote`).
    pub const ACTION_HEADER: &str = "ks.action";
    /// Header naming the role of a model message (`champion`, the default, or `challenger`).
    pub const ROLE_HEADER: &str = "ks.role";
    /// Header naming the version a `promote` is meant for (the challenger's
    /// `<partition>:<offset>`); without it the current challenger is promoted.
    pub const VERSION_HEADER: &str = "ks.version";
    /// `ks.action` value: roll back to the previous version.
    pub const ROLLBACK: &str = "rollback";
    /// `ks.action` value: promote the challenger.
    pub const PROMOTE: &str = "promote";
    /// `ks.role` value: a model scored in shadow.
    pub const CHALLENGER: &str = "challenger";
    /// `ks.role` value: a model that serves (what a message without the header is).
    pub const CHAMPION: &str = "champion";

    /// The payload of a control message: a descriptor naming `data_type` and carrying no model.
    pub fn descriptor(data_type: &str) -> ModelDescriptor {
        ModelDescriptor {
            data_type: data_type.to_string(),
            ..ModelDescriptor::default()
        }
    }
}

/// What went wrong turning text into a wire type.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum Error {
    #[error("line {line}: expected at least 11 ';'-separated columns, found {found}")]
    TooFewColumns { line: String, found: usize },
    #[error("column {column} ({name}): {value:?} is not a number")]
    NotANumber {
        column: usize,
        name: &'static str,
        value: String,
    },
    #[error("unknown model type {0:?} (expected pmml, tensorflow or onnx)")]
    UnknownModelType(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl WineRecord {
    /// Parses one line of `winequality_red.csv` (`;`-separated, 11 features then quality; the
    /// quality column, if present, is ignored).
    pub fn from_csv_line(line: &str, data_type: &str) -> Result<WineRecord> {
        let cols: Vec<&str> = line.trim().split(';').collect();
        if cols.len() < 11 {
            return Err(Error::TooFewColumns {
                line: line.to_string(),
                found: cols.len(),
            });
        }
        let mut f = [0.0f64; 11];
        for (i, slot) in f.iter_mut().enumerate() {
            let raw = cols[i].trim();
            *slot = raw.parse().map_err(|_| Error::NotANumber {
                column: i,
                name: WINE_FEATURES[i],
                value: raw.to_string(),
            })?;
        }
        Ok(WineRecord::from_features(f, data_type))
    }

    /// Builds a record from the 11 features in CSV column order.
    pub fn from_features(f: [f64; 11], data_type: &str) -> WineRecord {
        WineRecord {
            fixed_acidity: f[0],
            volatile_acidity: f[1],
            citric_acid: f[2],
            residual_sugar: f[3],
            chlorides: f[4],
            free_sulfur_dioxide: f[5],
            total_sulfur_dioxide: f[6],
            density: f[7],
            p_h: f[8],
            sulphates: f[9],
            alcohol: f[10],
            data_type: data_type.to_string(),
        }
    }

    /// The 11 features in CSV column order (the order of [`WINE_FEATURES`]).
    pub fn features(&self) -> [f64; 11] {
        [
            self.fixed_acidity,
            self.volatile_acidity,
            self.citric_acid,
            self.residual_sugar,
            self.chlorides,
            self.free_sulfur_dioxide,
            self.total_sulfur_dioxide,
            self.density,
            self.p_h,
            self.sulphates,
            self.alcohol,
        ]
    }
}

impl std::str::FromStr for ModelType {
    type Err = Error;

    /// Accepts the CLI spellings `pmml`, `tensorflow` (also `tf`) and `onnx`, any case.
    fn from_str(s: &str) -> Result<ModelType> {
        match s.to_ascii_lowercase().as_str() {
            "pmml" => Ok(ModelType::Pmml),
            "tensorflow" | "tf" => Ok(ModelType::Tensorflow),
            "onnx" => Ok(ModelType::Onnx),
            _ => Err(Error::UnknownModelType(s.to_string())),
        }
    }
}

impl ModelDescriptor {
    /// The model's type; an out-of-range enum value on the wire reads as an error, not a default.
    pub fn model_type(&self) -> Result<ModelType> {
        ModelType::try_from(self.modeltype)
            .map_err(|_| Error::UnknownModelType(self.modeltype.to_string()))
    }

    /// A descriptor carrying the model by value.
    pub fn with_data(
        name: &str,
        description: &str,
        data_type: &str,
        model_type: ModelType,
        data: Vec<u8>,
    ) -> ModelDescriptor {
        ModelDescriptor {
            name: name.to_string(),
            description: description.to_string(),
            data_type: data_type.to_string(),
            modeltype: model_type as i32,
            message_content: Some(MessageContent::Data(data)),
        }
    }

    /// A descriptor carrying the model by reference (a file path the server can read).
    pub fn with_location(
        name: &str,
        description: &str,
        data_type: &str,
        model_type: ModelType,
        location: &str,
    ) -> ModelDescriptor {
        ModelDescriptor {
            name: name.to_string(),
            description: description.to_string(),
            data_type: data_type.to_string(),
            modeltype: model_type as i32,
            message_content: Some(MessageContent::Location(location.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_line_parses_in_column_order() {
        let r =
            WineRecord::from_csv_line("7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4;5", "wine")
                .unwrap();
        assert_eq!(r.features()[0], 7.4);
        assert_eq!(r.p_h, 3.51);
        assert_eq!(r.alcohol, 9.4);
        assert_eq!(r.data_type, "wine");
    }

    #[test]
    fn bad_csv_is_an_error_not_a_panic() {
        assert!(matches!(
            WineRecord::from_csv_line("1;2;3", "wine"),
            Err(Error::TooFewColumns { found: 3, .. })
        ));
        assert!(matches!(
            WineRecord::from_csv_line("7.4;x;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4", "wine"),
            Err(Error::NotANumber { column: 1, .. })
        ));
    }

    /// Bytes as protobuf-java writes them for the tutorial's messages, built by hand from the
    /// wire format (tag = field << 3 | wire type), so the field numbers are checked independently
    /// of prost's own encoder.
    #[test]
    fn wire_format_matches_the_tutorials_field_numbers() {
        let mut bytes = Vec::new();
        for field in 1u8..=11 {
            bytes.push(field << 3 | 1); // 64-bit
            bytes.extend_from_slice(&(field as f64).to_le_bytes());
        }
        bytes.extend_from_slice(&[12 << 3 | 2, 4]);
        bytes.extend_from_slice(b"wine");
        let r = WineRecord::decode(bytes.as_slice()).unwrap();
        assert_eq!(r.features(), [1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11.]);
        assert_eq!(r.data_type, "wine");
        assert_eq!(r.encode_to_vec(), bytes);

        let md = ModelDescriptor::with_data("n", "d", "wine", ModelType::Pmml, vec![0xAB]);
        let expected: Vec<u8> = vec![
            1 << 3 | 2,
            1,
            b'n',
            2 << 3 | 2,
            1,
            b'd',
            3 << 3 | 2,
            4,
            b'w',
            b'i',
            b'n',
            b'e',
            4 << 3,
            1,
            5 << 3 | 2,
            1,
            0xAB,
        ];
        assert_eq!(md.encode_to_vec(), expected);
        let loc = ModelDescriptor::with_location("n", "", "wine", ModelType::Tensorflow, "/m.pb");
        let back = ModelDescriptor::decode(loc.encode_to_vec().as_slice()).unwrap();
        assert!(
            matches!(back.message_content, Some(MessageContent::Location(ref l)) if l == "/m.pb")
        );
        assert!(matches!(back.model_type(), Ok(ModelType::Tensorflow)));
    }

    /// `ONNX = 2` is a new enum value: descriptors written before it (PMML = 1, TENSORFLOW = 0,
    /// the latter omitted on the wire as the proto3 default) decode exactly as before, and an
    /// ONNX descriptor carries the value 2 in field 4.
    #[test]
    fn onnx_is_a_new_enum_value_and_old_bytes_still_decode() {
        // Bytes as the tutorial's side wrote them before ONNX existed, built by hand.
        let old_pmml: Vec<u8> = vec![1 << 3 | 2, 1, b'n', 4 << 3, 1, 5 << 3 | 2, 1, 0xAB];
        let md = ModelDescriptor::decode(old_pmml.as_slice()).unwrap();
        assert!(matches!(md.model_type(), Ok(ModelType::Pmml)));
        assert_eq!(md.encode_to_vec(), old_pmml);
        let old_tf: Vec<u8> = vec![1 << 3 | 2, 1, b'n', 6 << 3 | 2, 2, b'/', b'm'];
        let md = ModelDescriptor::decode(old_tf.as_slice()).unwrap();
        assert!(matches!(md.model_type(), Ok(ModelType::Tensorflow)));

        let onnx = ModelDescriptor::with_data("n", "", "", ModelType::Onnx, vec![0xCD]);
        let bytes = onnx.encode_to_vec();
        assert_eq!(
            bytes,
            vec![1 << 3 | 2, 1, b'n', 4 << 3, 2, 5 << 3 | 2, 1, 0xCD]
        );
        let back = ModelDescriptor::decode(bytes.as_slice()).unwrap();
        assert!(matches!(back.model_type(), Ok(ModelType::Onnx)));
        assert_eq!(ModelType::Onnx as i32, 2);
        assert_eq!(ModelType::Onnx.as_str_name(), "ONNX");
        assert_eq!(ModelType::from_str_name("ONNX"), Some(ModelType::Onnx));
        assert!(matches!("ONNX".parse::<ModelType>(), Ok(ModelType::Onnx)));
    }

    #[test]
    fn unknown_model_type_is_rejected() {
        assert!(matches!(
            "keras".parse::<ModelType>(),
            Err(Error::UnknownModelType(_))
        ));
        assert!(matches!("PMML".parse::<ModelType>(), Ok(ModelType::Pmml)));
        let mut md = ModelDescriptor::with_data("n", "d", "wine", ModelType::Pmml, vec![]);
        md.modeltype = 7;
        assert!(matches!(md.model_type(), Err(Error::UnknownModelType(_))));
    }
}
