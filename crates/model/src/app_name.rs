//! Names of managed function apps, with Azure's rules for app names: they become host names
//! (`{app}.{domain}`, `{app}.scm.{domain}`), so 2 to 60 letters, digits and hyphens, not
//! starting or ending with a hyphen; compared and stored in lower case.

/// The app name `text` in its stored (lower-case) form, or why it is not one.
pub fn normalize(text: &str) -> Result<String, String> {
    let name = text.trim().to_ascii_lowercase();
    if !(2..=60).contains(&name.len()) {
        return Err(format!(
            "app name \"{text}\": expected 2 to 60 characters, found {}",
            name.chars().count()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "app name \"{text}\": expected letters, digits and hyphens only, found '{bad}'"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "app name \"{text}\": expected a letter or digit at both ends, found a hyphen"
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names() {
        assert_eq!(normalize("Orders-API").unwrap(), "orders-api");
        assert_eq!(normalize("a1").unwrap(), "a1");
        assert!(normalize("a").unwrap_err().contains("2 to 60"));
        assert!(normalize(&"a".repeat(61)).is_err());
        assert!(normalize("-api").unwrap_err().contains("both ends"));
        assert!(normalize("api-").is_err());
        assert!(normalize("my_app").unwrap_err().contains("'_'"));
        assert!(normalize("my.app").is_err());
    }
}
