//! `siteid agent`: a headless service client. It checks the node's own key, signs in with a
//! scoped credential, keeps a WebSocket open (reconnecting with backoff), approves the
//! enrollment requests its policy allows with its own key's binding, and logs what it does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::Deserialize;
use serde_json::{Value, json};
use tungstenite::Message;

use super::Failure;
use super::login::{challenge, load_key, sign_assertion};
use super::node_client::{self, call_json, node_origin, problem_detail};
use super::node_trust::{self, KnownNodes, TrustArgs, TrustedNode};
use crate::auth::credentials::Capabilities;
use crate::clock::{Clock, SystemClock};
use crate::keys::private::PrivateKey;
use crate::net::IpNetwork;

/// The shortest and longest waits between reconnection attempts.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(60);
/// How often the agent pings over its socket, which keeps its session in use.
const PING_EVERY: Duration = Duration::from_secs(60);
/// How long a session serves before the agent signs in anew (a session lives at least an hour
/// on any node; the old one then ends when idle).
const RENEW_AFTER: Duration = Duration::from_secs(50 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The node, by its public URL: https, or plain http to this machine only.
    #[arg(long)]
    pub node: String,
    /// The credential's private key: PEM (SEC1, PKCS#8 or PKCS#1) or an OpenSSH private key.
    #[arg(long)]
    pub key: PathBuf,
    /// File holding the key's passphrase (one trailing newline is removed).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Which enrollment requests to approve (TOML); without one, every request is left to the
    /// owner's devices.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// How to write the log on stderr: text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Append every interaction (event received, decision, action and its outcome) to this file
    /// as JSON lines; approvals written there count against the policy's daily limits after a
    /// restart.
    #[arg(long)]
    pub interaction_log: Option<PathBuf>,
    /// Sign in once, print the node's verified identity as JSON and exit.
    #[arg(long)]
    pub once: bool,
}

/// The policy file: rules tried in order; a request no rule approves is left to the owner.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    approve: Vec<Rule>,
}

/// One rule: which requests it matches and what it grants them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    /// Names the rule in the logs and in its daily count.
    name: String,
    /// Only requests of this kind (`device` or `key`).
    #[serde(default)]
    kind: Option<String>,
    /// Only requests whose label starts with this.
    #[serde(default)]
    label_prefix: Option<String>,
    /// Only requests sent from these networks (CIDRs); empty: from anywhere.
    #[serde(default)]
    from_networks: Vec<String>,
    /// The capabilities granted; they must be within the agent's own.
    capabilities: Vec<String>,
    /// The networks the new credential may be used from; empty: anywhere (only when the
    /// agent's own credential has no networks).
    #[serde(default)]
    networks: Vec<String>,
    /// The new credential expires this many days after its approval.
    #[serde(default)]
    expires_in_days: Option<u32>,
    /// Approvals under this rule in any 24 hours, at most.
    max_per_day: u32,
}

impl Policy {
    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> Result<Policy, Failure> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))?;
        let policy: Policy = toml::from_str(&text)
            .map_err(|e| Failure::new(format!("the policy {}: {e}", path.display())))?;
        policy
            .check()
            .map_err(|e| Failure::new(format!("the policy {}: {e}", path.display())))?;
        Ok(policy)
    }

    fn check(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for rule in &self.approve {
            if !names.insert(rule.name.as_str()) {
                return Err(format!("two rules are named {:?}", rule.name));
            }
            if let Some(kind) = &rule.kind
                && kind != "device"
                && kind != "key"
            {
                return Err(format!("rule {:?}: kind must be device or key", rule.name));
            }
            Capabilities::from_names(rule.capabilities.iter().map(String::as_str))
                .map_err(|e| format!("rule {:?}: capabilities {e}", rule.name))?;
            for network in rule.from_networks.iter().chain(&rule.networks) {
                IpNetwork::parse(network)
                    .map_err(|e| format!("rule {:?}: network {network:?} {e}", rule.name))?;
            }
        }
        Ok(())
    }
}

/// What the agent does with a request.
#[derive(Debug)]
enum Decision<'a> {
    Approve(&'a Rule),
    /// Left to the owner's devices, and why.
    Forward(String),
}

