//! `atom status`: the seed's security configuration document.

use std::process::ExitCode;

use atom_app::security_configuration;

use crate::session::{GlobalArgs, print_json};

pub(crate) async fn run(args: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let protection = args.protection()?;
    // A database that does not exist yet has no credentials to count.
    let store = match args.database_exists()? {
        true => Some(args.read_only_store(protection.clone()).await?),
        false => None,
    };
    let mut doc =
        security_configuration(&protection, &args.settings.secrets(), store.as_ref()).await?;
    for notice in &mut doc.notices {
        notice.push_str("; rewrap with: atom credentials rewrap");
    }
    if let Some(store) = store {
        store.close().await?;
    }
    if args.json {
        print_json(&doc)?;
    } else {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(ExitCode::SUCCESS)
}
