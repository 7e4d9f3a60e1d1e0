//! Just enough D-Bus to talk to systemd's manager: SASL EXTERNAL authentication, method calls
//! with typed arguments, replies, errors and signals, over a Unix stream socket. No threads, no
//! daemon: as root the runtime talks to PID 1 directly on its private socket.
//!
//! The wire format is the D-Bus specification's little-endian marshalling: every value aligned
//! to its natural size counted from the start of the message (header and body both start on an
//! 8-byte boundary, so the body is encoded on its own with the same alignment).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::SystemdError;

/// A D-Bus value. `Struct` also carries dict entries.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Path(String),
    Sig(String),
    /// Element signature and the elements.
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    /// The value's D-Bus type signature.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::F64(_) => "d".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }
}

/// Alignment of the type whose signature starts with `code`.
fn alignment(code: u8) -> usize {
    match code {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        _ => 8, // x t d ( {
    }
}

/// Encodes values into a buffer whose offset 0 is 8-aligned in the message.
#[derive(Default)]
struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    fn pad(&mut self, align: usize) {
        while self.buf.len() % align != 0 {
            self.buf.push(0);
        }
    }

    /// A fixed-size value, aligned to its size.
    fn fixed(&mut self, bytes: &[u8]) {
        self.pad(bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    fn u32(&mut self, v: u32) {
        self.fixed(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn signature(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I16(n) => self.fixed(&n.to_le_bytes()),
            Value::U16(n) => self.fixed(&n.to_le_bytes()),
            Value::I32(n) => self.fixed(&n.to_le_bytes()),
            Value::U32(n) => self.u32(*n),
            Value::I64(n) => self.fixed(&n.to_le_bytes()),
            Value::U64(n) => self.fixed(&n.to_le_bytes()),
            Value::F64(n) => self.fixed(&n.to_le_bytes()),
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => self.signature(s),
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                // The length counts from the first element, after its alignment padding.
                self.pad(alignment(elem.as_bytes().first().copied().unwrap_or(b'y')));
                let start = self.buf.len();
                for item in items {
                    self.value(item);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.value(f);
                }
            }
            Value::Variant(inner) => {
                self.signature(&inner.signature());
                self.value(inner);
            }
        }
    }
}

/// Decodes values of a known signature from a buffer whose offset 0 is 8-aligned.
struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn malformed(what: &str) -> SystemdError {
    SystemdError::Protocol(format!("malformed message from systemd: {what}"))
}

impl<'a> Decoder<'a> {
    fn align(&mut self, align: usize) -> Result<(), SystemdError> {
        let next = self.pos.div_ceil(align) * align;
        if next > self.buf.len() {
            return Err(malformed("padding past the end"));
        }
        self.pos = next;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SystemdError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| malformed("value past the end"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], SystemdError> {
        self.align(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, SystemdError> {
        Ok(u32::from_le_bytes(self.fixed::<4>()?))
    }

    fn string(&mut self) -> Result<String, SystemdError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len + 1)?;
        String::from_utf8(bytes[..len].to_vec()).map_err(|_| malformed("string is not UTF-8"))
    }

    fn signature(&mut self) -> Result<String, SystemdError> {
        let len = self.take(1)?[0] as usize;
        let bytes = self.take(len + 1)?;
        String::from_utf8(bytes[..len].to_vec()).map_err(|_| malformed("signature is not UTF-8"))
    }

    /// Decodes every value of `sig` (a sequence of complete types).
    fn values(&mut self, sig: &str) -> Result<Vec<Value>, SystemdError> {
        let mut out = Vec::new();
        let mut rest = sig;
        while !rest.is_empty() {
            let (one, tail) = split_type(rest)?;
            out.push(self.value(one)?);
            rest = tail;
        }
        Ok(out)
    }

    fn value(&mut self, sig: &str) -> Result<Value, SystemdError> {
        let code = sig.as_bytes()[0];
        Ok(match code {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'n' => Value::I16(i16::from_le_bytes(self.fixed::<2>()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.fixed::<2>()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed::<4>()?)),
            b'u' | b'h' => Value::U32(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed::<8>()?)),
            b't' => Value::U64(u64::from_le_bytes(self.fixed::<8>()?)),
            b'd' => Value::F64(f64::from_le_bytes(self.fixed::<8>()?)),
            b's' => Value::Str(self.string()?),
            b'o' => Value::Path(self.string()?),
            b'g' => Value::Sig(self.signature()?),
            b'v' => {
                let inner = self.signature()?;
                let (one, tail) = split_type(&inner)?;
                if !tail.is_empty() {
                    return Err(malformed("variant holds more than one type"));
                }
                Value::Variant(Box::new(self.value(one)?))
            }
            b'a' => {
                let len = self.u32()? as usize;
                let elem = &sig[1..];
                self.align(alignment(elem.as_bytes()[0]))?;
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|&e| e <= self.buf.len())
                    .ok_or_else(|| malformed("array past the end"))?;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(elem)?);
                }
                Value::Array(elem.to_string(), items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                Value::Struct(self.values(&sig[1..sig.len() - 1])?)
            }
            _ => return Err(malformed("unknown type in signature")),
        })
    }
}

