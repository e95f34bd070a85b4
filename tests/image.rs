#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The container image, without a container engine: this machine has none, so the tests read
//! the Dockerfile (ENV, ENTRYPOINT, CMD, HEALTHCHECK, …) and run the mcpmux binary exactly as the
//! image would, with the image's command line and environment, in a temporary directory that
//! stands for the container's filesystem (`/config`, `/run/secrets`, `/home`).
//!
//! What differs from a real container, and only that: the binary's path, container paths mapped
//! into the temporary root, and `MCPMUX_LISTEN` on 127.0.0.1 with a free port instead of
//! `0.0.0.0:8080` (tests stay on loopback; that a non-loopback address needs a token is checked
//! on the loaded settings instead, without listening).
//!
//! The deployments are run the same way: Docker Compose (config directory mounted, token from a
//! Compose secret file) and Kubernetes (the ConfigMap's config in the kubelet's `..data` symlink
//! layout, token from the Secret volume, reload by a ConfigMap update).
//!
//! `MCPMUX_IMAGE_BINARY=target/dist/mcpmux` runs them against the binary
//! `scripts/build-release.sh` built (what the image holds); `.ci/run` does that.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process_alive;
use serde_json::{Value, json};

/// Where the image puts the binary.
const IMAGE_BINARY: &str = "/usr/local/bin/mcpmux";
/// The PATH of the base images (Docker's default).
const IMAGE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long the daemon may take to become healthy, and to stop.
const START_BOUND: Duration = Duration::from_secs(30);
const STOP_BOUND: Duration = Duration::from_secs(20);
/// How long a reload may take to show (the watcher polls every 2 s).
const RELOAD_BOUND: Duration = Duration::from_secs(15);

/// The binary under test: the one Cargo built, or `MCPMUX_IMAGE_BINARY`.
fn binary() -> PathBuf {
    match std::env::var_os("MCPMUX_IMAGE_BINARY") {
        Some(p) => {
            let p = PathBuf::from(p);
            let p = if p.is_absolute() { p } else { common::root().join(p) };
            assert!(p.is_file(), "MCPMUX_IMAGE_BINARY={} does not exist", p.display());
            p
        }
        None => PathBuf::from(common::mcpmux_exe()),
    }
}

fn read(rel: &str) -> String {
    let path = common::root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// The Dockerfile

/// What one stage of the Dockerfile says about running the image.
#[derive(Debug, Default, Clone)]
struct Stage {
    name: String,
    from: String,
    env: Vec<(String, String)>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    healthcheck: Vec<String>,
    expose: Vec<String>,
    stopsignal: String,
    user: String,
    copies: Vec<String>,
    runs: Vec<String>,
}

/// Instructions as (KEYWORD, arguments), continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head.trim_end());
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (keyword, args) = current.split_once(char::is_whitespace).unwrap_or((current.as_str(), ""));
        out.push((keyword.to_ascii_uppercase(), args.trim().to_owned()));
        current.clear();
    }
    out
}

fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not an exec-form (JSON) array: {args}: {e}"))
}

fn dockerfile() -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for (keyword, args) in instructions(&read("Dockerfile")) {
        if keyword == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => (*name).to_owned(),
                _ => String::new(),
            };
            stages.push(Stage { name, from: words[0].to_owned(), ..Stage::default() });
            continue;
        }
        let Some(stage) = stages.last_mut() else {
            continue;
        };
        match keyword.as_str() {
            "ENV" => {
                for pair in args.split_whitespace() {
                    let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("ENV needs KEY=value: {pair}"));
                    stage.env.retain(|(key, _)| key != k);
                    stage.env.push((k.to_owned(), v.trim_matches('"').to_owned()));
                }
            }
            "ENTRYPOINT" => stage.entrypoint = exec_form(&args),
            "CMD" => stage.cmd = exec_form(&args),
            "HEALTHCHECK" => {
                let (_, command) = args.split_once("CMD ").expect("HEALTHCHECK CMD [...]");
                stage.healthcheck = exec_form(command);
            }
            "EXPOSE" => stage.expose.extend(args.split_whitespace().map(str::to_owned)),
            "STOPSIGNAL" => stage.stopsignal = args,
            "USER" => stage.user = args,
            "COPY" => stage.copies.push(args),
            "RUN" => stage.runs.push(args),
            _ => {}
        }
    }
    stages
}

