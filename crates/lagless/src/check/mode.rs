//! Consistency modes as `SET @lagless_consistency` accepts them, and what each one promises.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The three ways a write is read back ([`Variant::ALL`]), and the writer's own later reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// A: the writer's own connection reads.
    SameConnection,
    /// B: another connection of the same mode reads after `SET @lagless_token` to the writer's
    /// token (another process that was handed the token).
    Token,
    /// C: another connection reads without a token.
    NewConnection,
    /// The writer's own connection reads its row again, more than `--later-gap-ms` after its
    /// write was acknowledged (`--later-reads`). Not in [`Variant::ALL`]: counted apart.
    LaterSameConnection,
}

impl Variant {
    pub const ALL: [Variant; 3] = [
        Variant::SameConnection,
        Variant::Token,
        Variant::NewConnection,
    ];

    /// Its place in [`Variant::ALL`] (and in per-variant arrays); not for
    /// [`Variant::LaterSameConnection`].
    pub fn index(self) -> usize {
        debug_assert!(self != Variant::LaterSameConnection);
        self as usize
    }

    pub fn label(self) -> &'static str {
        match self {
            Variant::SameConnection => "A same conn",
            Variant::Token => "B new conn + token",
            Variant::NewConnection => "C new conn",
            Variant::LaterSameConnection => "A later, same conn",
        }
    }
}

/// What a mode promises about reading a write back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Guarantee {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "bounded by delay")]
    BoundedByDelay,
    /// primary_after_write: the writer's own reads go to the primary for the window; a token
    /// carries GTIDs, not the window, so other sessions are not covered.
    #[serde(rename = "read-your-writes on the writer's connection within the window")]
    WithinWindow,
    #[serde(rename = "read-your-writes")]
    ReadYourWrites,
    #[serde(rename = "read-your-writes across connections")]
    AcrossConnections,
}

impl Guarantee {
    pub fn label(self) -> &'static str {
        match self {
            Guarantee::None => "none",
            Guarantee::BoundedByDelay => "bounded by delay",
            Guarantee::WithinWindow => {
                "read-your-writes on the writer's connection within the window"
            }
            Guarantee::ReadYourWrites => "read-your-writes",
            Guarantee::AcrossConnections => "read-your-writes across connections",
        }
    }

    /// Whether a stale read in `variant` breaks this guarantee. Read-your-writes holds on the
    /// writer's connection and wherever its token is carried; across connections holds even
    /// without a token. The window of `primary_after_write` is not checked against the later
    /// reads' gap, so they are not counted as promised there.
    pub fn promises(self, variant: Variant) -> bool {
        match self {
            Guarantee::None | Guarantee::BoundedByDelay => false,
            Guarantee::WithinWindow => variant == Variant::SameConnection,
            Guarantee::ReadYourWrites => variant != Variant::NewConnection,
            Guarantee::AcrossConnections => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Not a proxy mode: the same workload straight on the sandbox primary, without the
    /// proxy, as the latency baseline the other modes are compared with.
    Direct,
    Eventual,
    Primary,
    PrimaryAfterWrite,
    Delay,
    MaxLag,
    Position,
    Gtid,
    PosWait,
    GtidWait,
    Global,
}

impl Kind {
    /// `Direct` first: a default run measures the baseline before the proxy's modes.
    const ALL: [Kind; 11] = [
        Kind::Direct,
        Kind::Eventual,
        Kind::Primary,
        Kind::PrimaryAfterWrite,
        Kind::Delay,
        Kind::MaxLag,
        Kind::Position,
        Kind::Gtid,
        Kind::PosWait,
        Kind::GtidWait,
        Kind::Global,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Eventual => "eventual",
            Kind::Primary => "primary",
            Kind::PrimaryAfterWrite => "primary_after_write",
            Kind::Delay => "delay",
            Kind::MaxLag => "max_lag",
            Kind::Position => "position",
            Kind::Gtid => "gtid",
            Kind::PosWait => "pos_wait",
            Kind::GtidWait => "gtid_wait",
            Kind::Global => "global",
        }
    }

    /// The parameter used when the mode is named without one. The waits are short on purpose
    /// (below the default 1 s lag), so that a default run also exercises the fallback to the
    /// primary and stays quick; `delay(500)` under 1 s of lag is expected to read stale.
    fn default_param(self) -> Option<u64> {
        match self {
            Kind::PrimaryAfterWrite => Some(2000),
            Kind::Delay => Some(500),
            Kind::MaxLag => Some(1),
            Kind::PosWait | Kind::GtidWait => Some(500),
            _ => None,
        }
    }
}

/// One mode with its parameter (milliseconds, or seconds for `max_lag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub kind: Kind,
    pub param: Option<u64>,
}

impl Mode {
    /// Every mode with its default parameter: `direct` (the baseline) first, then the proxy's
    /// modes in the order of the issue.
    pub fn all() -> Vec<Mode> {
        Kind::ALL
            .iter()
            .map(|&kind| Mode {
                kind,
                param: kind.default_param(),
            })
            .collect()
    }

