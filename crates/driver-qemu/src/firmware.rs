//! Firmware auto-selection (`<os firmware='efi'|'bios'>`) from QEMU's
//! firmware descriptors (the JSON files of QEMU's `firmware.json` schema that
//! distributions install with OVMF, SeaBIOS, ...).
//!
//! Descriptors are read from, in falling precedence, the user's
//! `$XDG_CONFIG_HOME/qemu/firmware` (unprivileged drivers only),
//! `/etc/qemu/firmware` and `/usr/share/qemu/firmware`. A file name found in
//! a more important directory hides the same name further down, and an empty
//! file hides it without replacing it. The candidates are then taken in file
//! name order; the first that fits the domain wins:
//!
//! - its interface is the one asked for (`efi` → `uefi`, `bios` → `bios`);
//! - one of its targets names the guest architecture and a machine pattern
//!   (`pc-q35-*`) matching the domain's canonical machine type;
//! - a given `<loader type>` wants its device (`pflash` → flash, `rom` →
//!   memory); `<loader stateless='yes'>` wants a stateless flash image, and a
//!   flash image with a variable store wants the split layout;
//!   `<loader secure='yes'|'no'>` wants SMM required or not;
//! - each `<firmware><feature name enabled>` (`secure-boot`,
//!   `enrolled-keys`) is present or absent as asked; a descriptor that needs
//!   SMM is passed over when `<smm state='off'/>` is set.
//!
//! The chosen image is written into the running copy of the definition as
//! `<loader>` (and `<nvram>` from its template, at `NVRAM_DIR/NAME_VARS.fd`
//! unless the domain names its own), with `<smm state='on'/>` and a secure
//! loader for images that require SMM; the persistent definition keeps
//! `firmware='efi'`. The process creates the variable store from its
//! template at start when it does not exist yet.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use virtkit_core::xml::Element;
use virtkit_core::{Error, ErrorKind, Result};

/// Where descriptors are looked up, most important first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareDirs(pub Vec<PathBuf>);

impl FirmwareDirs {
    /// The host's directories; with `user_config`, the user's own first.
    pub fn host(user_config: Option<&Path>) -> FirmwareDirs {
        let mut dirs = Vec::new();
        if let Some(u) = user_config {
            dirs.push(u.join("qemu/firmware"));
        }
        dirs.push("/etc/qemu/firmware".into());
        dirs.push("/usr/share/qemu/firmware".into());
        FirmwareDirs(dirs)
    }

    /// The same layout below `root` (`root/etc/qemu/firmware`, ...), for
    /// tests and private trees.
    pub fn under(root: &Path) -> FirmwareDirs {
        FirmwareDirs(vec![
            root.join("etc/qemu/firmware"),
            root.join("usr/share/qemu/firmware"),
        ])
    }
}

#[derive(Debug, Clone, Deserialize)]
struct RawFile {
    filename: String,
}

