//! The command line: `serve`, `claim-url`, `init`, `audit`, `wrapped-key`, `shares`,
//! `unlock-code`, `login`, `credentials`, `owner`, `node-key` and `verify`. Output meant for scripts goes to stdout; messages for people go to stderr.
//! Exit codes: 0 success, 1 failure, 2 usage error, 3 the node already has an owner, and those
//! of `shares`.

pub mod agent;
pub mod credentials;
pub mod enroll;
pub mod inbox;
pub mod login;
pub mod node_client;
pub mod node_key;
pub mod node_trust;
pub mod owner_key;
pub mod shares;
pub mod unlock_code;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::audit::{self, Actor};
use crate::auth::claim::{
    self, CheckedClaim, ClaimError, ClaimVia, OwnerSignatures, current_claim_token,
};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::config::{Overrides, PublicUrl, Settings};
use crate::jose::jwe::{self, WrappedKey};
use crate::jose::jwk::{OwnerPrivateKey, OwnerPublicKey};
use crate::startup::Application;
use crate::store::audit_rows;
use crate::store::{Store, StoreError, meta, owner};

/// The shortest password `init` accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Exit code for "the node already has an owner".
pub const EXIT_ALREADY_CLAIMED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "siteid",
    version,
    about = "A single-owner identity node for a personal website"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node.
    Serve(ServeArgs),
    /// Print the setup link of an unclaimed node (making its claim token if needed).
    ClaimUrl(NodeArgs),
    /// Claim the node from the command line: make a key, wrap it under a password, print the kid.
    Init(InitArgs),
    /// Read and check the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Tools for the stored wrapped key.
    WrappedKey {
        #[command(subcommand)]
        command: WrappedKeyCommand,
    },
    /// Recovery shares: split the key for friends, check shares, rebuild the key.
    Shares {
        #[command(subcommand)]
        command: shares::SharesCommand,
    },
    /// Make a one-time unlock code: with it a new device's password unlocks even while too
    /// many wrong passwords elsewhere have paused password unlock.
    UnlockCode(NodeArgs),
    /// Pairing: open or close the enrollment window (`--minutes N`, `--close`), set the
    /// enrollment mode (`--mode open|approval|window`), and print the settings in force.
    Enroll(enroll::EnrollArgs),
    /// Turn two-step unlock (TOTP) off, for an owner who lost both the authenticator app and
    /// the recovery codes.
    TotpDisable(NodeArgs),
    /// Sign in to a node with a credential's private key file and print an access token.
    Login(login::LoginArgs),
    /// Run a headless service client: keep a verified WebSocket to the node and approve the
    /// enrollment requests a policy allows, logging everything it does.
    Agent(agent::AgentArgs),
    /// The keys that may sign in: list them, add one, revoke one (on the server itself).
    Credentials {
        #[command(subcommand)]
        command: credentials::CredentialsCommand,
    },
    /// The owner key: replace it (on the server itself).
    Owner {
        #[command(subcommand)]
        command: owner_key::OwnerCommand,
    },
    /// The node's own key, with which it proves itself to clients: replace it (on the server
    /// itself).
    NodeKey {
        #[command(subcommand)]
        command: node_key::NodeKeyCommand,
    },
    /// Private messages: send a signed, encrypted message to another site.
    Inbox {
        #[command(subcommand)]
        command: inbox::InboxCommand,
    },
    /// Check that a node's key history leads from a kid you trust to the key it publishes;
    /// exits 1 on a break.
    Verify(owner_key::VerifyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The origin the node is reached at, e.g. https://example.com [default: http://<listen>
    /// for `serve`; the URL the node last served at for printed links].
    #[arg(long, env = "SITEID_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Directory of the node's database [default: ./data].
    #[arg(long, env = "SITEID_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file [default: <data dir>/config.toml when it exists].
    #[arg(long, env = "SITEID_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Address and port to listen on [default: 127.0.0.1:8080]; port 0 picks a free port.
    #[arg(long, env = "SITEID_LISTEN")]
    pub listen: Option<String>,
    /// Directory of extra files served under /.well-known/ [default: ./well-known].
    #[arg(long, env = "SITEID_WELL_KNOWN_DIR")]
    pub well_known_dir: Option<PathBuf>,
    /// Comma-separated IP addresses of reverse proxies whose X-Forwarded-For is believed.
    #[arg(long, env = "SITEID_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// Serve a plain-http public URL outside this machine anyway (warned about at every start).
    #[arg(long)]
    pub insecure_http: bool,
    /// How new devices join until the owner chooses on the account page: open, approval or
    /// window [default: open].
    #[arg(long, env = "SITEID_ENROLLMENT")]
    pub enrollment: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Read the password from this file (one trailing newline is removed) instead of asking.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// PBKDF2 iterations for the wrapped key.
    #[arg(long, default_value_t = jwe::DEFAULT_P2C)]
    pub p2c: u32,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; exits 1 naming the first bad entry.
    Verify(NodeArgs),
    /// Print the log, oldest first, one tab-separated entry per line.
    List(NodeArgs),
}

