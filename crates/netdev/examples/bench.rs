//! Benchmark behind `scripts/bench-netdev`; every run is in a fresh network
//! namespace of its own, created here and gone when the run ends.
//!
//! (a) N taps (default 1000) created, attached to one bridge, brought up and
//!     deleted, with the batch API (tun ioctls on the worker thread, netlink
//!     setup pipelined, teardown by device group), against iproute2
//!     `ip -batch` doing the same (`tuntap add` + `link set master up`, then
//!     `link del` one by one), and against `ip -batch` with a device-group
//!     teardown. The compared virtkit taps end in ip's state (persistent, no
//!     fd open, so no carrier); "live" taps, whose fds stay open as QEMU gets
//!     them, are timed too: with carrier the kernel also enables a bridge port
//!     and IPv6 on each, which `ip tuntap` never pays for.
//! (b) Bridge created with its MAC in one RTM_NEWLINK (virtkit's
//!     `Bridge::create`) against create-then-set-MAC (two requests).
//!
//! Usage: bench [--reps N] [--taps N] [--bridges N] [--teardown-study] [--no-ip]
//! Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN) and `ip` for the peer.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use virtkit_netdev::{Bridge, MacAddr, Netdev, Tap, TapConfig};

const GROUP: u32 = 42;

struct Opts {
    reps: usize,
    taps: usize,
    bridges: usize,
    teardown_study: bool,
    ip: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        reps: 5,
        taps: 1000,
        bridges: 200,
        teardown_study: false,
        ip: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a number"))
        };
        match a.as_str() {
            "--reps" => o.reps = num("--reps").max(1),
            "--taps" => o.taps = num("--taps").max(1),
            "--bridges" => o.bridges = num("--bridges").max(1),
            "--teardown-study" => o.teardown_study = true,
            "--no-ip" => o.ip = false,
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

/// Runs `f` on a new thread inside a new network namespace with a
/// current-thread runtime; the namespace goes when the thread ends.
fn in_fresh_netns<T: Send + 'static>(
    f: impl FnOnce(&tokio::runtime::Runtime) -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        // SAFETY: unshare(2) takes only flags and affects this thread alone.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            panic!(
                "cannot create a network namespace: {} (run as root)",
                std::io::Error::last_os_error()
            );
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        f(&rt)
    })
    .join()
    .expect("bench thread")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Default)]
struct Series(Vec<f64>);

impl Series {
    fn push(&mut self, d: Duration) {
        self.0.push(ms(d));
    }
    fn median(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }
    fn print(&self, label: &str) {
        self.print_in(label, "ms");
    }
    fn print_in(&self, label: &str, unit: &str) {
        let min = self.0.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = self.0.iter().cloned().fold(0.0, f64::max);
        let runs: Vec<String> = self.0.iter().map(|v| format!("{v:.1}")).collect();
        println!(
            "{label:<48} median {:>9.1} {unit}  min {min:>9.1}  max {max:>9.1}  runs [{}]",
            self.median(),
            runs.join(", ")
        );
    }
}

fn guest_mac(i: usize) -> MacAddr {
    MacAddr([0x52, 0x54, 0x00, 0x10, (i >> 8) as u8, i as u8])
}

/// `live`: taps held by their fds, as QEMU gets them (carrier on, so the
/// kernel enables a bridge port and IPv6 for each). Otherwise persistent taps
/// whose fds are closed, which is the state `ip tuntap add` leaves.
fn tap_configs(n: usize, live: bool) -> Vec<TapConfig> {
    (0..n)
        .map(|i| {
            TapConfig::new("vnet%d")
                .guest_mac(guest_mac(i))
                .bridge("br0")
                .device_group(GROUP)
                .persistent(!live)
                .hold_fds(live)
        })
        .collect()
}

/// (a) virtkit: returns (create+attach+up, teardown).
fn virtkit_taps(n: usize, live: bool) -> (Duration, Duration) {
    in_fresh_netns(move |rt| {
        rt.block_on(async move {
            let nd = Netdev::new().unwrap();
            let br = Bridge::create(&nd, "br0", MacAddr([0x52, 0x54, 0, 0, 0, 1]), None)
                .await
                .unwrap();
            br.up().await.unwrap();
            let cfgs = tap_configs(n, live);

            let t0 = Instant::now();
            let taps = Tap::create_many(&nd, &cfgs).await.unwrap();
            let create = t0.elapsed();

            assert_eq!(br.ports().await.unwrap().len(), n, "every tap attached");

            let t1 = Instant::now();
            nd.delete_group(GROUP).await.unwrap();
            // The devices are gone; closing the (now detached) fds is cheap.
            let fds: Vec<_> = taps.into_iter().flat_map(Tap::into_fds).collect();
            tokio::task::spawn_blocking(move || drop(fds))
                .await
                .unwrap();
            let teardown = t1.elapsed();

            assert_eq!(nd.links().await.unwrap().len(), 2, "only lo and br0 left");
            br.delete().await.unwrap();
            (create, teardown)
        })
    })
}

