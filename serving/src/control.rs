//! What a model-topic message asks for, read from its Kafka headers ([`ks_proto::control`]):
//! a model to serve ([`Role::Champion`], the default), a model to score in shadow
//! ([`Role::Challenger`]), or a control action ([`Action`]) on a data type's models.
//!
//! The payload stays a `ModelDescriptor` either way; a control message's names only its
//! `dataType` and carries no model, so a reader unaware of the headers cannot mistake it for a
//! model (it has none to build).
//!
//! ```
//! use ks_serving::control::{intent, Action, Intent, Role};
//! let headers = vec![("ks.action".to_string(), b"rollback".to_vec())];
//! assert_eq!(intent(&headers)?, Intent::Control(Action::Rollback));
//! assert_eq!(intent(&[])?, Intent::Model(Role::Champion));
//! # Ok::<(), ks_serving::Error>(())
//! ```

use crate::{Error, Origin, Result};
use ks_proto::control::{
    ACTION_HEADER, CHALLENGER, CHAMPION, PROMOTE, ROLE_HEADER, ROLLBACK, VERSION_HEADER,
};
use ks_proto::{Message, ModelDescriptor};

/// The role of a model message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The model serves: its predictions are the results.
    Champion,
    /// The model is scored beside the champion; its predictions go in a separate field.
    Challenger,
}

/// A control action on a data type's models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Serve the previous version again.
    Rollback,
    /// The challenger becomes the champion; with a version, only if the challenger is that one
    /// (so a repeated or late promote cannot promote a newer challenger by accident).
    Promote {
        /// The challenger's `<partition>:<offset>`, when the message names it.
        version: Option<String>,
    },
}

impl Action {
    /// `rollback` or `promote`, as in the header.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Rollback => ROLLBACK,
            Action::Promote { .. } => PROMOTE,
        }
    }

    /// The headers of a control message for this action.
    pub fn headers(&self) -> Vec<(String, Vec<u8>)> {
        let mut h = vec![(ACTION_HEADER.to_string(), self.as_str().as_bytes().to_vec())];
        if let Action::Promote { version: Some(v) } = self {
            h.push((VERSION_HEADER.to_string(), v.as_bytes().to_vec()));
        }
        h
    }
}

/// What a model-topic message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Build the model and install it in this role.
    Model(Role),
    /// Apply a control action.
    Control(Action),
}

fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &'static str) -> Result<Option<&'a str>> {
    // The last occurrence wins, as Kafka clients' "last header" lookups do.
    match headers.iter().rev().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) => std::str::from_utf8(v)
            .map(|s| Some(s.trim()))
            .map_err(|_| Error::BadHeader { name }),
    }
}

/// Reads what a message asks for from its headers. An unknown action or role is an error
/// (never a model installed in a role nobody asked for).
pub fn intent(headers: &[(String, Vec<u8>)]) -> Result<Intent> {
    if let Some(action) = header(headers, ACTION_HEADER)? {
        let action = match action {
            ROLLBACK => Action::Rollback,
            PROMOTE => Action::Promote {
                version: header(headers, VERSION_HEADER)?
                    .filter(|v| !v.is_empty())
                    .map(str::to_string),
            },
            other => return Err(Error::UnknownAction(other.to_string())),
        };
        return Ok(Intent::Control(action));
    }
    match header(headers, ROLE_HEADER)? {
        None | Some(CHAMPION) | Some("") => Ok(Intent::Model(Role::Champion)),
        Some(CHALLENGER) => Ok(Intent::Model(Role::Challenger)),
        Some(other) => Err(Error::UnknownRole(other.to_string())),
    }
}

/// A decoded control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// The data type it acts on.
    pub data_type: String,
    /// What it asks for.
    pub action: Action,
    /// Where it came from.
    pub origin: Origin,
}

/// Decodes a control message's payload: a `ModelDescriptor` naming a data type and no model.
pub fn decode_control(payload: &[u8], action: Action, origin: &Origin) -> Result<Control> {
    let md = ModelDescriptor::decode(payload).map_err(Error::NotADescriptor)?;
    if md.data_type.is_empty() {
        return Err(Error::NoDataType);
    }
    if md.message_content.is_some() {
        return Err(Error::ControlWithModel {
            action: action.as_str(),
        });
    }
    Ok(Control {
        data_type: md.data_type,
        action,
        origin: origin.clone(),
    })
}

/// Where a server publishes control messages it decides on itself (an automatic promotion),
/// so every instance applies them from the model topic, in order, as it would an operator's.
pub trait ControlSink: Send + Sync {
    /// Publishes `action` for `data_type` on the model topic.
    fn publish(&self, data_type: &str, action: &Action);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }

    #[test]
    fn headers_name_the_intent() {
        assert_eq!(
            intent(&h(&[("ks.role", b"challenger")])).ok(),
            Some(Intent::Model(Role::Challenger))
        );
        assert_eq!(
            intent(&h(&[("ks.action", b"promote"), ("ks.version", b"0:9")])).ok(),
            Some(Intent::Control(Action::Promote {
                version: Some("0:9".into())
            }))
        );
        assert_eq!(
            intent(&h(&[("other", b"x")])).ok(),
            Some(Intent::Model(Role::Champion))
        );
    }

    #[test]
    fn an_unknown_action_or_role_or_bad_bytes_is_an_error() {
        assert!(matches!(
            intent(&h(&[("ks.action", b"explode")])),
            Err(Error::UnknownAction(a)) if a == "explode"
        ));
        assert!(matches!(
            intent(&h(&[("ks.role", b"judge")])),
            Err(Error::UnknownRole(_))
        ));
        assert!(matches!(
            intent(&h(&[("ks.action", b"\xff")])),
            Err(Error::BadHeader { .. })
        ));
    }

    #[test]
    fn a_control_message_names_a_data_type_and_no_model() {
        let o = Origin::new("m", 0, 1);
        let ok = ks_proto::control::descriptor("wine").encode_to_vec();
        assert_eq!(
            decode_control(&ok, Action::Rollback, &o)
                .ok()
                .map(|c| c.data_type),
            Some("wine".to_string())
        );
        let none = ks_proto::control::descriptor("").encode_to_vec();
        assert!(matches!(
            decode_control(&none, Action::Rollback, &o),
            Err(Error::NoDataType)
        ));
        let with_model =
            ModelDescriptor::with_data("m", "", "wine", ks_proto::ModelType::Pmml, vec![1])
                .encode_to_vec();
        assert!(matches!(
            decode_control(&with_model, Action::Rollback, &o),
            Err(Error::ControlWithModel { .. })
        ));
        assert!(matches!(
            decode_control(b"\xff\xff", Action::Rollback, &o),
            Err(Error::NotADescriptor(_))
        ));
    }

    #[test]
    fn action_headers_round_trip() {
        let a = Action::Promote {
            version: Some("0:4".into()),
        };
        assert_eq!(intent(&a.headers()).ok(), Some(Intent::Control(a)));
    }
}