#[derive(Debug, Subcommand)]
pub enum WrappedKeyCommand {
    /// Unwrap the stored key with the password and check it against the stored public key
    /// and unlock verifier; prints the kid.
    Check {
        #[command(flatten)]
        node: NodeArgs,
        /// File holding the password (one trailing newline is removed).
        #[arg(long)]
        password_file: PathBuf,
    },
}

/// A failure to report: a message and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::new(error.to_string())
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::ClaimUrl(args) => claim_url(&args),
        Command::Init(args) => init(&args),
        Command::Audit {
            command: AuditCommand::Verify(args),
        } => audit_verify(&args),
        Command::Audit {
            command: AuditCommand::List(args),
        } => audit_list(&args),
        Command::WrappedKey {
            command:
                WrappedKeyCommand::Check {
                    node,
                    password_file,
                },
        } => wrapped_key_check(&node, &password_file),
        Command::Shares { command } => shares::run(command),
        Command::UnlockCode(args) => unlock_code::run(&args),
        Command::Enroll(args) => enroll::run(&args),
        Command::Agent(args) => agent::run(&args),
        Command::TotpDisable(args) => unlock_code::totp_disable(&args),
        Command::Login(args) => login::run(&args),
        Command::Credentials { command } => credentials::run(command),
        Command::Owner { command } => owner_key::run(command),
        Command::NodeKey { command } => node_key::run(command),
        Command::Verify(args) => owner_key::verify(&args),
        Command::Inbox { command } => inbox::run(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("siteid: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn load_settings(node: &NodeArgs, serve: Option<&ServeArgs>) -> Result<Settings, Failure> {
    let overrides = Overrides {
        data_dir: node.data_dir.clone(),
        config: node.config.clone(),
        listen: serve.and_then(|s| s.listen.clone()),
        public_url: node.public_url.clone(),
        well_known_dir: serve.and_then(|s| s.well_known_dir.clone()),
        trusted_proxies: serve.and_then(|s| s.trusted_proxies.clone()),
        insecure_http: serve.is_some_and(|s| s.insecure_http),
        // Other commands (`siteid enroll`) read the variable too, to show the mode in force.
        enrollment: match serve {
            Some(s) => s.enrollment.clone(),
            None => std::env::var("SITEID_ENROLLMENT").ok(),
        },
    };
    Settings::load(overrides).map_err(|e| Failure::new(e.to_string()))
}

fn serve(args: ServeArgs) -> Result<(), Failure> {
    let settings = load_settings(&args.node, Some(&args))?;
    for name in crate::config::unknown_env_vars() {
        tracing::warn!(variable = %name, "ignoring an unknown SITEID_ environment variable");
    }
    actix_web::rt::System::new().block_on(async move {
        let application = Application::build(settings)
            .await
            .map_err(|e| Failure::new(e.to_string()))?;
        // The handlers are installed before the listening line, so that a supervisor that
        // stops the node as soon as it is up gets a graceful stop, not the default death.
        let stop_signal = listen_for_stop_signals()
            .map_err(|e| Failure::new(format!("cannot listen for stop signals: {e}")))?;
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on http://{}", application.address());
        let _ = stdout.flush();
        tracing::info!(public_url = %application.public_url(), "serving");
        let stopper = application.stopper();
        actix_web::rt::spawn(async move {
            stop_signal.await;
            tracing::info!("stopping: finishing requests in flight");
            stopper.stop().await;
        });
        application
            .run_until_stopped()
            .await
            .map_err(|e| Failure::new(e.to_string()))
    })
}

/// Installs the SIGTERM and SIGINT handlers now; the future completes at the first signal.
#[cfg(unix)]
fn listen_for_stop_signals() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// Listens for Ctrl-C; the future completes at the first one.
#[cfg(not(unix))]
fn listen_for_stop_signals() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

pub(crate) fn open_store(node: &NodeArgs) -> Result<(Settings, Store), Failure> {
    let settings = load_settings(node, None)?;
    let store = Store::open(&settings.data_dir)?;
    Ok((settings, store))
}

fn claim_url(args: &NodeArgs) -> Result<(), Failure> {
    let (settings, store) = open_store(args)?;
    let now = SystemClock.now();
    let (token, served_url) = store.run_blocking(|c| {
        Ok::<_, StoreError>((
            current_claim_token(c, now)?,
            meta::get_text(c, meta::SERVED_PUBLIC_URL)?,
        ))
    })?;
    store.close()?;
    let Some((token, _)) = token else {
        return Err(Failure {
            message: "this node already has an owner".into(),
            code: EXIT_ALREADY_CLAIMED,
        });
    };
    let public_url = known_public_url(&settings, served_url);
    println!("{public_url}/setup#{token}");
    Ok(())
}

/// The URL the node is reached at: a configured public URL wins; then the one the node last
/// served at (`served_url`, from the database); then the default for its listen address.
pub(crate) fn known_public_url(settings: &Settings, served_url: Option<String>) -> PublicUrl {
    settings
        .public_url
        .clone()
        .or_else(|| served_url.and_then(|url| PublicUrl::parse(&url).ok()))
        .unwrap_or_else(|| PublicUrl::from_listen_address(settings.listen))
}

/// [`known_public_url`] with the served URL read from `store`.
pub(crate) fn node_public_url(settings: &Settings, store: &Store) -> Result<PublicUrl, Failure> {
    let served = store.run_blocking(|c| meta::get_text(c, meta::SERVED_PUBLIC_URL))?;
    Ok(known_public_url(settings, served))
}

/// Password and passphrase files longer than this are refused (reading stops there).
const MAX_PASSWORD_FILE: u64 = 4096;

/// Reads a password file as UTF-8, removing exactly one trailing newline (`\n` or `\r\n`).
pub fn read_password_file(path: &Path) -> Result<Zeroizing<String>, Failure> {
    use std::io::Read;
    let unreadable =
        |e: std::io::Error| Failure::new(format!("cannot read {}: {e}", path.display()));
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::open(path)
        .map_err(unreadable)?
        .take(MAX_PASSWORD_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_PASSWORD_FILE {
        return Err(Failure::new(format!(
            "{} is longer than {MAX_PASSWORD_FILE} bytes; it should hold one password",
            path.display()
        )));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Failure::new(format!("{} is not UTF-8", path.display())))?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    Ok(Zeroizing::new(text.to_owned()))
}

fn ask_password() -> Result<Zeroizing<String>, Failure> {
    let first = Zeroizing::new(
        rpassword::prompt_password("New password for the owner key: ")
            .map_err(|e| Failure::new(format!("cannot read the password: {e}")))?,
    );
    let second = Zeroizing::new(
        rpassword::prompt_password("The same password again: ")
            .map_err(|e| Failure::new(format!("cannot read the password: {e}")))?,
    );
    if !bool::from(first.as_bytes().ct_eq(second.as_bytes())) {
        return Err(Failure::new("the two passwords differ"));
    }
    Ok(first)
}

/// The password for a new wrapped key, from a file or asked twice, with at least
/// `MIN_PASSWORD_CHARS` characters; also checks the iteration count it will be used with.
fn new_password(password_file: Option<&Path>, p2c: u32) -> Result<Zeroizing<String>, Failure> {
    if !(jwe::MIN_P2C..=jwe::MAX_P2C).contains(&p2c) {
        return Err(Failure::new(format!(
            "--p2c must be from {} to {}",
            jwe::MIN_P2C,
            jwe::MAX_P2C
        )));
    }
    let password = match password_file {
        Some(path) => read_password_file(path)?,
        None => ask_password()?,
    };
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Failure::new(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters; a passphrase of \
             several words is easier to remember and harder to guess"
        )));
    }
    Ok(password)
}

