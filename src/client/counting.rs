//! Counting an answer's output tokens with the request's tokenizer, after the answer ended
//! (never per chunk), off the request thread when the answer is long.

use std::sync::Arc;

use crate::plan::TokenCount;

/// Answers longer than this (bytes) are counted on a blocking thread, not the request thread.
const COUNT_INLINE_BYTES: usize = 4096;

/// A tokenizer's count of a whole answer, after it ended (never per chunk): short answers at
/// once, long ones on a blocking thread so the request thread keeps stamping other responses.
pub async fn count_tokens(tokenizer: Arc<dyn TokenCount>, text: String) -> u64 {
    if text.len() <= COUNT_INLINE_BYTES {
        return tokenizer.count(&text);
    }
    tokio::task::spawn_blocking(move || tokenizer.count(&text))
        .await
        .unwrap_or(0)
}