/// The first rule that matches `request`, if its daily limit and the agent's own capabilities
/// allow it.
fn decide<'a>(
    policy: &'a Policy,
    request: &Value,
    own: Capabilities,
    approved_today: &dyn Fn(&str) -> u32,
) -> Decision<'a> {
    let kind = request["kind"].as_str().unwrap_or_default();
    let label = request["label"].as_str().unwrap_or_default();
    let ip = request["ip"].as_str().and_then(|ip| ip.parse().ok());
    let matching = policy.approve.iter().find(|rule| {
        rule.kind.as_deref().is_none_or(|k| k == kind)
            && rule
                .label_prefix
                .as_deref()
                .is_none_or(|p| label.starts_with(p))
            && (rule.from_networks.is_empty()
                || ip.is_some_and(|ip| {
                    rule.from_networks
                        .iter()
                        .filter_map(|n| IpNetwork::parse(n).ok())
                        .any(|n| n.contains(ip))
                }))
    });
    let Some(rule) = matching else {
        return Decision::Forward("no rule matches".into());
    };
    if approved_today(&rule.name) >= rule.max_per_day {
        return Decision::Forward(format!("rule {:?} reached its daily limit", rule.name));
    }
    let granted =
        Capabilities::from_names(rule.capabilities.iter().map(String::as_str)).unwrap_or_default();
    if granted.intersection(own) != granted {
        return Decision::Forward(format!(
            "rule {:?} grants more than this agent's credential holds",
            rule.name
        ));
    }
    Decision::Approve(rule)
}

/// Writes the log on stderr and the interaction log.
struct Logger {
    format: LogFormat,
    interactions: Option<PathBuf>,
}

impl Logger {
    fn log(&self, event: &str, fields: Value) {
        let mut entry = json!({ "ts": SystemClock.now(), "event": event });
        if let (Some(entry), Value::Object(fields)) = (entry.as_object_mut(), fields) {
            entry.extend(fields);
        }
        let line = match self.format {
            LogFormat::Json => entry.to_string(),
            LogFormat::Text => {
                let details = entry
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .filter(|(k, _)| *k != "ts" && *k != "event")
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                format!("siteid agent: {event} {details}")
            }
        };
        let _ = writeln!(std::io::stderr(), "{line}");
        if let Some(path) = &self.interactions {
            use std::os::unix::fs::OpenOptionsExt;
            // Requesters' addresses and labels, and the count the daily limits trust: the
            // agent's user alone reads and writes it.
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut file| writeln!(file, "{entry}"));
            if let Err(error) = written {
                let _ = writeln!(
                    std::io::stderr(),
                    "siteid agent: cannot write the interaction log {}: {error}",
                    path.display()
                );
            }
        }
    }

    /// Approvals by rule name in the last 24 hours, read back from the interaction log.
    fn approvals_since(&self, since: i64) -> Vec<(String, i64)> {
        let Some(path) = &self.interactions else {
            return Vec::new();
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| entry["event"] == "approved")
            .filter_map(|entry| Some((entry["rule"].as_str()?.to_owned(), entry["ts"].as_i64()?)))
            .filter(|(_, at)| *at >= since)
            .collect()
    }
}

/// Why a connection ended.
enum Ended {
    /// A stop signal: the socket was closed cleanly.
    Stopped,
    /// The session is about to end: sign in again at once.
    Renew,
    /// The connection dropped or the node closed it: retry after a backoff.
    Dropped(String),
    /// The node ended the session (4401): sign in again after a backoff.
    SessionClosed(String),
}

/// The agent's socket to the node.
type AgentSocket = tungstenite::WebSocket<node_client::NodeStream>;

/// Why `connect` failed.
enum Refusal {
    /// Before the session was offered: the node, the network or its proof.
    Connection(String),
    /// The node did not accept the session: sign in again.
    Session(String),
}

/// The agent's state across connections.
struct Agent {
    origin: String,
    key: PrivateKey,
    /// The owner kid the node is checked from: `--pin`, then the kid each check leads to.
    pin: Option<String>,
    /// The kids kept per node (trust on first use), when a file is at hand.
    known: Option<KnownNodes>,
    policy: Policy,
    logger: Logger,
    stopping: Arc<AtomicBool>,
    /// Approvals by rule, with their time, for the daily limits.
    approvals: Vec<(String, i64)>,
}

