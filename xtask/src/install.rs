//! Installing what a fresh machine lacks (redis-server, jco's npm packages, wash, ...) once,
//! whatever the order or concurrency of the callers: one file lock across threads and processes
//! (test threads, the test binary and `cargo xtask` alike), and a check before and after.

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The lock every installer takes: in the system temp folder, so that two checkouts of the
/// workspace that install the same system package wait for each other too, and so that two
/// installs by the same package manager (apt-get's dpkg lock) never race.
fn lock_path() -> PathBuf {
    std::env::temp_dir().join("mangopay-auth-install.lock")
}

thread_local! {
    /// This thread holds the install lock: an `install` that calls `once` again must not wait
    /// for itself.
    static HOLDING: Cell<bool> = const { Cell::new(false) };
}

/// Installs that failed in this process, by `what`: later callers get the same error at once
/// instead of each trying again.
static FAILED: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

fn failed(what: &str) -> Option<String> {
    let failed = FAILED.lock().unwrap_or_else(|e| e.into_inner());
    failed.as_ref().and_then(|f| f.get(what).cloned())
}

fn remember_failure(what: &str, error: &str) {
    let mut failed = FAILED.lock().unwrap_or_else(|e| e.into_inner());
    failed
        .get_or_insert_with(HashMap::new)
        .insert(what.to_owned(), error.to_owned());
}

/// The install lock, held until dropped (or `None` when this thread already holds it).
struct Lock {
    _file: File,
}

impl Lock {
    fn take(what: &str) -> Result<Option<Lock>, String> {
        if HOLDING.with(Cell::get) {
            return Ok(None);
        }
        let path = lock_path();
        let file = open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                eprintln!(
                    "{what}: waiting for another install to finish ({})",
                    path.display()
                );
                file.lock()
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Err(TryLockError::Error(e)) => return Err(format!("{}: {e}", path.display())),
        }
        HOLDING.with(|h| h.set(true));
        Ok(Some(Lock { _file: file }))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Closing the file releases the lock.
        HOLDING.with(|h| h.set(false));
    }
}

/// The lock file, created if need be; read-only when another user created it (a lock needs
/// no write access).
fn open(path: &Path) -> std::io::Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .or_else(|_| File::open(path))
}

/// `found()` if it already gives a value; else, holding the install lock, `found()` again (another
/// caller may have installed it meanwhile), then `install()` and `found()` once more. `Err` says
/// what failed and what to run by hand (`by_hand`); a failed install is not tried again in this
/// process.
pub fn once<T>(
    what: &str,
    found: impl Fn() -> Option<T>,
    install: impl FnOnce() -> Result<(), String>,
    by_hand: &str,
) -> Result<T, String> {
    if let Some(value) = found() {
        return Ok(value);
    }
    let _lock = Lock::take(what)?;
    if let Some(value) = found() {
        return Ok(value);
    }
    if let Some(error) = failed(what) {
        return Err(error);
    }
    eprintln!("{what} is missing: installing it");
    let installed = install();
    let result = match (installed, found()) {
        (_, Some(value)) => {
            eprintln!("{what}: installed");
            return Ok(value);
        }
        (Err(e), None) => format!("installing {what} failed: {e}; install it by hand: {by_hand}"),
        (Ok(()), None) => {
            format!("{what} is still missing after installing it; install it by hand: {by_hand}")
        }
    };
    remember_failure(what, &result);
    Err(result)
}

/// `program --version` runs and succeeds (its output is not shown).
pub fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `command`, its output captured: `Err` names it and gives the end of its stderr.
pub fn run(what: &str, command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines
        .get(lines.len().saturating_sub(8)..)
        .unwrap_or_default();
    Err(format!(
        "{what} failed ({}): {}",
        output.status,
        tail.join(" | ")
    ))
}

/// Debian's package `package` with apt-get (`apt-get update` first: a fresh machine's lists
/// may be empty or old). Needs root; the caller's `by_hand` says what to run otherwise.
pub fn apt_get(package: &str) -> Result<(), String> {
    if !runs("apt-get") {
        return Err("apt-get is not on PATH (not a Debian-based system)".into());
    }
    eprintln!("installing Debian's {package} with apt-get");
    run(
        "apt-get update",
        Command::new("apt-get").args(["update", "-qq"]),
    )?;
    run(
        &format!("apt-get install {package}"),
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Many threads at once, each seeing the thing missing at first: one install, every one
    /// gets the value.
    #[test]
    fn concurrent_callers_install_once() {
        let dir = std::env::temp_dir().join(format!("xtask-install-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let marker = dir.join("installed");
        let installs = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (dir, marker, installs) = (dir.clone(), marker.clone(), installs.clone());
                std::thread::spawn(move || {
                    once(
                        "a test thing",
                        || marker.exists().then_some(42),
                        || {
                            installs.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(100));
                            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                            std::fs::write(&marker, b"").map_err(|e| e.to_string())
                        },
                        "touch it",
                    )
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().expect("no panic"), Ok(42));
        }
        assert_eq!(installs.load(Ordering::SeqCst), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A failed install says what to run by hand, and is not tried again; a nested `once` in
    /// an install does not wait for its own lock.
    #[test]
    fn a_failure_says_what_to_run_by_hand_once() {
        let tries = AtomicUsize::new(0);
        let attempt = || {
            once::<()>(
                "an uninstallable test thing",
                || None,
                || {
                    tries.fetch_add(1, Ordering::SeqCst);
                    let nested = once::<()>("a nested test thing", || None, || Ok(()), "nothing");
                    Err(format!("no luck ({})", nested.expect_err("never found")))
                },
                "apt-get install it",
            )
        };
        let first = attempt().expect_err("fails");
        assert!(first.contains("no luck"), "{first}");
        assert!(
            first.ends_with("install it by hand: apt-get install it"),
            "{first}"
        );
        assert_eq!(attempt().expect_err("fails again"), first);
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
