//! Messages for the caller: to `--log` (text or runc's JSON line shape) and to stderr.
//!
//! containerd reads the last `"level":"error"` line of the log file; podman parses the whole
//! file as one JSON object when the runtime fails, so an error is written as exactly one line.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use crate::cli::LogFormat;

pub struct Logger {
    file: Option<PathBuf>,
    format: LogFormat,
    debug: bool,
}

#[derive(Clone, Copy)]
pub enum Level {
    Debug,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

impl Logger {
    pub fn new(file: Option<PathBuf>, format: LogFormat, debug: bool) -> Logger {
        Logger {
            file,
            format,
            debug,
        }
    }

    fn line(&self, level: Level, msg: &str) -> String {
        let time = libsandbox::now_rfc3339();
        match self.format {
            LogFormat::Json => {
                let v = serde_json::json!({"level": level.name(), "msg": msg, "time": time});
                v.to_string()
            }
            LogFormat::Text => format!("time={:?} level={} msg={:?}", time, level.name(), msg),
        }
    }

    /// Logs `msg`. Errors and warnings also reach stderr as plain text when a log file is used.
    pub fn log(&self, level: Level, msg: &str) {
        if matches!(level, Level::Debug) && !self.debug {
            return;
        }
        match &self.file {
            Some(path) => {
                if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
                    let _ = writeln!(f, "{}", self.line(level, msg));
                }
                if !matches!(level, Level::Debug) {
                    eprintln!("ocirun: {msg}");
                }
            }
            None => match self.format {
                LogFormat::Json => eprintln!("{}", self.line(level, msg)),
                LogFormat::Text => eprintln!("ocirun: {msg}"),
            },
        }
    }

    /// Creates the log file if it does not exist (runc opens it at startup).
    pub fn touch(&self) {
        if let Some(path) = &self.file {
            let _ = OpenOptions::new().create(true).append(true).open(path);
        }
    }

    /// Writes `msg` to the log file only (nothing on stderr).
    pub fn log_only(&self, level: Level, msg: &str) {
        if let Some(path) = &self.file {
            if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
                let _ = writeln!(f, "{}", self.line(level, msg));
            }
        }
    }

    pub fn error(&self, msg: &str) {
        self.log(Level::Error, msg);
    }

    pub fn warn(&self, msg: &str) {
        self.log(Level::Warn, msg);
    }
}
