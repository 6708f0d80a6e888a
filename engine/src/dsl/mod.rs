//! The DSL (being written).
