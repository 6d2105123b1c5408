//! The kernel log (`/dev/kmsg`): records read ([`reader`]), what each message says
//! ([`facts`]), and records turned into events ([`classifier`]).

mod classifier;
mod facts;
mod reader;

pub use classifier::*;
pub use facts::*;
pub use reader::*;
