//! The graph as text other tools lay out: Graphviz DOT and Mermaid (which GitHub renders in
//! a README).

use super::{EdgeKind, NodeId, Topology, link_lines, space_title};

/// A DOT string literal.
fn dq(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

/// Graphviz DOT: one cluster per namespace.
pub fn dot(t: &Topology) -> String {
    let mut o = String::from("digraph nslab {\n");
    o += &format!("  label={};\n  labelloc=t;\n  rankdir=TB;\n  compound=true;\n", dq(&t.title));
    o += "  fontname=\"Helvetica\";\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\", fontsize=10];\n";
    o += "  edge [fontname=\"Helvetica\", fontsize=9];\n";
    for (si, s) in t.spaces.iter().enumerate() {
        o += &format!("  subgraph cluster_{si} {{\n    label={};\n", dq(&space_title(s)));
        let fill = if s.netns.is_none() { "#eef3fb" } else { "#f4f4f4" };
        o += &format!("    style=\"rounded,filled\";\n    fillcolor=\"{fill}\";\n");
        for (li, l) in s.links.iter().enumerate() {
            let id = NodeId { space: si, link: li };
            let shape = if l.kind == "bridge" { ", shape=box3d" } else { "" };
            o += &format!("    {} [label={}{shape}];\n", id.key(), dq(&link_lines(l).join("\n")));
        }
        if s.links.is_empty() {
            // An empty cluster is not drawn: keep the namespace visible.
            o += &format!("    s{si}_empty [label={}, shape=plaintext];\n", dq("(no links)"));
        }
        o += "  }\n";
    }
    for e in t.edges() {
        let attrs = match e.kind {
            EdgeKind::Veth => "dir=none, penwidth=2, color=\"#555555\"".to_string(),
            EdgeKind::Port => "dir=none, style=dashed, color=\"#888888\"".to_string(),
            EdgeKind::Masquerade => format!(
                "color=\"#c0392b\", fontcolor=\"#c0392b\", label={}, constraint=false",
                dq(e.label.as_deref().unwrap_or(""))
            ),
            EdgeKind::Dnat => format!(
                "color=\"#2471a3\", fontcolor=\"#2471a3\", label={}, constraint=false",
                dq(e.label.as_deref().unwrap_or(""))
            ),
        };
        o += &format!("  {} -> {} [{attrs}];\n", e.from.key(), e.to.key());
    }
    o += "}\n";
    o
}

/// Text inside a Mermaid `["..."]` label.
fn mq(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "#quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('[', "#91;")
        .replace(']', "#93;")
}

/// Mermaid flowchart: a subgraph per namespace.
pub fn mermaid(t: &Topology) -> String {
    let mut o = String::from("flowchart TB\n");
    for (si, s) in t.spaces.iter().enumerate() {
        o += &format!("  subgraph s{si}[\"{}\"]\n", mq(&space_title(s)));
        for (li, l) in s.links.iter().enumerate() {
            let id = NodeId { space: si, link: li };
            let text = link_lines(l).iter().map(|x| mq(x)).collect::<Vec<_>>().join("<br/>");
            let (open, close) = if l.kind == "bridge" { ("[[", "]]") } else { ("[", "]") };
            o += &format!("    {}{open}\"{text}\"{close}\n", id.key());
        }
        if s.links.is_empty() {
            o += &format!("    s{si}_empty[\"(no links)\"]\n");
        }
        o += "  end\n";
    }
    for e in t.edges() {
        let (a, b) = (e.from.key(), e.to.key());
        o += &match e.kind {
            EdgeKind::Veth => format!("  {a} === {b}\n"),
            EdgeKind::Port => format!("  {a} -.- {b}\n"),
            EdgeKind::Masquerade | EdgeKind::Dnat => {
                format!("  {a} -- \"{}\" --> {b}\n", mq(e.label.as_deref().unwrap_or("")))
            }
        };
    }
    o
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn dot_has_a_cluster_per_namespace_and_every_edge() {
        let d = dot(&sample());
        assert!(d.starts_with("digraph nslab {"));
        assert_eq!(d.matches("subgraph cluster_").count(), 3);
        assert!(d.contains("label=\"netns red (lab t)\""));
        assert!(d.contains("n0_1 -> n1_0 [dir=none"), "{d}");
        assert!(d.contains("label=\"MASQUERADE 192.168.24.0/24\""));
        assert!(d.contains(
            "label=\"linux-bridge\\nbridge up [nslab:t]\\n192.168.24.1/24\", shape=box3d"
        ));
    }

    #[test]
    fn mermaid_escapes_what_it_must() {
        let m = mermaid(&sample());
        assert!(m.starts_with("flowchart TB\n"));
        assert!(
            m.contains(
                "n0_0[[\"linux-bridge<br/>bridge up #91;nslab:t#93;<br/>192.168.24.1/24\"]]"
            ),
            "{m}"
        );
        assert!(m.contains("n0_2 -- \"DNAT tcp :8080 → 192.168.24.10:80\" --> n1_0"), "{m}");
        assert!(m.contains("n0_1 === n1_0"));
        assert!(m.contains("n0_1 -.- n0_0"));
    }
}
