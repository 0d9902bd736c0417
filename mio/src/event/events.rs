//! `Events`: the bounded buffer [`crate::Poll::poll`] fills, and its iterator.

use super::Event;

/// The events one [`crate::Poll::poll`] returned, as `mio::Events`; holds at most its
/// capacity.
#[derive(Debug)]
pub struct Events {
    pub(crate) inner: Vec<Event>,
    capacity: usize,
}

impl Events {
    /// A buffer for at most `capacity` events per poll.
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            inner: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// The most events one poll returns.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the last poll returned nothing.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The events, in the order the kernel reported them.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.inner.iter(),
        }
    }

    /// Forgets the events.
    pub fn clear(&mut self) {
        self.inner.clear();
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over [`Events`], as `mio::event::Iter`.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    inner: std::slice::Iter<'a, Event>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Event;
    fn next(&mut self) -> Option<&'a Event> {
        self.inner.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
    fn count(self) -> usize {
        self.inner.len()
    }
}
