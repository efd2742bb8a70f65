//! Publishing credentials (`$app` and a password derived from the store's key, kept as a
//! hash) and the `.PublishSettings` profile that deployment tools import.

use stratus_store::SqlPublishing;

use super::ScmConfig;

/// A new random salt: a rotation makes a new password.
fn salt() -> Result<String, stratus_store::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| stratus_store::Error::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `app`'s publishing user name and password, made on first use; a new password when
/// `rotate` (the old one stops working at once).
pub async fn credential(
    publishing: &SqlPublishing,
    app: &str,
    rotate: bool,
    now_ms: i64,
) -> Result<(String, String), stratus_store::Error> {
    let existing = if rotate {
        None
    } else {
        publishing.credential(app).await?
    };
    let credential = match existing {
        Some(c) => c,
        None => {
            let salt = salt()?;
            let password = publishing.password(app, &salt);
            let hash = stratus_store::apps::sha256_hex(password.as_bytes());
            publishing
                .set_credential(app, &salt, &hash, rotate, now_ms)
                .await?
        }
    };
    Ok((
        format!("${app}"),
        publishing.password(app, &credential.salt),
    ))
}

fn attr(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The `.PublishSettings` document for `app`: a Zip Deploy profile and a Web Deploy-shaped
/// one, both on `{app}.scm.{domain}:{port}`, as Azure issues them.
pub fn publish_settings(config: &ScmConfig, app: &str, user: &str, password: &str) -> String {
    let host = config.publish_host(app);
    let dest = config.app_url(app);
    let profile = |name: &str, method: &str, extra: &str| {
        format!(
            "  <publishProfile profileName=\"{} - {name}\" publishMethod=\"{method}\" publishUrl=\"{}\"{extra} userName=\"{}\" userPWD=\"{}\" destinationAppUrl=\"{}\" SQLServerDBConnectionString=\"\" mySQLDBConnectionString=\"\" hostingProviderForumLink=\"\" controlPanelLink=\"\" webSystem=\"WebSites\">\n    <databases />\n  </publishProfile>\n",
            attr(app),
            attr(&host),
            attr(user),
            attr(password),
            attr(&dest),
        )
    };
    format!(
        "<publishData>\n{}{}</publishData>\n",
        profile(
            "Web Deploy",
            "MSDeploy",
            &format!(" msdeploySite=\"{}\"", attr(app))
        ),
        profile("Zip Deploy", "ZipDeploy", ""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_names_the_scm_host_and_the_credential() {
        let config = ScmConfig {
            domain: "stratus.test".into(),
            port: 443,
            https: true,
            app_url: "https://{app}.stratus.test".into(),
            api_url: "http://127.0.0.1:7080".into(),
            deploy_timeout_ms: 1,
        };
        let xml = publish_settings(&config, "shop", "$shop", "p&w\"");
        assert!(xml.starts_with("<publishData>"));
        assert!(xml.contains("profileName=\"shop - Zip Deploy\" publishMethod=\"ZipDeploy\" publishUrl=\"shop.scm.stratus.test:443\""));
        assert!(xml.contains("publishMethod=\"MSDeploy\" publishUrl=\"shop.scm.stratus.test:443\" msdeploySite=\"shop\""));
        assert!(xml.contains("userName=\"$shop\" userPWD=\"p&amp;w&quot;\""));
        assert!(xml.contains("destinationAppUrl=\"https://shop.stratus.test\""));
        assert_eq!(xml.matches("<databases />").count(), 2);
    }
}
