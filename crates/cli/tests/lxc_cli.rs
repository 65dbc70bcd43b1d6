//! The `virtkit` command with `lxc://` URIs: each command is a process of
//! its own, so every step after `start` finds the container again through
//! its status file (re-attach across processes). Runs containers on the
//! busybox root filesystem of scripts/build-test-rootfs, each in a network
//! namespace of its own; needs root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn skip(why: &str) {
    if std::env::var_os("VIRTKIT_LXC_REQUIRE").is_some_and(|v| v == "1") {
        panic!("cannot run: {why}");
    }
    eprintln!("SKIPPED: lxc_cli: {why}");
}

struct Env {
    root: PathBuf,
    rootfs: PathBuf,
}

impl Env {
    fn uri(&self) -> String {
        format!("lxc:///embed?root={}", self.root.display())
    }

    fn run(&self, cmd: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_virtkit"))
            .env_remove("VIRTKIT_DEFAULT_URI")
            .env_remove("LIBVIRT_DEFAULT_URI")
            .args(["-q", "-c", &self.uri()])
            .args(shell_words(cmd))
            .output()
            .expect("run virtkit")
    }

    fn ok(&self, cmd: &str) -> String {
        let o = self.run(cmd);
        assert!(
            o.status.success(),
            "`virtkit {cmd}` failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn state(&self, name: &str) -> String {
        self.ok(&format!("domstate {name}")).trim().to_string()
    }

    /// Waits for a state; returns `domstate --reason` of the first process
    /// that saw it (the reason of a stop lives in the process that saw
    /// it happen, as in libvirt, where that is the daemon).
    fn wait_state(&self, name: &str, want: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self
                .ok(&format!("domstate {name} --reason"))
                .trim()
                .to_string();
            if s.starts_with(want) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name} did not become {want}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn supervisor_pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.root.join("run/lxc").join(name).join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for name in ["cli1", "cli2", "cli3"] {
            let _ = self.run(&format!("destroy {name}"));
        }
        let _ = std::fs::remove_dir_all(&self.root);
        // The `machine` partitions next to this process's v1 cgroups, when
        // no container uses them any more.
        let cg = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        for line in cg.lines() {
            let mut f = line.splitn(3, ':');
            let (_, ctls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
            if let Some(c) = ctls
                .split(',')
                .next()
                .filter(|c| !c.is_empty() && !c.contains('='))
            {
                let dir = Path::new("/sys/fs/cgroup")
                    .join(c)
                    .join(path.trim_start_matches('/'));
                let _ = std::fs::remove_dir(dir.join("machine"));
            }
        }
    }
}

/// Splits on spaces, keeping 'quoted words' together.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn setup(test: &str) -> Option<Env> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip("containers need root");
        return None;
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::var_os("VIRTKIT_TEST_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target/test-rootfs"));
    let o = Command::new(ws.join("scripts/build-test-rootfs"))
        .arg(&dir)
        .output()
        .expect("run scripts/build-test-rootfs");
    if !o.status.success() {
        skip(&format!(
            "scripts/build-test-rootfs failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
        return None;
    }
    let root = std::env::temp_dir().join(format!("vk-lxc-cli-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let env = Env {
        root,
        rootfs: dir.join("rootfs").canonicalize().unwrap(),
    };
    let o = env.run("uri");
    if !o.status.success() {
        skip(&format!(
            "this virtkit has no LXC driver: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
        return None;
    }
    Some(env)
}

fn domain_xml(env: &Env, name: &str) -> String {
    domain_xml_init(env, name, "<init>/sbin/init</init>")
}

fn domain_xml_init(env: &Env, name: &str, init: &str) -> String {
    format!(
        "<domain type='lxc'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <os><type>exe</type>{init}</os>
  <features><privnet/></features>
  <devices>
    <filesystem type='mount'><source dir='{}'/><target dir='/'/><readonly/></filesystem>
    <filesystem type='ram'><source usage='4' units='MiB'/><target dir='/run'/></filesystem>
    <console type='pty'/>
  </devices>
</domain>
",
        env.rootfs.display()
    )
}

#[test]
fn lxc_commands_drive_a_container_across_processes() {
    let Some(env) = setup("cmds") else {
        return;
    };
    let file = env.root.join("cli1.xml");
    std::fs::write(&file, domain_xml(&env, "cli1")).unwrap();
    assert!(env.ok("uri").starts_with("lxc:///embed?root="));
    env.ok(&format!("define {}", file.display()));
    assert_eq!(env.state("cli1"), "shut off");
    env.ok("start cli1");
    assert_eq!(env.state("cli1"), "running");
    let info = env.ok("dominfo cli1");
    assert!(info.contains("OS Type:        exe"), "{info}");
    assert!(info.contains("Max memory:     65536 KiB"), "{info}");

    // Commands inside the container, in its namespaces and cgroups.
    assert_eq!(
        env.ok("lxc-enter-namespace cli1 -- /bin/hostname").trim(),
        "cli1"
    );
    let inside = env.ok("lxc-enter-namespace cli1 -- /bin/sh -c 'cat /proc/self/cgroup; ls -d /proc/[0-9]* | wc -l'");
    assert!(
        inside.contains("cli1.") && inside.contains(".virtkit-lxc"),
        "{inside}"
    );
    let n: usize = inside.lines().last().unwrap().trim().parse().unwrap();
    assert!(n < 10, "only the container's processes: {n}");
    let o = env.run("lxc-enter-namespace cli1 -- /bin/sh -c 'exit 3'");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unexpected exit status 3"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = env.run("lxc-enter-namespace cli1");
    assert!(String::from_utf8_lossy(&o.stderr).contains("requires <cmd> option"));

    let stats = env.ok("domstats cli1");
    assert!(
        stats.contains("state.state=1") && stats.contains("balloon.maximum=65536"),
        "{stats}"
    );
    env.ok("suspend cli1");
    assert_eq!(env.state("cli1"), "paused");
    env.ok("resume cli1");
    assert_eq!(env.state("cli1"), "running");
    // Without a terminal there is no interactive console.
    let o = env.run("console cli1");
    assert!(String::from_utf8_lossy(&o.stderr).contains("without a controlling TTY"));
    env.ok("autostart cli1");
    assert!(env.ok("dominfo cli1").contains("Autostart:      enable"));
    env.ok("autostart cli1 --disable");

    // Shutdown through a signal to init, in another process again.
    let o = env.run("shutdown cli1 --mode acpi");
    assert!(!o.status.success(), "containers have no ACPI");
    assert!(env.supervisor_pid("cli1").is_some(), "a supervisor runs");
    env.ok("shutdown cli1 --mode signal");
    let st = env.wait_state("cli1", "shut off");
    assert_eq!(st, "shut off (shutdown)");
    assert!(
        !env.root.join("run/lxc/cli1").exists(),
        "run directory removed"
    );
    env.ok("start cli1");
    assert!(env.ok("destroy cli1").contains("Domain 'cli1' destroyed"));
    assert_eq!(env.state("cli1"), "shut off");

    // A transient container.
    let f2 = env.root.join("cli2.xml");
    std::fs::write(&f2, domain_xml(&env, "cli2")).unwrap();
    env.ok(&format!("create {}", f2.display()));
    assert_eq!(env.state("cli2"), "running");
    env.ok("destroy cli2");
    assert!(
        !env.run("domstate cli2").status.success(),
        "a transient domain is gone"
    );
    env.ok("undefine cli1");

    // Shutdown with a deadline: an init without a SIGTERM handler ignores
    // the signal (pid 1 of its namespace), so the deadline passes.
    let f3 = env.root.join("cli3.xml");
    std::fs::write(
        &f3,
        domain_xml_init(
            &env,
            "cli3",
            "<init>/bin/sh</init><initarg>-c</initarg><initarg>while :; do sleep 1; done</initarg>",
        ),
    )
    .unwrap();
    env.ok(&format!("define {}", f3.display()));
    env.ok("start cli3");
    let o = env.run("shutdown cli3 --mode signal --timeout 1");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("did not shut down within 1 s"), "{err}");
    assert_eq!(env.state("cli3"), "running");
    let out = env.ok("shutdown cli3 --mode signal --timeout 1 --force");
    assert!(out.contains("was destroyed"), "{out}");
    assert_eq!(env.state("cli3"), "shut off");
    let o = env.run("shutdown cli3 --force");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force needs --timeout"));
}

#[test]
fn domxml_from_native_converts_lxc_configuration() {
    let Some(env) = setup("native") else {
        return;
    };
    let cfg = env.root.join("native.config");
    std::fs::write(
        &cfg,
        format!(
            "lxc.uts.name = native1\nlxc.rootfs.path = {}\nlxc.net.0.type = none\nlxc.tty.max = 1\n\
             lxc.cgroup.memory.limit_in_bytes = 32M\n",
            env.rootfs.display()
        ),
    )
    .unwrap();
    let xml = env.ok(&format!("domxml-from-native lxc-tools {}", cfg.display()));
    assert!(xml.starts_with("<domain type='lxc'>"), "{xml}");
    assert!(xml.contains("<name>native1</name>"), "{xml}");
    assert!(xml.contains("<memory unit='KiB'>32768</memory>"), "{xml}");
    assert!(xml.contains("<target type='lxc' port='0'/>"), "{xml}");
    let o = env.run(&format!("domxml-from-native xen-xl {}", cfg.display()));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("lxc-tools"));
    let o = env.run("domxml-from-native lxc-tools /nonexistent.config");
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent.config"));
}