fn init(args: &InitArgs) -> Result<(), Failure> {
    let (settings, store) = open_store(&args.node)?;
    let audience = node_public_url(&settings, &store)?;
    if store.run_blocking(|c| owner::exists(c))? {
        return Err(Failure {
            message: "this node already has an owner".into(),
            code: EXIT_ALREADY_CLAIMED,
        });
    }
    let password = new_password(args.password_file.as_deref(), args.p2c)?;
    eprintln!(
        "siteid: deriving the key-encryption key ({} iterations)...",
        args.p2c
    );
    let key = OwnerPrivateKey::generate();
    let (wrapped_key, verifier) = jwe::wrap_private_key(&key, password.as_bytes(), args.p2c)
        .map_err(|e| Failure::new(format!("wrapping the key failed: {e}")))?;
    let now = SystemClock.now();
    let verifier_hash: [u8; 32] = Sha256::digest(verifier).into();
    let signatures = OwnerSignatures::for_claim(
        &key,
        wrapped_key.compact(),
        &verifier_hash,
        audience.as_str(),
        now,
    );
    let (encryption_key, _) = crate::auth::encryption_keys::generate(&key, now)
        .map_err(|e| Failure::new(format!("making the encryption key failed: {e}")))?;
    let checked = CheckedClaim {
        public_key: key.public_key(),
        wrapped_key,
        verifier_hash,
        recovery_set: None,
        signatures: Some(signatures),
        encryption_key: Some(encryption_key),
    };
    let kid = store
        .run_blocking(|c| {
            claim::commit(
                c,
                None,
                &checked,
                ClaimVia::CommandLine,
                settings.enrollment,
                &Actor::local(),
                now,
            )
        })
        .map_err(|e| match e {
            ClaimError::AlreadyClaimed => Failure {
                message: "this node already has an owner".into(),
                code: EXIT_ALREADY_CLAIMED,
            },
            other => Failure::new(other.to_string()),
        })?;
    // The owner key binds the node's own key while it is at hand (the server makes the same key
    // file at its first start if this has not).
    let node_key = crate::jose::node_key::NodeKey::load_or_create(&settings.data_dir)
        .map_err(|e| Failure::new(e.to_string()))?;
    let binding = crate::jose::node_key::sign_binding(&key, audience.as_str(), node_key.kid(), now);
    let (node_kid, owner_kid) = (node_key.kid().to_owned(), kid.clone());
    store.run_blocking(|c| {
        let tx = c.transaction()?;
        crate::auth::node_key::store_binding(
            &tx,
            &node_kid,
            &owner_kid,
            &binding,
            &Actor::local(),
            now,
        )?;
        tx.commit()?;
        Ok::<_, StoreError>(())
    })?;
    store.close()?;
    println!("{kid}");
    Ok(())
}

