//! Payload decoding for `ks-client read`: WineRecord, ModelDescriptor, UTF-8 text or raw bytes.

use ks_proto::{Message, MessageContent, ModelDescriptor, WineRecord};
use serde_json::{json, Value};

/// How to read a topic's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Guess per message: WineRecord, then ModelDescriptor, then text, then bytes.
    Auto,
    Wine,
    Model,
    Text,
    Raw,
}

/// Decodes one payload into JSON: `{"type": ..., "value": ...}`.
pub fn decode(payload: &[u8], format: Format) -> Value {
    match format {
        Format::Wine => wine(payload).unwrap_or_else(|| undecodable("WineRecord", payload)),
        Format::Model => model(payload).unwrap_or_else(|| undecodable("ModelDescriptor", payload)),
        Format::Text => text(payload).unwrap_or_else(|| raw(payload)),
        Format::Raw => raw(payload),
        Format::Auto => wine(payload)
            .or_else(|| model(payload))
            .or_else(|| text(payload))
            .unwrap_or_else(|| raw(payload)),
    }
}

fn wine(payload: &[u8]) -> Option<Value> {
    // protobuf decoding accepts almost anything (unknown fields are skipped), so require what a
    // real WineRecord has: a data type, or at least some of the feature fields.
    let r = WineRecord::decode(payload).ok()?;
    if r.data_type.is_empty() && r.features().iter().all(|f| *f == 0.0) {
        return None;
    }
    let features: serde_json::Map<String, Value> = ks_proto::WINE_FEATURES
        .iter()
        .zip(r.features())
        .map(|(n, v)| (n.to_string(), json!(v)))
        .collect();
    Some(json!({"type": "WineRecord", "value": {"dataType": r.data_type, "features": features}}))
}

fn model(payload: &[u8]) -> Option<Value> {
    let m = ModelDescriptor::decode(payload).ok()?;
    let content = match &m.message_content {
        Some(MessageContent::Data(d)) => json!({"data_bytes": d.len()}),
        Some(MessageContent::Location(l)) => json!({"location": l}),
        None => return None,
    };
    let model_type = match m.model_type() {
        Ok(t) => t.as_str_name().to_string(),
        Err(_) => format!("unknown({})", m.modeltype),
    };
    Some(json!({"type": "ModelDescriptor", "value": {
        "name": m.name, "description": m.description, "dataType": m.data_type,
        "modeltype": model_type, "content": content}}))
}

fn text(payload: &[u8]) -> Option<Value> {
    let s = std::str::from_utf8(payload).ok()?;
    if s.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return None;
    }
    Some(json!({"type": "text", "value": s}))
}

fn raw(payload: &[u8]) -> Value {
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    json!({"type": "bytes", "value": hex})
}

fn undecodable(expected: &str, payload: &[u8]) -> Value {
    let mut v = raw(payload);
    v["error"] = json!(format!("not a {expected}"));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use ks_proto::ModelType;

    #[test]
    fn auto_tells_records_from_models() {
        let rec = WineRecord::from_features([1.0; 11], "wine").encode_to_vec();
        assert_eq!(decode(&rec, Format::Auto)["type"], "WineRecord");
        let md = ModelDescriptor::with_data("m", "d", "wine", ModelType::Pmml, b"<PMML/>".to_vec())
            .encode_to_vec();
        let v = decode(&md, Format::Auto);
        assert_eq!(v["type"], "ModelDescriptor");
        assert_eq!(v["value"]["modeltype"], "PMML");
        assert_eq!(v["value"]["content"]["data_bytes"], 7);
        assert_eq!(decode(b"hello", Format::Auto)["type"], "text");
        assert_eq!(decode(&[0xff, 0x00], Format::Auto)["type"], "bytes");
    }

    #[test]
    fn forced_format_reports_mismatch() {
        let v = decode(&[0xff, 0xff, 0xff], Format::Wine);
        assert!(v["error"].is_string());
    }
}
