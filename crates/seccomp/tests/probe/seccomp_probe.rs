//! seccomp_probe: tries syscalls and prints what happened to each.
//!
//! A static x86_64 program with no dependencies, built by the tests with
//! `rustc --target x86_64-unknown-linux-musl` and run inside containers
//! (under runc, later under ocirun) or directly.
//!
//! Usage: seccomp_probe [--filter FILE] CASES_FILE
//!        seccomp_probe [--filter FILE] --bench NR A0 ITERATIONS ROUNDS
//!
//! `--filter FILE` first installs a filter written by `Filter::to_bytes`
//! (after setting no_new_privs). Each line of CASES_FILE is
//! `ID MODE NR A0 A1 A2 A3 A4 A5` (numbers in decimal or 0x hex), where MODE
//! is `sys` (the 64-bit `syscall` instruction; x32 numbers carry bit 30),
//! `int80` (the i386 entry from a 64-bit process) or `fork` (like `sys`, for
//! clone/fork: a child that gets 0 exits at once). Each case runs in a child
//! process, so a killing action only ends that child. Output, one line per
//! case: `ID ok`, `ID errno=N` or `ID signal=N`.
//!
//! `--bench` calls syscall NR(A0) ITERATIONS times per round and prints the
//! mean nanoseconds per call of each round, one `ns=X` line per round.

use std::arch::asm;

const SYS_READ: u64 = 0;
const SYS_WRITE: u64 = 1;
const SYS_CLOSE: u64 = 3;
const SYS_PIPE2: u64 = 293;
const SYS_FORK: u64 = 57;
const SYS_WAIT4: u64 = 61;
const SYS_EXIT_GROUP: u64 = 231;
const SYS_PRCTL: u64 = 157;
const SYS_SECCOMP: u64 = 317;

fn syscall6(nr: u64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: a raw syscall; the cases are chosen by the test harness.
    unsafe {
        asm!("syscall",
            inlateout("rax") nr as i64 => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack));
    }
    ret
}

fn int80(nr: u64, a: [u64; 6]) -> i64 {
    let ret: u32;
    // SAFETY: the i386 syscall entry; ebx and ebp are saved around it because
    // the compiler reserves them.
    unsafe {
        asm!(
            "push rbx", "push rbp",
            "mov ebx, {a0:e}", "mov ebp, {a5:e}",
            "int 0x80",
            "pop rbp", "pop rbx",
            a0 = in(reg) a[0], a5 = in(reg) a[5],
            inlateout("eax") nr as u32 => ret,
            in("ecx") a[1] as u32, in("edx") a[2] as u32,
            in("esi") a[3] as u32, in("edi") a[4] as u32,
        );
    }
    i64::from(ret as i32)
}

fn exit(code: u64) -> ! {
    loop {
        syscall6(SYS_EXIT_GROUP, [code, 0, 0, 0, 0, 0]);
    }
}

fn parse(word: &str) -> u64 {
    let parsed = match word.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => word.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("bad number {word:?}"))
}

fn install_filter(path: &str) {
    let bytes = std::fs::read(path).expect("read filter");
    assert!(bytes.len() >= 20 && &bytes[..8] == b"OCISECF1", "not a filter file");
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let (flags, count) = (word(12), word(16) as usize);
    let program = &bytes[20..];
    assert_eq!(program.len(), count * 8);
    #[repr(C)]
    struct Fprog {
        len: u16,
        filter: *const u8,
    }
    let fprog = Fprog { len: count as u16, filter: program.as_ptr() };
    // PR_SET_NO_NEW_PRIVS
    assert_eq!(syscall6(SYS_PRCTL, [38, 1, 0, 0, 0, 0]), 0, "no_new_privs");
    let rc = syscall6(SYS_SECCOMP, [1, u64::from(flags), &fprog as *const Fprog as u64, 0, 0, 0]);
    assert!(rc >= 0, "seccomp failed: {rc}");
}

