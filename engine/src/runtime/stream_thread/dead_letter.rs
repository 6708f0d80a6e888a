//! What happens to a record whose processing failed: only data errors (a record that cannot be
//! deserialized, user logic rejecting it) reach the configured handler — log and continue, fail,
//! or a dead letter (the original record, with headers naming the error and where it came
//! from); any other error fails the task.

use super::*;

/// The record a failure is about, as it came from the broker: still borrowed from the
/// consumer (copied only if it is dead-lettered), or a copy kept by a task's buffer (`None`
/// unless the handler dead-letters).
pub(super) enum Original<'a> {
    Message(&'a BorrowedMessage<'a>),
    Record(Option<Record>),
}

impl Core {
    pub(super) fn handle_processing_error(
        &mut self,
        e: Error,
        metadata: &RecordMetadata,
        original: Original<'_>,
    ) -> Result<()> {
        self.shared.metrics.errors.fetch_add(1, Ordering::Relaxed);
        if !e.is_data_error() {
            return Err(e);
        }
        let (topic, partition, offset) = (&metadata.topic, metadata.partition, metadata.offset);
        let reason = e.to_string();
        let at = format!("{topic}[{partition}]@{offset}");
        // Most data errors name their record already.
        self.shared.metrics.push_error(if reason.contains(&at) {
            reason
        } else {
            format!("{at}: {reason}")
        });
        match &self.shared.config.error_handling {
            ErrorHandling::LogAndContinue => {
                log::warn!("{}: skipping {topic}[{partition}]@{offset}: {e}", self.name);
                Ok(())
            }
            ErrorHandling::DeadLetter { topic: dlq } => {
                log::warn!(
                    "{}: dead-lettering {topic}[{partition}]@{offset}: {e}",
                    self.name
                );
                let original_record = match original {
                    Original::Message(m) => to_record(m).1,
                    Original::Record(Some(r)) => r,
                    // Never: a buffered record is copied whenever the handler dead-letters.
                    Original::Record(None) => return Err(e),
                };
                let mut headers = original_record.headers;
                headers.push(("ks.error".into(), e.to_string().into_bytes()));
                headers.push(("ks.source.topic".into(), topic.clone().into_bytes()));
                headers.push((
                    "ks.source.partition".into(),
                    partition.to_string().into_bytes(),
                ));
                headers.push(("ks.source.offset".into(), offset.to_string().into_bytes()));
                self.producer.send_dead_letter(
                    dlq,
                    original_record.key.as_deref(),
                    original_record.value.as_deref(),
                    Some(original_record.timestamp),
                    &headers,
                )
            }
            ErrorHandling::LogAndFail => Err(e),
        }
    }
}