/// A signed-in session: its token and what it may do.
struct Session {
    token: String,
    capabilities: Capabilities,
}

/// Runs `siteid agent`.
pub fn run(args: &AgentArgs) -> Result<(), Failure> {
    let origin = node_origin(&args.node).map_err(|e| Failure::new(format!("--node: {e}")))?;
    let key = load_key(&args.key, args.passphrase_file.as_deref())?;
    let policy = match &args.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::default(),
    };
    let logger = Logger {
        format: args.log_format,
        interactions: args.interaction_log.clone(),
    };
    if let Some(path) = &args.interaction_log
        && let Ok(metadata) = std::fs::metadata(path)
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(Failure::new(format!(
                "the interaction log {} may be read or written by other users (it counts the \
                 daily limits): chmod 600 it",
                path.display()
            )));
        }
    }
    if !policy.approve.is_empty() && args.interaction_log.is_none() {
        return Err(Failure::new(
            "a policy's daily limits are counted in the interaction log: give \
             --interaction-log FILE (kept across restarts)",
        ));
    }
    for rule in policy.approve.iter().filter(|r| r.from_networks.is_empty()) {
        // Kind and label are the requester's own words; only the address is the node's.
        logger.log(
            "policy_warning",
            json!({"rule": rule.name, "warning": "no from_networks: any requester who picks a matching kind and label is approved"}),
        );
    }
    let approvals = logger.approvals_since(SystemClock.now() - 86_400);
    let known = match args
        .trust
        .known_nodes_path()
        .and_then(|path| KnownNodes::load(&path))
    {
        Ok(known) => Some(known),
        Err(message) if args.trust.pin.is_some() => {
            logger.log("known_nodes_unavailable", json!({ "error": message }));
            None
        }
        Err(message) => return Err(Failure::new(message)),
    };
    let stopping = Arc::new(AtomicBool::new(false));
    watch_stop_signals(stopping.clone())?;
    let mut agent = Agent {
        origin,
        key,
        pin: args.trust.pin.clone(),
        known,
        policy,
        logger,
        stopping,
        approvals,
    };
    if args.once {
        return agent.once();
    }
    agent.serve()
}

/// Sets `stopping` on SIGTERM or SIGINT, from a thread of its own.
fn watch_stop_signals(stopping: Arc<AtomicBool>) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| Failure::new(format!("cannot start: {e}")))?;
    let (ready, registered) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut terminate), Ok(mut interrupt)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                let _ = ready.send(false);
                return;
            };
            let _ = ready.send(true);
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            stopping.store(true, Ordering::SeqCst);
        });
    });
    match registered.recv() {
        Ok(true) => Ok(()),
        _ => Err(Failure::new("cannot listen for stop signals")),
    }
}

impl Agent {
    /// The node key the trusted owner key bound for this origin (from `--pin`, the kid kept
    /// for it, or at first contact the kid it publishes).
    fn trusted_node(&self) -> Result<TrustedNode, String> {
        node_trust::trusted_node_key(
            &node_client::fetch,
            &self.origin,
            self.pin.as_deref(),
            self.known.as_ref(),
        )
        .map_err(|e| e.to_string())
    }

    /// Keeps the owner kid a verified connection led to.
    fn remember(&mut self, trusted: &TrustedNode) -> Result<(), String> {
        self.pin = Some(trusted.owner_kid.clone());
        if let Some(known) = &mut self.known {
            known.remember(&self.origin, trusted, SystemClock.now());
            known.save()?;
        }
        Ok(())
    }

    /// A REST challenge whose proof the node made with the key the trusted owner key bound,
    /// over a fresh nonce of ours: only such a nonce is ever signed.
    fn verified_nonce(&mut self) -> Result<String, String> {
        let trusted = self.trusted_node()?;
        let client_nonce = crate::jose::b64::encode(&rand::random::<[u8; 32]>());
        let (nonce, _, proof) =
            challenge(&self.origin, Some(&client_nonce)).map_err(|f| f.message)?;
        let proof = proof.ok_or("the node did not sign our nonce")?;
        trusted
            .check_proof(&proof, &nonce, &client_nonce, SystemClock.now())
            .map_err(|why| format!("the node failed mutual authentication: it {why}"))?;
        self.remember(&trusted)?;
        Ok(nonce)
    }

