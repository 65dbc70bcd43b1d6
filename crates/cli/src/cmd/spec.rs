//! Command and option definitions, and virsh's rules for matching words
//! to options (with virsh's error messages).

use std::collections::BTreeMap;

/// The kind of an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A flag: `--all`.
    Bool,
    /// A value: `--domain NAME`, `--domain=NAME`, or positional.
    Value,
    /// Every remaining positional word (`domstats [<domain>...]`).
    Rest,
}

/// One option of a command.
#[derive(Debug)]
pub struct Opt {
    pub name: &'static str,
    pub kind: Kind,
    /// Required.
    pub required: bool,
    /// May be given without its `--name`, in definition order.
    pub positional: bool,
    pub help: &'static str,
}

/// One command.
#[derive(Debug)]
pub struct Cmd {
    pub name: &'static str,
    pub opts: &'static [Opt],
    pub help: &'static str,
}

const fn flag(name: &'static str, help: &'static str) -> Opt {
    Opt {
        name,
        kind: Kind::Bool,
        required: false,
        positional: false,
        help,
    }
}

const fn value(name: &'static str, help: &'static str) -> Opt {
    Opt {
        name,
        kind: Kind::Value,
        required: false,
        positional: false,
        help,
    }
}

const fn arg(name: &'static str, help: &'static str) -> Opt {
    Opt {
        name,
        kind: Kind::Value,
        required: true,
        positional: true,
        help,
    }
}

const fn opt_arg(name: &'static str, help: &'static str) -> Opt {
    Opt {
        name,
        kind: Kind::Value,
        required: false,
        positional: true,
        help,
    }
}

const fn rest(name: &'static str, help: &'static str) -> Opt {
    Opt {
        name,
        kind: Kind::Rest,
        required: false,
        positional: true,
        help,
    }
}

const DOMAIN: Opt = arg("domain", "domain name, id or uuid");
const JSON: Opt = flag("json", "print JSON for programs instead of text");

