//! `stratus up`: the management role, a worker in the same process and the samples deployed,
//! served through the front door; a second start deploys nothing new.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{eventually, free_port, repo, request, run_stratus, signal, stratus_command};

pub(crate) struct Up {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Up {
    fn start(data: &std::path::Path, api: u16, front: u16) -> Up {
        Up::start_with(data, api, front, &[])
    }

    /// `stratus up` with `env` set as well.
    pub(crate) fn start_with(
        data: &std::path::Path,
        api: u16,
        front: u16,
        env: &[(&str, &str)],
    ) -> Up {
        let log = data.join(format!("up-{api}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = stratus_command()
            .current_dir(repo())
            .args(["up", "--listen", &format!("127.0.0.1:{api}")])
            .args(["--front-listen", &format!("127.0.0.1:{front}")])
            .args(["--scm-listen", "127.0.0.1:0"])
            .env("STRATUS_DATA_DIR", data)
            .env_remove("STRATUS_ADMIN_TOKEN")
            .envs(env.iter().copied())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Up { child, log }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(mut self) {
        signal(self.child.id(), "INT");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}\n{}", self.log());
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn up_serves_the_samples_through_the_front_door() {
    let data = tempfile::tempdir().unwrap();
    let (api, front) = (free_port(), free_port());
    let up = Up::start(data.path(), api, front);
    for (app, name) in [("python-handler", "Ada"), ("node-handler", "Bo")] {
        let r = eventually(Duration::from_secs(60), || {
            request(
                front,
                "GET",
                &format!("/apps/{app}/api/hello?name={name}"),
                &[],
                b"",
            )
            .ok()
            .filter(|r| r.status == 200)
        });
        assert_eq!(r.text(), format!("Hello, {name}!"), "{}", up.log());
    }
    let list = run_stratus(
        stratus_command()
            .args(["apps", "list", "--url", &format!("http://127.0.0.1:{api}")])
            .env("STRATUS_DATA_DIR", data.path())
            .env_remove("STRATUS_ADMIN_TOKEN"),
    )
    .unwrap();
    for app in [
        "node-handler",
        "node-v4",
        "python-handler",
        "python-v1",
        "python-v2",
    ] {
        assert!(list.contains(app), "{app} missing from:\n{list}");
    }
    assert_eq!(
        up.log().matches("deployed samples/").count(),
        5,
        "{}",
        up.log()
    );
    up.stop();
    // Again on the same data: the same files are no new version, and it serves again.
    let (api, front) = (free_port(), free_port());
    let again = Up::start(data.path(), api, front);
    let r = eventually(Duration::from_secs(60), || {
        request(
            front,
            "GET",
            "/apps/python-handler/api/hello?name=Cy",
            &[],
            b"",
        )
        .ok()
        .filter(|r| r.status == 200)
    });
    assert_eq!(r.text(), "Hello, Cy!");
    assert!(
        !again.log().contains("deployed samples/"),
        "{}",
        again.log()
    );
    again.stop();
}
