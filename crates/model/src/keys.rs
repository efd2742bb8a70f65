//! Authorization levels and function keys.

use std::str::FromStr;

/// The level a trigger requires, or a caller holds (the host's `AuthorizationLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthLevel {
    Anonymous,
    User,
    Function,
    System,
    Admin,
}

impl AuthLevel {
    /// Whether a caller holding `self` may call something requiring `required`:
    /// admin satisfies everything, anonymous requirements are always met, and
    /// otherwise the levels must be equal (a system key does not open a function-level trigger).
    pub fn satisfies(self, required: AuthLevel) -> bool {
        required == AuthLevel::Anonymous || self == AuthLevel::Admin || self == required
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthLevel::Anonymous => "anonymous",
            AuthLevel::User => "user",
            AuthLevel::Function => "function",
            AuthLevel::System => "system",
            AuthLevel::Admin => "admin",
        }
    }
}

impl FromStr for AuthLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "anonymous" => AuthLevel::Anonymous,
            "user" => AuthLevel::User,
            "function" => AuthLevel::Function,
            "system" => AuthLevel::System,
            "admin" => AuthLevel::Admin,
            _ => {
                return Err(format!(
                    "expected one of \"anonymous\", \"function\", \"admin\", \"system\", \"user\", found \"{s}\""
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_matrix() {
        use AuthLevel::*;
        assert!(Admin.satisfies(Function));
        assert!(Admin.satisfies(Admin));
        assert!(Function.satisfies(Function));
        assert!(!Function.satisfies(Admin));
        assert!(!System.satisfies(Function));
        assert!(System.satisfies(System));
        assert!(Anonymous.satisfies(Anonymous));
        assert!(!Anonymous.satisfies(Function));
    }
}
