//! Nothing to link: this package holds the interoperability tests against
//! josekit (`tests/`) and the josekit comparison benchmark (`benches/`),
//! outside jwe-session's workspace so that josekit's serde_json features
//! (`preserve_order`) never reach the main crate's tests and benchmarks.
