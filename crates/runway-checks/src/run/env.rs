//! Env checks: required variables are present and non-empty.
//!
//! "Secrets present" is a pre-deployment item in every runbook. Only names are ever
//! reported, never values.

use std::collections::BTreeMap;

pub(super) fn run(vars: &[String], env: &BTreeMap<String, String>) -> Result<String, String> {
    let missing: Vec<&str> = vars
        .iter()
        .filter(|v| !env.contains_key(v.as_str()))
        .map(String::as_str)
        .collect();
    let empty: Vec<&str> = vars
        .iter()
        .filter(|v| env.get(v.as_str()).is_some_and(|x| x.trim().is_empty()))
        .map(String::as_str)
        .collect();
    if missing.is_empty() && empty.is_empty() {
        let noun = if vars.len() == 1 {
            "variable"
        } else {
            "variables"
        };
        return Ok(format!("{} {noun} set: {}", vars.len(), vars.join(", ")));
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("not set: {}", missing.join(", ")));
    }
    if !empty.is_empty() {
        parts.push(format!("empty: {}", empty.join(", ")));
    }
    Err(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_only() {
        let env = BTreeMap::from([
            ("A".to_string(), "value-a".to_string()),
            ("B".to_string(), " ".to_string()),
        ]);
        let vars = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(run(&vars(&["A"]), &env), Ok("1 variable set: A".into()));
        let e = run(&vars(&["A", "B", "C"]), &env).unwrap_err();
        assert_eq!(e, "not set: C; empty: B");
        assert!(!e.contains("value-a"));
    }
}
