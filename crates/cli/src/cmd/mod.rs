//! Running commands: the session context (connection, output, options) and
//! the dispatch from a parsed [`spec::Call`] to its implementation.

mod domain;
mod event;
mod host;
mod iface;
mod lxc;
mod monitor;
mod network;
pub mod spec;
mod storage;
mod xmlfmt;

use std::io::{IsTerminal, Write};

use virtkit::{Connect, Domain, Error, OpenFlags, Uri};

use spec::Call;

/// Why a command failed: the lines virsh prints after `error: `.
#[derive(Debug)]
pub struct Failure {
    pub lines: Vec<String>,
}

impl Failure {
    /// A failure with one message of virtkit's own.
    pub fn msg(s: impl Into<String>) -> Failure {
        Failure {
            lines: vec![s.into()],
        }
    }

    /// virsh's "what failed" line followed by the driver's error.
    pub fn with(s: impl Into<String>, e: &Error) -> Failure {
        Failure {
            lines: vec![s.into(), e.to_string()],
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            lines: vec![e.to_string()],
        }
    }
}

/// The result of one command.
pub type CmdResult = Result<(), Failure>;

/// Which ways of naming a domain a command accepts (virsh's BYID/BYUUID/BYNAME).
#[derive(Debug, Clone, Copy)]
pub struct By {
    pub id: bool,
    pub uuid: bool,
    pub name: bool,
}

impl By {
    pub const ALL: By = By {
        id: true,
        uuid: true,
        name: true,
    };
}

/// A session: one connection (opened on first use), options and output.
pub struct Ctx {
    uri: Option<String>,
    readonly: bool,
    pub quiet: bool,
    conn: Option<Connect>,
    /// Output of the running command.
    pub out: String,
    /// Output of finished commands not yet written. Like virsh (stdio),
    /// output to a terminal is written after each command and output to a
    /// pipe or file in large blocks.
    pending: Vec<u8>,
    tty: bool,
    /// Set by `quit`/`exit`.
    pub quit: bool,
    /// Set when opening the connection failed: stop running commands.
    pub fatal: bool,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("uri", &self.uri).finish()
    }
}

/// The URI used when none is given: `$VIRTKIT_DEFAULT_URI`, then
/// `$LIBVIRT_DEFAULT_URI`, then libvirt's default (`qemu:///system` for
/// root, `qemu:///session` otherwise).
pub fn default_uri() -> String {
    for var in ["VIRTKIT_DEFAULT_URI", "LIBVIRT_DEFAULT_URI"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return v;
        }
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        "qemu:///system".into()
    } else {
        "qemu:///session".into()
    }
}

impl Ctx {
    pub fn new(uri: Option<String>, readonly: bool, quiet: bool) -> Ctx {
        Ctx {
            uri,
            readonly,
            quiet,
            conn: None,
            out: String::new(),
            pending: Vec::new(),
            tty: std::io::stdout().is_terminal(),
            quit: false,
            fatal: false,
        }
    }

    /// The connection, opened on first use.
    pub async fn conn(&mut self) -> Result<&Connect, Failure> {
        if self.conn.is_none() {
            let uri = self.uri.clone().unwrap_or_else(default_uri);
            let flags = if self.readonly {
                OpenFlags::READ_ONLY
            } else {
                OpenFlags::empty()
            };
            let opened = match Uri::parse(&uri) {
                Ok(u) => Connect::open_with(&u, flags).await,
                Err(e) => Err(e),
            };
            match opened {
                Ok(c) => self.conn = Some(c),
                Err(e) => {
                    self.fatal = true;
                    return Err(Failure::with("failed to connect to the hypervisor", &e));
                }
            }
        }
        Ok(self.conn.as_ref().expect("connection was just opened"))
    }

    /// Closes an in-process driver connection (kept open otherwise): a
    /// long interactive command that no longer needs the driver then does
    /// not keep other virtkit processes out of the same URI. Connections to
    /// a daemon stay open.
    pub fn release_local_conn(&mut self) {
        if self
            .conn
            .as_ref()
            .is_some_and(|c| c.connection().driver() != "remote")
        {
            self.conn = None;
        }
    }

    /// Looks a domain up the way virsh does, with virsh's message on failure.
    pub async fn domain(&mut self, key: &str, by: By) -> Result<Domain, Failure> {
        let conn = self.conn().await?.clone();
        let ops = conn.domains()?;
        let fail = || Failure::msg(format!("failed to get domain '{key}'"));
        if by.id
            && let Ok(id) = key.parse::<u32>()
            && let Ok(d) = ops.lookup_by_id(id).await
        {
            return Ok(conn.wrap_domain(d));
        }
        if by.uuid
            && let Ok(u) = key.parse::<virtkit::Uuid>()
            && key.len() >= 32
            && let Ok(d) = ops.lookup_by_uuid(&u).await
        {
            return Ok(conn.wrap_domain(d));
        }
        if by.name
            && let Ok(d) = ops.lookup_by_name(key).await
        {
            return Ok(conn.wrap_domain(d));
        }
        Err(fail())
    }

