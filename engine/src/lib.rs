//! Validated zero-copy GGUF loading with deadlines, progress and cancellation.