    /// Signs in over REST (a session whose token the socket then joins, and that approvals
    /// use), after the node proved itself.
    fn sign_in(&mut self) -> Result<Session, String> {
        let nonce = self.verified_nonce()?;
        let assertion = sign_assertion(&self.key, &self.origin, &nonce);
        let (status, body) = call_json(
            "POST",
            &format!("{}/api/v1/auth/login", self.origin),
            None,
            Some(&json!({ "assertion": assertion })),
        )?;
        if status != 200 {
            return Err(format!(
                "sign-in refused: {}",
                problem_detail(status, &body)
            ));
        }
        let token = body["access_token"]
            .as_str()
            .ok_or("the node's answer has no access_token")?
            .to_owned();
        self.session(token)
    }

    /// Reads the session of `token`.
    fn session(&self, token: String) -> Result<Session, String> {
        let (status, body) = call_json(
            "GET",
            &format!("{}/api/v1/session", self.origin),
            Some(&token),
            None,
        )?;
        if status != 200 {
            return Err(format!(
                "the session ended: {}",
                problem_detail(status, &body)
            ));
        }
        let names: Vec<String> =
            serde_json::from_value(body["capabilities"].clone()).unwrap_or_default();
        Ok(Session {
            token,
            capabilities: Capabilities::from_names(names.iter().map(String::as_str))
                .unwrap_or_default(),
        })
    }

    /// Opens the socket, checks the node's proof over its challenge and a nonce of ours, and
    /// only then joins `session` (its token goes nowhere else). Returns the socket, the owner
    /// kid and the node kid.
    fn connect(&mut self, session: &Session) -> Result<(AgentSocket, String, String), Refusal> {
        let trusted = self.trusted_node().map_err(Refusal::Connection)?;
        let mut socket =
            node_client::websocket_with_timeout(&self.origin, "/api/v1/ws", Duration::from_secs(1))
                .map_err(Refusal::Connection)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        // Bytes trickled one at a time cannot stretch the challenge past its deadline.
        socket.get_mut().set_deadline(Some(deadline));
        node_trust::checked_socket_challenge(
            &mut socket,
            &trusted,
            &mut |socket| read_json(socket, deadline),
            SystemClock.now(),
        )
        .map_err(Refusal::Connection)?;
        self.remember(&trusted).map_err(Refusal::Connection)?;
        send(
            &mut socket,
            &json!({"type": "auth", "access_token": session.token}),
        )
        .map_err(Refusal::Connection)?;
        let ready = read_json(&mut socket, deadline).map_err(Refusal::Session)?;
        if ready["type"] != "ready" {
            return Err(Refusal::Session(format!(
                "the node did not accept the session: {ready}"
            )));
        }
        socket.get_mut().set_deadline(None);
        Ok((socket, trusted.owner_kid, trusted.node_kid))
    }

    /// `--once`: one verified sign-in; prints the identity and signs out.
    fn once(&mut self) -> Result<(), Failure> {
        let session = self.sign_in().map_err(Failure::new)?;
        let (mut socket, owner_kid, node_kid) = self.connect(&session).map_err(|e| Failure {
            message: match e {
                Refusal::Connection(why) | Refusal::Session(why) => why,
            },
            code: super::owner_key::EXIT_BROKEN,
        })?;
        let _ = socket.close(None);
        let _ = socket.flush();
        let _ = call_json(
            "DELETE",
            &format!("{}/api/v1/session", self.origin),
            Some(&session.token),
            None,
        );
        println!(
            "{}",
            json!({
                "node": self.origin,
                "owner_kid": owner_kid,
                "node_kid": node_kid,
                "credential_kid": self.key.public_key().thumbprint(),
            })
        );
        Ok(())
    }

