//! Readiness events and the [`Source`] trait, as `mio::event`.

mod events;
mod readiness;
mod source;

pub use self::events::{Events, Iter};
pub use self::readiness::Event;
pub use self::source::Source;
