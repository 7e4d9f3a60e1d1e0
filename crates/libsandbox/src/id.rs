//! Container ids: they name a directory under the state root, so anything that could escape it or
//! confuse a caller is refused up front.

use thiserror::Error;

/// Why an id was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdError {
    #[error("invalid container id {0:?}: must not be empty")]
    Empty(String),
    #[error("invalid container id {0:?}: must not be \".\" or \"..\"")]
    Dots(String),
    #[error("invalid container id {0:?}: longer than {max} bytes", max = MAX_ID_LEN)]
    TooLong(String),
    #[error(
        "invalid container id {id:?}: character {ch:?} is not allowed (use letters, digits, '_', '+', '-', '.')"
    )]
    BadChar { id: String, ch: char },
}

/// Ids become a directory name, which the kernel limits to 255 bytes.
pub const MAX_ID_LEN: usize = 255;

/// Checks `id` with runc's rule: letters, digits, `_`, `+`, `-`, `.`, and not `.` or `..`.
pub fn validate(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty(id.to_owned()));
    }
    if id == "." || id == ".." {
        return Err(IdError::Dots(id.to_owned()));
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong(id.to_owned()));
    }
    if let Some(ch) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.')))
    {
        return Err(IdError::BadChar {
            id: id.to_owned(),
            ch,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["c1", "a.b", "x_y-z+1", "...", "ABC", "0123456789abcdef"] {
            assert_eq!(validate(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn refuses_unsafe_ids() {
        assert!(matches!(validate(""), Err(IdError::Empty(_))));
        assert!(matches!(validate("."), Err(IdError::Dots(_))));
        assert!(matches!(validate(".."), Err(IdError::Dots(_))));
        for id in ["a/b", "../x", "/abs", "a b", "a\0b", "é", "a:b", "a\nb"] {
            assert!(
                matches!(validate(id), Err(IdError::BadChar { .. })),
                "{id:?}"
            );
        }
        assert!(matches!(
            validate(&"a".repeat(256)),
            Err(IdError::TooLong(_))
        ));
    }
}
