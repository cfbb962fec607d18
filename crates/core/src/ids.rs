//! Identifiers the gateway mints.

use std::fmt;

use uuid::Uuid;

/// The id of one client request, a UUID v7 so ids sort by time.
///
/// The engine mints it (this crate reads no clock), echoes it to the client
/// in `x-request-id` and stores it with the usage record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(Uuid);

impl From<Uuid> for RequestId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}
