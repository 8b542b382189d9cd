//! A signal as a user names it (`SIGUSR1`, `usr1`, `10`): kept as given,
//! since `inspect` shows it so, and known by number once it is checked.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Signal {
    name: String,
    number: i32,
}

impl Signal {
    /// The signal `name` names; an unknown one is refused in Docker's
    /// words.
    pub fn parse(name: &str) -> Result<Signal> {
        let number = keel_runtime::parse_signal(name)
            .map_err(|_| Error::InvalidParameter(format!("Invalid signal: {name}")))?;
        Ok(Signal {
            name: name.to_owned(),
            number,
        })
    }

    pub fn number(&self) -> i32 {
        self.number
    }
}

impl TryFrom<String> for Signal {
    type Error = Error;

    fn try_from(name: String) -> Result<Signal> {
        Signal::parse(&name)
    }
}

impl From<Signal> for String {
    fn from(signal: Signal) -> String {
        signal.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_keeps_its_name_and_knows_its_number() {
        let signal = Signal::parse("SIGUSR1").unwrap();
        assert_eq!(signal.number(), libc::SIGUSR1);
        assert_eq!(Signal::parse("9").unwrap().number(), 9);
        assert_eq!(serde_json::to_value(&signal).unwrap(), "SIGUSR1");
        let read: Signal = serde_json::from_str("\"usr1\"").unwrap();
        assert_eq!(read.number(), libc::SIGUSR1);
        assert_eq!(
            Signal::parse("SIGNOPE").unwrap_err().to_string(),
            "Invalid signal: SIGNOPE"
        );
        assert!(serde_json::from_str::<Signal>("\"SIGNOPE\"").is_err());
    }
}
