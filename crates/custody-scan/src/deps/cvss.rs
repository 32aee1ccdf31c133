//! CVSS v3.x base scores, computed from the vector with the specification's formula (v3.1
//! section 7.1 and its `Roundup` of appendix A; v3.0 vectors use the same weights).

/// The CVSS v3.0/v3.1 base score (0.0-10.0) of a vector such as
/// `CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H` (9.8). Temporal and environmental metrics
/// are ignored. `None` if it is not a v3 vector or a base metric is missing or invalid.
pub fn cvss3_base_score(vector: &str) -> Option<f64> {
    let mut parts = vector.trim().split('/');
    let version = parts.next()?;
    if version != "CVSS:3.0" && version != "CVSS:3.1" {
        return None;
    }
    let (mut av, mut ac, mut pr, mut ui, mut scope, mut c, mut i, mut a) =
        (None, None, None, None, None, None, None, None);
    for part in parts {
        let (metric, value) = part.split_once(':')?;
        match metric {
            "AV" => av = Some(pick(value, &[("N", 0.85), ("A", 0.62), ("L", 0.55), ("P", 0.2)])?),
            "AC" => ac = Some(pick(value, &[("L", 0.77), ("H", 0.44)])?),
            // Privileges weigh differently when the scope changes; resolved below.
            "PR" => pr = Some(value),
            "UI" => ui = Some(pick(value, &[("N", 0.85), ("R", 0.62)])?),
            "S" => {
                scope = Some(match value {
                    "U" => false,
                    "C" => true,
                    _ => return None,
                })
            }
            "C" => c = Some(pick(value, &CIA)?),
            "I" => i = Some(pick(value, &CIA)?),
            "A" => a = Some(pick(value, &CIA)?),
            _ => {}
        }
    }
    let (av, ac, ui, changed, c, i, a) = (av?, ac?, ui?, scope?, c?, i?, a?);
    let pr = match (pr?, changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if changed { 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02f64).powi(15) } else { 6.42 * iss };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if changed { 1.08 * (impact + exploitability) } else { impact + exploitability };
    Some(roundup(raw.min(10.0)))
}

const CIA: [(&str, f64); 3] = [("H", 0.56), ("L", 0.22), ("N", 0.0)];

fn pick(value: &str, table: &[(&str, f64)]) -> Option<f64> {
    table.iter().find(|(k, _)| *k == value).map(|(_, w)| *w)
}

/// The smallest number with one decimal that is >= `x`, computed on integers as CVSS v3.1
/// appendix A prescribes so that floating-point noise (e.g. 4.000000000000001) does not round up.
fn roundup(x: f64) -> f64 {
    let int_input = (x * 100_000.0).round() as i64;
    if int_input % 10_000 == 0 { int_input as f64 / 100_000.0 } else { ((int_input / 10_000) + 1) as f64 / 10.0 }
}