    /// Runs until a stop signal: connect, serve, back off, again.
    fn serve(&mut self) -> Result<(), Failure> {
        let mut retry = FIRST_RETRY;
        let mut session: Option<Session> = None;
        while !self.stopping.load(Ordering::SeqCst) {
            // A kept session's token goes only to a socket whose node proved itself first
            // (`connect`); a sign-in checks the node before it signs.
            let current = match session.take() {
                Some(kept) => kept,
                None => match self.sign_in() {
                    Ok(s) => s,
                    Err(why) => {
                        self.logger.log("sign_in_failed", json!({ "error": why }));
                        retry = self.back_off(retry);
                        continue;
                    }
                },
            };
            let connected = self.connect(&current);
            let (socket, owner_kid, node_kid) = match connected {
                Ok(connected) => connected,
                Err(Refusal::Session(why)) => {
                    self.logger.log("session_refused", json!({ "error": why }));
                    retry = self.back_off(retry);
                    continue;
                }
                Err(Refusal::Connection(why)) => {
                    self.logger.log("connect_failed", json!({ "error": why }));
                    session = Some(current);
                    retry = self.back_off(retry);
                    continue;
                }
            };
            retry = FIRST_RETRY;
            self.logger.log(
                "connected",
                json!({"node": self.origin, "owner_kid": owner_kid, "node_kid": node_kid}),
            );
            match self.serve_socket(socket, &current) {
                Ended::Stopped => {
                    self.logger.log("stopped", json!({}));
                    return Ok(());
                }
                Ended::Renew => {
                    self.logger.log("renewing_session", json!({}));
                }
                Ended::Dropped(why) => {
                    self.logger.log("disconnected", json!({ "reason": why }));
                    session = Some(current);
                    retry = self.back_off(retry);
                }
                Ended::SessionClosed(why) => {
                    self.logger.log("disconnected", json!({ "reason": why }));
                    retry = self.back_off(retry);
                }
            }
        }
        self.logger.log("stopped", json!({}));
        Ok(())
    }

    /// Waits `retry` with jitter (half to all of it), unless stopped; returns the next wait.
    fn back_off(&self, retry: Duration) -> Duration {
        let jitter = 0.5 + rand::random::<f64>() * 0.5;
        let wait = retry.mul_f64(jitter);
        let until = Instant::now() + wait;
        while Instant::now() < until && !self.stopping.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        (retry * 2).min(LAST_RETRY)
    }

