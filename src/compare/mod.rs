//! Whether what Temporal holds is what the project wants, and what differs:
//! the one place that compares a held schedule with a desired one. `plan`,
//! `reconcile` and `import` all ask here, so they never disagree.
//!
//! - `changes`: the normal form of a schedule ([`changes::normalized`]: two
//!   spellings of one meaning compare equal) and its managed fields in the
//!   words `plan` shows ([`changes::field_changes`]);
//! - `action`: the normal form of each start option of the action;
//! - `same`: whether a held schedule has every managed field of a desired
//!   one (`same_schedule`), and whether it holds it in the wanted pause
//!   state with the wanted fingerprint (`holds`).

pub mod action;
pub mod changes;
mod same;

pub(crate) use same::{holds, same_schedule};
