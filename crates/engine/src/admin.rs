//! The admin token: what the management API asks for. Made at the first
//! start (`sga-` and 43 random characters), kept in the data directory as
//! `admin-token` (mode 0600), printed by `subgate admin token`.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The file's name in the data directory.
const FILE: &str = "admin-token";

/// The admin token in `data_dir`, made (and the directory with it) when
/// there is none.
pub fn admin_token(data_dir: &Path) -> io::Result<String> {
    let path = data_dir.join(FILE);
    match fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)?;
    let token = format!(
        "sga-{}",
        subgate_auth::random_token(32).map_err(io::Error::other)?
    );
    // Written beside, then renamed: a reader never sees half a token, and
    // two processes starting at once keep one (the last rename's).
    let temporary = data_dir.join(format!(".{FILE}.{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(format!("{token}\n").as_bytes())?;
    file.sync_all()?;
    fs::rename(&temporary, &path)?;
    // Whichever token the file holds now is the one.
    Ok(fs::read_to_string(&path)?.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let token = admin_token(&data).unwrap();
        assert!(
            token.starts_with("sga-") && token.len() == 4 + 43,
            "{token}"
        );
        let mode = fs::metadata(data.join(FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(admin_token(&data).unwrap(), token);
        assert_eq!(
            fs::read_dir(&data).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
