//! MariaDB GTID positions (`domain-server-seq`, comma-separated, one per domain).
//! Only GTIDs identify a transaction across servers; binlog file offsets differ.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, Result};

/// A GTID position: per domain, the last (server_id, sequence number).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos(pub BTreeMap<u32, (u32, u64)>);

impl GtidPos {
    /// Parses e.g. `0-1-12,1-2-3`; empty means no transaction yet.
    pub fn parse(text: &str) -> Result<GtidPos> {
        let mut map = BTreeMap::new();
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != "NULL")
        {
            let mut it = part.splitn(3, '-');
            let mut next = || it.next().with_context(|| format!("bad GTID `{part}`"));
            let domain: u32 = next()?
                .parse()
                .with_context(|| format!("bad GTID `{part}`"))?;
            let server: u32 = next()?
                .parse()
                .with_context(|| format!("bad GTID `{part}`"))?;
            let seq: u64 = next()?
                .parse()
                .with_context(|| format!("bad GTID `{part}`"))?;
            map.insert(domain, (server, seq));
        }
        Ok(GtidPos(map))
    }

    /// True when `self` has reached `other` in every domain of `other`.
    pub fn covers(&self, other: &GtidPos) -> bool {
        other
            .0
            .iter()
            .all(|(d, (_, seq))| self.0.get(d).is_some_and(|(_, mine)| mine >= seq))
    }

    /// The sequence number in `domain` (0 when absent).
    pub fn seq(&self, domain: u32) -> u64 {
        self.0.get(&domain).map_or(0, |(_, s)| *s)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for GtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(d, (s, n))| format!("{d}-{s}-{n}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_compare() {
        let a = GtidPos::parse("0-1-12,1-2-3").unwrap();
        let b = GtidPos::parse("0-1-10").unwrap();
        assert!(a.covers(&b));
        assert!(!b.covers(&a));
        assert!(a.covers(&GtidPos::parse("").unwrap()));
        assert!(GtidPos::parse("").unwrap().covers(&GtidPos::default()));
        assert_eq!(a.to_string(), "0-1-12,1-2-3");
        assert_eq!(a.seq(0), 12);
        assert!(GtidPos::parse("garbage").is_err());
    }
}