    /// Serves one connection: requests waiting already, then events as they come.
    fn serve_socket(
        &mut self,
        mut socket: tungstenite::WebSocket<node_client::NodeStream>,
        session: &Session,
    ) -> Ended {
        // Requests sent while the agent was away are read first, so none is missed.
        let (status, pending) = match call_json(
            "GET",
            &format!("{}/api/v1/enrollment/requests", self.origin),
            Some(&session.token),
            None,
        ) {
            Ok(answer) => answer,
            Err(why) => return Ended::Dropped(why),
        };
        if status == 200 {
            for request in pending["requests"].as_array().cloned().unwrap_or_default() {
                self.handle_request(&request, session);
            }
        }
        let connected_at = Instant::now();
        let mut last_ping = Instant::now();
        let mut ping_id: u64 = 0;
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                let _ = socket.close(None);
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline {
                    match socket.read() {
                        Ok(_) => continue,
                        Err(tungstenite::Error::Io(e)) if is_pause(&e) => continue,
                        Err(_) => break,
                    }
                }
                return Ended::Stopped;
            }
            if connected_at.elapsed() >= RENEW_AFTER {
                let _ = socket.close(None);
                let _ = socket.flush();
                return Ended::Renew;
            }
            if last_ping.elapsed() >= PING_EVERY {
                last_ping = Instant::now();
                ping_id += 1;
                if let Err(why) = send(&mut socket, &json!({"type": "ping", "id": ping_id})) {
                    return Ended::Dropped(why);
                }
            }
            match socket.read() {
                Ok(Message::Text(text)) => {
                    let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
                        continue;
                    };
                    if frame["type"] == "event" {
                        self.logger.log(
                            "event",
                            json!({"name": frame["event"], "request_id": frame["request_id"]}),
                        );
                        if frame["event"] == "enrollment.requested" {
                            self.handle_request(&frame, session);
                        }
                    }
                }
                Ok(Message::Close(frame)) => {
                    let code = frame.as_ref().map(|f| u16::from(f.code));
                    let why = frame
                        .map(|f| format!("{} {}", u16::from(f.code), f.reason))
                        .unwrap_or_else(|| "closed".into());
                    if code == Some(crate::ws::protocol::CLOSE_UNAUTHORIZED) {
                        return Ended::SessionClosed(why);
                    }
                    return Ended::Dropped(why);
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if is_pause(&e) => {}
                Err(error) => return Ended::Dropped(error.to_string()),
            }
        }
    }

    /// Decides on a request and carries the decision out.
    fn handle_request(&mut self, request: &Value, session: &Session) {
        let id = request["request_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // The id goes into a URL path: only the form the node gives ids (base64url of 16 to
        // 64 bytes) is taken.
        if crate::auth::credential_changes::check_id(&id).is_err() {
            self.logger.log(
                "ignored",
                json!({"reason": "the request id is not a node's id", "request_id": id}),
            );
            return;
        }
        let since = SystemClock.now() - 86_400;
        self.approvals.retain(|(_, at)| *at >= since);
        let approvals = self.approvals.clone();
        let count = |rule: &str| approvals.iter().filter(|(r, _)| r == rule).count() as u32;
        let decision = decide(&self.policy, request, session.capabilities, &count);
        let rule = match decision {
            Decision::Forward(why) => {
                self.logger.log(
                    "forwarded",
                    json!({"request_id": id, "kind": request["kind"], "label": request["label"], "ip": request["ip"], "reason": why}),
                );
                return;
            }
            Decision::Approve(rule) => rule,
        };
        let rule_name = rule.name.clone();
        let rule = rule.clone();
        match self.approve(request, &rule, session) {
            Ok(credential) => {
                self.approvals.push((rule_name.clone(), SystemClock.now()));
                self.logger.log(
                    "approved",
                    json!({"request_id": id, "rule": rule_name, "kid": request["kid"], "label": request["label"], "ip": request["ip"], "capabilities": credential["capabilities"], "expires_at": credential["expires_at"]}),
                );
            }
            Err(why) => self.logger.log(
                "approval_failed",
                json!({"request_id": id, "rule": rule_name, "error": why}),
            ),
        }
    }

    /// Steps up and approves `request` with this agent's binding under `rule`.
    fn approve(
        &mut self,
        request: &Value,
        rule: &Rule,
        session: &Session,
    ) -> Result<Value, String> {
        let nonce = self.verified_nonce()?;
        let assertion = sign_assertion(&self.key, &self.origin, &nonce);
        let (status, body) = call_json(
            "POST",
            &format!("{}/api/v1/auth/reauth", self.origin),
            Some(&session.token),
            Some(&json!({ "assertion": assertion })),
        )?;
        if status != 204 {
            return Err(format!(
                "step-up refused: {}",
                problem_detail(status, &body)
            ));
        }
        let now = SystemClock.now();
        let expires_at = rule
            .expires_in_days
            .map(|days| now + i64::from(days) * 86_400);
        let id = request["request_id"].as_str().unwrap_or_default();
        let mut claims = json!({
            "sub": request["kid"],
            "kind": request["kind"],
            "label": request["label"],
            "cap": rule.capabilities,
            "net": rule.networks,
            "iat": now,
            "jti": id,
            // The address the policy judged: the node refuses the approval if the request came
            // from elsewhere (a relay that rewrote the event).
            "from": request["ip"],
        });
        if let Some(at) = expires_at {
            claims["exp"] = json!(at);
        }
        let binding = self.key.sign_compact(
            &json!({
                "alg": self.key.algorithm().as_str(),
                "typ": crate::auth::credentials::BINDING_TYPE,
                "kid": self.key.public_key().thumbprint(),
            }),
            &claims,
        );
        let (status, body) = call_json(
            "POST",
            &format!("{}/api/v1/enrollment/requests/{id}/approve", self.origin),
            Some(&session.token),
            Some(&json!({
                "capabilities": rule.capabilities,
                "networks": rule.networks,
                "expires_at": expires_at,
                "binding": binding,
            })),
        )?;
        if status != 201 {
            return Err(problem_detail(status, &body));
        }
        Ok(body)
    }
}

