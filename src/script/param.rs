//! `param NAME = DEFAULT;` — recipe parameters a user overrides with `--set NAME=VALUE`.
//!
//! A custom syntax rather than constants pushed by the host: a script's own `const` would
//! shadow a host constant. Params are found without running the recipe by walking the AST,
//! so unknown keys and wrongly typed values are refused before the kernel is touched.

use std::collections::BTreeMap;
use std::rc::Rc;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Position};

use crate::net::NetError;
use crate::script::invalid;

/// A declared parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    /// The default as written in the recipe.
    pub default_text: String,
    /// The default's value, when it is a literal.
    pub default: Option<Dynamic>,
    /// The comment lines right above the declaration.
    pub doc: String,
    pub position: Position,
}

impl Param {
    pub fn type_name(&self) -> &'static str {
        self.default.as_ref().map(type_of).unwrap_or("any")
    }
}

pub fn type_of(v: &Dynamic) -> &'static str {
    if v.is_int() {
        "int"
    } else if v.is_float() {
        "float"
    } else if v.is_bool() {
        "bool"
    } else if v.is_string() {
        "string"
    } else if v.is_array() {
        "array"
    } else if v.is_map() {
        "map"
    } else {
        "any"
    }
}

/// `--set` values by name, as typed on the command line.
pub type Overrides = BTreeMap<String, String>;

pub fn register(engine: &mut Engine, overrides: Rc<Overrides>) {
    engine
        .register_custom_syntax(["param", "$ident$", "=", "$expr$"], true, move |ctx, inputs| {
            let name = inputs[0].get_string_value().expect("$ident$ is a name").to_string();
            let default = ctx.eval_expression_tree(&inputs[1])?;
            let value = match overrides.get(&name) {
                Some(raw) => convert(ctx.engine(), &name, raw, &default).map_err(|e| {
                    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(e), inputs[0].position()))
                })?,
                None => default,
            };
            ctx.scope_mut().push(name, value);
            Ok(Dynamic::UNIT)
        })
        .expect("the param syntax is valid");
}

/// Turns a `--set` string into a value of the default's type.
pub fn convert(
    _engine: &Engine,
    name: &str,
    raw: &str,
    default: &Dynamic,
) -> Result<Dynamic, NetError> {
    let wrong = |what: &str| {
        invalid(
            format!("--set {name}={raw}: expected {what}, like the default"),
            format!("param {name} defaults to {default:?}"),
        )
    };
    if default.is_int() {
        raw.trim().parse::<rhai::INT>().map(Dynamic::from).map_err(|_| wrong("an integer"))
    } else if default.is_float() {
        raw.trim().parse::<rhai::FLOAT>().map(Dynamic::from).map_err(|_| wrong("a number"))
    } else if default.is_bool() {
        match raw.trim() {
            "true" | "yes" | "on" | "1" => Ok(true.into()),
            "false" | "no" | "off" | "0" => Ok(false.into()),
            _ => Err(wrong("true or false")),
        }
    } else if default.is_array() {
        let proto = element_type(default);
        let proto = proto.as_ref();
        let wrong_item = |item: &Dynamic| match proto {
            Some(p) => {
                let what = plural(type_of(p));
                invalid(
                    format!(
                        "--set {name}={raw}: expected an array of {what}, like the default ({item:?} is not one)"
                    ),
                    format!("param {name} defaults to {default:?}"),
                )
            }
            None => wrong("an array"),
        };
        let t = raw.trim();
        let items: Vec<Dynamic> = if t.starts_with('[') {
            // Data, never code: evaluating the value ran whatever it held (issue 14).
            let items = super::literal::parse(t)
                .ok()
                .and_then(|v| v.try_cast::<rhai::Array>())
                .ok_or_else(|| wrong("an array of literals"))?;
            // An int where the default has floats is the number the user meant.
            let items: Vec<Dynamic> = items
                .into_iter()
                .map(|v| match (proto, v.as_int()) {
                    (Some(p), Ok(i)) if p.is_float() => Dynamic::from(i as rhai::FLOAT),
                    _ => v,
                })
                .collect();
            if let Some(p) = proto
                && let Some(bad) = items.iter().find(|v| type_of(v) != type_of(p))
            {
                return Err(wrong_item(bad));
            }
            items
        } else if t.is_empty() {
            vec![]
        } else {
            // "red,green,blue": each item typed like the default's items.
            t.split(',')
                .map(|s| match proto {
                    Some(p) if !p.is_string() => convert(_engine, name, s, p)
                        .map_err(|_| wrong_item(&Dynamic::from(s.trim().to_string()))),
                    _ => Ok(Dynamic::from(s.trim().to_string())),
                })
                .collect::<Result<_, _>>()?
        };
        Ok(items.into())
    } else if default.is_map() {
        super::literal::parse(raw)
            .ok()
            .filter(Dynamic::is_map)
            .ok_or_else(|| wrong("a map of literals (#{a: 1} or {\"a\": 1})"))
    } else {
        Ok(raw.to_string().into())
    }
}

