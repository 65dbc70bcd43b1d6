//! `xml-format`: libvirt's canonical form of an XML file, or the file as
//! virtkit stores it, with a positioned error for invalid input.

use virtkit::domain::{DomainDef, FormatOptions, GenericProfile};
use virtkit::network::{FormatOptions as NetworkFormat, NetworkDef};

use super::spec::Call;
use super::{CmdResult, Ctx, Failure};

pub fn xml_format(ctx: &mut Ctx, call: &Call) -> CmdResult {
    let file = call.req("file");
    let kind = call.value("kind").unwrap_or("domain");
    let bytes = super::read_file(file)?;
    match kind {
        "domain" => {
            let def = DomainDef::parse_named(&bytes, file)?;
            let out = if call.flag("as-defined") {
                def.to_xml_as_defined()
            } else {
                def.to_xml_canonical(&GenericProfile, &FormatOptions::default())
            };
            ctx.print(&out);
        }
        "network" => {
            let def = NetworkDef::parse_named(&bytes, file)?;
            let out = if call.flag("as-defined") {
                def.to_xml_as_defined()
            } else {
                def.to_xml_canonical(&NetworkFormat {
                    inactive: call.flag("inactive"),
                })
            };
            ctx.print(&out);
        }
        other => {
            return Err(Failure::msg(format!(
                "unknown kind '{other}' (expected 'domain' or 'network')"
            )));
        }
    }
    Ok(())
}