    /// Appends to the command's output.
    pub fn print(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// Appends a line to the command's output.
    pub fn println(&mut self, s: &str) {
        self.out.push_str(s);
        self.out.push('\n');
    }

    /// Prints JSON for `--json`.
    pub fn json(&mut self, v: &impl serde::Serialize) -> CmdResult {
        let s = serde_json::to_string_pretty(v)
            .map_err(|e| Failure::msg(format!("cannot encode JSON: {e}")))?;
        self.println(&s);
        Ok(())
    }

    /// Ends a command's output: virsh's blank line unless quiet, then the
    /// output is written (at once on a terminal, in blocks otherwise).
    pub fn end_command(&mut self) {
        if !self.quiet {
            self.out.push('\n');
        }
        self.pending.extend_from_slice(self.out.as_bytes());
        self.out.clear();
        if self.tty || self.pending.len() >= 64 * 1024 {
            self.write_pending();
        }
    }

    /// Writes everything printed so far now (long-running commands, exit).
    pub fn flush(&mut self) {
        self.pending.extend_from_slice(self.out.as_bytes());
        self.out.clear();
        self.write_pending();
    }

    fn write_pending(&mut self) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&self.pending);
        let _ = stdout.flush();
        self.pending.clear();
    }
}

/// Runs one parsed command.
pub async fn run(ctx: &mut Ctx, call: &Call) -> CmdResult {
    match call.cmd.name {
        "list" => domain::list(ctx, call).await,
        "dominfo" => domain::dominfo(ctx, call).await,
        "domstate" => domain::domstate(ctx, call).await,
        "domid" | "domname" | "domuuid" => domain::ident(ctx, call).await,
        "define" => domain::define(ctx, call).await,
        "undefine" => domain::undefine(ctx, call).await,
        "create" => domain::create(ctx, call).await,
        "start" => domain::start(ctx, call).await,
        "shutdown" | "destroy" | "reboot" | "reset" | "suspend" | "resume" => {
            domain::lifecycle(ctx, call).await
        }
        "autostart" => domain::autostart(ctx, call).await,
        "dumpxml" => domain::dumpxml(ctx, call).await,
        "event" => event::event(ctx, call).await,
        "nodeinfo" => host::nodeinfo(ctx, call).await,
        "capabilities" => host::capabilities(ctx).await,
        "domcapabilities" => host::domcapabilities(ctx, call).await,
        "domstats" => monitor::domstats(ctx, call).await,
        "domblkstat" => monitor::domblkstat(ctx, call).await,
        "blkdeviotune" => monitor::blkdeviotune(ctx, call).await,
        "domifstat" => monitor::domifstat(ctx, call).await,
        "domiflist" => monitor::domiflist(ctx, call).await,
        "domifaddr" => monitor::domifaddr(ctx, call).await,
        "domblklist" => monitor::domblklist(ctx, call).await,
        "console" => monitor::console(ctx, call).await,
        "screenshot" => monitor::screenshot(ctx, call).await,
        "lxc-enter-namespace" => lxc::lxc_enter_namespace(ctx, call).await,
        "domxml-from-native" => lxc::domxml_from_native(ctx, call).await,
        "uri" => host::uri(ctx).await,
        "hostname" => host::hostname(ctx).await,
        "version" => host::version(ctx, call).await,
        "net-list" => network::list(ctx, call).await,
        "net-info" => network::info(ctx, call).await,
        "net-dumpxml" => network::dumpxml(ctx, call).await,
        "net-define" => network::define(ctx, call).await,
        "net-create" => network::create(ctx, call).await,
        "net-start" | "net-destroy" | "net-undefine" => network::lifecycle(ctx, call).await,
        "net-autostart" => network::autostart(ctx, call).await,
        "net-uuid" => network::uuid(ctx, call).await,
        "net-name" => network::name(ctx, call).await,
        "net-dhcp-leases" => network::dhcp_leases(ctx, call).await,
        "net-update" => network::update(ctx, call).await,
        "net-dnsmasq-conf" => network::dnsmasq_conf(ctx, call),
        "iface-list" => iface::list(ctx, call).await,
        "iface-dumpxml" => iface::dumpxml(ctx, call).await,
        "pool-list" => storage::pool_list(ctx, call).await,
        "pool-info" => storage::pool_info(ctx, call).await,
        "pool-dumpxml" => storage::pool_dumpxml(ctx, call).await,
        "vol-list" => storage::vol_list(ctx, call).await,
        "xml-format" => xmlfmt::xml_format(ctx, call),
        "help" => {
            match call.value("command") {
                None => {
                    let h = spec::help_all();
                    ctx.print(&h);
                }
                Some(name) => match spec::find(name) {
                    Some(c) => {
                        let h = spec::help_for(c);
                        ctx.print(&h);
                    }
                    None => {
                        return Err(Failure::msg(format!(
                            "command or command group '{name}' doesn't exist"
                        )));
                    }
                },
            }
            Ok(())
        }
        "quit" | "exit" => {
            ctx.quit = true;
            Ok(())
        }
        other => Err(Failure::msg(format!("unknown command: '{other}'"))),
    }
}

/// Reads an XML file the user named, with virsh's message on failure.
pub fn read_xml_file(path: &str) -> Result<String, Failure> {
    let buf = read_file(path)?;
    String::from_utf8(buf).map_err(|e| {
        Failure::msg(format!(
            "file '{path}' is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Reads a file the user named (at most 10 MiB), with virsh's message on failure.
pub fn read_file(path: &str) -> Result<Vec<u8>, Failure> {
    virtkit::files::read_limited(std::path::Path::new(path), virtkit::files::MAX_XML_FILE).map_err(
        |e| {
            Failure::msg(format!(
                "Failed to open file '{path}': {}",
                virtkit_strerror(&e)
            ))
        },
    )
}

/// An OS error as `strerror` words (without Rust's "(os error N)").
pub fn virtkit_strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