    pub fn guarantee(self) -> Guarantee {
        match self.kind {
            Kind::Eventual | Kind::MaxLag => Guarantee::None,
            Kind::Delay => Guarantee::BoundedByDelay,
            Kind::PrimaryAfterWrite => Guarantee::WithinWindow,
            Kind::Position | Kind::Gtid | Kind::PosWait | Kind::GtidWait => {
                Guarantee::ReadYourWrites
            }
            // Reading the primary itself is always fresh.
            Kind::Direct | Kind::Primary | Kind::Global => Guarantee::AcrossConnections,
        }
    }

    /// Whether this is the baseline run straight on the primary, not through the proxy.
    pub fn is_direct(self) -> bool {
        self.kind == Kind::Direct
    }

    /// The statement that puts a proxy session in this mode; `None` for `direct`, whose
    /// sessions go to the primary, which knows no `@lagless_consistency`.
    pub fn set_sql(self) -> Option<String> {
        (!self.is_direct()).then(|| format!("SET @lagless_consistency = '{self}'"))
    }

    /// A remark for the report: when staleness is expected from the injected lag.
    pub fn note(self, lag_secs: u64) -> Option<String> {
        match (self.kind, self.param) {
            (Kind::Delay, Some(ms)) if lag_secs * 1000 > ms => Some(format!(
                "lag {lag_secs} s exceeds the delay of {ms} ms: stale reads expected"
            )),
            (Kind::Delay, Some(ms)) => Some(format!(
                "lag {lag_secs} s within the delay of {ms} ms: no stale reads expected"
            )),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.param {
            Some(p) => write!(f, "{}({p})", self.kind.name()),
            None => f.write_str(self.kind.name()),
        }
    }
}

impl Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for Mode {
    type Err = String;

    /// `name` or `name(N)`, case-insensitive, blanks ignored.
    fn from_str(s: &str) -> Result<Mode, String> {
        let s: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        let (name, param) = match s.split_once('(') {
            Some((name, rest)) => {
                let Some(num) = rest.strip_suffix(')') else {
                    return Err(format!("`{s}`: missing `)`"));
                };
                let n = num
                    .parse::<u64>()
                    .map_err(|_| format!("`{s}`: the parameter must be a whole number"))?;
                (name, Some(n))
            }
            None => (s.as_str(), None),
        };
        let names = || {
            Kind::ALL
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| format!("unknown mode `{name}` (one of: {})", names()))?;
        match (kind.default_param(), param) {
            (None, Some(_)) => Err(format!("mode `{name}` takes no parameter")),
            (Some(default), None) => Ok(Mode {
                kind,
                param: Some(default),
            }),
            (_, param) => Ok(Mode { kind, param }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_parameters() {
        assert_eq!("gtid".parse::<Mode>().unwrap().to_string(), "gtid");
        assert_eq!(
            " GTID_WAIT( 2000 ) ".parse::<Mode>().unwrap().to_string(),
            "gtid_wait(2000)"
        );
        assert_eq!("delay".parse::<Mode>().unwrap().to_string(), "delay(500)");
        assert!("gtid(5)".parse::<Mode>().is_err());
        assert!("delay(x)".parse::<Mode>().is_err());
        assert!("delay(5".parse::<Mode>().is_err());
        assert!("strong".parse::<Mode>().is_err());
        assert_eq!(Mode::all().len(), 11);
        for (i, v) in Variant::ALL.into_iter().enumerate() {
            assert_eq!(v.index(), i);
        }
        for m in Mode::all() {
            assert_eq!(m.to_string().parse::<Mode>().unwrap(), m);
        }
    }

    #[test]
    fn direct_is_the_baseline_run_first() {
        let d = "direct".parse::<Mode>().unwrap();
        assert_eq!((d.kind, d.param), (Kind::Direct, None));
        assert_eq!(" DIRECT ".parse::<Mode>().unwrap(), d);
        assert_eq!(d.to_string(), "direct");
        assert!("direct(5)".parse::<Mode>().is_err());
        assert_eq!(Mode::all()[0], d);
        assert!(d.is_direct() && d.set_sql().is_none());
        assert_eq!(d.guarantee(), Guarantee::AcrossConnections);
        let gtid = "gtid".parse::<Mode>().unwrap();
        assert!(!gtid.is_direct());
        assert_eq!(
            gtid.set_sql().as_deref(),
            Some("SET @lagless_consistency = 'gtid'")
        );
    }

    #[test]
    fn promises_follow_the_issue() {
        let promised = |m: &str| {
            let g = m.parse::<Mode>().unwrap().guarantee();
            Variant::ALL.map(|v| g.promises(v))
        };
        for m in ["eventual", "max_lag", "delay"] {
            assert_eq!(promised(m), [false, false, false], "{m}");
        }
        assert_eq!(promised("primary_after_write"), [true, false, false]);
        for m in ["position", "gtid", "pos_wait", "gtid_wait"] {
            assert_eq!(promised(m), [true, true, false], "{m}");
        }
        for m in ["direct", "primary", "global"] {
            assert_eq!(promised(m), [true, true, true], "{m}");
        }
        let later = |m: &str| {
            m.parse::<Mode>()
                .unwrap()
                .guarantee()
                .promises(Variant::LaterSameConnection)
        };
        for m in [
            "position",
            "gtid",
            "pos_wait",
            "gtid_wait",
            "primary",
            "global",
        ] {
            assert!(later(m), "{m}");
        }
        for m in ["eventual", "max_lag", "delay", "primary_after_write"] {
            assert!(!later(m), "{m}");
        }
    }
}
