//! Users and tokens: the format of a user's entry in the `tapio-auth` Secret (one file per
//! user under `--auth-dir`), token hashing and the roles. Pure: reading the directory and
//! making tokens happen in the server and the CLI.

use sha2::{Digest, Sha256};

/// What a token may do. Ordered for the people's roles: viewer < responder < admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read incidents, evidence, agents, config.
    Viewer,
    /// Plus acknowledge, mitigate, resolve, reopen, notes, severity, declare, silences.
    Responder,
    /// Plus the audit trail (and everything an agent may do).
    Admin,
    /// An agent or producer: send evidence, events, heartbeats and alerts; read its node's
    /// pods. Nothing else.
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Responder => "responder",
            Self::Admin => "admin",
            Self::Agent => "agent",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Self::Viewer),
            "responder" => Ok(Self::Responder),
            "admin" => Ok(Self::Admin),
            "agent" => Ok(Self::Agent),
            other => Err(format!(
                "role {other:?} is not one of viewer, responder, admin, agent"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub role: Role,
    token_sha256: [u8; 32],
}

impl User {
    /// Whether `token` is this user's (constant time in the digest comparison).
    pub fn token_matches(&self, token: &str) -> bool {
        ct_eq(&self.token_sha256, &hash_token(token))
    }
    /// Constant-time comparison with an already computed digest.
    pub fn digest_matches(&self, digest: &[u8; 32]) -> bool {
        ct_eq(&self.token_sha256, digest)
    }
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two digests.
pub fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The content of a user's file for `token`.
pub fn user_file(role: Role, token: &str) -> String {
    format!(
        "role: {}\ntoken-sha256: {}\n",
        role.as_str(),
        hex(&hash_token(token))
    )
}

// The agent's token file (written here for the CLI, read by the agent) is defined in
// tapio-proto so the agent needs no tapio-core.
pub use tapio_proto::auth::{agent_file, agent_token};

/// Whether `name` can be a user (and a Secret key): 1–63 of `[a-z0-9._-]`, starting with
/// a letter or digit.
pub fn valid_user_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Parse one user's file; errors name the line.
pub fn parse_user(name: &str, text: &str) -> Result<User, String> {
    let mut role = None;
    let mut hash = None;
    let mut plain_line = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!(
                "line {}: expected `key: value` (role, token-sha256)",
                i + 1
            ));
        };
        match k.trim() {
            "role" => {
                role = Some(
                    v.parse::<Role>()
                        .map_err(|e| format!("line {}: {e}", i + 1))?,
                )
            }
            "token-sha256" => {
                let v = v.trim();
                if v.len() != 64 || !v.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!(
                        "line {}: token-sha256 must be 64 hex digits (tapio auth add-user writes it)",
                        i + 1
                    ));
                }
                let mut h = [0u8; 32];
                for (j, b) in h.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&v[2 * j..2 * j + 2], 16).unwrap_or(0);
                }
                hash = Some(h);
            }
            "token" => {
                let v = v.trim();
                if v.is_empty() {
                    return Err(format!("line {}: empty token", i + 1));
                }
                hash = Some(hash_token(v));
                plain_line = Some(i + 1);
            }
            other => {
                return Err(format!(
                    "line {}: unknown key {other:?} (known: role, token-sha256, token for agents)",
                    i + 1
                ));
            }
        }
    }
    let role = role.ok_or("no `role:` line")?;
    if let Some(line) = plain_line
        && role != Role::Agent
    {
        return Err(format!(
            "line {line}: a plaintext `token:` is only for role agent (its DaemonSet reads it); people's files carry token-sha256 (tapio auth add-user writes it)"
        ));
    }
    Ok(User {
        name: name.to_owned(),
        role,
        token_sha256: hash.ok_or("no `token-sha256:` line")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_files_parse_and_mistakes_name_the_line() {
        let t = "tapio_secret";
        let u = parse_user("alice", &user_file(Role::Responder, t)).expect("valid");
        assert_eq!((u.name.as_str(), u.role), ("alice", Role::Responder));
        assert!(u.token_matches(t));
        assert!(!u.token_matches("tapio_other"));
        for (bad, needle) in [
            ("role: owner\ntoken-sha256: 00", "line 1: role \"owner\""),
            (
                "role: viewer\ntoken-sha256: abc",
                "line 2: token-sha256 must be 64 hex",
            ),
            ("role: viewer", "no `token-sha256:`"),
            ("role viewer", "line 1: expected `key: value`"),
            ("role: viewer\npassword: x", "unknown key \"password\""),
        ] {
            let e = parse_user("bob", bad).expect_err(needle);
            assert!(e.contains(needle), "{needle}: {e}");
        }
        assert!(valid_user_name("alice") && valid_user_name("ci-bot.2"));
    }

    #[test]
    fn agents_carry_their_token_and_people_never_do() {
        let t = "tapio_agent_secret";
        let u = parse_user("tapio-agent", &agent_file(t)).expect("agent file");
        assert_eq!(u.role, Role::Agent);
        assert!(u.token_matches(t));
        assert_eq!(agent_token(&agent_file(t)).as_deref(), Some(t));
        assert_eq!(agent_token("  raw-token\n").as_deref(), Some("raw-token"));
        assert_eq!(agent_token(&user_file(Role::Agent, t)), None);
        let e = parse_user("alice", &format!("role: admin\ntoken: {t}\n")).expect_err("plain");
        assert!(e.contains("only for role agent"), "{e}");
        assert!(!valid_user_name("Alice") && !valid_user_name("-x") && !valid_user_name("a/b"));
    }
}
