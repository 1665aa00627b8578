//! Printing a value the way a person reads it: an array of maps (`link::list()`,
//! `addr::list("red")`, `bridge::fdb(..)`) as an aligned table, a map as aligned
//! `key  value` lines, multi-line strings (command output) as they are.

use rhai::{Array, Dynamic, Map};

/// Column order for the maps nslab returns (LinkInfo, AddrInfo, RouteInfo, NeighInfo,
/// FdbEntry, probe results): the order a person scans them in. Other keys follow, sorted.
const ORDER: &[&str] = &[
    "ok", "name", "dest", "via", "ns", "dev", "ip", "cidr", "index", "kind", "state", "oper",
    "mac", "port", "mtu", "master", "family", "scope", "proto", "seen", "local", "ageing", "sent",
    "received", "rtt_ms", "status", "stdout", "stderr", "error",
];

pub struct Style {
    pub color: bool,
}

impl Style {
    fn bold(&self, s: &str) -> String {
        if self.color { format!("\x1b[1m{s}\x1b[0m") } else { s.to_string() }
    }
}

/// The value as text, without a trailing newline; "" for `()`.
pub fn render(v: &Dynamic, style: &Style) -> String {
    if v.is_unit() {
        return String::new();
    }
    if let Some(s) = string(v) {
        return if s.contains('\n') {
            s.trim_end_matches('\n').to_string()
        } else {
            format!("{s:?}")
        };
    }
    if let Some(a) = v.read_lock::<Array>() {
        return array(&a, style);
    }
    if let Some(m) = v.read_lock::<Map>() {
        return map(&m, style);
    }
    scalar(v)
}

fn string(v: &Dynamic) -> Option<String> {
    v.is_string().then(|| v.clone().into_string().unwrap_or_default())
}

fn is_map(v: &Dynamic) -> bool {
    v.is_map()
}

fn scalar(v: &Dynamic) -> String {
    if v.is_float() {
        let f = v.as_float().unwrap_or_default();
        let s = format!("{f:.3}");
        let s = s.trim_end_matches('0');
        return if s.ends_with('.') { format!("{s}0") } else { s.to_string() };
    }
    // A closure's name is an internal hash (`Fn(anon$71548d605ba64e1b)`).
    if let Some(f) = v.read_lock::<rhai::FnPtr>() {
        return if f.fn_name().starts_with("anon$") {
            "<closure>".into()
        } else {
            format!("<fn {}>", f.fn_name())
        };
    }
    v.to_string()
}

/// A value inside a table cell or a one-line list: strings bare in cells.
fn cell(v: &Dynamic) -> String {
    if v.is_unit() {
        return "-".into();
    }
    if let Some(s) = string(v) {
        return s.replace('\n', "⏎");
    }
    if let Some(a) = v.read_lock::<Array>() {
        return a.iter().map(cell).collect::<Vec<_>>().join(",");
    }
    if let Some(m) = v.read_lock::<Map>() {
        let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}: {}", inline(v))).collect();
        return format!("#{{{}}}", parts.join(", "));
    }
    scalar(v)
}

/// A value on one line, strings quoted.
fn inline(v: &Dynamic) -> String {
    if let Some(s) = string(v) {
        return format!("{s:?}");
    }
    if let Some(a) = v.read_lock::<Array>() {
        return format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", "));
    }
    if let Some(m) = v.read_lock::<Map>() {
        let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}: {}", inline(v))).collect();
        return format!("#{{{}}}", parts.join(", "));
    }
    if v.is_unit() {
        return "()".into();
    }
    scalar(v)
}