fn audit_verify(args: &NodeArgs) -> Result<(), Failure> {
    let (_, store) = open_store(args)?;
    let checked = store.run_blocking(|c| Ok::<_, StoreError>(audit::verify_log(c)))?;
    store.close()?;
    let summary = checked.map_err(|error| Failure::new(error.to_string()))?;
    let head = audit::hex(&summary.head_hash);
    if summary.base_seq == 0 {
        println!("audit log intact: {} entries, head {head}", summary.entries);
    } else {
        println!(
            "audit log intact: {} entries, head {head}; entries up to {} were pruned",
            summary.entries, summary.base_seq
        );
    }
    Ok(())
}

/// Why `audit list` stopped early.
enum ListStop {
    Store(StoreError),
    Output(std::io::Error),
}

impl From<StoreError> for ListStop {
    fn from(error: StoreError) -> Self {
        ListStop::Store(error)
    }
}

fn audit_list(args: &NodeArgs) -> Result<(), Failure> {
    let (_, store) = open_store(args)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let listed = store.run_blocking(|c| {
        audit_rows::for_each(c, |row| {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}",
                row.seq,
                rfc3339(row.at),
                row.event,
                row.ip.as_deref().unwrap_or("-"),
                row.user_agent
                    .as_deref()
                    .unwrap_or("-")
                    .replace(['\t', '\n'], " "),
                row.detail
            )
            .map_err(ListStop::Output)
        })
    });
    store.close()?;
    let flushed = listed.and_then(|()| out.flush().map_err(ListStop::Output));
    match flushed {
        Ok(()) => Ok(()),
        // A reader that stops early (`| head`) is not a failure.
        Err(ListStop::Output(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(ListStop::Output(error)) => {
            Err(Failure::new(format!("cannot write the list: {error}")))
        }
        Err(ListStop::Store(error)) => Err(error.into()),
    }
}

fn wrapped_key_check(node: &NodeArgs, password_file: &Path) -> Result<(), Failure> {
    let (_, store) = open_store(node)?;
    let record = store
        .run_blocking(|c| owner::find(c))?
        .ok_or_else(|| Failure::new("this node has no owner yet"))?;
    store.close()?;
    let password = read_password_file(password_file)?;
    let wrapped = WrappedKey::parse(&record.wrapped_key)
        .map_err(|e| Failure::new(format!("the stored wrapped key {e}")))?;
    let kek = wrapped.derive_kek(password.as_bytes());
    let key = wrapped
        .unwrap_with_kek(&kek)
        .map_err(|e| Failure::new(format!("the stored wrapped key {e}")))?;
    let stored_public = OwnerPublicKey::from_json(&record.public_jwk)
        .map_err(|e| Failure::new(format!("the stored public key {e}")))?;
    if key.public_key() != stored_public {
        return Err(Failure::new(
            "the wrapped key holds a different key from the published public key",
        ));
    }
    let verifier_hash: [u8; 32] = Sha256::digest(kek.unlock_verifier()).into();
    if !bool::from(verifier_hash.ct_eq(&record.verifier_hash)) {
        return Err(Failure::new(
            "the stored unlock verifier does not belong to this password",
        ));
    }
    println!("{}", stored_public.thumbprint());
    Ok(())
}

/// Unwraps the node's owner key with the password (from a file, or asked) and checks it is
/// the key the node publishes.
pub(crate) fn unwrap_node_key(
    store: &Store,
    password_file: Option<&Path>,
) -> Result<OwnerPrivateKey, Failure> {
    let record = store
        .run_blocking(|c| owner::find(c))?
        .ok_or_else(|| Failure::new("this node has no owner yet"))?;
    let password = match password_file {
        Some(path) => read_password_file(path)?,
        None => Zeroizing::new(
            rpassword::prompt_password("Password of the owner key: ")
                .map_err(|e| Failure::new(format!("cannot read the password: {e}")))?,
        ),
    };
    let wrapped = WrappedKey::parse(&record.wrapped_key)
        .map_err(|e| Failure::new(format!("the stored wrapped key {e}")))?;
    eprintln!(
        "siteid: unwrapping the key ({} iterations)...",
        wrapped.p2c()
    );
    let key = wrapped
        .unwrap_with_password(password.as_bytes())
        .map_err(|_| Failure::new("the password is wrong (the wrapped key does not decrypt)"))?;
    let published = OwnerPublicKey::from_json(&record.public_jwk)
        .map_err(|e| Failure::new(format!("the stored public key {e}")))?;
    if key.public_key() != published {
        return Err(Failure::new(
            "the wrapped key holds another key than the node publishes; run `siteid wrapped-key \
             check` and restore a backup",
        ));
    }
    Ok(key)
}
