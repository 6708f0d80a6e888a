//! ks-stores (being written).
