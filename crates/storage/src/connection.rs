//! Storage connection strings (`AccountName=...;AccountKey=...;QueueEndpoint=...`), and what
//! `UseDevelopmentStorage=true` stands for.

/// The development storage account every SDK knows.
pub const DEV_ACCOUNT: &str = "devstoreaccount1";

/// The development storage account's well-known key (public, documented by Microsoft).
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A parsed storage connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    pub account: String,
    pub key: Option<String>,
    /// The queue service's base URL (for development storage `http://127.0.0.1:10001/devstoreaccount1`).
    pub queue_endpoint: String,
    /// `UseDevelopmentStorage=true`.
    pub development: bool,
}

impl ConnectionString {
    /// Parses a connection string. Keys are case-insensitive; values are split at the first `=`.
    pub fn parse(text: &str) -> Result<ConnectionString, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                format!("expected Name=Value pairs separated by ';', found \"{part}\"")
            })?;
            pairs.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(ConnectionString {
                account: DEV_ACCOUNT.into(),
                key: Some(DEV_ACCOUNT_KEY.into()),
                queue_endpoint: format!("http://127.0.0.1:10001/{DEV_ACCOUNT}"),
                development: true,
            });
        }
        let account = get("accountname")
            .ok_or_else(|| "expected AccountName (or UseDevelopmentStorage=true)".to_string())?;
        let protocol = get("defaultendpointsprotocol").unwrap_or_else(|| "https".into());
        let suffix = get("endpointsuffix").unwrap_or_else(|| "core.windows.net".into());
        let queue_endpoint = get("queueendpoint")
            .unwrap_or_else(|| format!("{protocol}://{account}.queue.{suffix}"));
        Ok(ConnectionString {
            account,
            key: get("accountkey"),
            queue_endpoint,
            development: false,
        })
    }

    /// Whether the queue endpoint is on this machine (Stratus can serve it), rather than a
    /// real Azure Storage account.
    pub fn is_local(&self) -> bool {
        let rest = self
            .queue_endpoint
            .split_once("://")
            .map_or(self.queue_endpoint.as_str(), |(_, r)| r);
        let host = rest.split(['/', ':']).next().unwrap_or("");
        self.development || host == "127.0.0.1" || host == "localhost" || host == "[::1]"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_storage() {
        let c = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(c.account, "devstoreaccount1");
        assert_eq!(c.queue_endpoint, "http://127.0.0.1:10001/devstoreaccount1");
        assert!(c.is_local());
    }

    #[test]
    fn accounts_and_endpoints() {
        let c = ConnectionString::parse(
            "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=a2V5;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(c.queue_endpoint, "https://prod.queue.core.windows.net");
        assert_eq!(c.key.as_deref(), Some("a2V5"));
        assert!(!c.is_local());
        let c = ConnectionString::parse(
            "accountname=devstoreaccount1;accountkey=x==;QueueEndpoint=http://localhost:10001/devstoreaccount1",
        )
        .unwrap();
        assert!(c.is_local());
        assert!(ConnectionString::parse("nonsense").is_err());
        assert!(ConnectionString::parse("AccountKey=x").is_err());
    }
}
