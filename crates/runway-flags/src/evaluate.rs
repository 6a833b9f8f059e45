//! What a flag evaluates to for one evaluation context, with OpenFeature's reason: a disabled
//! flag serves its off variant (`DISABLED`); an enabled one tries its rules in order
//! (`TARGETING_MATCH`), then its rollout (`SPLIT`: in or out by the key's bucket), then serves
//! its default (`STATIC` when it has no rules and no rollout, `DEFAULT` otherwise).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bucket::in_rollout;
use crate::model::{Flag, Target};

/// The evaluation context of OpenFeature: who is asking.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    #[serde(
        default,
        rename = "targetingKey",
        skip_serializing_if = "Option::is_none"
    )]
    pub targeting_key: Option<String>,
    /// Everything else the application passes (`plan`, `country`, ...).
    #[serde(flatten)]
    pub attributes: BTreeMap<String, Value>,
}

/// OpenFeature's resolution reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    Static,
    Default,
    TargetingMatch,
    Split,
    Disabled,
}

/// A flag's value for one context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub key: String,
    pub value: Value,
    pub variant: String,
    pub reason: Reason,
}

/// Evaluates `flag` for `context`. The flag is assumed sound ([`Flag::problems`] empty); a
/// variant it lacks evaluates to `null`.
pub fn evaluate(flag: &Flag, context: &Context) -> Evaluation {
    let serve = |variant: &str, reason: Reason| Evaluation {
        key: flag.name.clone(),
        value: flag.variants.get(variant).cloned().unwrap_or(Value::Null),
        variant: variant.to_string(),
        reason,
    };
    if !flag.enabled {
        return serve(&flag.off_variant, Reason::Disabled);
    }
    if let Some(rule) = flag.rules.iter().find(|r| matches(&r.target, context)) {
        return serve(&rule.variant, Reason::TargetingMatch);
    }
    if let Some(rollout) = &flag.rollout {
        if let Some(key) = &context.targeting_key {
            return if in_rollout(&flag.name, key, rollout.percent) {
                serve(&rollout.variant, Reason::Split)
            } else {
                serve(&flag.default_variant, Reason::Split)
            };
        }
    }
    let reason = if flag.rules.is_empty() && flag.rollout.is_none() {
        Reason::Static
    } else {
        Reason::Default
    };
    serve(&flag.default_variant, reason)
}

fn matches(target: &Target, context: &Context) -> bool {
    match target {
        Target::Keys { keys } => context
            .targeting_key
            .as_ref()
            .is_some_and(|key| keys.contains(key)),
        Target::Attribute { attribute, one_of } => {
            let value = if attribute == "targetingKey" {
                context.targeting_key.clone().map(Value::String)
            } else {
                context.attributes.get(attribute).cloned()
            };
            value.is_some_and(|v| one_of.contains(&v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Rollout, Rule};

    fn user(key: &str) -> Context {
        Context {
            targeting_key: Some(key.into()),
            attributes: BTreeMap::new(),
        }
    }

    /// Runbook 001: deployed disabled, on for canary users, then 5% of the rest.
    fn agent_pack() -> Flag {
        let mut flag = Flag::boolean("agent-pack-v2");
        flag.rules.push(Rule {
            target: Target::Keys {
                keys: vec!["canary-1".into(), "canary-2".into()],
            },
            variant: "on".into(),
        });
        flag.rollout = Some(Rollout {
            percent: 5.0,
            variant: "on".into(),
        });
        flag
    }

    #[test]
    fn a_disabled_flag_serves_its_off_variant_to_everyone() {
        let flag = agent_pack();
        for who in ["canary-1", "user-7"] {
            let e = evaluate(&flag, &user(who));
            assert_eq!((e.value, e.reason), (Value::Bool(false), Reason::Disabled));
        }
    }

    #[test]
    fn canary_users_match_their_rule_and_the_rest_are_split_by_bucket() {
        let mut flag = agent_pack();
        flag.enabled = true;
        let e = evaluate(&flag, &user("canary-2"));
        assert_eq!(
            (e.value, e.reason),
            (Value::Bool(true), Reason::TargetingMatch)
        );
        let evaluations: Vec<Evaluation> = (0..10_000)
            .map(|i| evaluate(&flag, &user(&format!("user-{i}"))))
            .collect();
        assert!(evaluations.iter().all(|e| e.reason == Reason::Split));
        let on = evaluations
            .iter()
            .filter(|e| e.value == Value::Bool(true))
            .count();
        assert!((400..=600).contains(&on), "{on} of 10,000 at 5%");
        // Without a targeting key there is nothing to split on: the default.
        let e = evaluate(&flag, &Context::default());
        assert_eq!((e.value, e.reason), (Value::Bool(false), Reason::Default));
    }

    #[test]
    fn attributes_target_and_a_plain_flag_is_static() {
        let mut flag = Flag::boolean("beta-ui");
        flag.enabled = true;
        let e = evaluate(&flag, &user("anyone"));
        assert_eq!((e.value, e.reason), (Value::Bool(false), Reason::Static));
        flag.rules.push(Rule {
            target: Target::Attribute {
                attribute: "plan".into(),
                one_of: vec![Value::String("enterprise".into())],
            },
            variant: "on".into(),
        });
        let mut context = user("u1");
        context
            .attributes
            .insert("plan".into(), Value::String("enterprise".into()));
        let e = evaluate(&flag, &context);
        assert_eq!(
            (e.value, e.reason),
            (Value::Bool(true), Reason::TargetingMatch)
        );
        let e = evaluate(&flag, &user("u2"));
        assert_eq!((e.value, e.reason), (Value::Bool(false), Reason::Default));
    }

    #[test]
    fn a_context_reads_as_openfeature_sends_it() {
        let context: Context =
            serde_json::from_str(r#"{"targetingKey": "user-1", "plan": "pro", "seats": 5}"#)
                .unwrap();
        assert_eq!(context.targeting_key.as_deref(), Some("user-1"));
        assert_eq!(context.attributes["plan"], "pro");
        assert_eq!(context.attributes["seats"], 5);
        let reason = serde_json::to_value(Reason::TargetingMatch).unwrap();
        assert_eq!(reason, "TARGETING_MATCH");
    }
}
