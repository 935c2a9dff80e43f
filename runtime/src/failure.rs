//! The one error policy of every handler: how blocking work, panics and object store errors
//! become a [`HandlerError`], so each stage retries and dead-letters the same way.

use std::any::Any;

use imgpipe_contract::store::StoreError;

use crate::worker::HandlerError;

/// Runs CPU-bound or blocking work (decoding, a model run) off the async workers. A panic in it
/// is a property of the input more often than not (a decoder meeting bytes it did not expect),
/// so it is [`HandlerError::BadInput`]: retried a bounded number of times, then dead-lettered
/// with the panic's message.
pub async fn run_blocking<T, F>(work: F) -> Result<T, HandlerError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        if e.is_panic() {
            HandlerError::BadInput(format!("crashed: {}", panic_text(e.into_panic())))
        } else {
            HandlerError::Transient(format!("work cancelled: {e}"))
        }
    })
}

/// The message a panic carried.
pub fn panic_text(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic without a message".to_owned())
}

/// An object store error while reading `what` (for example "original originals/a/b.jpg").
/// Unreachable or refusing: transient. Missing or over the size limit: bad input, retried a
/// bounded number of times (an eventually consistent store may not show a new object at once),
/// then dead-lettered with the reason.
pub fn store_error(what: &str, error: &StoreError) -> HandlerError {
    let reason = format!("{what}: {error}");
    match error {
        StoreError::NotFound { .. } | StoreError::TooLarge { .. } => HandlerError::BadInput(reason),
        StoreError::Unavailable(_) | StoreError::Rejected(_) => HandlerError::Transient(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_bad_input_with_its_message() {
        let result: Result<(), _> = run_blocking(|| panic!("bad huffman table")).await;
        match result {
            Err(HandlerError::BadInput(reason)) => assert!(reason.contains("bad huffman table")),
            other => panic!("expected BadInput, got {other:?}"),
        }
    }

    #[test]
    fn store_errors_are_classified_once() {
        let missing = StoreError::NotFound {
            bucket: "b".into(),
            key: "k".into(),
        };
        let large = StoreError::TooLarge { size: 9, limit: 1 };
        let down = StoreError::Unavailable("refused".into());
        let denied = StoreError::Rejected("403".into());
        assert!(matches!(
            store_error("x", &missing),
            HandlerError::BadInput(_)
        ));
        assert!(matches!(
            store_error("x", &large),
            HandlerError::BadInput(_)
        ));
        assert!(matches!(
            store_error("x", &down),
            HandlerError::Transient(_)
        ));
        assert!(matches!(
            store_error("x", &denied),
            HandlerError::Transient(_)
        ));
        assert!(
            store_error("original b/k", &missing)
                .to_string()
                .starts_with("original b/k: ")
        );
    }
}
