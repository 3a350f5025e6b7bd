//! Humane sizes (`512KB`, `8MB`, `1MiB`) for the caps on what dtswatch reads.

/// Parses `<integer><unit>`, units `B`, `KB`/`MB`/`GB` (powers of 1000) and
/// `KiB`/`MiB`/`GiB` (powers of 1024), case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{trimmed}` is not a size; write e.g. `512KB` or `8MB`"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier: u64 = match unit.as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "`{unit}` is not a size unit in `{trimmed}`; use B, KB, MB, KiB or MiB"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{trimmed}` is too large for a size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(parse_size("8MB"), Ok(8_000_000));
        assert_eq!(parse_size("1MiB"), Ok(1_048_576));
        assert_eq!(parse_size("512 kb"), Ok(512_000));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5TB").unwrap_err().contains("not a size unit"));
        assert!(parse_size("99999999999999999999GB").is_err());
    }
}
