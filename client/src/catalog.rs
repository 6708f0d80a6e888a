//! The data set and the models shipped in `data/`, as the provider publishes them.

use crate::{Error, Result};
use ks_proto::{ModelType, WineRecord};
use std::path::{Path, PathBuf};

/// A model file and the type it is published as.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    pub path: PathBuf,
    pub model_type: ModelType,
}

impl ModelFile {
    /// The model's name as published: the file stem.
    pub fn name(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The type a model file is published as, from its extension: `.pmml`/`.xml`, `.pb` or `.onnx`.
pub fn model_type_of(path: &Path) -> Result<ModelType> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
    {
        Some(e) if e == "pmml" || e == "xml" => Ok(ModelType::Pmml),
        Some(e) if e == "pb" => Ok(ModelType::Tensorflow),
        Some(e) if e == "onnx" => Ok(ModelType::Onnx),
        _ => Err(Error::UnknownModelFile(path.to_path_buf())),
    }
}

/// Every PMML model in `dir` (sorted by name), then every TensorFlow graph: the tutorial's order.
pub fn models_in(dir: &Path) -> Result<Vec<ModelFile>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::ReadFile {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut models: Vec<ModelFile> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter_map(|path| {
            model_type_of(&path)
                .ok()
                .map(|model_type| ModelFile { path, model_type })
        })
        .collect();
    models.sort_by_key(|m| (m.model_type == ModelType::Tensorflow, m.path.clone()));
    Ok(models)
}

/// Reads the wine CSV (`;`-separated, no header) into records of `data_type`.
/// A bad line is an error naming the line: the provider publishes exactly the file or nothing.
pub fn wine_records(path: &Path, data_type: &str) -> Result<Vec<WineRecord>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let records = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            WineRecord::from_csv_line(line, data_type).map_err(|source| Error::BadData {
                path: path.to_path_buf(),
                line_no: i + 1,
                source,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if records.is_empty() {
        return Err(Error::NoRecords(path.to_path_buf()));
    }
    Ok(records)
}

/// The checkout's `data/` directory (where the binary was built from), the default for `--data-dir`.
pub fn default_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.join("data"))
        .unwrap_or_else(|| PathBuf::from("data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_models_are_all_found_pmml_first() {
        let models = models_in(&default_data_dir()).unwrap();
        assert_eq!(models.len(), 8);
        assert!(models[..7].iter().all(|m| m.model_type == ModelType::Pmml));
        assert_eq!(models[7].model_type, ModelType::Tensorflow);
        assert_eq!(models[7].name(), "optimized_WineQuality");
    }

    #[test]
    fn extension_decides_the_type() {
        assert!(matches!(
            model_type_of(Path::new("a.PMML")),
            Ok(ModelType::Pmml)
        ));
        assert!(matches!(
            model_type_of(Path::new("a.pb")),
            Ok(ModelType::Tensorflow)
        ));
        assert!(matches!(
            model_type_of(Path::new("a.onnx")),
            Ok(ModelType::Onnx)
        ));
        assert!(matches!(
            model_type_of(Path::new("a.h5")),
            Err(Error::UnknownModelFile(_))
        ));
    }

    #[test]
    fn wine_csv_reads_every_row() {
        let recs = wine_records(&default_data_dir().join("winequality_red.csv"), "wine").unwrap();
        assert_eq!(recs.len(), 1599);
        assert_eq!(recs[0].fixed_acidity, 7.4);
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.csv");
        std::fs::write(
            &p,
            "7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4;5\n1;2\n",
        )
        .unwrap();
        assert!(matches!(
            wine_records(&p, "wine"),
            Err(Error::BadData { line_no: 2, .. })
        ));
    }
}
