//! The protobuf messages the exports write, written by hand with prost's
//! derives (no build-time code generation, no protoc): only the messages
//! and fields each export sets, with the field numbers of the upstream
//! `.proto` files, which the tests check against the official consumers
//! (`go tool pprof`, opentelemetry-proto's and Perfetto's Python bindings).

pub mod otlp;
pub mod perfetto;
pub mod pprof;
