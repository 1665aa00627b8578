//! `nslab graph [LAB] [--format mermaid|dot|svg|html] [-o FILE]`: the live topology as a
//! picture. Reads what `nslab show` reads (the kernel, limited to LAB's objects when given)
//! and draws it with `crate::graph` — no Graphviz needed for SVG and HTML.

use std::path::{Path, PathBuf};

use super::show::{State, collect};
use super::{Failed, fail};
use crate::graph::{Link, Nat, Space, Topology, svg, text};
use crate::lab::journal;
use crate::lab::teardown::Owned;
use crate::net::{Kernel, NetError, NetResult};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Draw only what this lab owns (see `nslab ls`)
    lab: Option<String>,
    /// Output format (default: from the -o file's extension, else mermaid)
    #[arg(long, short = 'f', value_parser = FORMATS)]
    format: Option<String>,
    /// Write to FILE instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

pub const FORMATS: [&str; 4] = ["mermaid", "dot", "svg", "html"];

pub fn run(a: Args) -> Result<(), Failed> {
    let format = pick_format(a.format.as_deref(), a.output.as_deref());
    let topo = topology(a.lab.as_deref()).map_err(fail)?;
    write(&render(&topo, &format), a.output.as_deref()).map_err(fail)
}

/// The format asked for, else the one the file's extension names, else mermaid.
pub fn pick_format(asked: Option<&str>, out: Option<&Path>) -> String {
    if let Some(f) = asked {
        return f.to_string();
    }
    let ext = out.and_then(|p| p.extension()).and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "svg" => "svg",
        "html" | "htm" => "html",
        "dot" | "gv" => "dot",
        _ => "mermaid",
    }
    .to_string()
}

/// The live topology: all namespaces, or what `lab` owns plus the uplinks its NAT rules
/// leave by (not the lab's, but where its arrows point).
pub fn topology(lab: Option<&str>) -> NetResult<Topology> {
    let kernel = Kernel::new(None)?;
    let mut t = from_state(&gather(&kernel, lab)?);
    for s in t.spaces.iter_mut().filter(|s| !s.nat.is_empty() && s.uplink.is_none()) {
        let ns = s.netns.as_deref();
        let Some(dev) = kernel
            .routes(ns, Some(254))?
            .into_iter()
            .find(|r| r.dest == "default")
            .and_then(|r| r.dev)
        else {
            continue;
        };
        if let Some(l) = kernel.links(ns)?.into_iter().find(|l| l.name == dev) {
            let addrs = kernel.addrs(ns)?;
            s.links.push(Link {
                name: l.name.clone(),
                kind: l.kind.clone(),
                up: l.state == "up",
                master: None,
                peer: None,
                addrs: addrs
                    .iter()
                    .filter(|a| a.dev == dev && !(a.family == "inet6" && a.scope == "link"))
                    .map(|a| a.cidr.clone())
                    .collect(),
                owner: l
                    .alias
                    .as_deref()
                    .and_then(|a| a.strip_prefix("nslab:"))
                    .map(str::to_string),
            });
        }
        s.uplink = Some(dev);
    }
    t.ensure_uplinks();
    Ok(t)
}

/// What `nslab show [LAB]` reads.
fn gather(kernel: &Kernel, lab: Option<&str>) -> NetResult<State> {
    let filter = match lab {
        Some(l) => {
            journal::check_lab_name(l)?;
            Some((l.to_string(), Owned::from_ops(&journal::read(l)?)))
        }
        None => None,
    };
    collect(kernel, filter.as_ref().map(|(l, o)| (l.as_str(), o)))
}

pub fn render(t: &Topology, format: &str) -> String {
    match format {
        "dot" => text::dot(t),
        "svg" => svg::svg(t),
        "html" => svg::html(t),
        _ => text::mermaid(t),
    }
}

pub fn write(s: &str, out: Option<&Path>) -> NetResult<()> {
    match out {
        Some(p) => std::fs::write(p, s).map_err(|e| {
            NetError::new(format!("cannot write {}: {e}", p.display()))
                .with_help("name a file in a directory you can write to")
        }),
        None => {
            super::doc::emit(s);
            Ok(())
        }
    }
}

/// The graph model of what `nslab show` gathered: loopbacks and link-local IPv6 addresses
/// left out (every namespace has them; they would only crowd the picture).
pub fn from_state(s: &State) -> Topology {
    let title = match &s.lab {
        Some(l) => format!("lab {l}"),
        None => "all namespaces".to_string(),
    };
    let spaces = s
        .namespaces
        .iter()
        .map(|ns| Space {
            name: ns.name.clone(),
            netns: ns.netns.clone(),
            lab: ns.lab.clone(),
            links: ns
                .links
                .iter()
                .filter(|l| l.info.kind != "loopback" && l.info.name != "lo")
                .map(|l| Link {
                    name: l.info.name.clone(),
                    kind: l.info.kind.clone(),
                    up: l.info.state == "up",
                    master: l.info.master.clone(),
                    peer: l.peer.as_ref().map(|p| (p.netns.clone(), p.name.clone())),
                    addrs: l
                        .addrs
                        .iter()
                        .filter(|a| !(a.family == "inet6" && a.scope == "link"))
                        .map(|a| a.cidr.clone())
                        .collect(),
                    owner: l.owner.clone(),
                })
                .collect(),
            uplink: ns.routes.iter().find(|r| r.dest == "default").and_then(|r| r.dev.clone()),
            nat: ns.nat.iter().flatten().filter_map(|l| Nat::parse(l)).collect(),
        })
        .collect();
    Topology { title, spaces }
}
