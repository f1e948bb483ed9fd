//! Child processes that die with the test binary: the platforms, Redis, nats-server.

use std::io;
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock, mpsc};

/// Starts `command` so that it dies with this process: on Linux the child asks for SIGKILL
/// when its parent thread ends (`PR_SET_PDEATHSIG`), and the thread that spawns every platform
/// process lives as long as the test binary. (A test thread would not do: it ends with its
/// test.)
pub fn spawn_tied(command: Command) -> io::Result<Child> {
    type Job = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("platform-spawner".into())
            .spawn(move || {
                for (mut command, reply) in queue {
                    let _ = reply.send(tie_to_parent(&mut command).spawn());
                }
            });
        if let Err(e) = thread {
            eprintln!("no spawner thread ({e}): platform processes are spawned without it");
        }
        Mutex::new(jobs)
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .map_err(|e| io::Error::other(e.to_string()))?
        .send((command, reply))
        .map_err(|e| io::Error::other(e.to_string()))?;
    answer.recv().map_err(io::Error::other)?
}

#[cfg(target_os = "linux")]
fn tie_to_parent(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have gone before the line above took effect.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::other("the test binary is gone"));
            }
            Ok(())
        })
    }
}

#[cfg(not(target_os = "linux"))]
fn tie_to_parent(command: &mut Command) -> &mut Command {
    command
}
