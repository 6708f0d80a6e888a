//! ks-models (being written).
