//! `atom status`: the seed's security configuration document.

use std::process::ExitCode;

use atom_app::security_configuration;

use crate::session::{GlobalArgs, print_json};

pub(crate) async fn run(args: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let protection = args.protection()?;
    let store = args.existing_store(protection.clone()).await?;
    let doc = security_configuration(&protection, &args.settings.secrets(), &store).await?;
    if args.json {
        print_json(&doc)?;
    } else {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(ExitCode::SUCCESS)
}