/// A sample of a default array's items, when it has some and they all have one type.
fn element_type(default: &Dynamic) -> Option<Dynamic> {
    let a = default.clone().into_array().ok()?;
    let first = a.first()?.clone();
    a.iter().all(|v| type_of(v) == type_of(&first)).then_some(first)
}

fn plural(type_name: &str) -> &'static str {
    match type_name {
        "int" => "integers",
        "float" => "numbers",
        "bool" => "booleans",
        "string" => "strings",
        "array" => "arrays",
        "map" => "maps",
        _ => "values",
    }
}

/// The params a recipe declares, in order, without running it.
pub fn declared(ast: &AST, source: &str) -> Vec<Param> {
    use rhai::{Expr, Stmt};
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Vec::new();
    for stmt in ast.statements() {
        let Stmt::Expr(expr) = stmt else { continue };
        let Expr::Custom(custom, pos) = &**expr else { continue };
        if custom.tokens.first().map(|t| t.as_str()) != Some("param") {
            continue;
        }
        let Expr::Variable(var, ..) = &custom.inputs[0] else { continue };
        let name = &var.1;
        let default = custom.inputs[1].get_literal_value(None);
        let line = pos.line().unwrap_or(1);
        let text = lines.get(line - 1).copied().unwrap_or("");
        let start: usize = source.split_inclusive('\n').take(line - 1).map(str::len).sum();
        let default_text = default_text(&source[start..]);
        let mut doc = Vec::new();
        for l in lines[..line.saturating_sub(1)].iter().rev() {
            match l.trim().strip_prefix("//") {
                Some(c) if !c.starts_with('!') => doc.push(c.trim().to_string()),
                _ => break,
            }
        }
        // A trailing `// comment` on the same line documents it too.
        let code = code_of(text);
        if code.len() < text.len() {
            doc.insert(0, text[code.len() + 2..].trim().to_string());
        }
        doc.reverse();
        out.push(Param {
            name: name.to_string(),
            default_text,
            default,
            doc: doc.join(" "),
            position: *pos,
        });
    }
    out
}

/// The default of the `param` statement at the start of `text`, up to its `;`, on one line
/// however many lines it spans, without comments: `[\n "a",\n "b",\n]` becomes `["a", "b"]`.
fn default_text(text: &str) -> String {
    let Some(eq) = text.find('=') else { return String::new() };
    let rest = &text[eq + 1..];
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    let mut quote = None;
    let mut depth = 0i32;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '`' | '\'' => {
                quote = Some(c);
                out.push(c);
            }
            '/' if chars.peek() == Some(&'/') => while chars.next_if(|&n| n != '\n').is_some() {},
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                if !out.is_empty() && !out.ends_with([' ', '(', '[', '{']) {
                    out.push(' ');
                }
            }
            ';' if depth <= 0 => break,
            '(' | '[' | '{' => {
                depth += 1;
                out.push(c);
            }
            ')' | ']' | '}' => {
                depth -= 1;
                // No trailing comma or line break before a closing bracket.
                let kept = out.trim_end().trim_end_matches(',').trim_end().len();
                out.truncate(kept);
                out.push(c);
            }
            c if c.is_whitespace() => {
                if !out.is_empty() && !out.ends_with([' ', '(', '[', '{']) {
                    out.push(' ');
                }
            }
            c => out.push(c),
        }
    }
    out.trim().to_string()
}

/// A source line without its trailing `// comment` (a `//` inside a string stays).
fn code_of(line: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q && prev != '\\' => quote = None,
            Some(_) => {}
            None if c == '"' || c == '`' => quote = Some(c),
            None if c == '/' && prev == '/' => return &line[..i - 1],
            None => {}
        }
        prev = c;
    }
    line
}

