//! `runway secrets set|list|unset`.
//!
//! A value never comes from the command line (`ps` and shell history show argv to others):
//! it is read from stdin, or typed at a prompt that does not echo. It travels to the server in
//! a request body, and nothing here prints it.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::deploy::{follow, refused};
use crate::{Cli, Client, SecretsCommand};

pub async fn run(cli: &Cli, action: &SecretsCommand) -> Result<ExitCode> {
    let client = cli.client();
    let service = service(cli, &client).await?;
    match action {
        SecretsCommand::Set { name, detach, .. } => {
            let value = read_value(name)?;
            let set = client
                .set_secret(&service, name, value)
                .await
                .map_err(refused)?;
            println!(
                "secret {} of `{}` set: version {}",
                set.name, set.service, set.version
            );
            if let Some(why) = &set.not_rolled {
                eprintln!("warning: the serving release uses it but was not rolled: {why}");
                return Ok(ExitCode::from(1));
            }
            match set.rollout {
                None => {
                    println!(
                        "the serving release does not use it; deployments from now on run with it"
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(rollout) => {
                    println!("the serving release uses it: its replicas roll with the new value");
                    follow(cli, rollout, detach.detach).await
                }
            }
        }
        SecretsCommand::List { json, .. } => {
            let secrets = client.secrets(&service).await.map_err(refused)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&secrets)?);
                return Ok(ExitCode::SUCCESS);
            }
            if secrets.is_empty() {
                println!("`{service}` has no secrets; set one with `runway secrets set NAME`");
                return Ok(ExitCode::SUCCESS);
            }
            let mut table =
                crate::output::table(&["name", "version", "serving runs", "set by", "set at"]);
            for s in &secrets {
                table.add_row(vec![
                    s.name.clone(),
                    s.version.to_string(),
                    s.serving_version
                        .map_or("-".to_string(), |v| format!("version {v}")),
                    s.set_by.clone(),
                    s.set_at.clone(),
                ]);
            }
            println!("{table}");
            Ok(ExitCode::SUCCESS)
        }
        SecretsCommand::Unset { name, .. } => {
            let answer = client.unset_secret(&service, name).await.map_err(refused)?;
            println!("{}", answer.message);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--service`, else runway.toml's service, else the only one the server runs. Unlike other
/// commands, a service the server does not run yet is fine: its secrets come before its first
/// deployment.
async fn service(cli: &Cli, client: &Client) -> Result<String> {
    if let Some(name) = cli.service_flag() {
        if !runway_spec::is_valid_service_name(name) {
            bail!("`{name}` is not a service name");
        }
        return Ok(name.to_string());
    }
    cli.service(client).await
}

/// The value: typed at a prompt without echo when stdin is a terminal, else all of stdin with
/// one trailing newline dropped (`echo "$X" | runway secrets set X` sets `$X`).
fn read_value(name: &str) -> Result<String> {
    let mut value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("value of {name} (not echoed): "))
            .context("reading the value from the terminal")?
    } else {
        let mut value = String::new();
        std::io::stdin()
            .read_to_string(&mut value)
            .context("reading the value from stdin (it must be UTF-8 text)")?;
        if value.ends_with('\n') {
            value.pop();
            if value.ends_with('\r') {
                value.pop();
            }
        }
        value
    };
    if value.is_empty() {
        bail!(
            "no value for {name}: give it on stdin (`runway secrets set {name} < FILE`) or type \
             it at the prompt"
        );
    }
    value.shrink_to_fit();
    Ok(value)
}
