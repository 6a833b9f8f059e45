//! A flag: its variants, whether it is on, its targeting rules and its percentage rollout.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The type of a flag's values (OpenFeature's: boolean, string, number, object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    Boolean,
    String,
    Number,
    Object,
}

impl FlagKind {
    /// Whether `value` is of this kind.
    pub fn admits(self, value: &Value) -> bool {
        match self {
            FlagKind::Boolean => value.is_boolean(),
            FlagKind::String => value.is_string(),
            FlagKind::Number => value.is_number(),
            FlagKind::Object => value.is_object() || value.is_array(),
        }
    }
}

/// One flag of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub name: String,
    pub kind: FlagKind,
    /// Its values by variant name (`on` and `off` for a boolean made by [`Flag::boolean`]).
    pub variants: BTreeMap<String, Value>,
    /// Off, it serves `off_variant` to everyone, whatever its rules: the kill switch.
    pub enabled: bool,
    /// What an enabled flag serves when no rule matches and the rollout leaves a key out.
    pub default_variant: String,
    /// What a disabled flag serves.
    pub off_variant: String,
    /// Tried in order; the first that matches decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// A share of the keys no rule matched gets a variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// Who gets `variant`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub target: Target,
    pub variant: String,
}

/// A segment of users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// These targeting keys (user ids): "canary users".
    Keys { keys: Vec<String> },
    /// Contexts whose `attribute` is one of these values (`plan` one of `["enterprise"]`).
    Attribute {
        attribute: String,
        one_of: Vec<Value>,
    },
}

/// `percent` of the targeting keys (consistently: see [`crate::bucket`]) get `variant`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub percent: f64,
    pub variant: String,
}

impl Flag {
    /// A boolean flag, off: variants `on` (true) and `off` (false), serving `off`.
    pub fn boolean(name: &str) -> Flag {
        Flag {
            name: name.to_string(),
            kind: FlagKind::Boolean,
            variants: BTreeMap::from([
                ("on".into(), Value::Bool(true)),
                ("off".into(), Value::Bool(false)),
            ]),
            enabled: false,
            default_variant: "off".into(),
            off_variant: "off".into(),
            rules: Vec::new(),
            rollout: None,
        }
    }

    /// Every problem of the flag, each in one line naming what to change; empty when none.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 128
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid_name {
            problems.push(format!(
                "`{}` is not a flag name: 1 to 128 letters, digits, `-`, `_` or `.`",
                self.name
            ));
        }
        if self.variants.is_empty() {
            problems.push("a flag needs at least one variant".into());
        }
        for (name, value) in &self.variants {
            if !self.kind.admits(value) {
                problems.push(format!(
                    "variant `{name}` is {value}, not a {:?} value",
                    self.kind
                ));
            }
        }
        let mut known = |variant: &str, role: &str| {
            if !self.variants.contains_key(variant) {
                problems.push(format!(
                    "the {role} `{variant}` is not one of the variants ({})",
                    self.variants.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        };
        known(&self.default_variant, "default variant");
        known(&self.off_variant, "off variant");
        for rule in &self.rules {
            known(&rule.variant, "rule's variant");
        }
        if let Some(rollout) = &self.rollout {
            known(&rollout.variant, "rollout's variant");
            if !(0.0..=100.0).contains(&rollout.percent) {
                problems.push(format!(
                    "a rollout of {}% is not between 0% and 100%",
                    rollout.percent
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_boolean_flag_is_off_and_sound() {
        let flag = Flag::boolean("agent-pack-v2");
        assert!(!flag.enabled);
        assert_eq!(flag.problems(), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_named() {
        let mut flag = Flag::boolean("bad name!");
        flag.variants
            .insert("maybe".into(), Value::String("yes".into()));
        flag.default_variant = "sometimes".into();
        flag.rollout = Some(Rollout {
            percent: 120.0,
            variant: "on".into(),
        });
        let problems = flag.problems();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("not a flag name"));
        assert!(problems[1].contains("variant `maybe`"));
        assert!(problems[2].contains("default variant `sometimes`"));
        assert!(problems[3].contains("120%"));
    }

    #[test]
    fn a_flag_reads_back_as_it_was_written() {
        let mut flag = Flag::boolean("f");
        flag.rules.push(Rule {
            target: Target::Attribute {
                attribute: "plan".into(),
                one_of: vec![Value::String("enterprise".into())],
            },
            variant: "on".into(),
        });
        let json = serde_json::to_value(&flag).unwrap();
        assert_eq!(json["rules"][0]["target"]["kind"], "attribute");
        assert_eq!(serde_json::from_value::<Flag>(json).unwrap(), flag);
    }
}