fn array(a: &Array, style: &Style) -> String {
    if a.is_empty() {
        return "[]".into();
    }
    if a.iter().all(is_map) {
        return table(a, style);
    }
    let one_line = inline(&Dynamic::from_array(a.clone()));
    if one_line.chars().count() <= 100 && !one_line.contains('\n') {
        return one_line;
    }
    // Too long for one line: one item a line, strings as they are (nat::list's rules), not
    // quoted and escaped.
    a.iter()
        .map(|v| match v.read_lock::<rhai::ImmutableString>() {
            Some(s) => s.to_string(),
            None => render(v, style),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn columns(rows: &[&Map]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for r in rows {
        for k in r.keys() {
            if !keys.iter().any(|x| x == k.as_str()) {
                keys.push(k.to_string());
            }
        }
    }
    let rank = |k: &str| ORDER.iter().position(|o| *o == k).unwrap_or(ORDER.len());
    keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    keys
}

fn table(a: &Array, style: &Style) -> String {
    let maps: Vec<Map> = a.iter().filter_map(|v| v.read_lock::<Map>().map(|m| m.clone())).collect();
    let rows: Vec<&Map> = maps.iter().collect();
    let cols = columns(&rows);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|c| r.get(c.as_str()).map_or_else(|| "-".into(), cell)).collect())
        .collect();
    let numeric: Vec<bool> = cols
        .iter()
        .map(|c| {
            let values: Vec<&Dynamic> = rows.iter().filter_map(|r| r.get(c.as_str())).collect();
            values.iter().any(|v| v.is_int() || v.is_float())
                && values.iter().all(|v| v.is_int() || v.is_float() || v.is_unit())
        })
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells.iter().map(|r| r[i].chars().count()).chain([c.chars().count()]).max().unwrap_or(0)
        })
        .collect();
    let line = |items: &[String]| -> String {
        let mut s = String::new();
        for (i, item) in items.iter().enumerate() {
            let last = i + 1 == items.len();
            let pad = widths[i].saturating_sub(item.chars().count());
            // Numbers, and their headers, align right.
            let padded = if numeric[i] {
                format!("{}{item}", " ".repeat(pad))
            } else if last {
                item.clone()
            } else {
                format!("{item}{}", " ".repeat(pad))
            };
            s.push_str(&padded);
            if !last {
                s.push_str("  ");
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![style.bold(&line(&cols))];
    out.extend(cells.iter().map(|r| line(r)));
    out.join("\n")
}

fn map(m: &Map, style: &Style) -> String {
    if m.is_empty() {
        return "#{}".into();
    }
    let rows: Vec<&Map> = vec![m];
    let keys = columns(&rows);
    let width = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
    let mut out = Vec::new();
    for k in keys {
        let v = &m[k.as_str()];
        let nested = v.read_lock::<Map>().is_some_and(|m| !m.is_empty())
            || v.read_lock::<Array>().is_some_and(|a| !a.is_empty() && a.iter().all(is_map))
            || string(v).is_some_and(|s| s.trim_end_matches('\n').contains('\n'));
        if nested {
            out.push(style.bold(&k));
            for l in render(v, style).lines() {
                out.push(format!("  {l}"));
            }
        } else {
            let text = match string(v) {
                Some(s) => format!("{:?}", s.trim_end_matches('\n')),
                None => inline(v),
            };
            out.push(format!(
                "{}{}  {text}",
                style.bold(&k),
                " ".repeat(width - k.chars().count())
            ));
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s: &str) -> Dynamic {
        rhai::Engine::new().eval::<Dynamic>(s).unwrap()
    }

    fn show(s: &str) -> String {
        render(&eval(s), &Style { color: false })
    }

    #[test]
    fn arrays_of_maps_are_tables() {
        let t = show(
            r#"[#{name: "lo", index: 1, kind: "loopback", master: ()},
               #{name: "veth-red", index: 12, kind: "veth", master: "linux-bridge"}]"#,
        );
        assert_eq!(
            t,
            "name      index  kind      master\n\
             lo            1  loopback  -\n\
             veth-red     12  veth      linux-bridge"
        );
    }

    #[test]
    fn maps_are_aligned_lines() {
        assert_eq!(
            show("#{ok: true, sent: 3, received: 3, rtt_ms: 0.0456}"),
            "ok        true\nsent      3\nreceived  3\nrtt_ms    0.046"
        );
        assert_eq!(
            show(r#"#{status: 0, stdout: "a\nb\n", stderr: ""}"#),
            "status  0\nstdout\n  a\n  b\nstderr  \"\""
        );
    }

    #[test]
    fn scalars_strings_and_lists() {
        assert_eq!(show("()"), "");
        assert_eq!(show("42"), "42");
        assert_eq!(show(r#""10.0.0.1/24""#), "\"10.0.0.1/24\"");
        assert_eq!(show(r#""line 1\nline 2\n""#), "line 1\nline 2");
        assert_eq!(show(r#"["internet", "red"]"#), r#"["internet", "red"]"#);
        assert_eq!(show("[]"), "[]");
        assert_eq!(show("let f = |x| x + 1; f"), "<closure>");
        assert_eq!(show("fn double(x) { x * 2 } Fn(\"double\")"), "<fn double>");
        // Long lists of strings: a line each, unquoted (like `iptables -S`).
        let rule = "-A POSTROUTING -s 192.168.24.0/24 -m comment --comment \\\"nslab:repl\\\" -j MASQUERADE";
        assert_eq!(
            show(&format!(r#"["{rule}", "{rule}"]"#)),
            "-A POSTROUTING -s 192.168.24.0/24 -m comment --comment \"nslab:repl\" -j MASQUERADE\n\
             -A POSTROUTING -s 192.168.24.0/24 -m comment --comment \"nslab:repl\" -j MASQUERADE"
        );
    }
}
