//! `sysusers.d` fragments of layered packages: parsing their `u` and `g` lines and creating the
//! accounts they name, before any script runs (as rpm's `%sysusers` does).

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use super::ids::ensure;
use super::{Accounts, Allocations, Kind};

/// A `sysusers.d` file of a layered package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fragment {
    /// Its path as rpm names it (`/usr/lib/sysusers.d/…`), for messages.
    pub path: String,
    pub text: String,
}

/// The `sysusers.d` files among `files` (paths as rpm names them) with their text, read from `tree`.
pub(crate) fn sysusers_fragments<'a>(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    files: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<Fragment>> {
    let mut fragments = Vec::new();
    for file in files {
        let Some(relative) = file.strip_prefix("/usr/lib/sysusers.d/") else {
            continue;
        };
        if !relative.ends_with(".conf") {
            continue;
        }
        if let Some(text) = crate::tree::mtree_read_file(repo, tree, &file[1..])? {
            fragments.push(Fragment {
                path: file.clone(),
                text: String::from_utf8_lossy(&text).into_owned(),
            });
        }
    }
    Ok(fragments)
}

/// Creates the users and groups of `fragments` that the tree
/// lacks, with IDs from `allocations` or new ones recorded there. Fails on a line it cannot read and
/// when no free ID is left.
pub(crate) fn apply_sysusers(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    fragments: &[Fragment],
    allocations: &mut Allocations,
) -> Result<()> {
    let mut accounts = Accounts::read(repo, tree)?;
    let mut new_lines: BTreeMap<Kind, String> = BTreeMap::new();
    let mut add = |kind: Kind, line: String| new_lines.entry(kind).or_default().push_str(&line);
    for Fragment { path, text } in fragments {
        for (number, line) in text.lines().enumerate() {
            let entry = match parse_sysusers_line(line) {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(why) => bail!("{path}:{}: {why}", number + 1),
            };
            match entry {
                SysusersEntry::Group { name, id } => {
                    if let (gid, true) = ensure(Kind::Group, &name, id, &mut accounts, allocations)?
                    {
                        add(Kind::Group, format!("{name}:x:{gid}:\n"));
                    }
                }
                SysusersEntry::User {
                    name,
                    id,
                    gecos,
                    home,
                    shell,
                } => {
                    if accounts.id(Kind::User, &name).is_some() {
                        continue;
                    }
                    // Like systemd-sysusers: the user's group has its name and, if free, its ID.
                    let (gid, new_group) =
                        ensure(Kind::Group, &name, id, &mut accounts, allocations)?;
                    if new_group {
                        add(Kind::Group, format!("{name}:x:{gid}:\n"));
                    }
                    let wanted = id.or(Some(gid));
                    let (uid, _) = ensure(Kind::User, &name, wanted, &mut accounts, allocations)?;
                    add(
                        Kind::User,
                        format!("{name}:x:{uid}:{gid}:{gecos}:{home}:{shell}\n"),
                    );
                }
            }
        }
    }
    for (kind, lines) in new_lines {
        if !lines.is_empty() {
            accounts.append(repo, tree, kind, &lines)?;
        }
    }
    Ok(())
}

/// A `sysusers.d` line that creates an account.
#[derive(Debug, PartialEq, Eq)]
enum SysusersEntry {
    User {
        name: String,
        id: Option<u32>,
        gecos: String,
        home: String,
        shell: String,
    },
    Group {
        name: String,
        id: Option<u32>,
    },
}

