//! Tapio wire types.
//!
//! Everything that crosses a process boundary is defined here: the versioned evidence
//! envelope that agents (and replays) send to `tapio-server`, the single-event body for
//! other tools, and the JSON bodies of the REST API that the CLI reads.
//!
//! This crate does no I/O. Decoding is strict about what it understands (types, names,
//! sizes, timestamps) and lenient about fields it does not know, so an agent one release
//! newer can still talk to this server within the same envelope version.

mod api;
pub mod auth;
pub mod bounds;
mod envelope;
pub mod shed;
pub mod text;
mod validate;

pub use api::*;
pub use envelope::*;
pub use validate::{DecodeError, Limits, MAX_OBJECT_BYTES, decode_batch, decode_single_event};
