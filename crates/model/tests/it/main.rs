//! chat-model's properties over inputs a client controls.
#![allow(clippy::unwrap_used)]

mod inputs;