#[derive(Debug, Clone, Deserialize)]
struct RawMapping {
    device: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    executable: Option<RawFile>,
    #[serde(rename = "nvram-template", default)]
    nvram_template: Option<RawFile>,
    /// `memory` devices name their image directly.
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawTarget {
    architecture: String,
    #[serde(default)]
    machines: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawDescriptor {
    #[serde(rename = "interface-types")]
    interface_types: Vec<String>,
    mapping: RawMapping,
    targets: Vec<RawTarget>,
    #[serde(default)]
    features: Vec<String>,
}

/// One usable firmware descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// The file it came from.
    pub path: PathBuf,
    /// `uefi`, `bios`, ...
    pub interfaces: Vec<String>,
    /// `flash` or `memory`.
    pub device: String,
    /// Flash layout: `split` (default), `combined` or `stateless`.
    pub mode: String,
    /// The firmware image.
    pub executable: String,
    /// Template of the variable store (split flash).
    pub nvram_template: Option<String>,
    /// (architecture, machine patterns).
    pub targets: Vec<(String, Vec<String>)>,
    /// `secure-boot`, `enrolled-keys`, `requires-smm`, ...
    pub features: Vec<String>,
}

impl Descriptor {
    fn has(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }
}

/// The descriptors in `dirs`, in the order they are considered. Files that
/// cannot be read or parsed are skipped with a warning (as QEMU's
/// specification asks of consumers); empty files only hide others.
pub fn load(dirs: &FirmwareDirs) -> Vec<Descriptor> {
    let mut by_name: std::collections::BTreeMap<String, PathBuf> = Default::default();
    // Least important first, so that more important ones replace them.
    for dir in dirs.0.iter().rev() {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                by_name.insert(name, e.path());
            }
        }
    }
    let mut out = Vec::new();
    for path in by_name.into_values() {
        let text = match virtkit_core::files::read_limited(&path, 1 << 20) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable firmware descriptor");
                continue;
            }
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let raw: RawDescriptor = match serde_json::from_slice(&text) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "invalid firmware descriptor");
                continue;
            }
        };
        let executable = match (&raw.mapping.executable, &raw.mapping.filename) {
            (Some(f), _) => f.filename.clone(),
            (None, Some(f)) => f.clone(),
            (None, None) => continue,
        };
        out.push(Descriptor {
            path,
            interfaces: raw.interface_types,
            device: raw.mapping.device,
            mode: raw.mapping.mode.unwrap_or_else(|| "split".into()),
            executable,
            nvram_template: raw.mapping.nvram_template.map(|f| f.filename),
            targets: raw
                .targets
                .into_iter()
                .map(|t| (t.architecture, t.machines))
                .collect(),
            features: raw.features,
        });
    }
    out
}

/// Shell-style pattern match with `*` and `?` (what descriptors use for
/// machine types).
fn glob(pattern: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), s.as_bytes())
}

fn yes_no(v: Option<std::borrow::Cow<'_, str>>) -> Option<bool> {
    match v.as_deref() {
        Some("yes") | Some("on") => Some(true),
        Some("no") | Some("off") => Some(false),
        _ => None,
    }
}

