//! `atom status`: the seed's security configuration document.

use std::process::ExitCode;

use atom_secrets_file::SecretsDir;
use atom_server::security_configuration;

use crate::session::{GlobalArgs, print_json};

pub(crate) async fn run(args: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let protection = args.protection()?;
    let store = args.store(protection.clone()).await?;
    let doc =
        security_configuration(&protection, &SecretsDir::new(&args.secrets_dir), &store).await?;
    if args.json {
        print_json(&doc)?;
    } else {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(ExitCode::SUCCESS)
}
