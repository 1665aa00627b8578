//! The graph drawn by nslab itself: SVG, and HTML as one self-contained page around it.
//!
//! A layout of our own rather than a general one (layout-rs, Graphviz): a lab has a known
//! shape — a root namespace with bridges, and namespaces hanging off bridge ports — so the
//! namespaces on one bridge are laid out in rows under it and joined by a bus. That keeps
//! lab(200) readable (a general layered layout draws 200 crossing edges) and costs
//! microseconds per node.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

use super::{EdgeKind, NodeId, Topology, link_lines, space_title};

const MARGIN: f64 = 20.0;
const NODE_W: f64 = 200.0;
const LINE_H: f64 = 14.0;
const NODE_PAD: f64 = 6.0;
const GAP: f64 = 8.0;
const TITLE_H: f64 = 22.0;
const SPACE_PAD: f64 = 10.0;
const COL_GAP: f64 = 24.0;
const ROW_GAP: f64 = 56.0;

#[derive(Debug, Clone, Copy, Default)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn cx(&self) -> f64 {
        self.x + self.w / 2.0
    }
    fn cy(&self) -> f64 {
        self.y + self.h / 2.0
    }
    fn bottom(&self) -> f64 {
        self.y + self.h
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// What is where.
struct Layout {
    spaces: Vec<Option<Rect>>,
    nodes: HashMap<NodeId, Rect>,
    /// Extra text lines of a node (the port on the bridge a grouped namespace hangs off).
    extra: HashMap<NodeId, String>,
    /// bridge node -> (spaces in rows, the rows' y)
    groups: Vec<(NodeId, Vec<Vec<usize>>)>,
    hidden: HashSet<NodeId>,
    width: f64,
    height: f64,
}

fn node_h(lines: usize) -> f64 {
    lines as f64 * LINE_H + 2.0 * NODE_PAD
}

/// Lays out the nodes of one space in `cols` columns from (x, y); returns the box.
fn place_space(t: &Topology, si: usize, x: f64, y: f64, cols: usize, l: &mut Layout) -> Rect {
    let shown: Vec<usize> = (0..t.spaces[si].links.len())
        .filter(|li| !l.hidden.contains(&NodeId { space: si, link: *li }))
        .collect();
    let cols = cols.max(1).min(shown.len().max(1));
    let mut col_y = vec![y + TITLE_H; cols];
    for (k, li) in shown.iter().enumerate() {
        let id = NodeId { space: si, link: *li };
        let lines =
            link_lines(&t.spaces[si].links[*li]).len() + usize::from(l.extra.contains_key(&id));
        let c = k % cols;
        let r = Rect {
            x: x + SPACE_PAD + c as f64 * (NODE_W + GAP),
            y: col_y[c],
            w: NODE_W,
            h: node_h(lines),
        };
        col_y[c] += r.h + GAP;
        l.nodes.insert(id, r);
    }
    let w = cols as f64 * (NODE_W + GAP) - GAP + 2.0 * SPACE_PAD;
    let bottom = col_y.iter().cloned().fold(y + TITLE_H + 16.0, f64::max);
    Rect { x, y, w, h: bottom - y - GAP + SPACE_PAD }
}

fn layout(t: &Topology, edges: &[super::Edge]) -> Layout {
    let mut l = Layout {
        spaces: vec![None; t.spaces.len()],
        nodes: HashMap::new(),
        extra: HashMap::new(),
        groups: Vec::new(),
        hidden: HashSet::new(),
        width: 0.0,
        height: 0.0,
    };
    // Which bridge each port belongs to, and which spaces hang off one bridge only.
    let port_of: HashMap<NodeId, NodeId> =
        edges.iter().filter(|e| e.kind == EdgeKind::Port).map(|e| (e.from, e.to)).collect();
    let mut hangs: BTreeMap<usize, Option<NodeId>> = BTreeMap::new();
    let mut via: Vec<(usize, NodeId, NodeId)> = Vec::new();
    for e in edges.iter().filter(|e| e.kind == EdgeKind::Veth) {
        for (a, b) in [(e.from, e.to), (e.to, e.from)] {
            if a.space == b.space {
                continue;
            }
            // `b`'s space reaches the rest through a; grouped only if a is a bridge port.
            let entry = hangs.entry(b.space).or_insert(port_of.get(&a).copied());
            if *entry != port_of.get(&a).copied() {
                *entry = None;
            }
            via.push((b.space, a, b));
        }
    }
    let root = t.spaces.iter().position(|s| s.netns.is_none());
    let mut members: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    for (space, bridge) in &hangs {
        if let Some(b) = bridge
            && Some(*space) != root
            && b.space != *space
        {
            members.entry(*b).or_default().push(*space);
        }
    }
    let grouped: HashSet<usize> = members.values().flatten().copied().collect();
    for (space, port, inner) in &via {
        if grouped.contains(space) && port_of.contains_key(port) {
            l.hidden.insert(*port);
            let bridge = t.link(port_of[port]).name.clone();
            l.extra.insert(*inner, format!("↔ {} @ {bridge}", t.link(*port).name));
        }
    }

    // Room above the first row for a NAT arc between side-by-side links.
    let mut y = MARGIN + 48.0;
    let mut width: f64 = 0.0;
    // Row 0: namespaces that are not grouped under a bridge (routers, the internet).
    let side: Vec<usize> =
        (0..t.spaces.len()).filter(|s| Some(*s) != root && !grouped.contains(s)).collect();
    let mut x = MARGIN;
    let mut row_h: f64 = 0.0;
    for s in side {
        let r = place_space(t, s, x, y, 1, &mut l);
        x += r.w + COL_GAP;
        row_h = row_h.max(r.h);
        l.spaces[s] = Some(r);
    }
    if row_h > 0.0 {
        width = width.max(x);
        y += row_h + ROW_GAP;
    }
    // Row 1: the root namespace.
    if let Some(h) = root {
        let n = t.spaces[h].links.len();
        let cols = ((n as f64).sqrt().ceil() as usize).clamp(1, 6);
        let r = place_space(t, h, MARGIN, y, cols, &mut l);
        width = width.max(r.x + r.w);
        y = r.bottom() + ROW_GAP;
        l.spaces[h] = Some(r);
    }
    // Then each bridge's namespaces, in rows.
    for (bridge, spaces) in members {
        let n = spaces.len();
        let cols = ((n as f64 * 1.5).sqrt().ceil() as usize).clamp(1, 12);
        let mut rows = Vec::new();
        for chunk in spaces.chunks(cols) {
            let mut x = MARGIN + 16.0;
            let mut row_h: f64 = 0.0;
            for s in chunk {
                let r = place_space(t, *s, x, y, 1, &mut l);
                x += r.w + COL_GAP;
                row_h = row_h.max(r.h);
                l.spaces[*s] = Some(r);
            }
            width = width.max(x);
            rows.push(chunk.to_vec());
            y += row_h + 40.0;
        }
        y += ROW_GAP - 40.0;
        l.groups.push((bridge, rows));
    }
    l.width = width + MARGIN;
    l.height = y + MARGIN - ROW_GAP + 20.0;
    l
}

/// A self-contained SVG of the topology.
pub fn svg(t: &Topology) -> String {
    let edges = t.edges();
    let l = layout(t, &edges);
    let mut o = String::new();
    let _ = writeln!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="Helvetica, Arial, sans-serif" font-size="11">"##,
        w = l.width.max(300.0),
        h = l.height.max(120.0)
    );
    o += r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>
<style>.space{fill:#f4f4f4;stroke:#999;rx:8}.root{fill:#eef3fb;stroke:#7a9cc6}.node{fill:#fff;stroke:#666;rx:4}.bridge{fill:#fdf5e1;stroke:#b58a1b;stroke-width:1.5}.down{fill:#f3f3f3;stroke-dasharray:3 2}.title{font-weight:bold;font-size:12px}.name{font-weight:bold}.veth{stroke:#555;stroke-width:2;fill:none}.port{stroke:#999;stroke-dasharray:4 3;fill:none}.bus{stroke:#b58a1b;stroke-width:2;fill:none}.masq{stroke:#c0392b;fill:none;stroke-width:1.5}.dnat{stroke:#2471a3;fill:none;stroke-width:1.5}.lbl{paint-order:stroke;stroke:#fff;stroke-width:3px}</style>
"##;
    let _ = writeln!(
        o,
        r#"<text x="{MARGIN}" y="{}" class="title">{}</text>"#,
        MARGIN + 6.0,
        esc(&t.title)
    );
    for (si, s) in t.spaces.iter().enumerate() {
        let Some(r) = l.spaces[si] else { continue };
        let class = if s.netns.is_none() { "space root" } else { "space" };
        let _ = writeln!(
            o,
            r#"<g class="ns" data-name="{n}"><rect class="{class}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/><text class="title" x="{:.1}" y="{:.1}">{n}</text></g>"#,
            r.x,
            r.y,
            r.w,
            r.h,
            r.x + SPACE_PAD,
            r.y + 15.0,
            n = esc(&space_title(s))
        );
    }
    // Bridge buses under their bridge.
    for (bridge, rows) in &l.groups {
        let Some(b) = l.nodes.get(bridge) else { continue };
        let trunk = MARGIN + 6.0;
        let mut last = b.bottom();
        let _ = write!(o, r#"<path class="bus" d="M{:.1},{:.1}"#, b.cx(), b.bottom());
        for row in rows {
            let boxes: Vec<Rect> = row.iter().filter_map(|s| l.spaces[*s]).collect();
            let Some(first) = boxes.first() else { continue };
            let yb = first.y - 12.0;
            if last == b.bottom() {
                let _ = write!(o, " V{yb:.1} H{trunk:.1}");
            } else {
                let _ = write!(o, " M{trunk:.1},{last:.1} V{yb:.1}");
            }
            let right = boxes.iter().map(|r| r.cx()).fold(trunk, f64::max);
            let _ = write!(o, " M{trunk:.1},{yb:.1} H{right:.1}");
            for r in &boxes {
                let _ = write!(o, " M{:.1},{yb:.1} V{:.1}", r.cx(), r.y);
            }
            last = yb;
        }
        o += "\"/>\n";
    }
    for e in &edges {
        let (Some(a), Some(b)) = (l.nodes.get(&e.from), l.nodes.get(&e.to)) else { continue };
        match e.kind {
            EdgeKind::Veth | EdgeKind::Port => {
                let class = if e.kind == EdgeKind::Veth { "veth" } else { "port" };
                let (p, q) = ends(a, b);
                let _ = writeln!(
                    o,
                    r#"<path class="{class}" d="M{:.1},{:.1} L{:.1},{:.1}"/>"#,
                    p.0, p.1, q.0, q.1
                );
            }
            EdgeKind::Masquerade | EdgeKind::Dnat => {
                let class = if e.kind == EdgeKind::Masquerade { "masq" } else { "dnat" };
                let color = if e.kind == EdgeKind::Masquerade { "#c0392b" } else { "#2471a3" };
                let same_row = a.bottom() > b.y && b.bottom() > a.y;
                let (p, q, c, t) = if same_row {
                    // Side by side: an arc over both boxes, its label at the top.
                    let (p, q) = ((a.cx(), a.y), (b.cx(), b.y));
                    (p, q, ((p.0 + q.0) / 2.0, a.y.min(b.y) - 44.0), 0.5)
                } else {
                    // Bend to one side so the arrow does not hide a veth on the same line;
                    // the label near the start, clear of the bus below.
                    let (p, q) = ends(a, b);
                    let bend = if e.kind == EdgeKind::Masquerade { 60.0 } else { -60.0 };
                    (p, q, ((p.0 + q.0) / 2.0 + bend, (p.1 + q.1) / 2.0), 0.3)
                };
                let at = |i: usize| {
                    let (p, c, q) = [(p.0, c.0, q.0), (p.1, c.1, q.1)][i];
                    (1.0 - t) * (1.0 - t) * p + 2.0 * (1.0 - t) * t * c + t * t * q
                };
                let _ = writeln!(
                    o,
                    r#"<path class="{class}" marker-end="url(#arrow)" d="M{:.1},{:.1} Q{:.1},{:.1} {:.1},{:.1}"/><text class="lbl" fill="{color}" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    p.0,
                    p.1,
                    c.0,
                    c.1,
                    q.0,
                    q.1,
                    at(0),
                    at(1) + 4.0,
                    esc(e.label.as_deref().unwrap_or(""))
                );
            }
        }
    }
    for (si, s) in t.spaces.iter().enumerate() {
        for (li, link) in s.links.iter().enumerate() {
            let id = NodeId { space: si, link: li };
            let Some(r) = l.nodes.get(&id) else { continue };
            let mut class = String::from("node");
            if link.kind == "bridge" {
                class += " bridge";
            }
            if !link.up {
                class += " down";
            }
            let _ = write!(
                o,
                r#"<g class="link" data-name="{n}"><rect class="{class}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/>"#,
                r.x,
                r.y,
                r.w,
                r.h,
                n = esc(&link.name)
            );
            let mut lines = link_lines(link);
            if let Some(x) = l.extra.get(&id) {
                lines.insert(2, x.clone());
            }
            for (k, line) in lines.iter().enumerate() {
                let class = if k == 0 { r#" class="name""# } else { "" };
                let _ = write!(
                    o,
                    r#"<text{class} x="{:.1}" y="{:.1}">{}</text>"#,
                    r.x + NODE_PAD,
                    r.y + NODE_PAD + 11.0 + k as f64 * LINE_H,
                    esc(line)
                );
            }
            o += "</g>\n";
        }
    }
    o += "</svg>\n";
    o
}

/// Where a line between two boxes starts and ends: bottom to top when one is above the
/// other, else side to side.
fn ends(a: &Rect, b: &Rect) -> ((f64, f64), (f64, f64)) {
    if a.bottom() <= b.y {
        ((a.cx(), a.bottom()), (b.cx(), b.y))
    } else if b.bottom() <= a.y {
        ((a.cx(), a.y), (b.cx(), b.bottom()))
    } else if a.x < b.x {
        ((a.x + a.w, a.cy()), (b.x, b.cy()))
    } else {
        ((a.x, a.cy()), (b.x + b.w, b.cy()))
    }
}

/// One HTML file that opens in any browser: the SVG inline, a legend, no external resource.
pub fn html(t: &Topology) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nslab: {title}</title>
<style>body{{font-family:Helvetica,Arial,sans-serif;margin:16px;color:#222}}h1{{font-size:18px}}
.legend span{{margin-right:18px}}.legend i{{display:inline-block;width:28px;height:0;vertical-align:middle;margin-right:6px;border-top:2px solid #555}}
.wrap{{overflow:auto;border:1px solid #ddd;padding:4px}}</style></head>
<body><h1>nslab: {title}</h1>
<p class="legend"><span><i></i>veth pair</span><span><i style="border-top:2px dashed #999"></i>bridge port</span><span><i style="border-top:2px solid #b58a1b"></i>bridge and the namespaces on it</span><span><i style="border-top:2px solid #c0392b"></i>masquerade / SNAT</span><span><i style="border-top:2px solid #2471a3"></i>DNAT (port forward)</span></p>
<div class="wrap">
{svg}</div>
</body></html>
"#,
        title = esc(&t.title),
        svg = svg(t)
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn svg_names_everything_and_groups_hosts_under_their_bridge() {
        let s = svg(&sample());
        for name in
            ["netns red (lab t)", "netns internet", "linux-bridge", "veth-red", "uplink", "eth0"]
        {
            assert!(s.contains(name), "{name} missing");
        }
        // red hangs off the bridge: its port is a line in red's box, not a node of the host.
        assert!(s.contains("↔ veth-red-br @ linux-bridge"), "{s}");
        assert!(!s.contains(r#"data-name="veth-red-br""#));
        assert!(s.contains(r#"class="bus""#));
        assert!(
            s.contains("MASQUERADE 192.168.24.0/24")
                && s.contains("DNAT tcp :8080 → 192.168.24.10:80")
        );
    }

    #[test]
    fn a_big_lab_is_laid_out_in_rows() {
        let mut t = sample();
        let host = t.spaces[0].clone();
        let mut spaces = vec![host];
        spaces[0].links.truncate(1);
        for i in 0..200 {
            let port = super::super::Link {
                name: format!("h{i}-br"),
                kind: "veth".into(),
                up: true,
                master: Some("linux-bridge".into()),
                peer: Some((Some(format!("h{i}")), "eth0".into())),
                ..Default::default()
            };
            spaces[0].links.push(port);
            spaces.push(super::super::Space {
                name: format!("h{i}"),
                netns: Some(format!("h{i}")),
                links: vec![super::super::Link {
                    name: "eth0".into(),
                    kind: "veth".into(),
                    up: true,
                    peer: Some((None, format!("h{i}-br"))),
                    addrs: vec![format!("10.0.{}.{}/16", i / 250, i % 250 + 2)],
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        t.spaces = spaces;
        let s = svg(&t);
        let w: f64 =
            s.split("width=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        let h: f64 =
            s.split("height=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!(w < 3500.0 && h < 3500.0, "{w} x {h}");
        assert_eq!(s.matches(r#"<g class="ns""#).count(), 201);
    }
}
