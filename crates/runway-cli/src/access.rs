//! `runway tokens` and `runway whoami`: who may use the API, with which role.

use std::process::ExitCode;

use anyhow::Result;
use runway_wire::api::NewToken;

use crate::args::TokensCommand;
use crate::output::table;
use crate::Cli;

pub async fn tokens(cli: &Cli, action: &TokensCommand) -> Result<ExitCode> {
    let client = cli.client();
    match action {
        TokensCommand::Create {
            name, role, json, ..
        } => {
            let created = client
                .create_token(&NewToken {
                    name: name.clone(),
                    role: *role,
                })
                .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                println!("{}", created.token);
                eprintln!(
                    "token `{}` ({}) created. It is shown this once and kept only hashed: give \
                     it to its owner, who sets RUNWAY_TOKEN to it.",
                    created.name, created.role
                );
            }
        }
        TokensCommand::List { json, .. } => {
            let tokens = client.tokens().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
                return Ok(ExitCode::SUCCESS);
            }
            if tokens.is_empty() {
                println!(
                    "no named tokens: `runway tokens create NAME --role ROLE` makes one (until \
                     then only the server's own admin token, in its state dir, works)"
                );
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = table(&["name", "role", "created", "by", "revoked"]);
            for token in &tokens {
                t.add_row(vec![
                    token.name.clone(),
                    token.role.to_string(),
                    token.created_at.clone(),
                    token.created_by.clone(),
                    token.revoked_at.clone().unwrap_or_default(),
                ]);
            }
            println!("{t}");
        }
        TokensCommand::Revoke { name, .. } => {
            let token = client.revoke_token(name).await?;
            println!(
                "token `{}` ({}) revoked at {}: it is refused from now on",
                token.name,
                token.role,
                token.revoked_at.unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn whoami(cli: &Cli, json: bool) -> Result<ExitCode> {
    let me = cli.client().whoami().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&me)?);
    } else {
        println!("{} ({})", me.name, me.role);
    }
    Ok(ExitCode::SUCCESS)
}
