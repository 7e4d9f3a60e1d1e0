//! A pseudo-terminal for the clients' `-t` modes.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use super::{Output, Scratch, TIMEOUT, describe, exit_code, wait_child};

impl Scratch {
    /// Runs `cmd` with a new pseudo-terminal of `rows` x `cols` as its stdin, stdout and stderr;
    /// returns what the terminal showed (carriage returns removed) as stdout.
    pub fn run_in_pty(&self, cmd: &mut Command, rows: u16, cols: u16) -> Output {
        let desc = describe(cmd);
        eprintln!("e2e: $ (in a pty {rows}x{cols}) {desc}");
        let (master, slave) = open_pty(rows, cols);
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup pty")))
            .stdout(Stdio::from(slave.try_clone().expect("dup pty")))
            .stderr(Stdio::from(slave));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{desc}`: {e}"));
        let shown = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = mpsc::channel();
        let buf = Arc::clone(&shown);
        std::thread::spawn(move || {
            let mut master = master;
            let mut chunk = [0u8; 4096];
            // Reading the master side ends with EIO once no process holds the slave side.
            while let Ok(n) = master.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
            let _ = done_tx.send(());
        });
        let status = wait_child(&mut child, TIMEOUT);
        // The Command still holds its copies of the slave side: close them, so that the reader
        // sees the end once the child (and anything it left holding the terminal) is gone.
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = done_rx.recv_timeout(Duration::from_secs(10));
        let text = String::from_utf8_lossy(&shown.lock().unwrap()).replace('\r', "");
        let out = Output {
            cmd: desc,
            code: status.and_then(exit_code),
            stdout: text,
            stderr: String::new(),
        };
        assert!(status.is_some(), "timed out, killed: {out}");
        out
    }
}

/// A new pseudo-terminal (master, slave), both close-on-exec, with the given window size.
fn open_pty(rows: u16, cols: u16) -> (File, File) {
    // SAFETY: posix_openpt takes flags only; the result is checked below.
    let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a new descriptor that nothing else owns.
    let master = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mfd = fd;
    // SAFETY: mfd is an open pty master.
    assert_eq!(unsafe { libc::unlockpt(mfd) }, 0, "unlockpt");
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the pointer, which points to `n`.
    let rc = unsafe { libc::ioctl(mfd, libc::TIOCGPTN, &mut n as *mut libc::c_uint) };
    assert_eq!(rc, 0, "TIOCGPTN: {}", std::io::Error::last_os_error());
    let slave = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(format!("/dev/pts/{n}"))
        .expect("open the pty's slave side");
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize through the pointer, which points to `ws`.
    let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &ws as *const _) };
    assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    (master, slave)
}