/// One line of a sysusers.d file: `u`/`g` entries; `m` and `r` lines and comments give `None`.
fn parse_sysusers_line(line: &str) -> Result<Option<SysusersEntry>, String> {
    let fields = split_quoted(line.trim());
    let field = |i: usize| fields.get(i).map(String::as_str).filter(|f| *f != "-");
    // `UID:GID` gives the user's ID; a path (take the ID of that file's owner) gives none.
    let numeric = |text: Option<&str>| text.and_then(|t| t.split(':').next()?.parse().ok());
    match fields.first().map(String::as_str) {
        None => Ok(None),
        Some(comment) if comment.starts_with('#') => Ok(None),
        Some("u" | "u!") => {
            let name = field(1).ok_or("a `u` line needs a name")?.to_string();
            Ok(Some(SysusersEntry::User {
                id: numeric(field(2)),
                gecos: field(3).unwrap_or("").to_string(),
                home: field(4).unwrap_or("/").to_string(),
                shell: field(5).unwrap_or("/usr/sbin/nologin").to_string(),
                name,
            }))
        }
        Some("g") => {
            let name = field(1).ok_or("a `g` line needs a name")?.to_string();
            Ok(Some(SysusersEntry::Group {
                name,
                id: numeric(field(2)),
            }))
        }
        Some("m" | "r") => Ok(None),
        Some(other) => Err(format!("unknown sysusers line type {other:?}")),
    }
}

/// Splits on whitespace, keeping "double quoted" fields whole.
fn split_quoted(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    // Whether a field began, so `""` gives an empty field rather than none.
    let mut started = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    fields.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        fields.push(current);
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, id: Option<u32>, gecos: &str, home: &str, shell: &str) -> SysusersEntry {
        SysusersEntry::User {
            name: name.into(),
            id,
            gecos: gecos.into(),
            home: home.into(),
            shell: shell.into(),
        }
    }

    #[test]
    fn parses_sysusers_lines() {
        assert_eq!(
            parse_sysusers_line(r#"u chrony - "chrony system user" /var/lib/chrony"#),
            Ok(Some(user(
                "chrony",
                None,
                "chrony system user",
                "/var/lib/chrony",
                "/usr/sbin/nologin"
            )))
        );
        assert_eq!(
            parse_sysusers_line("g  tss 59"),
            Ok(Some(SysusersEntry::Group {
                name: "tss".into(),
                id: Some(59)
            }))
        );
        assert_eq!(parse_sysusers_line("# comment"), Ok(None));
        assert_eq!(parse_sysusers_line("m chrony wheel"), Ok(None));
        assert!(parse_sysusers_line("x what").is_err());
    }

    #[test]
    fn sysusers_edge_cases() {
        let nologin = "/usr/sbin/nologin";
        // Blank lines, indented comments and ranges create nothing.
        assert_eq!(parse_sysusers_line(""), Ok(None));
        assert_eq!(parse_sysusers_line(" \t "), Ok(None));
        assert_eq!(parse_sysusers_line("   # u indented"), Ok(None));
        assert_eq!(parse_sysusers_line("r - 500-900"), Ok(None));
        // `u!` (locked) is a user too; `-` everywhere gives the defaults.
        assert_eq!(
            parse_sysusers_line("u! locked - - - -"),
            Ok(Some(user("locked", None, "", "/", nologin)))
        );
        // UID:GID takes the UID; a path or garbage gives no ID (one is allocated).
        assert_eq!(
            parse_sysusers_line("u\tweb\t81:82\t\"\"\t/srv\t/bin/sh"),
            Ok(Some(user("web", Some(81), "", "/srv", "/bin/sh")))
        );
        assert_eq!(
            parse_sysusers_line("u web /usr/bin/web"),
            Ok(Some(user("web", None, "", "/", nologin)))
        );
        assert_eq!(
            parse_sysusers_line("g web abc"),
            Ok(Some(SysusersEntry::Group {
                name: "web".into(),
                id: None
            }))
        );
        // Quotes may sit inside a field; an unclosed one runs to the end of the line.
        assert_eq!(
            parse_sysusers_line(r#"u db - a" b "c "unclosed home"#),
            Ok(Some(user("db", None, "a b c", "unclosed home", nologin)))
        );
        assert_eq!(
            parse_sysusers_line("u"),
            Err("a `u` line needs a name".into())
        );
        assert_eq!(
            parse_sysusers_line("g - 5"),
            Err("a `g` line needs a name".into())
        );
        assert_eq!(
            parse_sysusers_line("x what"),
            Err(r#"unknown sysusers line type "x""#.into())
        );
    }
}
