//! `--set` values are data: a small parser of literals (numbers, strings, booleans, `()` /
//! `null`, arrays and maps of them), never the engine. Evaluating them as Rhai ran any code a
//! value held (`--set 'hosts=[eval("netns::exec(...)")]'`, issue 14).
//!
//! Accepts Rhai's spelling (`[1, "a"]`, `#{a: 1}`) and JSON's (`{"a": 1}`, `null`).

use rhai::{Array, Dynamic, FLOAT, INT, Map};

/// Arrays and maps nest at most this deep (a value on the command line, not a program).
const MAX_DEPTH: usize = 32;

/// Parses `text` as one literal value.
pub fn parse(text: &str) -> Result<Dynamic, String> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let v = p.value(0)?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.unexpected("the end of the value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn unexpected(&self, expected: &str) -> String {
        match self.peek() {
            None => format!("expected {expected}, found the end"),
            Some(_) => {
                let rest = String::from_utf8_lossy(&self.s[self.i..]);
                let near: String = rest.chars().take(20).collect();
                format!("expected {expected} at {near:?}")
            }
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Dynamic, String> {
        if depth > MAX_DEPTH {
            return Err(format!("values nest more than {MAX_DEPTH} deep"));
        }
        self.ws();
        match self.peek() {
            Some(b'[') => {
                self.i += 1;
                self.array(depth)
            }
            Some(b'#') if self.s.get(self.i + 1) == Some(&b'{') => {
                self.i += 2;
                self.map(depth)
            }
            Some(b'{') => {
                self.i += 1;
                self.map(depth)
            }
            Some(b'"') => self.string().map(Dynamic::from),
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() => self.number(),
            Some(b'(') if self.s.get(self.i + 1) == Some(&b')') => {
                self.i += 2;
                Ok(Dynamic::UNIT)
            }
            _ => match self.word().as_str() {
                "true" => Ok(true.into()),
                "false" => Ok(false.into()),
                "null" => Ok(Dynamic::UNIT),
                _ => Err(self.unexpected("a number, a \"string\", true, false, [..] or #{..}")),
            },
        }
    }

    /// An identifier-like word, consumed only when it is one of the literal words.
    fn word(&mut self) -> String {
        let start = self.i;
        let mut end = start;
        while end < self.s.len() && (self.s[end].is_ascii_alphanumeric() || self.s[end] == b'_') {
            end += 1;
        }
        let w = String::from_utf8_lossy(&self.s[start..end]).into_owned();
        if matches!(w.as_str(), "true" | "false" | "null") {
            self.i = end;
        }
        w
    }

    fn array(&mut self, depth: usize) -> Result<Dynamic, String> {
        let mut out = Array::new();
        loop {
            if self.eat(b']') {
                return Ok(out.into());
            }
            out.push(self.value(depth + 1)?);
            if !self.eat(b',') {
                if self.eat(b']') {
                    return Ok(out.into());
                }
                return Err(self.unexpected("`,` or `]`"));
            }
        }
    }

    fn map(&mut self, depth: usize) -> Result<Dynamic, String> {
        let mut out = Map::new();
        loop {
            if self.eat(b'}') {
                return Ok(out.into());
            }
            self.ws();
            let key = match self.peek() {
                Some(b'"') => self.string()?,
                Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                    let start = self.i;
                    while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                        self.i += 1;
                    }
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
                }
                _ => return Err(self.unexpected("a key")),
            };
            if !self.eat(b':') {
                return Err(self.unexpected("`:` after a key"));
            }
            let v = self.value(depth + 1)?;
            out.insert(key.into(), v);
            if !self.eat(b',') {
                if self.eat(b'}') {
                    return Ok(out.into());
                }
                return Err(self.unexpected("`,` or `}`"));
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else { return Err("a string is not closed".into()) };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else { return Err("a string is not closed".into()) };
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'0' => out.push(0),
                        b'"' | b'\\' | b'/' | b'\'' => out.push(e),
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or("bad \\u escape")?;
                            let hex = std::str::from_utf8(hex).map_err(|_| "bad \\u escape")?;
                            let n = u32::from_str_radix(hex, 16).map_err(|_| "bad \\u escape")?;
                            let ch = char::from_u32(n).ok_or("bad \\u escape")?;
                            self.i += 4;
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        other => {
                            return Err(format!("unknown escape \\{} in a string", other as char));
                        }
                    }
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| "a string is not valid UTF-8".into())
    }

    fn number(&mut self) -> Result<Dynamic, String> {
        let start = self.i;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.i += 1;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'_'))
            || (matches!(self.peek(), Some(b'-' | b'+'))
                && matches!(self.s.get(self.i - 1), Some(b'e' | b'E')))
        {
            self.i += 1;
        }
        let text: String = String::from_utf8_lossy(&self.s[start..self.i]).replace('_', "");
        if let Ok(n) = text.parse::<INT>() {
            return Ok(n.into());
        }
        match text.parse::<FLOAT>() {
            Ok(f) if f.is_finite() => Ok(f.into()),
            _ => Err(format!("{text:?} is not a number")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_parse() {
        let v = parse(r#"[1, -2.5, "a\"b", true, null, [], #{x: 1, "y z": [false]},]"#).unwrap();
        let a = v.into_array().unwrap();
        assert_eq!(a.len(), 7);
        assert_eq!(a[0].as_int().unwrap(), 1);
        assert_eq!(a[1].as_float().unwrap(), -2.5);
        assert_eq!(a[2].clone().into_string().unwrap(), "a\"b");
        assert!(a[4].is_unit());
        let m = a[6].clone().cast::<Map>();
        assert_eq!(m["x"].as_int().unwrap(), 1);
        let m = parse(r#"{"a": {"b": "c"}}"#).unwrap().cast::<Map>();
        assert!(m["a"].is_map());
    }

    #[test]
    fn code_is_refused() {
        for bad in [
            r#"[eval("netns::add(\"pwn\")")]"#,
            r#"[netns::add("x")]"#,
            "[1 + 2]",
            "[x]",
            "#{a: f()}",
            "[1] [2]",
            "\"unclosed",
            &"[".repeat(100),
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }
}