fn run_ip_batch(lines: &str) -> Duration {
    let t = Instant::now();
    let mut child = Command::new("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run ip");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let st = child.wait().unwrap();
    let d = t.elapsed();
    assert!(st.success(), "ip -batch failed");
    d
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {args:?} failed");
}

/// (a) `ip -batch`: returns (create+attach+up, delete). `group` selects the
/// device-group teardown (`link delete group`) instead of one `link del` per tap.
fn ip_taps(n: usize, group: bool) -> (Duration, Duration) {
    in_fresh_netns(move |_| {
        // Child processes inherit this thread's network namespace.
        ip(&[
            "link",
            "add",
            "br0",
            "address",
            "52:54:00:00:00:01",
            "type",
            "bridge",
        ]);
        ip(&["link", "set", "br0", "up"]);
        let mut add = String::new();
        let mut del = String::new();
        for i in 0..n {
            add.push_str(&format!("tuntap add dev t{i} mode tap\n"));
            if group {
                add.push_str(&format!("link set dev t{i} group {GROUP} master br0 up\n"));
            } else {
                add.push_str(&format!("link set dev t{i} master br0 up\n"));
                del.push_str(&format!("link del dev t{i}\n"));
            }
        }
        if group {
            del.push_str(&format!("link delete group {GROUP}\n"));
        }
        let create = run_ip_batch(&add);
        let delete = run_ip_batch(&del);
        ip(&["link", "del", "br0"]);
        (create, delete)
    })
}

/// (b) per-bridge time: virtkit one message vs raw create-then-set.
fn bridges(n: usize) -> (Duration, Duration) {
    in_fresh_netns(move |rt| {
        rt.block_on(async move {
            let nd = Netdev::new().unwrap();
            let (conn, handle, _) = rtnetlink::new_connection().unwrap();
            tokio::spawn(conn);

            let t0 = Instant::now();
            for i in 0..n {
                Bridge::create(&nd, &format!("bo{i}"), guest_mac(i), None)
                    .await
                    .unwrap();
            }
            let one = t0.elapsed();

            let t1 = Instant::now();
            for i in 0..n {
                let name = format!("bt{i}");
                handle
                    .link()
                    .add(rtnetlink::LinkMessageBuilder::<rtnetlink::LinkBridge>::new(&name).build())
                    .execute()
                    .await
                    .unwrap();
                handle
                    .link()
                    .set(
                        rtnetlink::LinkUnspec::new_with_name(&name)
                            .address(guest_mac(i).0.to_vec())
                            .build(),
                    )
                    .execute()
                    .await
                    .unwrap();
            }
            let two = t1.elapsed();

            for i in 0..n {
                assert_eq!(nd.mac(&format!("bo{i}")).await.unwrap(), guest_mac(i));
                assert_eq!(nd.mac(&format!("bt{i}")).await.unwrap(), guest_mac(i));
            }
            // Clean up outside the timing, in one batch.
            futures::stream::iter(0..n)
                .map(|i| {
                    let nd = nd.clone();
                    async move {
                        nd.set_group(&format!("bo{i}"), GROUP).await?;
                        nd.set_group(&format!("bt{i}"), GROUP).await
                    }
                })
                .buffer_unordered(64)
                .try_collect::<Vec<()>>()
                .await
                .unwrap();
            nd.delete_group(GROUP).await.unwrap();
            (one / n as u32, two / n as u32)
        })
    })
}

/// Alternatives to the group teardown, once each (each takes ~20 s per 1000).
fn teardown_study(n: usize) {
    println!("-- teardown study, {n} taps each, one run");
    for variant in [
        "close-fds",
        "dellink-pipelined",
        "dellink-group",
        "bridge-down+group",
    ] {
        let d = in_fresh_netns(move |rt| {
            rt.block_on(async move {
                let nd = Netdev::new().unwrap();
                let br = Bridge::create(&nd, "br0", MacAddr([0x52, 0x54, 0, 0, 0, 1]), None)
                    .await
                    .unwrap();
                br.up().await.unwrap();
                let taps = Tap::create_many(&nd, &tap_configs(n, true)).await.unwrap();
                let names: Vec<String> = taps.iter().map(|t| t.name().to_string()).collect();
                let t = Instant::now();
                match variant {
                    "close-fds" => {
                        let fds: Vec<_> = taps.into_iter().flat_map(Tap::into_fds).collect();
                        tokio::task::spawn_blocking(move || drop(fds))
                            .await
                            .unwrap();
                    }
                    "dellink-pipelined" => {
                        futures::stream::iter(names)
                            .map(|name| {
                                let nd = nd.clone();
                                async move { nd.delete(&name).await }
                            })
                            .buffer_unordered(128)
                            .try_collect::<Vec<()>>()
                            .await
                            .unwrap();
                        let fds: Vec<_> = taps.into_iter().flat_map(Tap::into_fds).collect();
                        tokio::task::spawn_blocking(move || drop(fds))
                            .await
                            .unwrap();
                    }
                    "bridge-down+group" => {
                        br.down().await.unwrap();
                        nd.delete_group(GROUP).await.unwrap();
                        br.up().await.unwrap();
                        let fds: Vec<_> = taps.into_iter().flat_map(Tap::into_fds).collect();
                        tokio::task::spawn_blocking(move || drop(fds))
                            .await
                            .unwrap();
                    }
                    _ => {
                        nd.delete_group(GROUP).await.unwrap();
                        let fds: Vec<_> = taps.into_iter().flat_map(Tap::into_fds).collect();
                        tokio::task::spawn_blocking(move || drop(fds))
                            .await
                            .unwrap();
                    }
                }
                let d = t.elapsed();
                assert_eq!(nd.links().await.unwrap().len(), 2);
                d
            })
        });
        println!("teardown {variant:<20} {:>9.1} ms", ms(d));
    }
}