/// Splits the first complete type off a signature.
fn split_type(sig: &str) -> Result<(&str, &str), SystemdError> {
    let bytes = sig.as_bytes();
    let mut i = 0;
    // Array prefixes belong to the type that follows them.
    while i < bytes.len() && bytes[i] == b'a' {
        i += 1;
    }
    let first = *bytes
        .get(i)
        .ok_or_else(|| malformed("signature ends in an array"))?;
    let end = match first {
        b'(' | b'{' => {
            let (open, close) = if first == b'(' {
                (b'(', b')')
            } else {
                (b'{', b'}')
            };
            let mut depth = 0;
            let mut j = i;
            loop {
                match bytes.get(j) {
                    Some(&c) if c == open => depth += 1,
                    Some(&c) if c == close => {
                        depth -= 1;
                        if depth == 0 {
                            break j + 1;
                        }
                    }
                    Some(_) => {}
                    None => return Err(malformed("unbalanced signature")),
                }
                j += 1;
            }
        }
        _ => i + 1,
    };
    Ok((&sig[..end], &sig[end..]))
}

/// Message types of the D-Bus header.
const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;

/// One received message, with the header fields the client uses.
#[derive(Debug)]
pub struct Message {
    pub kind: u8,
    pub reply_serial: Option<u32>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub body: Vec<Value>,
}

/// A connection to one D-Bus peer.
pub struct Connection {
    stream: UnixStream,
    serial: u32,
    /// Signals that arrived while waiting for a reply, oldest first.
    pending: Vec<Message>,
}

