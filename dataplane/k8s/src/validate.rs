//! Field checks shared by the converters; each returns the reason text of an error.

use std::net::IpAddr;

/// RFC 1123 label: lowercase alphanumerics and '-', alphanumeric at both ends, at most 63.
pub fn dns_label(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a DNS label (lowercase letters, digits and '-', at most 63)"
        ))
    }
}

/// RFC 1123 subdomain: dot-separated labels, at most 253.
pub fn dns_subdomain(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 253 || value.split('.').any(|l| dns_label(l).is_err()) {
        return Err(format!(
            "{value:?} is not a DNS subdomain (dot-separated DNS labels, at most 253)"
        ));
    }
    Ok(())
}

/// RFC 1035 label (Service names): a DNS label that starts with a letter.
pub fn dns1035_label(value: &str) -> Result<(), String> {
    dns_label(value)?;
    if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!("{value:?} must start with a letter"));
    }
    Ok(())
}

/// IANA service name (named ports): at most 15, lowercase alphanumerics and '-', one letter.
pub fn port_name(value: &str) -> Result<(), String> {
    let ok = value.len() <= 15
        && dns_label(value).is_ok()
        && value.bytes().any(|b| b.is_ascii_lowercase())
        && !value.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!("port name {value:?} is not an IANA service name"))
    }
}

pub fn port(value: i32, what: &str) -> Result<u16, String> {
    match u16::try_from(value) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{what} {value} is out of range 1-65535")),
    }
}

pub fn ip(value: &str, what: &str) -> Result<IpAddr, String> {
    value
        .parse()
        .map_err(|_| format!("{what} {value:?} is not an IP address"))
}
