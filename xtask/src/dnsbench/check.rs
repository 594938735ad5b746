//! Before any load: both servers must give the same answers, asked with `dig`, for a sample of
//! the query file (every kind of name in it) plus the apex SOA and `dns-version`.

use super::fixture::{self, Shape};
use anyhow::{Context, bail};
use std::process::Command;

/// Queries of the mix compared (the mix repeats every 40 lines: all kinds are covered).
const SAMPLE: u32 = 120;

/// One answer as dig prints it, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rcode: String,
    /// Answer and authority records, whitespace collapsed, lowercase, sorted (address
    /// rotation does not count), SOA serials blanked (ferry's is its start time).
    pub records: Vec<String>,
}

/// `dig @127.0.0.1 -p PORT NAME TYPE` without recursion.
pub fn dig(port: u16, name: &str, qtype: &str) -> anyhow::Result<Answer> {
    let output = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+norecurse",
            "+time=2",
            "+tries=2",
            "+noall",
            "+comments",
            "+answer",
            "+authority",
            name,
            qtype,
        ])
        .output()
        .context("running dig (cargo xtask setup installs dnsutils)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let rcode = text
        .lines()
        .find_map(|l| l.split_once("status: ")?.1.split(',').next())
        .with_context(|| format!("dig {name} {qtype} on port {port}: no answer: {text}"))?
        .to_string();
    let mut records: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(normalize)
        .collect();
    records.sort();
    Ok(Answer { rcode, records })
}

fn normalize(line: &str) -> String {
    let mut fields: Vec<String> = line
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    // owner ttl class SOA mname rname serial ...
    if fields.get(3).is_some_and(|t| t == "soa") && fields.len() > 6 {
        fields[6] = "<serial>".into();
    }
    fields.join(" ")
}

/// Compares ferry (`a`) and NSD (`b`) on the sample; the number of queries compared.
pub fn same_answers(ferry: u16, nsd: u16, shape: Shape) -> anyhow::Result<usize> {
    let mut queries: Vec<(String, &str)> = vec![
        (fixture::ZONE.into(), "SOA"),
        (format!("dns-version.{}", fixture::ZONE), "TXT"),
    ];
    queries.extend((0..SAMPLE).map(|i| {
        let (name, qtype, _) = fixture::query(i, shape);
        (name, qtype)
    }));
    let mut mismatches = Vec::new();
    for (name, qtype) in &queries {
        let a = dig(ferry, name, qtype)?;
        let b = dig(nsd, name, qtype)?;
        if a != b {
            mismatches.push(format!(
                "{name} {qtype}:\n  ferry {} {:?}\n  nsd   {} {:?}",
                a.rcode, a.records, b.rcode, b.records
            ));
        }
    }
    if !mismatches.is_empty() {
        bail!(
            "ferry and NSD answer {} of {} sample queries differently:\n{}",
            mismatches.len(),
            queries.len(),
            mismatches.join("\n")
        );
    }
    Ok(queries.len())
}