/// Refuses unknown `--set` keys and, where the default is a literal, wrongly typed values.
pub fn validate(engine: &Engine, params: &[Param], overrides: &Overrides) -> Result<(), NetError> {
    let listing = || {
        if params.is_empty() {
            "this recipe declares no params".to_string()
        } else {
            let list: Vec<String> =
                params.iter().map(|p| format!("{} = {}", p.name, p.default_text)).collect();
            format!("the recipe declares: {}", list.join(", "))
        }
    };
    for (key, raw) in overrides {
        match params.iter().find(|p| &p.name == key) {
            None => {
                return Err(invalid(
                    format!("unknown param `{key}` in --set {key}={raw}"),
                    listing(),
                ));
            }
            Some(p) => {
                if let Some(d) = &p.default {
                    let _ = convert(engine, key, raw, d).map_err(|e| {
                        let help = format!("{}; {}", e.help.clone().unwrap_or_default(), listing());
                        e.with_help(help)
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// Parses `K=V` arguments of `--set`.
pub fn parse_sets(sets: &[String]) -> Result<Overrides, NetError> {
    let mut m = Overrides::new();
    for s in sets {
        let Some((k, v)) = s.split_once('=') else {
            return Err(invalid(format!("--set {s}: expected NAME=VALUE"), "e.g. --set hosts=5"));
        };
        m.insert(k.trim().to_string(), v.to_string());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let mut e = Engine::new();
        register(&mut e, Rc::new(Overrides::new()));
        e
    }

    #[test]
    fn params_are_listed_with_docs() {
        let src = "//! A lab\n// how many hosts\nparam hosts = 3;\nparam subnet = \"10.0.0.0/24\"; // the lab's subnet\nlet x = 1;\n";
        let e = engine();
        let ast = e.compile(src).unwrap();
        let p = declared(&ast, src);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "hosts");
        assert_eq!(p[0].default_text, "3");
        assert_eq!(p[0].doc, "how many hosts");
        assert_eq!(p[0].type_name(), "int");
        assert_eq!(p[1].doc, "the lab's subnet");
        assert_eq!(p[1].default_text, "\"10.0.0.0/24\"");
        assert_eq!(code_of(r#"param u = "http://x"; // c"#), r#"param u = "http://x"; "#);
        assert_eq!(p[1].type_name(), "string");
    }

    #[test]
    fn overrides_are_typed_like_the_default() {
        let e = engine();
        assert_eq!(
            convert(&e, "n", "5", &Dynamic::from(3 as rhai::INT)).unwrap().as_int().unwrap(),
            5
        );
        assert!(convert(&e, "n", "five", &Dynamic::from(3 as rhai::INT)).is_err());
        assert!(convert(&e, "b", "yes", &Dynamic::from(false)).unwrap().as_bool().unwrap());
        let d: Dynamic = vec![Dynamic::from("red")].into();
        let a = convert(&e, "hosts", "a,b", &d).unwrap().into_array().unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].clone().into_string().unwrap(), "b");
        let a = convert(&e, "hosts", r#"["x"]"#, &d).unwrap().into_array().unwrap();
        assert_eq!(a.len(), 1);
        let e2 = convert(&e, "n", "x", &Dynamic::from(3 as rhai::INT)).unwrap_err();
        assert_eq!(e2.message, "--set n=x: expected an integer, like the default");
    }

    #[test]
    fn array_items_are_typed_like_the_default_items() {
        let e = engine();
        let ints: Dynamic =
            vec![Dynamic::from(1 as rhai::INT), Dynamic::from(2 as rhai::INT)].into();
        for raw in ["[1,\"x\"]", "1,x"] {
            let err = convert(&e, "ports", raw, &ints).unwrap_err();
            assert_eq!(
                err.message,
                format!(
                    "--set ports={raw}: expected an array of integers, like the default (\"x\" is not one)"
                )
            );
            assert_eq!(err.help.as_deref(), Some("param ports defaults to [1, 2]"));
        }
        let strs: Dynamic = vec![Dynamic::from("a")].into();
        assert!(convert(&e, "hosts", "[1,2]", &strs).is_err());
        let floats: Dynamic = vec![Dynamic::from(1.5 as rhai::FLOAT)].into();
        let a = convert(&e, "w", "[1, 2.5]", &floats).unwrap().into_array().unwrap();
        assert!(a[0].is_float());
        let mixed: Dynamic = vec![Dynamic::from(1 as rhai::INT), Dynamic::from("a")].into();
        assert!(convert(&e, "m", "[true]", &mixed).is_ok());
    }

    #[test]
    fn multi_line_defaults_are_collapsed() {
        assert_eq!(
            default_text("param h = [\n  \"a\", // x\n  \"b;\",\n];\nlet y = 2;"),
            "[\"a\", \"b;\"]"
        );
        assert_eq!(default_text("param m = #{ a: 1, /* c */ b: [1, 2] };"), "#{a: 1, b: [1, 2]}");
        assert_eq!(default_text("param n = 3; // three"), "3");
    }

    #[test]
    fn unknown_keys_list_the_params() {
        let src = "param hosts = 3;";
        let e = engine();
        let p = declared(&e.compile(src).unwrap(), src);
        let mut o = Overrides::new();
        o.insert("host".into(), "4".into());
        let err = validate(&e, &p, &o).unwrap_err();
        assert_eq!(err.message, "unknown param `host` in --set host=4");
        assert_eq!(err.help.as_deref(), Some("the recipe declares: hosts = 3"));
        assert!(parse_sets(&["novalue".into()]).is_err());
    }

    #[test]
    fn the_override_wins_at_run_time() {
        let mut e = Engine::new();
        let mut o = Overrides::new();
        o.insert("n".into(), "7".into());
        register(&mut e, Rc::new(o));
        assert_eq!(e.eval::<rhai::INT>("param n = 3; n * 2").unwrap(), 14);
    }
}