/// Fills in the firmware of a domain that asks for auto-selection (see the
/// module documentation). `machine` is the canonical machine type (after
/// alias resolution); `nvram_dir` holds variable stores. A domain without
/// `<os firmware>` is left alone.
pub fn fill(
    domain: &mut Element,
    descriptors: &[Descriptor],
    machine: &str,
    nvram_dir: &Path,
) -> Result<()> {
    let name = domain
        .child("name")
        .map(|n| n.text().trim().to_string())
        .unwrap_or_default();
    let smm_off = domain
        .child("features")
        .and_then(|f| f.child("smm"))
        .is_some_and(|s| s.attr("state").as_deref() == Some("off"));
    let Some(os) = domain.child("os") else {
        return Ok(());
    };
    let Some(kind) = os.attr("firmware").map(|f| f.into_owned()) else {
        return Ok(());
    };
    let interface = match kind.as_str() {
        "efi" => "uefi",
        "bios" => "bios",
        other => {
            return Err(Error::new(
                ErrorKind::XmlError,
                format!("unknown firmware '{other}' (/domain/os/@firmware): use 'efi' or 'bios'"),
            ));
        }
    };
    let arch = os
        .child("type")
        .and_then(|t| t.attr("arch"))
        .map(|a| a.into_owned())
        .unwrap_or_else(|| "x86_64".into());
    let loader = os.child("loader");
    if loader.is_some_and(|l| !l.text().trim().is_empty()) {
        // Firmware given by path: nothing to select.
        return Ok(());
    }
    let want_device = loader
        .and_then(|l| l.attr("type"))
        .map(|t| if t == "rom" { "memory" } else { "flash" });
    let stateless = loader.and_then(|l| yes_no(l.attr("stateless"))) == Some(true);
    let secure = loader.and_then(|l| yes_no(l.attr("secure")));
    let user_nvram = os
        .child("nvram")
        .map(|n| n.text().trim().to_string())
        .filter(|t| !t.is_empty());
    let wanted: Vec<(String, bool)> = os
        .child("firmware")
        .map(|f| {
            f.children_named("feature")
                .filter_map(|x| Some((x.attr("name")?.into_owned(), yes_no(x.attr("enabled"))?)))
                .collect()
        })
        .unwrap_or_default();

    let fits = |d: &&Descriptor| {
        d.interfaces.iter().any(|i| i == interface)
            && d.targets
                .iter()
                .any(|(a, ms)| *a == arch && ms.iter().any(|m| glob(m, machine)))
            && want_device.is_none_or(|w| d.device == w)
            && (d.device != "flash"
                || if stateless {
                    d.mode == "stateless"
                } else {
                    d.mode == "split" && d.nvram_template.is_some()
                })
            && secure.is_none_or(|s| s == d.has("requires-smm"))
            && !(smm_off && d.has("requires-smm"))
            && wanted.iter().all(|(f, on)| d.has(f) == *on)
    };
    let Some(d) = descriptors.iter().find(fits) else {
        let feats: Vec<String> = wanted
            .iter()
            .map(|(f, on)| format!("{f}={}", if *on { "yes" } else { "no" }))
            .collect();
        return Err(Error::new(
            ErrorKind::ConfigUnsupported,
            format!(
                "operation failed: unable to find any {kind} firmware for {arch} machine '{machine}'{}{} \
                 (/domain/os/@firmware); install one (Debian: ovmf for efi) or name the image in <loader>",
                if feats.is_empty() { "" } else { " with " },
                feats.join(", "),
            ),
        ));
    };
    let d = d.clone();

    let needs_smm = d.has("requires-smm");
    let os = domain.child_mut("os").expect("checked above");
    let mut loader = match os.child_mut("loader") {
        Some(l) => l.clone(),
        None => Element::new("loader"),
    };
    loader.set_attr("readonly", "yes");
    if d.device == "flash" {
        loader.set_attr("type", "pflash");
        if needs_smm {
            loader.set_attr("secure", "yes");
        }
    } else {
        loader.set_attr("type", "rom");
    }
    loader.set_text(&d.executable);
    match os.child_mut("loader") {
        Some(l) => *l = loader,
        None => os.append_element(loader),
    }
    if d.device == "flash" && !stateless {
        let path = user_nvram.unwrap_or_else(|| {
            nvram_dir
                .join(format!("{name}_VARS.fd"))
                .to_string_lossy()
                .into_owned()
        });
        let mut nv = Element::new("nvram");
        if let Some(t) = &d.nvram_template {
            nv.set_attr("template", t);
        }
        nv.set_text(&path);
        match os.child_mut("nvram") {
            Some(n) => *n = nv,
            None => os.append_element(nv),
        }
    }
    if needs_smm {
        let features = match domain.child_mut("features") {
            Some(f) => f,
            None => {
                domain.append_element(Element::new("features"));
                domain.child_mut("features").expect("just inserted")
            }
        };
        if features.child("smm").is_none() {
            let mut smm = Element::new("smm");
            smm.set_attr("state", "on");
            features.append_element(smm);
        }
    }
    Ok(())
}

/// Creates a variable store from its template when the file does not exist
/// yet (private to its owner), as the guest's first start needs.
pub fn prepare_nvram(domain: &Element) -> Result<()> {
    let Some(nv) = domain.child("os").and_then(|o| o.child("nvram")) else {
        return Ok(());
    };
    let path = PathBuf::from(nv.text().trim());
    let Some(template) = nv.attr("template") else {
        return Ok(());
    };
    if path.as_os_str().is_empty() || path.exists() {
        return Ok(());
    }
    let bytes = std::fs::read(template.as_ref()).map_err(|e| {
        Error::system(
            format_args!("cannot read the NVRAM template {template}"),
            &e,
        )
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::system(format_args!("cannot create {}", dir.display()), &e))?;
    }
    virtkit_core::files::write_atomic(&path, &bytes)
        .map_err(|e| Error::system(format_args!("cannot write {}", path.display()), &e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::system(format_args!("cannot protect {}", path.display()), &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("pc-q35-*", "pc-q35-4.0"));
        assert!(glob("pc-i440fx-*", "pc-i440fx-10.0"));
        assert!(!glob("pc-q35-*", "pc-i440fx-4.0"));
        assert!(glob("virt-?.?", "virt-8.2"));
        assert!(glob("*", ""));
        assert!(!glob("a", ""));
    }
}
