//! Restart policies (`--restart`), as Docker applies them: which exits
//! restart a container, and after how long (Docker's back-off: 100 ms,
//! doubling per restart up to a minute, back to 100 ms after a run of ten
//! seconds or more).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::container::State;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// "no" (or empty), "always", "on-failure", "unless-stopped".
    pub name: String,
    /// For on-failure: restarts at most this many times (0: no limit).
    pub maximum_retry_count: u32,
}

impl RestartPolicy {
    /// Checks the policy as Docker does, with Docker's words.
    pub fn check(&self, auto_remove: bool) -> Result<()> {
        let invalid =
            |why: String| Error::InvalidParameter(format!("invalid restart policy: {why}"));
        match self.name.as_str() {
            "" | "no" | "always" | "unless-stopped" if self.maximum_retry_count > 0 => Err(
                invalid("maximum retry count can only be used with 'on-failure'".to_owned()),
            ),
            "" | "no" => Ok(()),
            "always" | "unless-stopped" | "on-failure" if auto_remove => {
                Err(Error::InvalidParameter(
                    "can't create 'AutoRemove' container with restart policy".to_owned(),
                ))
            }
            "always" | "unless-stopped" | "on-failure" => Ok(()),
            other => Err(invalid(format!(
                "unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            ))),
        }
    }

    /// After an exit recorded in `state`: how long to wait before starting
    /// the container again, or None to leave it stopped.
    pub(crate) fn delay(&self, state: &State, ran_for: Duration) -> Option<Duration> {
        if state.manually_stopped {
            return None;
        }
        let restart = match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                state.exit_code != 0
                    && (self.maximum_retry_count == 0
                        || state.restart_count < self.maximum_retry_count)
            }
            _ => false,
        };
        if !restart {
            return None;
        }
        const FIRST: Duration = Duration::from_millis(100);
        if ran_for >= Duration::from_secs(10) {
            return Some(FIRST);
        }
        let doublings = state.restart_count.min(10);
        Some((FIRST * 2u32.pow(doublings)).min(Duration::from_secs(60)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::Status;

    fn exited(code: i32, restarts: u32) -> State {
        State {
            status: Status::Exited,
            exit_code: code,
            exits: 1,
            restart_count: restarts,
            ..State::created()
        }
    }

    fn policy(name: &str, max: u32) -> RestartPolicy {
        RestartPolicy {
            name: name.to_owned(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn policies_decide_restarts_with_dockers_back_off() {
        let short = Duration::from_secs(1);
        assert_eq!(policy("no", 0).delay(&exited(1, 0), short), None);
        assert_eq!(
            policy("always", 0).delay(&exited(0, 0), short),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            policy("always", 0).delay(&exited(0, 3), short),
            Some(Duration::from_millis(800))
        );
        assert_eq!(
            policy("always", 0).delay(&exited(0, 30), short),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            policy("always", 0).delay(&exited(0, 5), Duration::from_secs(11)),
            Some(Duration::from_millis(100)),
            "a long run resets the back-off"
        );
        assert_eq!(policy("on-failure", 0).delay(&exited(0, 0), short), None);
        assert!(
            policy("on-failure", 2)
                .delay(&exited(3, 1), short)
                .is_some()
        );
        assert_eq!(policy("on-failure", 2).delay(&exited(3, 2), short), None);
        let mut stopped = exited(0, 0);
        stopped.manually_stopped = true;
        assert_eq!(policy("unless-stopped", 0).delay(&stopped, short), None);
    }

    #[test]
    fn bad_policies_are_refused_in_dockers_words() {
        assert!(policy("always", 0).check(false).is_ok());
        assert_eq!(
            policy("sometimes", 0).check(false).unwrap_err().to_string(),
            "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        );
        assert_eq!(
            policy("always", 3).check(false).unwrap_err().to_string(),
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        );
        assert!(policy("always", 0).check(true).is_err());
    }
}
