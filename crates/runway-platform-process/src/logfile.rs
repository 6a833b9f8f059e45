//! Per-replica log files.
//!
//! A replica writes its stdout and stderr straight into its log file (opened with O_APPEND), not
//! into a pipe held by the server: a pipe would die with the server and kill the replica with
//! SIGPIPE, and re-adopting replicas after a server crash is a requirement. Rotation is therefore
//! copy-then-truncate: the replica keeps its descriptor and, thanks to O_APPEND, keeps writing at
//! the (new) end of the file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Rotate once a log file is larger than this.
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Rotated generations kept beside the live file (`.1` is the newest).
pub const KEEP: usize = 3;

pub fn log_path(state_dir: &Path, service: &str, replica_name: &str) -> PathBuf {
    state_dir
        .join("logs")
        .join(service)
        .join(format!("{replica_name}.log"))
}

pub fn open_for_append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    // Replica output may hold secrets: readable by the server's user only.
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Copy-truncate rotation when `path` is over `max_bytes`. Returns whether it rotated.
pub fn rotate_if_needed(path: &Path, max_bytes: u64, keep: usize) -> io::Result<bool> {
    let len = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len <= max_bytes || keep == 0 {
        return Ok(false);
    }
    for generation in (1..keep).rev() {
        let from = generation_path(path, generation);
        if from.exists() {
            fs::rename(&from, generation_path(path, generation + 1))?;
        }
    }
    fs::copy(path, generation_path(path, 1))?;
    OpenOptions::new().write(true).open(path)?.set_len(0)?;
    Ok(true)
}

fn generation_path(path: &Path, generation: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{generation}"));
    PathBuf::from(name)
}

/// Removes the log files (and their rotated generations) under `state_dir` of replicas not in
/// `running` (`(service, replica)`) that nothing has written to since `older_than`: the output
/// of replicas long stopped. Returns how many files went.
pub fn prune(
    state_dir: &Path,
    older_than: std::time::SystemTime,
    running: &std::collections::BTreeSet<(String, String)>,
) -> io::Result<u64> {
    let root = state_dir.join("logs");
    let services = match fs::read_dir(&root) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for service in services {
        let service = service?;
        if !service.file_type()?.is_dir() {
            continue;
        }
        let service_name = service.file_name().to_string_lossy().to_string();
        for file in fs::read_dir(service.path())? {
            let file = file?;
            let name = file.file_name().to_string_lossy().to_string();
            let Some(replica) = replica_of_log_file(&name) else {
                continue;
            };
            if running.contains(&(service_name.clone(), replica.to_string())) {
                continue;
            }
            let meta = file.metadata()?;
            if meta.is_file() && meta.modified()? < older_than {
                fs::remove_file(file.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The replica whose log `file_name` is: `web-3.log`, or a rotated `web-3.log.2` (a service
/// name may hold dots, so the suffix is matched from the end).
fn replica_of_log_file(file_name: &str) -> Option<&str> {
    if let Some(replica) = file_name.strip_suffix(".log") {
        return Some(replica);
    }
    let (replica, generation) = file_name.rsplit_once(".log.")?;
    (!generation.is_empty() && generation.bytes().all(|b| b.is_ascii_digit())).then_some(replica)
}

/// The last `n` lines of a file, reading only its tail.
pub fn tail_lines(path: &Path, n: usize) -> io::Result<Vec<String>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    // Lines are short in practice; read a generous tail and widen it if it held too few lines.
    let mut window = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf);
        let mut lines: Vec<&str> = text.lines().collect();
        if start > 0 && !lines.is_empty() {
            lines.remove(0); // probably cut in the middle
        }
        if lines.len() >= n || start == 0 {
            let skip = lines.len().saturating_sub(n);
            return Ok(lines[skip..].iter().map(|l| l.to_string()).collect());
        }
        window *= 4;
    }
}

/// Bytes appended to a file since `offset` (or everything when the file was truncated by a
/// rotation in between), as complete lines, and the offset to continue from.
pub fn read_from(path: &Path, offset: u64) -> io::Result<(Vec<String>, u64)> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = if offset > len { 0 } else { offset };
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    // Only hand out complete lines; a partial last line is read again next time.
    let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&buf[..complete]);
    Ok((
        text.lines().map(str::to_string).collect(),
        start + complete as u64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Only logs of replicas not running and quiet since the line go, rotated generations with
    /// them; a running replica's log stays however old.
    #[test]
    fn prune_removes_the_quiet_logs_of_stopped_replicas_only() {
        let dir = tempfile::tempdir().unwrap();
        let write = |service: &str, name: &str| {
            let path = dir.path().join("logs").join(service).join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, "a line\n").unwrap();
            path
        };
        assert_eq!(
            replica_of_log_file("api.logger-7.log"),
            Some("api.logger-7")
        );
        assert_eq!(
            replica_of_log_file("api.logger-7.log.12"),
            Some("api.logger-7")
        );
        assert_eq!(replica_of_log_file("web-1.log.x"), None);
        assert_eq!(replica_of_log_file("notes.txt"), None);
        let dotted = write("api.logger", "api.logger-7.log");
        let stopped = write("web", "web-1.log");
        let rotated = write("web", "web-1.log.1");
        let running = write("web", "web-2.log");
        let other = write("api", "api-1.log");
        let running_set = [
            ("web".to_string(), "web-2".to_string()),
            ("api.logger".to_string(), "api.logger-7".to_string()),
        ]
        .into();

        // Before the line: nothing goes.
        let line = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        assert_eq!(prune(dir.path(), line, &running_set).unwrap(), 0);

        let line = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
        assert_eq!(prune(dir.path(), line, &running_set).unwrap(), 3);
        assert!(!stopped.exists() && !rotated.exists() && !other.exists());
        assert!(running.exists() && dotted.exists());
        // No logs dir at all: nothing to do.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(prune(empty.path(), line, &running_set).unwrap(), 0);
    }

    #[test]
    fn a_log_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc/r.log");
        open_for_append(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn rotation_keeps_generations_and_the_writer_keeps_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.log");
        let mut writer = open_for_append(&path).unwrap();
        for round in 0..4 {
            writeln!(writer, "round {round} {}", "x".repeat(100)).unwrap();
            assert!(rotate_if_needed(&path, 10, 2).unwrap());
        }
        writeln!(writer, "after").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "after\n");
        assert!(fs::read_to_string(generation_path(&path, 1))
            .unwrap()
            .starts_with("round 3"));
        assert!(fs::read_to_string(generation_path(&path, 2))
            .unwrap()
            .starts_with("round 2"));
        assert!(!generation_path(&path, 3).exists());
    }

    #[test]
    fn tail_and_follow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.log");
        let mut w = open_for_append(&path).unwrap();
        for i in 0..100 {
            writeln!(w, "line {i}").unwrap();
        }
        assert_eq!(tail_lines(&path, 2).unwrap(), vec!["line 98", "line 99"]);
        let (lines, off) = read_from(&path, 0).unwrap();
        assert_eq!(lines.len(), 100);
        write!(w, "partial").unwrap();
        let (lines, off2) = read_from(&path, off).unwrap();
        assert!(lines.is_empty());
        assert_eq!(off2, off);
        writeln!(w, " done").unwrap();
        assert_eq!(read_from(&path, off).unwrap().0, vec!["partial done"]);
    }
}
