//! Row ↔ model mapping is shared by both backends: see `crate::rows`.

pub use crate::rows::*;