/// Every command virtkit knows.
pub const COMMANDS: &[Cmd] = &[
    Cmd {
        name: "list",
        help: "list domains",
        opts: &[
            flag("inactive", "list inactive domains"),
            flag("all", "list inactive and active domains"),
            flag("transient", "list transient domains"),
            flag("persistent", "list persistent domains"),
            flag("with-snapshot", "list domains with a snapshot"),
            flag("without-snapshot", "list domains without a snapshot"),
            flag("with-checkpoint", "list domains with a checkpoint"),
            flag("without-checkpoint", "list domains without a checkpoint"),
            flag("state-running", "list running domains"),
            flag("state-paused", "list paused domains"),
            flag("state-shutoff", "list shut-off domains"),
            flag("state-other", "list domains in other states"),
            flag("autostart", "list domains marked for autostart"),
            flag("no-autostart", "list domains not marked for autostart"),
            flag(
                "with-managed-save",
                "list domains with a managed-save image",
            ),
            flag(
                "without-managed-save",
                "list domains without a managed-save image",
            ),
            flag("uuid", "print UUIDs only"),
            flag("name", "print names only"),
            flag("id", "print ids only"),
            flag("table", "print a table (the default)"),
            flag(
                "managed-save",
                "show 'saved' for domains with a managed-save image",
            ),
            flag("title", "show each domain's title"),
            JSON,
        ],
    },
    Cmd {
        name: "dominfo",
        help: "show a domain's basic information",
        opts: &[DOMAIN, JSON],
    },
    Cmd {
        name: "domstate",
        help: "show a domain's state",
        opts: &[
            DOMAIN,
            flag("reason", "also show why it is in that state"),
            JSON,
        ],
    },
    Cmd {
        name: "domid",
        help: "print a domain's id",
        opts: &[DOMAIN],
    },
    Cmd {
        name: "domname",
        help: "print a domain's name",
        opts: &[DOMAIN],
    },
    Cmd {
        name: "domuuid",
        help: "print a domain's UUID",
        opts: &[DOMAIN],
    },
    Cmd {
        name: "define",
        help: "define (but do not start) a domain from an XML file",
        opts: &[
            arg("file", "file with the domain's XML"),
            flag("validate", "validate the XML against the schema"),
        ],
    },
    Cmd {
        name: "undefine",
        help: "remove a domain's persistent definition",
        opts: &[
            DOMAIN,
            flag("managed-save", "also remove a managed-save image"),
            flag("nvram", "also remove the UEFI variable store"),
            flag("keep-nvram", "keep the UEFI variable store"),
        ],
    },
    Cmd {
        name: "create",
        help: "create and start a transient domain from an XML file",
        opts: &[
            arg("file", "file with the domain's XML"),
            flag("paused", "leave the guest paused"),
            flag("autodestroy", "destroy the guest when virtkit exits"),
            flag("validate", "validate the XML against the schema"),
        ],
    },
    Cmd {
        name: "start",
        help: "start a defined domain",
        opts: &[
            DOMAIN,
            flag("paused", "leave the guest paused"),
            flag("autodestroy", "destroy the guest when virtkit exits"),
            flag("force-boot", "boot even if a managed-save image exists"),
        ],
    },
    Cmd {
        name: "shutdown",
        help: "ask a domain to shut down",
        opts: &[
            DOMAIN,
            value(
                "mode",
                "acpi, agent, initctl, signal or paravirt (comma-separated)",
            ),
            value(
                "timeout",
                "wait this many seconds for the domain to shut off (virtkit only)",
            ),
            flag(
                "force",
                "with --timeout: destroy the domain if it has not shut off (virtkit only)",
            ),
        ],
    },
    Cmd {
        name: "destroy",
        help: "stop a domain at once",
        opts: &[
            DOMAIN,
            flag("graceful", "do not force the stop (SIGTERM only)"),
            flag("remove-logs", "also remove the domain's log files"),
        ],
    },
    Cmd {
        name: "reboot",
        help: "ask a domain to reboot",
        opts: &[
            DOMAIN,
            value(
                "mode",
                "acpi, agent, initctl, signal or paravirt (comma-separated)",
            ),
        ],
    },
    Cmd {
        name: "reset",
        help: "reset a domain's virtual hardware",
        opts: &[DOMAIN],
    },
    Cmd {
        name: "suspend",
        help: "pause a domain's virtual CPUs",
        opts: &[DOMAIN],
    },
    Cmd {
        name: "resume",
        help: "resume a paused domain",
        opts: &[DOMAIN],
    },
    Cmd {
        name: "autostart",
        help: "mark a domain to start with the host",
        opts: &[DOMAIN, flag("disable", "remove the mark")],
    },
    Cmd {
        name: "dumpxml",
        help: "print a domain's XML",
        opts: &[
            DOMAIN,
            flag("inactive", "the definition used at the next start"),
            flag("security-info", "include security-sensitive values"),
            flag("update-cpu", "update the guest CPU from the host"),
            flag("migratable", "the form suitable for migration"),
        ],
    },
    Cmd {
        name: "event",
        help: "print domain events as they happen",
        opts: &[
            value("domain", "only events of this domain"),
            value("event", "the event to wait for (lifecycle)"),
            flag("all", "all events"),
            flag("loop", "keep waiting after the first event"),
            value("timeout", "stop waiting after this many seconds"),
            flag("list", "list the event types"),
            flag("timestamp", "print a timestamp before each event"),
        ],
    },
    Cmd {
        name: "domstats",
        help: "show statistics of domains (all when none is named)",
        opts: &[
            flag("state", "state and reason"),
            flag("cpu-total", "CPU time"),
            flag("balloon", "memory balloon"),
            flag("vcpu", "virtual CPUs"),
            flag("interface", "network interfaces"),
            flag("block", "disks"),
            rest("domain", "domains"),
            JSON,
        ],
    },
    Cmd {
        name: "blkdeviotune",
        help: "show or change a disk's I/O limits (running domain)",
        opts: &[
            DOMAIN,
            arg("device", "disk target (vda) or path"),
            value("total-bytes-sec", "I/O limit (total_bytes_sec)"),
            value("read-bytes-sec", "I/O limit (read_bytes_sec)"),
            value("write-bytes-sec", "I/O limit (write_bytes_sec)"),
            value("total-iops-sec", "I/O limit (total_iops_sec)"),
            value("read-iops-sec", "I/O limit (read_iops_sec)"),
            value("write-iops-sec", "I/O limit (write_iops_sec)"),
            value("total-bytes-sec-max", "I/O limit (total_bytes_sec_max)"),
            value("read-bytes-sec-max", "I/O limit (read_bytes_sec_max)"),
            value("write-bytes-sec-max", "I/O limit (write_bytes_sec_max)"),
            value("total-iops-sec-max", "I/O limit (total_iops_sec_max)"),
            value("read-iops-sec-max", "I/O limit (read_iops_sec_max)"),
            value("write-iops-sec-max", "I/O limit (write_iops_sec_max)"),
            value("size-iops-sec", "I/O limit (size_iops_sec)"),
            value("group-name", "I/O limit (group_name)"),
            value(
                "total-bytes-sec-max-length",
                "I/O limit (total_bytes_sec_max_length)",
            ),
            value(
                "read-bytes-sec-max-length",
                "I/O limit (read_bytes_sec_max_length)",
            ),
            value(
                "write-bytes-sec-max-length",
                "I/O limit (write_bytes_sec_max_length)",
            ),
            value(
                "total-iops-sec-max-length",
                "I/O limit (total_iops_sec_max_length)",
            ),
            value(
                "read-iops-sec-max-length",
                "I/O limit (read_iops_sec_max_length)",
            ),
            value(
                "write-iops-sec-max-length",
                "I/O limit (write_iops_sec_max_length)",
            ),
            flag("live", "the running domain (the only kind changed)"),
            flag("current", "the running domain if it runs"),
            flag(
                "config",
                "the persistent definition (not supported: edit <iotune>)",
            ),
        ],
    },
    Cmd {
        name: "domblkstat",
        help: "show I/O statistics of a disk",
        opts: &[
            DOMAIN,
            opt_arg("device", "disk target (vda) or path"),
            flag("human", "print with descriptions"),
            JSON,
        ],
    },
    Cmd {
        name: "domifstat",
        help: "show traffic statistics of a network interface",
        opts: &[
            DOMAIN,
            arg("interface", "host device (vnet0) or MAC address"),
            JSON,
        ],
    },
    Cmd {
        name: "domiflist",
        help: "list a domain's network interfaces",
        opts: &[DOMAIN, flag("inactive", "of the persistent definition")],
    },
    Cmd {
        name: "domifaddr",
        help: "a running domain's interface addresses",
        opts: &[
            DOMAIN,
            opt_arg("interface", "only this interface (host device name)"),
            flag("full", "name and MAC on every address line"),
            value("source", "lease (default), agent or arp"),
        ],
    },
    Cmd {
        name: "domblklist",
        help: "list a domain's disks",
        opts: &[
            DOMAIN,
            flag("inactive", "of the persistent definition"),
            flag("details", "also show type and device"),
        ],
    },
    Cmd {
        name: "console",
        help: "attach to a domain's serial console (leave with Ctrl-])",
        opts: &[
            DOMAIN,
            opt_arg("devname", "character device alias (serial0...)"),
            flag("force", "disconnect other sessions"),
            flag("safe", "only when safe"),
        ],
    },
    Cmd {
        name: "lxc-enter-namespace",
        help: "run a command inside a running container's namespaces",
        opts: &[
            DOMAIN,
            flag("noseclabel", "do not change the process security label"),
            rest("cmd", "the command and its arguments (after --)"),
        ],
    },
    Cmd {
        name: "domxml-from-native",
        help: "convert a native guest configuration to domain XML",
        opts: &[
            arg("format", "source config data format (lxc-tools)"),
            arg("config", "config data file to import from"),
        ],
    },
    Cmd {
        name: "screenshot",
        help: "save a screenshot of a domain's display",
        opts: &[
            DOMAIN,
            opt_arg("file", "where to save it"),
            value("screen", "display number"),
        ],
    },
    Cmd {
        name: "domcapabilities",
        help: "print what guests can have with an emulator",
        opts: &[
            value("virttype", "kvm or qemu"),
            value("emulatorbin", "emulator binary"),
            value("arch", "guest architecture"),
            value("machine", "machine type"),
        ],
    },
    Cmd {
        name: "nodeinfo",
        help: "show the host's CPU and memory",
        opts: &[JSON],
    },
    Cmd {
        name: "capabilities",
        help: "print the host's capabilities XML",
        opts: &[],
    },
    Cmd {
        name: "uri",
        help: "print the connection URI",
        opts: &[],
    },
    Cmd {
        name: "hostname",
        help: "print the hypervisor host's name",
        opts: &[],
    },
    Cmd {
        name: "version",
        help: "print versions of virtkit and the hypervisor",
        opts: &[flag("daemon", "also the daemon's version"), JSON],
    },
    Cmd {
        name: "net-list",
        help: "list networks",
        opts: &[
            flag("inactive", "list inactive networks"),
            flag("all", "list inactive and active networks"),
            flag("persistent", "list persistent networks"),
            flag("transient", "list transient networks"),
            flag("autostart", "list networks marked for autostart"),
            flag("no-autostart", "list networks not marked for autostart"),
            flag("uuid", "print UUIDs only"),
            flag("name", "print names only"),
            flag("table", "print a table (the default)"),
            JSON,
        ],
    },
    Cmd {
        name: "net-info",
        help: "show a network's basic information",
        opts: &[arg("network", "network name or uuid"), JSON],
    },
    Cmd {
        name: "net-dumpxml",
        help: "print a network's XML",
        opts: &[
            arg("network", "network name or uuid"),
            flag("inactive", "the persistent definition"),
        ],
    },
    Cmd {
        name: "net-define",
        help: "define (but don't start) a network from an XML file",
        opts: &[
            arg("file", "file containing an XML network description"),
            flag("validate", "validate the XML against the schema"),
        ],
    },
    Cmd {
        name: "net-create",
        help: "create a network from an XML file",
        opts: &[
            arg("file", "file containing an XML network description"),
            flag("validate", "validate the XML against the schema"),
        ],
    },
    Cmd {
        name: "net-start",
        help: "start a (previously defined) inactive network",
        opts: &[arg("network", "network name or uuid")],
    },
    Cmd {
        name: "net-destroy",
        help: "destroy (stop) a network",
        opts: &[arg("network", "network name or uuid")],
    },
    Cmd {
        name: "net-undefine",
        help: "undefine a persistent network",
        opts: &[arg("network", "network name or uuid")],
    },
    Cmd {
        name: "net-autostart",
        help: "autostart a network",
        opts: &[
            arg("network", "network name or uuid"),
            flag("disable", "disable autostarting"),
        ],
    },
    Cmd {
        name: "net-uuid",
        help: "convert a network name to network UUID",
        opts: &[arg("network", "network name")],
    },
    Cmd {
        name: "net-name",
        help: "convert a network UUID to network name",
        opts: &[arg("network", "network uuid")],
    },
    Cmd {
        name: "net-dhcp-leases",
        help: "print lease info for a given network",
        opts: &[
            arg("network", "network name or uuid"),
            value("mac", "MAC address"),
            JSON,
        ],
    },
    Cmd {
        name: "net-update",
        help: "update parts of an existing network's configuration",
        opts: &[
            arg("network", "network name or uuid"),
            arg(
                "command",
                "type of update (add-first, add-last (add), delete, or modify)",
            ),
            arg(
                "section",
                "which section of network configuration to update",
            ),
            arg(
                "xml",
                "name of file containing xml (or, if it starts with '<', the complete text of the xml element) to add/modify, or to be matched for search",
            ),
            value("parent-index", "which parent object to search through"),
            flag("config", "affect next network startup"),
            flag("live", "affect running network"),
            flag("current", "affect current state of network"),
        ],
    },
    Cmd {
        name: "net-dnsmasq-conf",
        help: "print the dnsmasq configuration of a network XML file (virtkit only)",
        opts: &[
            arg("file", "the network XML file"),
            value(
                "state-dir",
                "directory of the hosts files (default /var/lib/libvirt/dnsmasq)",
            ),
            flag("hostsfile", "also print the DHCP hosts file"),
        ],
    },
    Cmd {
        name: "iface-list",
        help: "list host interfaces",
        opts: &[
            flag("inactive", "list inactive interfaces"),
            flag("all", "list inactive and active interfaces"),
            JSON,
        ],
    },
    Cmd {
        name: "iface-dumpxml",
        help: "print a host interface's XML",
        opts: &[
            arg("interface", "interface name or MAC address"),
            flag("inactive", "the persistent definition"),
        ],
    },
    Cmd {
        name: "pool-list",
        help: "list storage pools",
        opts: &[
            flag("inactive", "list inactive pools"),
            flag("all", "list inactive and active pools"),
            flag("transient", "list transient pools"),
            flag("persistent", "list persistent pools"),
            flag("autostart", "list pools marked for autostart"),
            flag("no-autostart", "list pools not marked for autostart"),
            flag("details", "show state, persistence and sizes"),
            flag("uuid", "print UUIDs only"),
            flag("name", "print names only"),
            JSON,
        ],
    },
    Cmd {
        name: "pool-info",
        help: "show a storage pool's basic information",
        opts: &[
            arg("pool", "pool name or uuid"),
            flag("bytes", "sizes in bytes"),
            JSON,
        ],
    },
    Cmd {
        name: "pool-dumpxml",
        help: "print a storage pool's XML",
        opts: &[
            arg("pool", "pool name or uuid"),
            flag("inactive", "the persistent definition"),
        ],
    },
    Cmd {
        name: "vol-list",
        help: "list the volumes of a storage pool",
        opts: &[
            arg("pool", "pool name or uuid"),
            flag("details", "show type and sizes"),
        ],
    },
    Cmd {
        name: "xml-format",
        help: "print an XML file in libvirt's canonical form (virtkit only)",
        opts: &[
            arg("file", "the XML file"),
            value("kind", "domain (default) or network"),
            flag(
                "inactive",
                "network: the persistent form (VIR_NETWORK_XML_INACTIVE)",
            ),
            flag(
                "as-defined",
                "print the document exactly as written instead",
            ),
        ],
    },
    Cmd {
        name: "help",
        help: "print help",
        opts: &[opt_arg("command", "a command")],
    },
    Cmd {
        name: "quit",
        help: "leave the interactive shell",
        opts: &[],
    },
    Cmd {
        name: "exit",
        help: "leave the interactive shell",
        opts: &[],
    },
];

