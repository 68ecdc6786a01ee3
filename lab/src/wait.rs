//! Bounded waiting. Every wait in the lab goes through [`wait_until`], so a
//! server that never comes up fails a test with a message instead of hanging
//! it.

use std::time::{Duration, Instant};

use anyhow::bail;

/// Polls `check` until it returns `Some`, an error, or `timeout` passes.
/// Polls quickly at first (a few ms) and backs off to 100 ms, so fast
/// conditions cost little and slow ones do not spin. `what` names the
/// condition in the timeout error.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    let mut step = Duration::from_millis(2);
    loop {
        if let Some(value) = check()? {
            return Ok(value);
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(step.min(timeout - elapsed));
        step = (step * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_value_once_ready() {
        let mut n = 0;
        let got = wait_until("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            Ok((n >= 3).then_some(n))
        })
        .unwrap();
        assert_eq!(got, 3);
    }

    #[test]
    fn times_out_with_the_condition_named() {
        let start = Instant::now();
        let err = wait_until::<()>("godot", Duration::from_millis(50), || Ok(None)).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(err.to_string().contains("godot"), "{err}");
    }

    #[test]
    fn passes_errors_through() {
        let err = wait_until::<()>("x", Duration::from_secs(5), || anyhow::bail!("boom")).unwrap_err();
        assert_eq!(err.to_string(), "boom");
    }
}
