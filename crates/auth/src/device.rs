//! Device-code polling (RFC 8628 and its look-alikes): wait the interval,
//! ask, slow down when told, stop at the code's expiry.

use std::time::Duration;

use tokio::time::Instant;

/// What one poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll<T> {
    /// The user has not finished yet.
    Pending,
    /// Polling too fast: the new interval, or the old one plus 5 s.
    SlowDown(Option<Duration>),
    /// The login finished.
    Done(T),
}

/// Why a device login ended without a credential.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError<E> {
    /// The code expired before the user finished.
    #[error("the code expired before the login was finished; start again")]
    Expired,
    /// The user refused.
    #[error("the login was refused: {0}")]
    Denied(String),
    /// Asking failed.
    #[error(transparent)]
    Failed(E),
}

/// The interval RFC 8628 adds on `slow_down`.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Polls every `interval` until `poll` reports the login done or failed,
/// or `deadline` passes.
pub async fn poll_device<T, E, F, Fut>(
    mut interval: Duration,
    deadline: Instant,
    mut poll: F,
) -> Result<T, DeviceError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<DevicePoll<T>, DeviceError<E>>>,
{
    loop {
        if Instant::now() + interval > deadline {
            return Err(DeviceError::Expired);
        }
        tokio::time::sleep(interval).await;
        match poll().await? {
            DevicePoll::Pending => {}
            DevicePoll::SlowDown(next) => interval = next.unwrap_or(interval + SLOW_DOWN_STEP),
            DevicePoll::Done(value) => return Ok(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slows_down_when_told_and_returns_the_result() {
        let script = RefCell::new(vec![
            DevicePoll::Pending,
            DevicePoll::SlowDown(None),
            DevicePoll::Done("token"),
        ]);
        let times = RefCell::new(Vec::new());
        let start = Instant::now();
        let result: Result<_, DeviceError<()>> = poll_device(
            Duration::from_secs(5),
            start + Duration::from_mins(15),
            || {
                times.borrow_mut().push(start.elapsed().as_secs());
                let next = script.borrow_mut().remove(0);
                async move { Ok(next) }
            },
        )
        .await;
        assert_eq!(result.unwrap(), "token");
        assert_eq!(*times.borrow(), [5, 10, 20]);
    }

    #[tokio::test(start_paused = true)]
    async fn expires_at_the_deadline() {
        let start = Instant::now();
        let result: Result<(), DeviceError<()>> = poll_device(
            Duration::from_secs(5),
            start + Duration::from_secs(12),
            || async { Ok(DevicePoll::Pending) },
        )
        .await;
        assert!(matches!(result, Err(DeviceError::Expired)));
        assert_eq!(start.elapsed().as_secs(), 10);
    }
}
