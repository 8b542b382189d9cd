//! Sizes as Docker reads them (its go-units package): binary units for
//! memory, tmpfs and disk sizes (`RAMInBytes`: `64m` is 64 MiB), decimal
//! units for log sizes (`FromHumanSize`: `10m` is 10 MB).

/// A size that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid size: '{0}'")]
    InvalidSize(String),
    #[error("invalid suffix: '{0}'")]
    InvalidSuffix(String),
}

/// `64m`, `1g`, `512k`, `100`: bytes in binary units (k is 1024), as
/// Docker's `RAMInBytes` reads `--memory`, `--shm-size`, `tmpfs-size`.
pub fn ram_in_bytes(text: &str) -> Result<i64, Error> {
    let (number, unit) = split_number(text);
    let value: f64 = number
        .parse()
        .map_err(|_| Error::InvalidSize(text.to_owned()))?;
    let scale: i64 = match unit.to_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(Error::InvalidSuffix(unit.to_owned())),
    };
    Ok((value * scale as f64) as i64)
}

/// `10m`, `1k`, `2g`, `100`: a positive size in decimal units (k is 1000),
/// as Docker's `FromHumanSize` reads the json-file log's `max-size`.
pub fn from_human_size(text: &str) -> Result<u64, Error> {
    let (number, unit) = split_number(text.trim());
    let scale: f64 = match unit.to_ascii_lowercase().trim_end_matches('b') {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        _ => return Err(Error::InvalidSuffix(unit.to_owned())),
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| *n > 0.0)
        .ok_or_else(|| Error::InvalidSize(text.to_owned()))?;
    Ok((value * scale) as u64)
}

/// The number and the unit after it.
fn split_number(text: &str) -> (&str, &str) {
    match text
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
    {
        Some((i, _)) => (&text[..i], &text[i..]),
        None => (text, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_are_binary_and_log_sizes_decimal_as_dockers() {
        assert_eq!(ram_in_bytes("64m"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(from_human_size("10m"), Ok(10_000_000));
        assert_eq!(from_human_size("1k"), Ok(1000));
        assert_eq!(from_human_size("2GB"), Ok(2_000_000_000));
    }

    #[test]
    fn bad_sizes_name_the_bad_part() {
        assert_eq!(
            ram_in_bytes("lots").unwrap_err().to_string(),
            "invalid size: 'lots'"
        );
        assert_eq!(
            ram_in_bytes("5x").unwrap_err().to_string(),
            "invalid suffix: 'x'"
        );
        assert!(from_human_size("x").is_err());
        assert!(from_human_size("0").is_err());
    }
}
