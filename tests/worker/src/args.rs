//! The worker's command line, as a host formats it: the legacy set (`--host --port --workerId
//! --requestId --grpcMaxMessageLength`) and the `--functions-*` set, in any order, among
//! arguments this worker does not know (ignored).

/// Where and as whom to connect.
#[derive(Debug, PartialEq)]
pub struct Args {
    /// The host's gRPC address, `http://host:port/`.
    pub uri: String,
    pub worker_id: String,
    pub request_id: String,
}

#[derive(Default)]
struct Seen {
    host: Option<String>,
    port: Option<String>,
    worker_id: Option<String>,
    request_id: Option<String>,
    uri: Option<String>,
    functions_worker_id: Option<String>,
    functions_request_id: Option<String>,
}

/// Reads the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut seen = Seen::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg, None),
        };
        let slot = match name.as_str() {
            "--host" => &mut seen.host,
            "--port" => &mut seen.port,
            "--workerId" => &mut seen.worker_id,
            "--requestId" => &mut seen.request_id,
            "--functions-uri" => &mut seen.uri,
            "--functions-worker-id" => &mut seen.functions_worker_id,
            "--functions-request-id" => &mut seen.functions_request_id,
            "--grpcMaxMessageLength" | "--functions-grpc-max-message-length" => {
                let value = inline.or_else(|| args.next()).unwrap_or_default();
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{name} must be a number, not `{value}`"))?;
                continue;
            }
            _ => continue,
        };
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{name} needs a value"))?;
        *slot = Some(value);
    }
    let uri = match (seen.uri, seen.host, seen.port) {
        (Some(uri), _, _) => uri,
        (None, Some(host), Some(port)) => {
            port.parse::<u16>()
                .map_err(|_| format!("--port must be a port number, not `{port}`"))?;
            format!("http://{host}:{port}/")
        }
        _ => return Err("give --functions-uri, or --host and --port".to_string()),
    };
    Ok(Args {
        uri,
        worker_id: seen
            .functions_worker_id
            .or(seen.worker_id)
            .ok_or("give --functions-worker-id or --workerId")?,
        request_id: seen
            .functions_request_id
            .or(seen.request_id)
            .ok_or("give --functions-request-id or --requestId")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        parse(s.split_whitespace().map(str::to_string))
    }

    #[test]
    fn the_functions_set_is_preferred() {
        let a = args(
            "worker.js --host 10.0.0.1 --port 1 --workerId old --requestId oldr \
             --grpcMaxMessageLength 2147483647 --functions-uri http://127.0.0.1:5000/ \
             --functions-worker-id w --functions-request-id r \
             --functions-grpc-max-message-length 2147483647",
        )
        .unwrap();
        assert_eq!(
            a,
            Args {
                uri: "http://127.0.0.1:5000/".into(),
                worker_id: "w".into(),
                request_id: "r".into(),
            }
        );
    }

    #[test]
    fn the_legacy_set_is_enough() {
        let a = args("--requestId r --workerId w --port 7071 --host 127.0.0.1").unwrap();
        assert_eq!(a.uri, "http://127.0.0.1:7071/");
        assert_eq!(a.worker_id, "w");
        assert_eq!(a.request_id, "r");
    }

    #[test]
    fn missing_or_bad_values_are_errors() {
        assert!(args("--host 127.0.0.1 --workerId w --requestId r").is_err());
        assert!(args("--functions-uri http://x/ --workerId w").is_err());
        assert!(args("--host h --port nope --workerId w --requestId r").is_err());
        assert!(
            args("--functions-uri http://x/ --workerId w --requestId r --grpcMaxMessageLength x")
                .is_err()
        );
    }
}