fn stage(name: &str) -> Stage {
    dockerfile().into_iter().find(|s| s.name == name).unwrap_or_else(|| panic!("the Dockerfile has no stage {name}"))
}

/// ENTRYPOINT + CMD, without an init (`tini --`) in front: what starts mcpmux.
fn command_line(stage: &Stage) -> Vec<String> {
    let mut argv: Vec<String> = stage.entrypoint.iter().chain(&stage.cmd).cloned().collect();
    if argv.first().is_some_and(|a| a.ends_with("/tini")) {
        let dashes = argv.iter().position(|a| a == "--").expect("tini -- mcpmux");
        argv.drain(..=dashes);
    }
    argv
}

fn env_of<'s>(stage: &'s Stage, key: &str) -> Option<&'s str> {
    stage.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn both_images_run_mcpmux_as_documented() {
    let stages = dockerfile();
    assert_eq!(stages.last().map(|s| s.name.as_str()), Some("slim"), "slim is the default (last) target");
    let build = stage("build");
    assert!(
        build.runs.iter().any(|r| r == "scripts/build-release.sh --out /out"),
        "the image's binary comes from scripts/build-release.sh: {:?}",
        build.runs
    );
    assert!(build.runs.iter().any(|r| r == "scripts/build-release.sh --deps-only"), "{:?}", build.runs);
    assert!(read(".ci/run").contains("scripts/build-release.sh"), ".ci/run must build with the same script");

    for name in ["slim", "full"] {
        let s = stage(name);
        assert_eq!(env_of(&s, "MCPMUX_CONFIG"), Some("/config/mcp.json"), "{name}");
        assert_eq!(env_of(&s, "MCPMUX_LISTEN"), Some("0.0.0.0:8080"), "{name}");
        assert_eq!(s.expose, ["8080"], "{name}");
        assert_eq!(s.stopsignal, "SIGTERM", "{name}");
        assert_eq!(s.user, "65532:65532", "{name}: non-root, numeric (Kubernetes runAsNonRoot checks the uid)");
        assert_eq!(s.healthcheck, [IMAGE_BINARY, "healthcheck"], "{name}");
        assert_eq!(command_line(&s), [IMAGE_BINARY, "serve"], "{name}");
        assert!(
            s.copies.iter().any(|c| c == &format!("--from=build /out/mcpmux {IMAGE_BINARY}")),
            "{name}: {:?}",
            s.copies
        );
        assert!(s.copies.iter().any(|c| c == "docker/mcp.json /config/mcp.json"), "{name}: {:?}", s.copies);
    }
    assert!(stage("slim").from.starts_with("gcr.io/distroless/cc-debian12:nonroot"));
    let full = stage("full");
    assert_eq!(full.entrypoint.first().map(String::as_str), Some("/usr/bin/tini"), "full reaps orphans with tini");
    assert!(full.copies.iter().any(|c| c.contains("/uvx")), "full has uvx: {:?}", full.copies);
    assert!(full.from.starts_with("node:"), "full has node and npx");
    assert!(env_of(&full, "HOME").is_some(), "npx and uvx need a HOME");

    // The deployments use the same health check, config directory and signals.
    let compose = read("deploy/compose/compose.yaml");
    assert!(compose.contains(r#"test: ["CMD", "/usr/local/bin/mcpmux", "healthcheck"]"#), "{compose}");
    assert!(compose.contains("- ./config:/config:ro"), "compose mounts the config directory");
    assert!(compose.contains("stop_signal: SIGTERM"));
    let deployment = read("deploy/kubernetes/deployment.yaml");
    for needle in ["path: /healthz", "path: /readyz", "mountPath: /config", "mountPath: /run/secrets/mcpmux"] {
        assert!(deployment.contains(needle), "deployment.yaml: {needle}");
    }
    assert!(
        !deployment.lines().any(|l| l.trim_start().starts_with("subPath:")),
        "the ConfigMap must be mounted as a directory, not with subPath (updates never reach a subPath mount)"
    );
}

// ---------------------------------------------------------------------------------------------
// Token rules on the image's listen address

fn image_listen() -> std::net::SocketAddr {
    env_of(&stage("slim"), "MCPMUX_LISTEN").unwrap().parse().unwrap()
}

/// Loads `text` as the image would (`${MCPMUX_EXE}` is the binary, plus `env`) and checks the
/// image's listen address against it, as `serve` does before it listens.
fn check_on_image_address(text: &str, env: &[(&str, &str)]) -> Result<(), String> {
    let lookup = |name: &str| -> Option<String> {
        if name == "MCPMUX_EXE" {
            return Some(binary().display().to_string());
        }
        env.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    };
    let cfg = mcpmux::config::parse_str(text, mcpmux::config::Format::Json, &lookup)
        .map_err(|e| format!("{e}: {:?}", e.problems))?;
    mcpmux::server::check_listen(&cfg.settings, image_listen()).map_err(|e| e.to_string())
}

#[test]
fn the_image_address_needs_a_token() {
    let baked = read("docker/mcp.json");
    let err = check_on_image_address(&baked, &[]).expect_err("no token on 0.0.0.0 must be refused");
    assert!(err.contains("0.0.0.0:8080"), "{err}");
    check_on_image_address(&baked, &[("MCPMUX_AUTH_TOKEN", "t0ken")]).unwrap();

    // The Compose and Kubernetes configs read the token from their secret files.
    let dir = TempRoot::new("token-rules");
    let compose = dir.host_paths(&read("deploy/compose/config/mcp.json"));
    let k8s = dir.host_paths(&configmap_config());
    dir.write("/run/secrets/mcpmux_token", "t0ken\n");
    dir.write("/run/secrets/mcpmux/token", "t0ken\n");
    check_on_image_address(&compose, &[]).unwrap();
    check_on_image_address(&k8s, &[]).unwrap();
    // The Kubernetes Secret's placeholder is empty: mcpmux refuses to start with it.
    dir.write("/run/secrets/mcpmux/token", "");
    let err = check_on_image_address(&k8s, &[]).expect_err("an empty token file is refused");
    assert!(err.contains("1 problem"), "{err}");
    assert!(read("deploy/kubernetes/secret.yaml").contains("token: \"\""), "the placeholder stays empty");
}

// ---------------------------------------------------------------------------------------------
// Running the image's command line

/// A temporary directory standing for the container's filesystem root.
struct TempRoot(PathBuf);

impl TempRoot {
    fn new(tag: &str) -> TempRoot {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("mcpmux-image-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempRoot(dir)
    }

    /// The host path of a container path.
    fn host(&self, container_path: &str) -> PathBuf {
        self.0.join(container_path.trim_start_matches('/'))
    }

    fn write(&self, container_path: &str, content: &str) {
        let path = self.host(container_path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// `text` with the container paths it names (`/config/…`, `/run/secrets/…`) mapped into
    /// this root.
    fn host_paths(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for prefix in ["/config/", "/run/secrets/", "/home/"] {
            out = out.replace(&format!("\"{prefix}"), &format!("\"{}/", self.host(prefix).display()));
        }
        out
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// mcpmux started with an image's command line and environment.
struct Container {
    child: Child,
    /// The container's environment, as mcpmux and its health check get it.
    env: Vec<(String, String)>,
    healthcheck: Vec<String>,
    port: u16,
    logs: PathBuf,
}

impl Drop for Container {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A container path in a command line → the binary under test, or a path in `root`.
fn host_arg(root: &TempRoot, arg: &str) -> String {
    if arg == IMAGE_BINARY {
        binary().display().to_string()
    } else if arg.starts_with('/') && ["/config", "/run/secrets", "/home"].iter().any(|p| arg.starts_with(p)) {
        root.host(arg).display().to_string()
    } else {
        arg.to_owned()
    }
}

impl Container {
    /// Starts `stage`'s command line with its ENV (plus `extra_env`), and waits until the
    /// image's HEALTHCHECK command passes.
    async fn start(stage: &Stage, root: &TempRoot, extra_env: &[(&str, &str)]) -> Container {
        // A port found free may be taken before mcpmux binds it: try again with another.
        for _ in 0..5 {
            let port = free_port();
            let mut env = vec![("PATH".to_owned(), IMAGE_PATH.to_owned())];
            for (k, v) in &stage.env {
                env.push((k.clone(), host_arg(root, v)));
            }
            for (k, v) in extra_env {
                env.push(((*k).to_owned(), (*v).to_owned()));
            }
            // The one change to the image's environment: loopback, and a free port.
            env.retain(|(k, _)| k != "MCPMUX_LISTEN");
            env.push(("MCPMUX_LISTEN".to_owned(), format!("127.0.0.1:{port}")));
            if let Some((_, home)) = env.iter().find(|(k, _)| k == "HOME") {
                std::fs::create_dir_all(home).unwrap();
            }

            let argv: Vec<String> = command_line(stage).iter().map(|a| host_arg(root, a)).collect();
            let logs = root.0.join(format!("mcpmux-{port}.log"));
            let log_file = std::fs::File::create(&logs).unwrap();
            let child = Command::new(&argv[0])
                .args(&argv[1..])
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k, v)))
                .current_dir(&root.0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .unwrap();
            let healthcheck = stage.healthcheck.iter().map(|a| host_arg(root, a)).collect();
            let mut c = Container { child, env, healthcheck, port, logs };
            let deadline = Instant::now() + START_BOUND;
            loop {
                if c.healthy().await.0 {
                    return c;
                }
                if let Ok(Some(status)) = c.child.try_wait() {
                    let logs = c.logs();
                    assert!(logs.contains("cannot listen"), "mcpmux exited ({status}) before it was healthy:\n{logs}");
                    break; // the port was taken: try another
                }
                assert!(Instant::now() < deadline, "not healthy within {START_BOUND:?}:\n{}", c.logs());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("could not find a free port");
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.logs).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Runs the image's HEALTHCHECK command in the container's environment: (passed, output).
    async fn healthy(&self) -> (bool, String) {
        healthcheck(&self.healthcheck, &self.env).await
    }

    /// SIGTERM (the image's STOPSIGNAL); returns the exit code.
    async fn stop(mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + STOP_BOUND;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "mcpmux did not exit within {STOP_BOUND:?} of SIGTERM:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn healthcheck(argv: &[String], env: &[(String, String)]) -> (bool, String) {
    let output = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// `initialize` on `/mcp`, with `token` as bearer when given: (HTTP status, session id).
async fn initialize(c: &Container, token: Option<&str>) -> (u16, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(c.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "mcpmux-image-test", "version": "0"}
            }})
            .to_string(),
        );
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let session = resp.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), session)
}

/// `GET /status` with the token.
async fn status(c: &Container, token: &str) -> Value {
    let resp = reqwest::Client::new().get(c.url("/status")).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

fn backend_names(status: &Value) -> Vec<String> {
    let mut names: Vec<String> =
        status["backends"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

fn backend_pids(status: &Value) -> Vec<u32> {
    status["backends"].as_array().unwrap().iter().filter_map(|b| b["pid"].as_u64().map(|p| p as u32)).collect()
}

fn pid_of(status: &Value, backend: &str) -> Option<u64> {
    let b = status["backends"].as_array().unwrap().iter().find(|b| b["name"] == backend)?;
    b["pid"].as_u64()
}

/// Waits until `/status` shows exactly `names`, every one ready.
async fn wait_for_backends(c: &Container, token: &str, names: &[&str]) -> Value {
    let deadline = Instant::now() + RELOAD_BOUND;
    loop {
        let s = status(c, token).await;
        let ready = s["backends"].as_array().unwrap().iter().all(|b| b["state"] == "ready");
        if backend_names(&s) == names && ready {
            return s;
        }
        assert!(Instant::now() < deadline, "backends are not {names:?} within {RELOAD_BOUND:?}: {s:#}\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The unauthenticated and authenticated sides of one running container.
async fn check_auth(c: &Container, token: &str) {
    let (code, session) = initialize(c, None).await;
    assert_eq!(code, 401, "no token: 401");
    assert!(session.is_none());
    let (code, _) = initialize(c, Some("wrong-token")).await;
    assert_eq!(code, 401, "a wrong token: 401");
    let resp = reqwest::get(c.url("/status")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 401, "/status needs the token too");
    let (code, session) = initialize(c, Some(token)).await;
    assert_eq!(code, 200, "with the token: 200\n{}", c.logs());
    assert!(session.is_some(), "a session was created");
    // Health endpoints need no token (probes carry none). /readyz turns 200 once every backend
    // is ready.
    for path in ["/healthz", "/metrics"] {
        assert_eq!(reqwest::get(c.url(path)).await.unwrap().status().as_u16(), 200, "{path}");
    }
    let deadline = Instant::now() + START_BOUND;
    loop {
        let resp = reqwest::get(c.url("/readyz")).await.unwrap();
        match resp.status().as_u16() {
            200 => break,
            503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            code => panic!("/readyz: {code} {}\n{}", resp.text().await.unwrap_or_default(), c.logs()),
        }
    }
}

async fn stop_cleanly(c: Container, token: &str) {
    let pids = backend_pids(&status(&c, token).await);
    assert!(!pids.is_empty());
    let code = c.stop().await;
    assert_eq!(code, Some(0), "SIGTERM must exit 0");
    let alive: Vec<u32> = pids.into_iter().filter(|p| process_alive(*p)).collect();
    assert!(alive.is_empty(), "backends outlived the daemon: {alive:?}");
}

#[tokio::test]
async fn docker_run_with_the_baked_in_config_and_a_token_variable() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let slim = stage("slim");
        let root = TempRoot::new("docker-run");
        // COPY docker/mcp.json /config/mcp.json
        root.write("/config/mcp.json", &read("docker/mcp.json"));
        const TOKEN: &str = "docker-run-token-0123456789";

        // Before mcpmux runs, the health check fails (exit 1).
        let env = vec![("MCPMUX_LISTEN".to_owned(), format!("127.0.0.1:{}", free_port()))];
        let argv: Vec<String> = slim.healthcheck.iter().map(|a| host_arg(&root, a)).collect();
        let (ok, output) = healthcheck(&argv, &env).await;
        assert!(!ok, "nothing listens yet: {output}");

        // docker run -e MCPMUX_AUTH_TOKEN=… mcpmux:slim
        let c = Container::start(&slim, &root, &[("MCPMUX_AUTH_TOKEN", TOKEN)]).await;
        let (ok, output) = c.healthy().await;
        assert!(ok, "{output}");
        assert!(output.contains("/healthz answered 200"), "{output}");
        check_auth(&c, TOKEN).await;
        let s = wait_for_backends(&c, TOKEN, &["clock", "notes"]).await;
        assert!(s["version"].as_str().is_some_and(|v| v.starts_with(env!("CARGO_PKG_VERSION"))), "{s}");
        // MCPMUX_LOG_FORMAT=json: every log line is JSON.
        let logs = c.logs();
        assert!(!logs.is_empty() && logs.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "{logs}");
        stop_cleanly(c, TOKEN).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn compose_deployment_with_a_secret_file_reloads_and_stops_cleanly() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let root = TempRoot::new("compose");
        // volumes: ./config:/config:ro
        let config = read("deploy/compose/config/mcp.json");
        assert!(config.contains(r#""authTokenFile": "/run/secrets/mcpmux_token""#), "{config}");
        root.write("/config/mcp.json", &root.host_paths(&config));
        // secrets: mcpmux_token (file: ./secrets/mcpmux_token), written like `openssl rand -hex 32 > file`
        const TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
        root.write("/run/secrets/mcpmux_token", &format!("{TOKEN}\n"));

        let c = Container::start(&stage("slim"), &root, &[]).await;
        check_auth(&c, TOKEN).await;
        let before = wait_for_backends(&c, TOKEN, &["clock", "notes"]).await;
        let generation = before["configGeneration"].as_u64().unwrap();

        // Edit the mounted file in place (as through a bind mount): drop the clock server.
        let mut doc: Value = serde_json::from_str(&config).unwrap();
        doc["mcpServers"].as_object_mut().unwrap().remove("clock");
        std::fs::write(root.host("/config/mcp.json"), root.host_paths(&format!("{doc:#}"))).unwrap();
        let after = wait_for_backends(&c, TOKEN, &["notes"]).await;
        assert!(after["configGeneration"].as_u64().unwrap() > generation, "{after}");
        assert_eq!(pid_of(&after, "notes"), pid_of(&before, "notes"), "the unchanged backend kept running");
        let (ok, output) = c.healthy().await;
        assert!(ok, "{output}");
        stop_cleanly(c, TOKEN).await;
    })
    .await
    .expect("test timed out");
}

/// The config of deploy/kubernetes/configmap.yaml (its `mcp.json: |` block).
fn configmap_config() -> String {
    let text = read("deploy/kubernetes/configmap.yaml");
    let mut lines = text.lines().skip_while(|l| l.trim_end() != "  mcp.json: |");
    assert!(lines.next().is_some(), "configmap.yaml has no `  mcp.json: |` block");
    let block: Vec<&str> = lines.take_while(|l| l.is_empty() || l.starts_with("    ")).collect();
    block.iter().map(|l| l.get(4..).unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Writes `content` as the kubelet writes a ConfigMap volume: the files in a fresh timestamped
/// directory, `..data` swapped to it atomically (rename of a new symlink), `mcp.json` a symlink
/// through `..data`.
fn kubelet_update(dir: &Path, version: u32, content: &str) {
    let stamped = format!("..2026_01_01_00_00_{version:02}.{version:09}");
    std::fs::create_dir_all(dir.join(&stamped)).unwrap();
    std::fs::write(dir.join(&stamped).join("mcp.json"), content).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamped, &tmp).unwrap();
    let old = std::fs::read_link(dir.join("..data")).ok();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    if !dir.join("mcp.json").exists() {
        std::os::unix::fs::symlink("..data/mcp.json", dir.join("mcp.json")).unwrap();
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(dir.join(old)).unwrap();
    }
}

#[tokio::test]
async fn kubernetes_configmap_update_reloads_without_a_restart() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let root = TempRoot::new("k8s");
        let config = configmap_config();
        assert!(config.contains(r#""authTokenFile": "/run/secrets/mcpmux/token""#), "{config}");
        kubelet_update(&root.host("/config"), 1, &root.host_paths(&config));
        // The Secret volume: key `token` under /run/secrets/mcpmux.
        const TOKEN: &str = "k8s-secret-token-0123456789";
        root.write("/run/secrets/mcpmux/token", TOKEN);

        // The Deployment runs the image's command line (args: ["serve"] is the image's CMD).
        let deployment = read("deploy/kubernetes/deployment.yaml");
        assert!(deployment.contains(r#"args: ["serve"]"#), "{deployment}");
        let c = Container::start(&stage("slim"), &root, &[]).await;
        check_auth(&c, TOKEN).await;
        let before = wait_for_backends(&c, TOKEN, &["clock", "notes"]).await;

        // kubectl apply of a changed ConfigMap: one more server.
        let mut doc: Value = serde_json::from_str(&config).unwrap();
        doc["mcpServers"]["extra"] = json!({"command": "${MCPMUX_EXE}", "args": ["demo", "notes"]});
        kubelet_update(&root.host("/config"), 2, &root.host_paths(&format!("{doc:#}")));
        let after = wait_for_backends(&c, TOKEN, &["clock", "extra", "notes"]).await;
        assert!(after["configGeneration"].as_u64() > before["configGeneration"].as_u64(), "{after}");
        assert_eq!(pid_of(&after, "notes"), pid_of(&before, "notes"), "the unchanged backend kept running");
        assert_eq!(pid_of(&after, "clock"), pid_of(&before, "clock"), "the unchanged backend kept running");
        let (ok, output) = c.healthy().await;
        assert!(ok, "{output}");
        stop_cleanly(c, TOKEN).await;
    })
    .await
    .expect("test timed out");
}
