//! Duration parsing for configuration: ISO 8601 durations as Knative's `spec.delivery` uses them
//! (`PT0.2S`, `PT1M30S`, `P1D`) and Go durations as TriggerMesh's variables use them (`45s`,
//! `1m30s`, `500ms`).

use std::time::Duration;

/// Parses either form; the error says which forms are accepted.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let parsed = if text.starts_with('P') || text.starts_with('p') {
        parse_iso8601(text)
    } else {
        parse_go(text)
    };
    parsed.ok_or_else(|| {
        format!(
            "expected a duration such as \"PT0.5S\" (ISO 8601) or \"30s\", \"1m30s\", \"500ms\", found {text:?}"
        )
    })
}

/// `P[nD]T[nH][nM][n.nS]` (weeks, months and years are not meaningful here).
fn parse_iso8601(text: &str) -> Option<Duration> {
    let rest = text.get(1..)?.to_ascii_uppercase();
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => (date.to_string(), Some(time.to_string())),
        None => (rest, None),
    };
    let mut seconds = 0f64;
    let mut any = false;
    for (value, unit) in components(&date)? {
        match unit {
            'D' => seconds += value * 86_400.0,
            _ => return None,
        }
        any = true;
    }
    if let Some(time) = time {
        let parts = components(&time)?;
        if parts.is_empty() {
            return None;
        }
        for (value, unit) in parts {
            seconds += value
                * match unit {
                    'H' => 3_600.0,
                    'M' => 60.0,
                    'S' => 1.0,
                    _ => return None,
                };
            any = true;
        }
    }
    any.then(|| Duration::try_from_secs_f64(seconds).ok())?
}

/// Splits `1H30M` into `[(1, 'H'), (30, 'M')]`.
fn components(text: &str) -> Option<Vec<(f64, char)>> {
    let mut out = Vec::new();
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
        } else {
            let value: f64 = number.parse().ok()?;
            out.push((value, c));
            number.clear();
        }
    }
    number.is_empty().then_some(out)
}

/// Go's `time.ParseDuration` subset: a sequence of `<number><unit>` with units ns, us, ms, s, m, h.
fn parse_go(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3_600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * factor;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_and_go_forms() {
        assert_eq!(parse("PT0.2S"), Ok(Duration::from_millis(200)));
        assert_eq!(parse("PT1M30S"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("P1DT1H"), Ok(Duration::from_secs(90_000)));
        assert_eq!(parse("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "", "P", "PT", "PTS", "P1W", "30", "1x", "s", "-1s", "PT1.2.3S",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
