//! Sending with back-off while the producer's local queue is full: librdkafka refuses a record
//! with `QueueFull` when its bounded queue is full; the caller waits for acknowledgements to make
//! room instead of failing or buffering without bound.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::time::{Duration, Instant};

fn is_queue_full(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
    )
}

/// Sends `record` with `send` (for instance `|r| producer.send(r)` of a `ThreadedProducer` or a
/// `BaseProducer`), calling `wait` each time the queue is full; `wait` returns `false` to give up,
/// and then the `QueueFull` error is returned.
pub fn send_with_backoff<R, T>(
    mut record: R,
    mut send: impl FnMut(R) -> Result<T, (KafkaError, R)>,
    mut wait: impl FnMut() -> bool,
) -> Result<T, KafkaError> {
    loop {
        match send(record) {
            Ok(t) => return Ok(t),
            Err((e, back)) if is_queue_full(&e) => {
                if !wait() {
                    return Err(e);
                }
                record = back;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// A `wait` for [`send_with_backoff`] that sleeps `d` each time and never gives up.
pub fn pause(d: Duration) -> impl FnMut() -> bool {
    move || {
        std::thread::sleep(d);
        true
    }
}

/// A `wait` for [`send_with_backoff`] that sleeps `d` each time until `deadline`.
pub fn pause_until(d: Duration, deadline: Instant) -> impl FnMut() -> bool {
    move || {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(d);
        true
    }
}

/// [`send_with_backoff`] for async producers (`|r| producer.send_result(r)` of a
/// `FutureProducer`): sleeps `d` on the tokio timer while the queue is full.
pub async fn send_with_backoff_async<R, T>(
    mut record: R,
    mut send: impl FnMut(R) -> Result<T, (KafkaError, R)>,
    d: Duration,
) -> Result<T, KafkaError> {
    loop {
        match send(record) {
            Ok(t) => return Ok(t),
            Err((e, back)) if is_queue_full(&e) => {
                tokio::time::sleep(d).await;
                record = back;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> KafkaError {
        KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
    }

    #[test]
    fn retries_while_full_then_sends() {
        let mut tries = 0;
        let sent = send_with_backoff(
            7,
            |r| {
                tries += 1;
                if tries < 3 {
                    Err((full(), r))
                } else {
                    Ok(r * 2)
                }
            },
            || true,
        );
        assert_eq!(sent.ok(), Some(14));
        assert_eq!(tries, 3);
    }

    #[test]
    fn gives_up_when_wait_says_so_and_passes_other_errors() {
        let r: Result<(), _> = send_with_backoff(1, |r| Err((full(), r)), || false);
        assert!(matches!(r, Err(e) if is_queue_full(&e)));
        let r: Result<(), _> = send_with_backoff(
            1,
            |r| {
                Err((
                    KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                    r,
                ))
            },
            || true,
        );
        assert!(matches!(r, Err(e) if !is_queue_full(&e)));
    }
}
