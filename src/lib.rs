//! placeholder
pub use virtkit_core::*;
