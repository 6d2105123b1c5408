//! The agent's token file: the entry `tapio auth add-user NAME --role agent` writes into the
//! `tapio-auth` Secret and the agents (a DaemonSet) read back with `--token-file`.
//!
//! Writer and reader live together here so the CLI (through `tapio_core::auth`) and the
//! agent cannot drift apart. People's entries carry only a digest of their token; their
//! format, hashing and roles stay in `tapio_core::auth`.

/// The content of an agent's file: the token itself, not its digest, because the agents
/// (a DaemonSet) mount the same `tapio-auth` key to present it. People's files never
/// carry a plaintext token.
pub fn agent_file(token: &str) -> String {
    format!("role: agent\ntoken: {token}\n")
}

/// The token in an agent's token file: the `token:` line of an [`agent_file`], or the
/// whole trimmed content of a file that holds only the token.
pub fn agent_token(text: &str) -> Option<String> {
    let from_line = text.lines().find_map(|l| {
        let (k, v) = l.trim().split_once(':')?;
        (k.trim() == "token").then(|| v.trim().to_owned())
    });
    let t = match from_line {
        Some(t) => t,
        None if !text.contains(':') => text.trim().to_owned(),
        None => return None,
    };
    (!t.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_back_from_its_file_or_a_bare_file() {
        let t = "tapio_agent_secret";
        assert_eq!(agent_token(&agent_file(t)).as_deref(), Some(t));
        assert_eq!(agent_token("  raw-token\n").as_deref(), Some("raw-token"));
        assert_eq!(agent_token("role: agent\n"), None);
        assert_eq!(agent_token("role: agent\ntoken:  \n"), None);
        assert_eq!(agent_token(""), None);
    }
}
