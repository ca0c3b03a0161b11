//! `chat-server admin …`: the operator's commands, on the same configuration as the server.
//! Each connects to the stores (as they are: it creates and migrates nothing; the server does),
//! does one thing, prints what it did on standard output and exits (0 done, 1 refused or
//! failed, with the reason on standard error).

use std::process::ExitCode;

use chat_dao::{DaoGroup, Stores};
use chat_model::Settings;
use chat_service::{AdminService, ServiceError, admin::AccountChange};
use clap::Subcommand;
use slog::Logger;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Disable a user: they cannot log in, and their sessions end at once (their connections
    /// close on every node).
    DisableUser { user_name: String },
    /// Enable a disabled user again.
    EnableUser { user_name: String },
    /// Delete a user (softly: the name stays taken, their messages stay); their sessions end.
    DeleteUser { user_name: String },
    /// List a user's live sessions: id, created, expires (UTC).
    Sessions { user_name: String },
    /// End a user's sessions: all, or the one whose id starts with --session.
    EndSessions {
        user_name: String,
        #[arg(long, value_name = "ID")]
        session: Option<String>,
    },
    /// A conversation's figures: messages stored, last seq, and each member's read position
    /// and unread count. Give two user names (a direct conversation) or --group ID.
    ConversationStats {
        #[arg(num_args = 2, value_names = ["USER_A", "USER_B"], required_unless_present = "group", conflicts_with = "group")]
        users: Vec<String>,
        #[arg(long, value_name = "ID")]
        group: Option<u64>,
    },
}

/// Runs one command.
pub async fn run(command: AdminCommand, settings: Settings, log: Logger) -> ExitCode {
    let stores = match Stores::open(&settings).await {
        Ok(s) => s,
        Err(e) => return fail(format!("stores: {e}")),
    };
    let admin = AdminService::new(&DaoGroup::new(&stores, &settings), &log);
    let result = execute(&admin, command).await;
    stores.close();
    match result {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(describe(&e)),
    }
}

fn fail(why: String) -> ExitCode {
    eprintln!("chat-server admin: {why}");
    ExitCode::FAILURE
}

fn describe(e: &ServiceError) -> String {
    match e {
        ServiceError::UserNotFound => "no such user".into(),
        ServiceError::GroupNotFound => "no such group".into(),
        ServiceError::Validation { message, .. } => message.clone(),
        ServiceError::Internal(why) => why.clone(),
        other => other.to_string(),
    }
}

fn account(what: &str, name: &str, c: &AccountChange) -> Vec<String> {
    let state = if c.changed { what.to_string() } else { format!("already {what}") };
    vec![format!("user {name} (id {}): {state}; sessions ended: {}", c.user_id, c.sessions_ended)]
}

async fn execute(admin: &AdminService, command: AdminCommand) -> Result<Vec<String>, ServiceError> {
    use AdminCommand as A;
    let time = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    Ok(match command {
        A::DisableUser { user_name } => account("disabled", &user_name, &admin.disable(&user_name).await?),
        A::EnableUser { user_name } => account("enabled", &user_name, &admin.enable(&user_name).await?),
        A::DeleteUser { user_name } => account("deleted", &user_name, &admin.delete(&user_name).await?),
        A::Sessions { user_name } => {
            let sessions = admin.sessions(&user_name).await?;
            let mut lines = vec![format!("{:<18}{:<22}{}", "SESSION", "CREATED", "EXPIRES")];
            lines.extend(
                sessions.iter().map(|s| format!("{:<18}{:<22}{}", s.id, time(s.created_at), time(s.expires_at))),
            );
            lines.push(format!("{} live session(s)", sessions.len()));
            lines
        }
        A::EndSessions { user_name, session } => {
            let n = admin.end_sessions(&user_name, session.as_deref()).await?;
            vec![format!("user {user_name}: sessions ended: {n}")]
        }
        A::ConversationStats { users, group } => {
            let stats = match (group, users.as_slice()) {
                (Some(g), _) => admin.group_stats(g).await?,
                (None, [a, b]) => admin.direct_stats(a, b).await?,
                _ => {
                    return Err(ServiceError::Validation {
                        field: "users".into(),
                        message: "give two user names or --group".into(),
                    });
                }
            };
            let mut lines = vec![format!("conversation {}", stats.conv)];
            if let Some(name) = &stats.group_name {
                lines.push(format!("group: {name} ({} members)", stats.members.len()));
            }
            lines.push(format!("messages stored: {}", stats.messages));
            lines.push(format!("last seq: {}", stats.last_seq));
            lines.push(format!("{:<12}{:<18}{:<10}{}", "USER ID", "USER NAME", "READ SEQ", "UNREAD"));
            lines.extend(
                stats
                    .members
                    .iter()
                    .map(|m| format!("{:<12}{:<18}{:<10}{}", m.user_id, m.user_name, m.read_seq, m.unread)),
            );
            lines
        }
    })
}