/// Whether a read error only means "nothing yet": the read timed out, or a signal (SIGTERM)
/// interrupted it, which the loop then notices.
fn is_pause(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

fn send(
    socket: &mut tungstenite::WebSocket<node_client::NodeStream>,
    message: &Value,
) -> Result<(), String> {
    socket
        .send(Message::text(message.to_string()))
        .map_err(|e| format!("the WebSocket failed: {e}"))
}

/// Reads the next JSON text frame, waiting until `deadline`.
fn read_json(
    socket: &mut tungstenite::WebSocket<node_client::NodeStream>,
    deadline: Instant,
) -> Result<Value, String> {
    while Instant::now() < deadline {
        match socket.read() {
            Ok(Message::Text(text)) => {
                return serde_json::from_str(text.as_str())
                    .map_err(|e| format!("the node sent a message that is not JSON: {e}"));
            }
            Ok(Message::Close(frame)) => {
                return Err(frame
                    .map(|f| format!("the node closed the socket: {} ({})", f.reason, f.code))
                    .unwrap_or_else(|| "the node closed the socket".into()));
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if is_pause(&e) => {}
            Err(error) => return Err(format!("the WebSocket failed: {error}")),
        }
    }
    Err("the node did not answer in time".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        let policy: Policy = toml::from_str(text).expect("parses");
        policy.check().expect("checks");
        policy
    }

    const POLICY: &str = r#"
        [[approve]]
        name = "ci"
        kind = "key"
        label_prefix = "ci-"
        from_networks = ["127.0.0.0/8"]
        capabilities = ["session"]
        max_per_day = 2
    "#;

    fn request(kind: &str, label: &str, ip: &str) -> Value {
        json!({"kind": kind, "label": label, "ip": ip})
    }

    #[test]
    fn a_request_is_approved_only_when_a_rule_matches_every_condition() {
        let policy = policy(POLICY);
        let own = Capabilities::from_names(["session", "credentials"]).expect("names");
        let none = |_: &str| 0;
        assert!(matches!(
            decide(&policy, &request("key", "ci-7", "127.0.0.1"), own, &none),
            Decision::Approve(rule) if rule.name == "ci"
        ));
        for other in [
            request("device", "ci-7", "127.0.0.1"),
            request("key", "laptop", "127.0.0.1"),
            request("key", "ci-7", "192.0.2.1"),
        ] {
            assert!(matches!(
                decide(&policy, &other, own, &none),
                Decision::Forward(_)
            ));
        }
    }

    #[test]
    fn the_daily_limit_and_the_agents_own_capabilities_bound_approvals() {
        let policy = policy(POLICY);
        let request = request("key", "ci-7", "127.0.0.1");
        let own = Capabilities::from_names(["session", "credentials"]).expect("names");
        assert!(matches!(
            decide(&policy, &request, own, &|_| 2),
            Decision::Forward(why) if why.contains("daily limit")
        ));
        let without_session = Capabilities::from_names(["credentials"]).expect("names");
        assert!(matches!(
            decide(&policy, &request, without_session, &|_| 0),
            Decision::Forward(why) if why.contains("more than")
        ));
    }

    #[test]
    fn a_policy_with_unknown_members_or_bad_values_is_refused() {
        for bad in [
            "[[approve]]\nname = \"a\"\ncapabilities = [\"session\"]\nmax_per_day = 1\nextra = 1",
            "[[approve]]\nname = \"a\"\ncapabilities = [\"fly\"]\nmax_per_day = 1",
            "[[approve]]\nname = \"a\"\nkind = \"owner\"\ncapabilities = []\nmax_per_day = 1",
            "[[approve]]\nname = \"a\"\nfrom_networks = [\"nope\"]\ncapabilities = []\nmax_per_day = 1",
            "[[approve]]\nname = \"a\"\ncapabilities = []\nmax_per_day = 1\n[[approve]]\nname = \"a\"\ncapabilities = []\nmax_per_day = 1",
        ] {
            let refused = toml::from_str::<Policy>(bad)
                .map_err(|e| e.to_string())
                .and_then(|p| p.check());
            assert!(refused.is_err(), "{bad}");
        }
    }
}