/// Runs one case in a child; returns the outcome text.
fn run_case(mode: &str, nr: u64, args: [u64; 6]) -> String {
    let mut fds = [0i32; 2];
    assert_eq!(syscall6(SYS_PIPE2, [fds.as_mut_ptr() as u64, 0o2000000, 0, 0, 0, 0]), 0, "pipe2");
    let pid = syscall6(SYS_FORK, [0; 6]);
    assert!(pid >= 0, "fork failed: {pid}");
    if pid == 0 {
        let ret = match mode {
            "int80" => int80(nr, args),
            _ => syscall6(nr, args),
        };
        if mode == "fork" && ret == 0 {
            exit(0); // the process the probed call created
        }
        let bytes = ret.to_ne_bytes();
        syscall6(SYS_WRITE, [fds[1] as u64, bytes.as_ptr() as u64, 8, 0, 0, 0]);
        exit(0);
    }
    syscall6(SYS_CLOSE, [fds[1] as u64, 0, 0, 0, 0, 0]);
    let mut status = 0i32;
    loop {
        let rc = syscall6(SYS_WAIT4, [pid as u64, &mut status as *mut i32 as u64, 0x4000_0000, 0, 0, 0]);
        if rc != -4 {
            assert_eq!(rc, pid, "wait4");
            break;
        }
    }
    let mut buf = [0u8; 8];
    let got = syscall6(SYS_READ, [fds[0] as u64, buf.as_mut_ptr() as u64, 8, 0, 0, 0]);
    syscall6(SYS_CLOSE, [fds[0] as u64, 0, 0, 0, 0, 0]);
    if status & 0x7f != 0 {
        return format!("signal={}", status & 0x7f);
    }
    if got != 8 {
        return format!("exit={}", (status >> 8) & 0xff);
    }
    let ret = i64::from_ne_bytes(buf);
    if (-4095..0).contains(&ret) { format!("errno={}", -ret) } else { "ok".to_string() }
}

fn bench(nr: u64, a0: u64, iterations: u64, rounds: u64) {
    for _ in 0..rounds {
        let start = std::time::Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(syscall6(nr, [a0, 0, 0, 0, 0, 0]));
        }
        let ns = start.elapsed().as_nanos() as f64 / iterations as f64;
        println!("ns={ns:.1}");
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    if args.len() > 2 && args[1] == "--filter" && args.get(3).is_some_and(|a| a == "--bench") {
        install_filter(&args[2]);
        args.drain(1..3);
    }
    if args.len() == 6 && args[1] == "--bench" {
        bench(parse(&args[2]), parse(&args[3]), parse(&args[4]), parse(&args[5]));
        return;
    }
    let (filter, cases) = match args.as_slice() {
        [_, flag, filter, cases] if flag == "--filter" => (Some(filter.clone()), cases.clone()),
        [_, cases] => (None, cases.clone()),
        _ => {
            eprintln!("usage: seccomp_probe [--filter FILE] CASES_FILE");
            exit(2)
        }
    };
    let cases = std::fs::read_to_string(cases).expect("read cases");
    if let Some(filter) = filter {
        install_filter(&filter);
    }
    let mut out = String::new();
    for line in cases.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.len(), 9, "bad case line {line:?}");
        let mut a = [0u64; 6];
        for (slot, word) in a.iter_mut().zip(&words[3..]) {
            *slot = parse(word);
        }
        let outcome = run_case(words[1], parse(words[2]), a);
        out.push_str(&format!("{} {}\n", words[0], outcome));
    }
    let bytes = out.as_bytes();
    let mut written = 0;
    while written < bytes.len() {
        let n = syscall6(SYS_WRITE, [1, bytes[written..].as_ptr() as u64, (bytes.len() - written) as u64, 0, 0, 0]);
        assert!(n > 0, "write stdout: {n}");
        written += n as usize;
    }
}
