//! `kissbooth admin`: the admin pages' password from the command line, and the kiosk's
//! one-time set-up code.

use std::io::Read;
use std::process::ExitCode;

use clap::Subcommand;

use crate::http::admin::*;
use crate::paths::Common;
use crate::store::Store;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Set (or replace) the admin password. Reads it from standard input: one line, or two
    /// identical lines. Every admin session is logged out.
    SetPassword,
    /// Say whether an admin password is set.
    Status,
    /// Print a new one-time code for the kiosk's first-boot screen (the previous one stops
    /// working). Only while no admin password is set.
    SetupCode,
}

pub fn run(common: &Common, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let store = Store::open(&common.data)?;
    match cmd {
        AdminCommand::Status => {
            if setup_needed(&store) {
                println!("no admin password set: the kiosk asks for one at start-up");
            } else {
                println!("an admin password is set");
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::SetupCode => {
            if !setup_needed(&store) {
                eprintln!(
                    "kissbooth: an admin password is set already; change it on the admin page or \
                     with `kissbooth admin set-password`"
                );
                return Ok(ExitCode::from(2));
            }
            println!("{}", new_setup_code(&store)?);
            store.audit("admin_setup_code_made", None, "on the command line");
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::SetPassword => {
            let mut input = String::new();
            std::io::stdin()
                .take(4096)
                .read_to_string(&mut input)
                .map_err(|e| {
                    anyhow::anyhow!("cannot read the password from standard input: {e}")
                })?;
            let mut lines = input.lines();
            let password = lines.next().unwrap_or("").to_string();
            let confirm = lines.next().map(str::to_string).unwrap_or(password.clone());
            if let Err(why) = check_new_password(&password, &confirm) {
                eprintln!("kissbooth: {why}");
                return Ok(ExitCode::from(2));
            }
            store.set_setting(PASSWORD_KEY, &hash_password(&password)?, false)?;
            store.audit("admin_password_set", None, "on the command line");
            eprintln!("kissbooth: admin password set");
            Ok(ExitCode::SUCCESS)
        }
    }
}
