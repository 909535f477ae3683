//! `--timeout` values: `500ms`, `5s`, `2m`, or a plain number of seconds.

use std::time::Duration;

/// Parses a timeout.
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let amount: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 500ms, 5s or 2m)"))?;
    let seconds = match unit {
        "" | "s" => amount,
        "ms" => amount / 1000.0,
        "m" => amount * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    if !(seconds > 0.0 && seconds < 86_400.0) {
        return Err(format!("{text:?} must be more than 0 and less than a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units, plain seconds and refusals.
    #[test]
    fn timeouts_parse() {
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("5h").is_err());
        assert!(parse_timeout("fast").is_err());
    }
}