/// A command with its options matched.
#[derive(Debug, Clone)]
pub struct Call {
    pub cmd: &'static Cmd,
    values: BTreeMap<&'static str, String>,
    flags: Vec<&'static str>,
    rest: Vec<String>,
}

impl Call {
    /// A flag's presence.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }

    /// A value option.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The words a `Rest` option collected.
    pub fn rest(&self) -> &[String] {
        &self.rest
    }

    /// A required value option (the parser has checked it is there).
    pub fn req(&self, name: &str) -> &str {
        self.value(name).unwrap_or_default()
    }
}

/// Finds a command by name.
pub fn find(name: &str) -> Option<&'static Cmd> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Matches words to a command's options, with virsh's messages on error.
pub fn parse(words: &[String]) -> Result<Call, String> {
    let name = &words[0];
    let cmd = find(name).ok_or_else(|| format!("unknown command: '{name}'"))?;
    let mut call = Call {
        cmd,
        values: BTreeMap::new(),
        flags: Vec::new(),
        rest: Vec::new(),
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut only_data = false;
    let mut i = 1;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if !only_data && w == "--" {
            only_data = true;
            continue;
        }
        if !only_data && w.len() > 2 && w.starts_with("--") {
            let body = &w[2..];
            let (oname, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let opt = cmd.opts.iter().find(|o| o.name == oname).ok_or_else(|| {
                format!("command '{}' doesn't support option --{oname}", cmd.name)
            })?;
            if seen.contains(&opt.name) {
                return Err(format!("option --{} already seen", opt.name));
            }
            seen.push(opt.name);
            match opt.kind {
                Kind::Bool => {
                    if inline.is_some() {
                        return Err(format!("invalid '=' after option --{}", opt.name));
                    }
                    call.flags.push(opt.name);
                }
                Kind::Rest => {
                    return Err(format!("unexpected option --{}", opt.name));
                }
                Kind::Value => {
                    let v = match inline {
                        Some(v) => v,
                        None => match words.get(i) {
                            Some(v) => {
                                i += 1;
                                v.clone()
                            }
                            None => {
                                return Err(format!("expected syntax: --{} <string>", opt.name));
                            }
                        },
                    };
                    call.values.insert(opt.name, v);
                }
            }
            continue;
        }
        let slot = cmd
            .opts
            .iter()
            .find(|o| o.positional && !seen.contains(&o.name))
            .ok_or_else(|| format!("unexpected data '{w}'"))?;
        if slot.kind == Kind::Rest {
            call.rest.push(w.clone());
            continue;
        }
        seen.push(slot.name);
        call.values.insert(slot.name, w.clone());
    }
    if let Some(missing) = cmd
        .opts
        .iter()
        .find(|o| o.required && !call.values.contains_key(o.name))
    {
        return Err(format!(
            "command '{}' requires <{}> option",
            cmd.name, missing.name
        ));
    }
    Ok(call)
}

/// The text of `help COMMAND`.
pub fn help_for(cmd: &Cmd) -> String {
    let mut s = format!(
        "  NAME\n    {} - {}\n\n  SYNOPSIS\n    {}",
        cmd.name, cmd.help, cmd.name
    );
    for o in cmd.opts {
        let shown = match (o.kind, o.positional) {
            (Kind::Bool, _) => format!("[--{}]", o.name),
            (Kind::Rest, _) => format!("[<{}>...]", o.name),
            (Kind::Value, true) if o.required => format!("<{}>", o.name),
            (Kind::Value, true) => format!("[<{}>]", o.name),
            (Kind::Value, false) => format!("[--{} <string>]", o.name),
        };
        s.push(' ');
        s.push_str(&shown);
    }
    s.push_str("\n\n");
    if !cmd.opts.is_empty() {
        s.push_str("  OPTIONS\n");
        for o in cmd.opts {
            let left = match o.kind {
                Kind::Bool => format!("--{}", o.name),
                Kind::Rest => format!("<{}>...", o.name),
                Kind::Value if o.positional => format!("[--{}] <string>", o.name),
                Kind::Value => format!("--{} <string>", o.name),
            };
            s.push_str(&format!("    {left:<16} {}\n", o.help));
        }
        s.push('\n');
    }
    s
}

/// The text of `help` without a command.
pub fn help_all() -> String {
    let mut s = String::from("Commands:\n\n");
    for c in COMMANDS {
        s.push_str(&format!("    {:<16} {}\n", c.name, c.help));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn virsh_option_rules() {
        let c = parse(&w("domstate test --reason")).unwrap();
        assert_eq!(c.req("domain"), "test");
        assert!(c.flag("reason"));
        let c = parse(&w("dominfo --domain=test")).unwrap();
        assert_eq!(c.req("domain"), "test");
        assert_eq!(parse(&w("bogus")).unwrap_err(), "unknown command: 'bogus'");
        assert_eq!(
            parse(&w("dominfo")).unwrap_err(),
            "command 'dominfo' requires <domain> option"
        );
        assert_eq!(
            parse(&w("dominfo test extra")).unwrap_err(),
            "unexpected data 'extra'"
        );
        assert_eq!(
            parse(&w("dominfo test --foo")).unwrap_err(),
            "command 'dominfo' doesn't support option --foo"
        );
        assert_eq!(
            parse(&w("dominfo --domain")).unwrap_err(),
            "expected syntax: --domain <string>"
        );
        assert_eq!(
            parse(&w("domstate --reason=yes test")).unwrap_err(),
            "invalid '=' after option --reason"
        );
        assert_eq!(
            parse(&w("domstate test --domain x")).unwrap_err(),
            "option --domain already seen"
        );
    }
}