/// How long one call may take: systemd answers in milliseconds unless it is wedged.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl Connection {
    /// Connects to a peer-to-peer socket (systemd's `/run/systemd/private`) and authenticates
    /// with the caller's uid (SASL EXTERNAL).
    pub fn connect(path: &Path) -> Result<Self, SystemdError> {
        let io = |step: &'static str| {
            move |e: std::io::Error| SystemdError::Io {
                step,
                path: path.to_path_buf(),
                errno: crate::Errno::from_io(&e),
            }
        };
        let mut stream = UnixStream::connect(path).map_err(io("connect to"))?;
        stream
            .set_read_timeout(Some(CALL_TIMEOUT))
            .map_err(io("set a timeout on"))?;
        // SAFETY: geteuid has no side effects.
        let uid = unsafe { libc::geteuid() };
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        // AUTH and BEGIN in one write, as systemd's own clients send them. A BEGIN sent on its
        // own right before the first call can reach systemd in the same read as that call; its
        // server then starts the connection with the call still buffered, and only looks at it
        // when more bytes arrive: the call hangs.
        stream
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").as_bytes())
            .map_err(io("authenticate on"))?;
        let line = read_line(&mut stream).map_err(io("authenticate on"))?;
        if !line.starts_with("OK ") {
            return Err(SystemdError::Protocol(format!(
                "systemd refused authentication as uid {uid}: {line:?}"
            )));
        }
        Ok(Connection {
            stream,
            serial: 0,
            pending: Vec::new(),
        })
    }

    /// Calls `interface.member` on `path` of `destination` and waits for the reply's body.
    /// A D-Bus error reply becomes [`SystemdError::Call`].
    pub fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Value],
    ) -> Result<Vec<Value>, SystemdError> {
        self.serial += 1;
        let serial = self.serial;
        let msg = encode_call(serial, destination, path, interface, member, args);
        self.stream.write_all(&msg).map_err(|e| SystemdError::Io {
            step: "send a call on",
            path: "D-Bus connection".into(),
            errno: crate::Errno::from_io(&e),
        })?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let m = self.receive(deadline)?;
            match m.kind {
                METHOD_RETURN if m.reply_serial == Some(serial) => return Ok(m.body),
                ERROR if m.reply_serial == Some(serial) => {
                    let text = m
                        .body
                        .first()
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    return Err(SystemdError::Call {
                        member: member.to_string(),
                        name: m.error_name.unwrap_or_default(),
                        message: text,
                    });
                }
                SIGNAL => self.pending.push(m),
                _ => {}
            }
        }
    }

    /// The next signal matching `pred` (queued ones first), waiting until `deadline`.
    pub fn wait_signal(
        &mut self,
        deadline: Instant,
        mut pred: impl FnMut(&Message) -> bool,
    ) -> Result<Message, SystemdError> {
        if let Some(i) = self.pending.iter().position(&mut pred) {
            return Ok(self.pending.remove(i));
        }
        loop {
            let m = self.receive(deadline)?;
            if m.kind == SIGNAL && pred(&m) {
                return Ok(m);
            }
        }
    }

    /// Reads one whole message.
    fn receive(&mut self, deadline: Instant) -> Result<Message, SystemdError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SystemdError::Timeout(CALL_TIMEOUT.as_secs()));
        }
        let timeout_err = |e: std::io::Error| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                SystemdError::Timeout(CALL_TIMEOUT.as_secs())
            } else {
                SystemdError::Io {
                    step: "read from",
                    path: "D-Bus connection".into(),
                    errno: crate::Errno::from_io(&e),
                }
            }
        };
        let _ = self.stream.set_read_timeout(Some(left));
        let mut fixed = [0u8; 16];
        self.stream.read_exact(&mut fixed).map_err(timeout_err)?;
        if fixed[0] != b'l' {
            return Err(malformed("big-endian messages are not expected"));
        }
        let body_len = u32::from_le_bytes(fixed[4..8].try_into().unwrap_or_default()) as usize;
        let fields_len = u32::from_le_bytes(fixed[12..16].try_into().unwrap_or_default()) as usize;
        let header_len = (16 + fields_len).div_ceil(8) * 8;
        if header_len + body_len > 128 << 20 {
            return Err(malformed("message larger than 128 MiB"));
        }
        let mut whole = vec![0u8; header_len + body_len];
        whole[..16].copy_from_slice(&fixed);
        self.stream
            .read_exact(&mut whole[16..])
            .map_err(timeout_err)?;

        let mut d = Decoder {
            buf: &whole[..16 + fields_len],
            pos: 12,
        };
        let fields = d.value("a(yv)")?;
        let mut msg = Message {
            kind: fixed[1],
            reply_serial: None,
            interface: None,
            member: None,
            error_name: None,
            body: Vec::new(),
        };
        let mut signature = String::new();
        if let Value::Array(_, items) = fields {
            for item in items {
                let Value::Struct(pair) = item else { continue };
                let (Some(Value::Byte(code)), Some(Value::Variant(v))) =
                    (pair.first(), pair.get(1))
                else {
                    continue;
                };
                match (code, v.as_ref()) {
                    (2, Value::Str(s)) => msg.interface = Some(s.clone()),
                    (3, Value::Str(s)) => msg.member = Some(s.clone()),
                    (4, Value::Str(s)) => msg.error_name = Some(s.clone()),
                    (5, Value::U32(n)) => msg.reply_serial = Some(*n),
                    (8, Value::Sig(s)) => signature = s.clone(),
                    _ => {}
                }
            }
        }
        let mut body = Decoder {
            buf: &whole[header_len..],
            pos: 0,
        };
        msg.body = body.values(&signature)?;
        Ok(msg)
    }
}

