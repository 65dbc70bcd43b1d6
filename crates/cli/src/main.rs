//! `virtkit`: the virsh-style command-line tool.
//!
//! ```text
//! virtkit [-c URI] [-r] [-q] COMMAND [ARGS...]     one command, words as given
//! virtkit [-c URI] [-r] [-q] 'CMD ARGS; CMD ARGS'  several, split like virsh
//! virtkit [-c URI] [-r] [-q]                       commands from standard input
//! ```
//!
//! Commands, options, output and exit codes follow virsh. The connection is
//! opened once, on the first command that needs it; `test:///default` state
//! lives as long as the process, as in libvirt.

mod cmd;
mod shell;
mod table;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use cmd::spec::{self, Call};
use cmd::{Ctx, Failure};

const USAGE: &str = "\
usage: virtkit [options]... [<command_string>]
       virtkit [options]... <command> [args...]

  options:
    -c | --connect=URI      hypervisor connection URI
    -r | --readonly         connect read-only
    -q | --quiet            quiet mode: no headers or blank lines
    -h | --help             this help
    -v | --version          print the version

  With no command, commands are read from standard input
  (an interactive shell with history on a terminal).
  'virtkit help' lists the commands; 'virtkit help COMMAND' describes one.
  The default URI comes from $VIRTKIT_DEFAULT_URI, then $LIBVIRT_DEFAULT_URI.
";

struct Options {
    uri: Option<String>,
    readonly: bool,
    quiet: bool,
    rest: Vec<String>,
}

/// Parses the options before the first command word.
fn parse_options(args: Vec<String>) -> Result<Options, (String, u8)> {
    let mut o = Options {
        uri: None,
        readonly: false,
        quiet: false,
        rest: Vec::new(),
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let value_for = |name: &str, it: &mut std::vec::IntoIter<String>| {
            it.next().ok_or_else(|| {
                (
                    format!("error: option '{name}' requires an argument\n"),
                    1u8,
                )
            })
        };
        match a.as_str() {
            "-c" | "--connect" => o.uri = Some(value_for("-c'/'--connect", &mut it)?),
            "-r" | "--readonly" => o.readonly = true,
            "-q" | "--quiet" => o.quiet = true,
            "-h" | "--help" => return Err((USAGE.to_string(), 0)),
            "-v" | "--version" => {
                return Err((format!("{}\n", env!("CARGO_PKG_VERSION")), 0));
            }
            // Accepted for compatibility with virsh scripts; no effect yet.
            "-d"
            | "--debug"
            | "-l"
            | "--log"
            | "-e"
            | "--escape"
            | "-k"
            | "--keepalive-interval"
            | "-K"
            | "--keepalive-count" => {
                value_for(&a, &mut it)?;
            }
            "-t" | "--timing" => {}
            s if s.starts_with("--connect=") => o.uri = Some(s["--connect=".len()..].to_string()),
            s if s.starts_with("-c") && s.len() > 2 => o.uri = Some(s[2..].to_string()),
            s if s.starts_with('-') && s.len() > 1 => {
                return Err((format!("error: unsupported option '{s}'. See --help.\n"), 1));
            }
            _ => {
                o.rest.push(a);
                o.rest.extend(it);
                break;
            }
        }
    }
    Ok(o)
}

fn report(f: &Failure) {
    let mut err = std::io::stderr().lock();
    for l in &f.lines {
        let _ = writeln!(err, "error: {l}");
    }
}

/// Runs parsed commands in order; the result is the last command's.
async fn run_calls(ctx: &mut Ctx, calls: &[Call]) -> bool {
    let mut ok = true;
    for call in calls {
        let r = cmd::run(ctx, call).await;
        ctx.end_command();
        ok = match r {
            Ok(()) => true,
            Err(f) => {
                report(&f);
                false
            }
        };
        if ctx.quit || ctx.fatal {
            break;
        }
    }
    ok
}

fn parse_all(commands: Vec<Vec<String>>) -> Result<Vec<Call>, Failure> {
    commands
        .iter()
        .map(|words| spec::parse(words).map_err(Failure::msg))
        .collect()
}

async fn run_line(ctx: &mut Ctx, line: &str) -> bool {
    let calls = match shell::split(line).map_err(Failure::msg).and_then(parse_all) {
        Ok(c) => c,
        Err(f) => {
            report(&f);
            return false;
        }
    };
    run_calls(ctx, &calls).await
}

fn history_path() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("virtkit").join("history"))
}

/// The interactive shell (a terminal) or a command script (a pipe). Input is
/// read off the runtime thread, so guests and events keep being watched
/// while the shell waits for a line.
async fn run_stdin(ctx: &mut Ctx) -> bool {
    let mut ok = true;
    if std::io::stdin().is_terminal() {
        let Ok(mut rl) = rustyline::DefaultEditor::new() else {
            eprintln!("error: cannot set up the terminal");
            return false;
        };
        let hist = history_path();
        if let Some(h) = &hist {
            let _ = rl.load_history(h);
        }
        println!(
            "Welcome to virtkit, the virtualization interactive terminal.\n\n\
             Type:  'help' for help with commands\n       'quit' to quit\n"
        );
        let mut editor = Some(rl);
        loop {
            let Some(mut rl) = editor.take() else { break };
            let Ok((line, back)) = tokio::task::spawn_blocking(move || {
                let line = rl.readline("virtkit # ");
                (line, rl)
            })
            .await
            else {
                break;
            };
            let rl = editor.insert(back);
            let Ok(line) = line else { break };
            if !line.trim().is_empty() {
                let _ = rl.add_history_entry(line.as_str());
            }
            ok = run_line(ctx, &line).await;
            if ctx.quit || ctx.fatal {
                break;
            }
        }
        if let (Some(h), Some(rl)) = (&hist, editor.as_mut()) {
            if let Some(dir) = h.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = rl.save_history(h);
        }
    } else {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            ok = run_line(ctx, &line).await;
            if ctx.quit || ctx.fatal {
                break;
            }
        }
    }
    ok
}

fn main() -> ExitCode {
    virtkit::init();
    let opts = match parse_options(std::env::args().skip(1).collect()) {
        Ok(o) => o,
        Err((msg, code)) => {
            if code == 0 {
                print!("{msg}");
            } else {
                eprint!("{msg}");
            }
            return ExitCode::from(code);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ctx = Ctx::new(opts.uri, opts.readonly, opts.quiet);
    let ok = rt.block_on(async {
        match opts.rest.len() {
            0 => run_stdin(&mut ctx).await,
            1 => run_line(&mut ctx, &opts.rest[0]).await,
            _ => match spec::parse(&opts.rest) {
                Ok(call) => run_calls(&mut ctx, &[call]).await,
                Err(e) => {
                    report(&Failure::msg(e));
                    false
                }
            },
        }
    });
    ctx.flush();
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
