//! Percentages as written in configs and scenarios: `5%`, `99.5%`.

/// `1%`, `99.5%`: a share from 0 to 100 percent, as a fraction.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let bad = || format!("{text:?} is not a percentage; write e.g. 1% or 99.5%");
    let number = text.trim().strip_suffix('%').ok_or_else(bad)?;
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    match value {
        v if (0.0..=100.0).contains(&v) => Ok(v / 100.0),
        _ => Err(format!("{text:?} must be from 0% to 100%")),
    }
}
