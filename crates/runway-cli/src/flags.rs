//! `runway flags list|get|set|off|rollout`. The server keeps a flag's whole definition; `set`
//! reads it, changes what its options say, and writes it back, so that the API stays one PUT
//! of a definition and the CLI is where the shortcuts live.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use runway_flags::model::{Rollout, Rule, Target};
use runway_flags::{Flag, FlagKind};
use runway_wire::api::{FlagRolloutRequest, FlagView, SetFlag};
use runway_wire::ErrorCode;

use crate::deploy::{follow, refused};
use crate::{Cli, FlagsCommand};

pub async fn run(cli: &Cli, action: &FlagsCommand) -> Result<ExitCode> {
    let client = cli.client();
    let service = cli.service(&client).await?;
    match action {
        FlagsCommand::List { json, .. } => {
            let flags = client.flags(&service).await.map_err(refused)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&flags)?);
                return Ok(ExitCode::SUCCESS);
            }
            if flags.is_empty() {
                println!("`{service}` has no flags; create one with `runway flags set NAME`");
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = crate::output::table(&[
                "name",
                "kind",
                "state",
                "serves",
                "revision",
                "changed by",
            ]);
            for f in &flags {
                let flag: Option<Flag> = serde_json::from_value(f.definition.clone()).ok();
                table.add_row(vec![
                    f.name.clone(),
                    flag.as_ref()
                        .map_or("?".into(), |f| format!("{:?}", f.kind).to_lowercase()),
                    match (&flag, f.rollout) {
                        (_, Some(id)) => format!("rolling out (#{id})"),
                        (Some(flag), None) if flag.enabled => "on".into(),
                        _ => "off".into(),
                    },
                    flag.as_ref().map_or(String::new(), serves),
                    f.revision.to_string(),
                    format!("{} at {}", f.updated_by, f.updated_at),
                ]);
            }
            println!("{table}");
            Ok(ExitCode::SUCCESS)
        }
        FlagsCommand::Get { name, json, .. } => {
            let flag = client.flag(&service, name).await.map_err(refused)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&flag)?);
            } else {
                print_flag(&flag);
            }
            Ok(ExitCode::SUCCESS)
        }
        FlagsCommand::Off { name, reason, .. } => {
            let flag = client
                .flag_off(&service, name, reason.as_deref())
                .await
                .map_err(refused)?;
            println!("flag {name} of `{service}` is off: it serves its off variant to everyone");
            print_flag(&flag);
            Ok(ExitCode::SUCCESS)
        }
        FlagsCommand::Rollout {
            name,
            steps,
            interval,
            variant,
            reason,
            detach,
            ..
        } => {
            let request = FlagRolloutRequest {
                steps: parse_steps(steps)?,
                interval: interval.clone(),
                variant: variant.clone(),
                reason: reason.clone(),
            };
            let d = client
                .flag_rollout(&service, name, &request)
                .await
                .map_err(refused)?;
            follow(cli, d, detach.detach).await
        }
        FlagsCommand::Set { name, .. } => {
            let current = match client.flag(&service, name).await {
                Ok(view) => Some(view.definition),
                Err(e) if e.code() == Some(ErrorCode::NotFound) => None,
                Err(e) => return Err(refused(e)),
            };
            let (flag, reason) = edited(name, current, action)?;
            let request = SetFlag {
                definition: serde_json::to_value(&flag)?,
                reason,
            };
            let view = client
                .set_flag(&service, name, &request)
                .await
                .map_err(refused)?;
            println!(
                "flag {name} of `{service}` set (revision {})",
                view.revision
            );
            print_flag(&view);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `5%,25%,50%,100%` (the `%` optional).
fn parse_steps(text: &str) -> Result<Vec<f64>> {
    text.split(',')
        .map(|step| {
            let number = step.trim().trim_end_matches('%');
            number
                .parse::<f64>()
                .map_err(|_| anyhow!("--steps: `{step}` is not a percentage (5%,25%,50%,100%)"))
        })
        .collect()
}

/// What a flag serves, in a few words.
fn serves(flag: &Flag) -> String {
    if !flag.enabled {
        return format!("{} to everyone", flag.off_variant);
    }
    let mut parts: Vec<String> = flag
        .rules
        .iter()
        .map(|r| match &r.target {
            Target::Keys { keys } => format!("{} to {} key(s)", r.variant, keys.len()),
            Target::Attribute { attribute, one_of } => format!(
                "{} where {attribute} is {}",
                r.variant,
                one_of
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        })
        .collect();
    if let Some(r) = &flag.rollout {
        parts.push(format!("{} to {}%", r.variant, r.percent));
    }
    parts.push(format!("{} otherwise", flag.default_variant));
    parts.join(", ")
}

fn print_flag(view: &FlagView) {
    match serde_json::from_value::<Flag>(view.definition.clone()) {
        Ok(flag) => {
            println!(
                "{}: {} flag, {}; serves {}",
                view.name,
                format!("{:?}", flag.kind).to_lowercase(),
                if flag.enabled { "on" } else { "off" },
                serves(&flag)
            );
            for (name, value) in &flag.variants {
                println!("  variant {name} = {value}");
            }
        }
        Err(_) => println!("{}: {}", view.name, view.definition),
    }
    if let Some(id) = view.rollout {
        println!(
            "  being rolled out: deployment #{id} (`runway flags off {}` stops it)",
            view.name
        );
    }
    println!(
        "  revision {}, changed by {} at {}",
        view.revision, view.updated_by, view.updated_at
    );
}

/// The flag `set`'s options make of `current` (or of a new flag); and the reason.
fn edited(
    name: &str,
    current: Option<serde_json::Value>,
    action: &FlagsCommand,
) -> Result<(Flag, Option<String>)> {
    let FlagsCommand::Set {
        kind,
        variants,
        default_variant,
        off_variant,
        on,
        off,
        for_keys,
        for_attribute,
        clear_rules,
        percent,
        percent_variant,
        no_percent,
        from,
        reason,
        ..
    } = action
    else {
        bail!("not a set");
    };
    let mut flag: Flag = match (from, current) {
        (Some(path), _) => {
            let text = if path.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text)?;
                text
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
            };
            serde_json::from_str(&text)
                .with_context(|| format!("--from {}: not a flag definition", path.display()))?
        }
        (None, Some(current)) => serde_json::from_value(current)
            .context("the server's definition of the flag does not read")?,
        (None, None) => Flag::boolean(name),
    };
    flag.name = name.to_string();
    if let Some(kind) = kind {
        flag.kind = match kind.as_str() {
            "boolean" => FlagKind::Boolean,
            "string" => FlagKind::String,
            "number" => FlagKind::Number,
            "object" => FlagKind::Object,
            other => bail!("--kind `{other}`: boolean, string, number or object"),
        };
    }
    if !variants.is_empty() {
        flag.variants.clear();
        for v in variants {
            let (variant, json) = v.split_once('=').ok_or_else(|| {
                anyhow!("--variant `{v}`: NAME=JSON, e.g. on=true or a='\"text\"'")
            })?;
            let value: serde_json::Value = serde_json::from_str(json)
                .with_context(|| format!("--variant {variant}: `{json}` is not JSON"))?;
            flag.variants.insert(variant.to_string(), value);
        }
        // A new flag's own variant names may be gone: the first variant stands in.
        let first = flag.variants.keys().next().cloned().unwrap_or_default();
        if !flag.variants.contains_key(&flag.default_variant) {
            flag.default_variant = first.clone();
        }
        if !flag.variants.contains_key(&flag.off_variant) {
            flag.off_variant = first;
        }
    }
    if let Some(v) = default_variant {
        flag.default_variant = v.clone();
    }
    if let Some(v) = off_variant {
        flag.off_variant = v.clone();
    }
    if *on {
        flag.enabled = true;
    }
    if *off {
        flag.enabled = false;
    }
    if *clear_rules {
        flag.rules.clear();
    }
    for rule in for_keys {
        let (variant, keys) = rule
            .split_once('=')
            .ok_or_else(|| anyhow!("--for-keys `{rule}`: VARIANT=KEY,KEY"))?;
        flag.rules.push(Rule {
            target: Target::Keys {
                keys: keys.split(',').map(|k| k.trim().to_string()).collect(),
            },
            variant: variant.to_string(),
        });
    }
    for rule in for_attribute {
        let (variant, condition) = rule
            .split_once(':')
            .ok_or_else(|| anyhow!("--for-attribute `{rule}`: VARIANT:ATTRIBUTE=VALUE,VALUE"))?;
        let (attribute, values) = condition
            .split_once('=')
            .ok_or_else(|| anyhow!("--for-attribute `{rule}`: VARIANT:ATTRIBUTE=VALUE,VALUE"))?;
        flag.rules.push(Rule {
            target: Target::Attribute {
                attribute: attribute.to_string(),
                // A value that reads as JSON (true, 3) is that; any other is a string.
                one_of: values
                    .split(',')
                    .map(|v| {
                        serde_json::from_str(v.trim())
                            .unwrap_or_else(|_| serde_json::Value::String(v.trim().to_string()))
                    })
                    .collect(),
            },
            variant: variant.to_string(),
        });
    }
    if *no_percent {
        flag.rollout = None;
    }
    if let Some(percent) = percent {
        flag.rollout = Some(Rollout {
            percent: *percent,
            variant: percent_variant.clone().unwrap_or_else(|| "on".into()),
        });
    }
    let problems = flag.problems();
    if !problems.is_empty() {
        bail!("flag {name}: {}", problems.join("; "));
    }
    Ok((flag, reason.clone()))
}