/// Reads one `\r\n`-terminated line of the authentication exchange.
fn read_line(stream: &mut UnixStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        line.push(byte[0]);
        if line.len() > 4096 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// The bytes of one method call.
fn encode_call(
    serial: u32,
    destination: &str,
    path: &str,
    interface: &str,
    member: &str,
    args: &[Value],
) -> Vec<u8> {
    let mut body = Encoder::default();
    for a in args {
        body.value(a);
    }
    let signature: String = args.iter().map(Value::signature).collect();
    let field =
        |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]);
    let mut fields = vec![
        field(1, Value::Path(path.into())),
        field(2, Value::Str(interface.into())),
        field(3, Value::Str(member.into())),
        field(6, Value::Str(destination.into())),
    ];
    if !signature.is_empty() {
        fields.push(field(8, Value::Sig(signature)));
    }
    let mut head = Encoder::default();
    head.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    head.u32(body.buf.len() as u32);
    head.u32(serial);
    head.value(&Value::Array("(yv)".into(), fields));
    head.pad(8);
    head.buf.extend_from_slice(&body.buf);
    head.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: Value) {
        let mut e = Encoder::default();
        e.value(&v);
        let sig = v.signature();
        let mut d = Decoder {
            buf: &e.buf,
            pos: 0,
        };
        assert_eq!(d.values(&sig).ok(), Some(vec![v]), "{sig}");
        assert_eq!(d.pos, e.buf.len());
    }

    #[test]
    fn values_round_trip() {
        round_trip(Value::Str("system.slice".into()));
        round_trip(Value::Array(
            "u".into(),
            vec![Value::U32(1), Value::U32(42)],
        ));
        round_trip(Value::Array(
            "(sv)".into(),
            vec![
                Value::Struct(vec![
                    Value::Str("Delegate".into()),
                    Value::Variant(Box::new(Value::Bool(true))),
                ]),
                Value::Struct(vec![
                    Value::Str("MemoryMax".into()),
                    Value::Variant(Box::new(Value::U64(1 << 30))),
                ]),
                Value::Struct(vec![
                    Value::Str("AllowedCPUs".into()),
                    Value::Variant(Box::new(Value::Array("y".into(), vec![Value::Byte(3)]))),
                ]),
            ],
        ));
        round_trip(Value::Array("(sa(sv))".into(), vec![]));
        round_trip(Value::Struct(vec![
            Value::Byte(1),
            Value::I64(-5),
            Value::Path("/org/freedesktop/systemd1/job/7".into()),
        ]));
    }

    #[test]
    fn array_length_excludes_the_padding_before_the_first_element() {
        let mut e = Encoder::default();
        e.value(&Value::Array("t".into(), vec![Value::U64(7)]));
        // length (4 bytes), 4 bytes of padding to the u64, then the u64.
        assert_eq!(e.buf.len(), 16);
        assert_eq!(&e.buf[..4], &8u32.to_le_bytes());
    }

    #[test]
    fn call_header_is_well_formed() {
        let msg = encode_call(
            7,
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StopUnit",
            &[Value::Str("a.scope".into()), Value::Str("replace".into())],
        );
        assert_eq!(&msg[..4], &[b'l', METHOD_CALL, 0, 1]);
        let body_len = u32::from_le_bytes(msg[4..8].try_into().unwrap_or_default()) as usize;
        let fields_len = u32::from_le_bytes(msg[12..16].try_into().unwrap_or_default()) as usize;
        let header_len = (16 + fields_len).div_ceil(8) * 8;
        assert_eq!(msg.len(), header_len + body_len);
        let mut d = Decoder {
            buf: &msg[header_len..],
            pos: 0,
        };
        assert_eq!(
            d.values("ss").ok(),
            Some(vec![
                Value::Str("a.scope".into()),
                Value::Str("replace".into())
            ])
        );
    }

    #[test]
    fn splits_signatures() {
        assert_eq!(split_type("a(sv)s").ok(), Some(("a(sv)", "s")));
        assert_eq!(split_type("a{sa(sv)}").ok(), Some(("a{sa(sv)}", "")));
        assert_eq!(split_type("uoss").ok(), Some(("u", "oss")));
        assert!(split_type("(s").is_err());
        assert!(split_type("a").is_err());
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut d = Decoder {
            buf: &[5, 0, 0, 0, b'a'],
            pos: 0,
        };
        assert!(d.values("s").is_err());
        let mut d = Decoder {
            buf: &[200, 0, 0, 0],
            pos: 0,
        };
        assert!(d.values("au").is_err());
    }
}
