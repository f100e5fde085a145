//! Environment-aware test timeouts, slow sources, sandboxes and stress runs; usable by any Rust project.
