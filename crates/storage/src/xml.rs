//! The XML the Queue service speaks: the `QueueMessage` a client sends, and the
//! `QueueMessagesList`, `EnumerationResults` and `Error` documents it answers with.

/// Escapes text for an XML element.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Resolves the five named entities and numeric character references.
pub fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .find(';')
            .ok_or_else(|| "an '&' without its ';' in the XML text".to_string())?;
        let entity = &after[..end];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| format!("a bad character reference &{e};"))?,
            e if e.starts_with('#') => e[1..]
                .parse::<u32>()
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| format!("a bad character reference &{e};"))?,
            e => return Err(format!("an unknown entity &{e};")),
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The text of `<MessageText>` in a `QueueMessage` request body (CDATA sections included).
pub fn message_text(body: &str) -> Result<String, String> {
    let open = body.find("<MessageText>").ok_or_else(|| {
        "expected <QueueMessage><MessageText>...</MessageText></QueueMessage>".to_string()
    })?;
    let start = open + "<MessageText>".len();
    let len = body[start..]
        .find("</MessageText>")
        .ok_or_else(|| "expected </MessageText>".to_string())?;
    let inner = &body[start..start + len];
    let mut out = String::new();
    let mut rest = inner;
    while let Some(i) = rest.find("<![CDATA[") {
        out.push_str(&unescape(&rest[..i])?);
        let after = &rest[i + 9..];
        let end = after
            .find("]]>")
            .ok_or_else(|| "an unterminated CDATA section".to_string())?;
        out.push_str(&after[..end]);
        rest = &after[end + 3..];
    }
    out.push_str(&unescape(rest)?);
    Ok(out)
}

/// One message as the service lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMessage<'a> {
    pub id: &'a str,
    pub insertion_time: String,
    pub expiration_time: String,
    /// None for peeked messages.
    pub pop_receipt: Option<&'a str>,
    pub time_next_visible: Option<String>,
    pub dequeue_count: Option<i64>,
    pub text: Option<&'a str>,
}

/// A `QueueMessagesList` document.
pub fn messages_list(messages: &[ListedMessage<'_>]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList>");
    for m in messages {
        out.push_str("<QueueMessage><MessageId>");
        out.push_str(&escape(m.id));
        out.push_str("</MessageId><InsertionTime>");
        out.push_str(&m.insertion_time);
        out.push_str("</InsertionTime><ExpirationTime>");
        out.push_str(&m.expiration_time);
        out.push_str("</ExpirationTime>");
        if let Some(p) = m.pop_receipt {
            out.push_str("<PopReceipt>");
            out.push_str(&escape(p));
            out.push_str("</PopReceipt>");
        }
        if let Some(t) = &m.time_next_visible {
            out.push_str("<TimeNextVisible>");
            out.push_str(t);
            out.push_str("</TimeNextVisible>");
        }
        if let Some(n) = m.dequeue_count {
            out.push_str(&format!("<DequeueCount>{n}</DequeueCount>"));
        }
        if let Some(text) = m.text {
            out.push_str("<MessageText>");
            out.push_str(&escape(text));
            out.push_str("</MessageText>");
        }
        out.push_str("</QueueMessage>");
    }
    out.push_str("</QueueMessagesList>");
    out
}

/// An `Error` document.
pub fn error(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{}</Code><Message>{}</Message></Error>",
        escape(code),
        escape(message)
    )
}

/// A queue in a listing, with its metadata when asked for.
#[derive(Debug, Clone)]
pub struct ListedQueue<'a> {
    pub name: &'a str,
    pub metadata: Option<&'a [(String, String)]>,
}

/// An `EnumerationResults` document for `GET /?comp=list`.
pub fn queue_list(
    endpoint: &str,
    prefix: Option<&str>,
    marker: Option<&str>,
    max: Option<usize>,
    queues: &[ListedQueue<'_>],
    next_marker: Option<&str>,
) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"{}\">",
        escape(endpoint)
    );
    if let Some(p) = prefix {
        out.push_str(&format!("<Prefix>{}</Prefix>", escape(p)));
    }
    if let Some(m) = marker {
        out.push_str(&format!("<Marker>{}</Marker>", escape(m)));
    }
    if let Some(n) = max {
        out.push_str(&format!("<MaxResults>{n}</MaxResults>"));
    }
    out.push_str("<Queues>");
    for q in queues {
        out.push_str("<Queue><Name>");
        out.push_str(&escape(q.name));
        out.push_str("</Name>");
        if let Some(md) = q.metadata {
            out.push_str("<Metadata>");
            for (k, v) in md {
                out.push_str(&format!("<{k}>{}</{k}>", escape(v)));
            }
            out.push_str("</Metadata>");
        }
        out.push_str("</Queue>");
    }
    out.push_str("</Queues><NextMarker>");
    if let Some(n) = next_marker {
        out.push_str(&escape(n));
    }
    out.push_str("</NextMarker></EnumerationResults>");
    out
}

/// A time as the Queue service writes it (RFC 1123).
pub fn rfc1123(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_round_trips() {
        let body = "<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>hello &lt;world&gt; &amp; ünïcode &#65;&#x42;</MessageText></QueueMessage>";
        assert_eq!(message_text(body).unwrap(), "hello <world> & ünïcode AB");
        assert_eq!(
            message_text(
                "<QueueMessage><MessageText><![CDATA[a<b]]>&amp;</MessageText></QueueMessage>"
            )
            .unwrap(),
            "a<b&"
        );
        assert!(message_text("<QueueMessage/>").is_err());
        assert!(
            message_text("<QueueMessage><MessageText>&bogus;</MessageText></QueueMessage>")
                .is_err()
        );
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
    }

    #[test]
    fn times_are_rfc1123() {
        assert_eq!(rfc1123(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // Mon, 23 Nov 2026 09:10:20 GMT (the reference's example).
        assert_eq!(rfc1123(1_795_425_020_000), "Mon, 23 Nov 2026 09:10:20 GMT");
        assert_eq!(rfc1123(951_782_400_000), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn documents() {
        let list = messages_list(&[ListedMessage {
            id: "id-1",
            insertion_time: rfc1123(0),
            expiration_time: rfc1123(1000),
            pop_receipt: Some("AgAA+/=="),
            time_next_visible: Some(rfc1123(2000)),
            dequeue_count: Some(1),
            text: Some("a&b"),
        }]);
        assert!(list.contains("<PopReceipt>AgAA+/==</PopReceipt>"));
        assert!(list.contains("<MessageText>a&amp;b</MessageText>"));
        assert_eq!(
            messages_list(&[]),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList></QueueMessagesList>"
        );
        assert!(
            error("QueueNotFound", "The specified queue does not exist.")
                .contains("<Code>QueueNotFound</Code>")
        );
    }
}