/// Create, delete and total times of one way of doing (a).
#[derive(Default)]
struct TapRuns {
    create: Series,
    delete: Series,
    total: Series,
}

impl TapRuns {
    fn push(&mut self, (c, d): (Duration, Duration)) {
        self.create.push(c);
        self.delete.push(d);
        self.total.push(c + d);
    }
    fn print(&self, who: &str, create: &str, delete: &str) {
        self.create
            .print(&format!("a {who} create+attach+up {create}"));
        self.delete.print(&format!("a {who} delete {delete}"));
        self.total.print(&format!("a {who} total"));
    }
}

fn main() {
    let o = parse_opts();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "== virtkit-netdev bench: {} taps, {} bridges, {} runs, kernel {}, each run in a fresh network namespace",
        o.taps,
        o.bridges,
        o.reps,
        kernel.trim()
    );

    let mut virtkit = TapRuns::default();
    let mut virtkit_live = TapRuns::default();
    let mut ip_each = TapRuns::default();
    let mut ip_group = TapRuns::default();
    let (mut b_one, mut b_two) = (Series::default(), Series::default());

    // Interleaved, so that drift on a shared machine hits every variant alike.
    for rep in 0..o.reps {
        virtkit.push(virtkit_taps(o.taps, false));
        virtkit_live.push(virtkit_taps(o.taps, true));
        if o.ip {
            ip_each.push(ip_taps(o.taps, false));
            ip_group.push(ip_taps(o.taps, true));
        }
        let (one, two) = bridges(o.bridges);
        b_one.push(one);
        b_two.push(two);
        eprintln!("run {}/{} done", rep + 1, o.reps);
    }

    println!(
        "-- (a) {} taps: create + attach to br0 + up, then delete (times in ms)",
        o.taps
    );
    virtkit.print(
        "virtkit",
        "(persistent, fds closed: ip's end state)",
        "(delete_group)",
    );
    if o.ip {
        ip_each.print(
            "ip-batch",
            "(tuntap add; link set master up)",
            "(link del per tap)",
        );
        ip_group.print("ip-batch", "(+ group 42)", "(link delete group 42)");
    }
    virtkit_live.print(
        "virtkit live",
        "(fds held as for QEMU: carrier on)",
        "(delete_group + close fds)",
    );
    println!(
        "-- (b) bridge with MAC, per bridge, {} bridges per run",
        o.bridges
    );
    b_one.0.iter_mut().for_each(|v| *v *= 1000.0);
    b_two.0.iter_mut().for_each(|v| *v *= 1000.0);
    b_one.print_in("b virtkit Bridge::create, MAC in RTM_NEWLINK", "us");
    b_two.print_in("b create, then RTM_SETLINK with the MAC", "us");

    if o.teardown_study {
        teardown_study(o.taps);
    }

    let ratio = |name: &str, a: &Series, b: &Series| {
        println!("ratio {name} {:.3}", a.median() / b.median());
    };
    if o.ip {
        ratio("taps_total_vs_ip_batch", &virtkit.total, &ip_each.total);
        ratio(
            "taps_create_attach_up_vs_ip_batch",
            &virtkit.create,
            &ip_each.create,
        );
        ratio("taps_delete_vs_ip_batch", &virtkit.delete, &ip_each.delete);
        ratio(
            "taps_total_vs_ip_batch_group_delete",
            &virtkit.total,
            &ip_group.total,
        );
        ratio(
            "taps_delete_vs_ip_batch_group_delete",
            &virtkit.delete,
            &ip_group.delete,
        );
        ratio(
            "live_taps_total_vs_ip_batch",
            &virtkit_live.total,
            &ip_each.total,
        );
    }
    ratio("bridge_mac_one_message_vs_create_then_set", &b_one, &b_two);
}
