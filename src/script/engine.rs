//! Building the Rhai engine nslab scripts run in.

use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use rhai::{Dynamic, Engine, NativeCallContext, Token};

use super::param::{self, Overrides};
use super::{RhaiResultOf, fail, modules, stdlib};
use crate::lab::INTERRUPTED;
use crate::net::NetError;

/// An engine with every script module, `param`, `assert`, the stdlib resolver (files
/// relative to `base`), and a progress hook that stops a script on Ctrl-C / SIGTERM.
pub fn build(overrides: Overrides, base: Option<&Path>) -> Engine {
    let mut engine = Engine::new();
    limit(&mut engine);
    modules::register(&mut engine);
    param::register(&mut engine, Rc::new(overrides));
    engine.set_module_resolver(stdlib::Resolver::new(base.map(Path::to_path_buf)));
    register_error(&mut engine);
    super::catch::register(&mut engine);
    engine.register_fn("assert", assert_msg);
    engine.register_fn("assert", assert_plain);
    // Rhai's default `print` panics when stdout is a closed pipe (`nslab run ... | head`).
    engine.on_print(|s| {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{s}");
    });
    engine.on_progress(|_| {
        if INTERRUPTED.load(Ordering::Relaxed) { Some(Dynamic::from("interrupted")) } else { None }
    });
    engine
}

/// A recipe is untrusted input: its memory is bounded, and `eval` is gone.
/// Hitting a limit is an error at the recipe line, followed by the normal rollback
/// (`diagnostic::words` says which limit and how big). Without them `a.pad(1e11, 0)` aborted
/// nslab (no rollback) and `loop { s += s }` grew to gigabytes (issue 14).
pub(crate) fn limit(engine: &mut Engine) {
    engine.set_max_expr_depths(128, 64);
    engine.set_max_string_size(MAX_STRING);
    engine.set_max_array_size(MAX_ITEMS);
    engine.set_max_map_size(MAX_ITEMS);
    // Code built from strings at run time is code no one reviewed; recipes have no use for
    // it (and `--set` values are parsed as data, see `literal`).
    engine.disable_symbol("eval");
    // Rhai's parser checks each key of a map literal against every earlier one (a linear
    // scan, rhai 1.27 parser.rs `parse_map_literal`): 40,000 keys took 5.9 s (issue 14).
    // A literal that big is refused at the parser instead; loops build big maps in O(n).
    #[allow(deprecated)]
    engine.on_parse_token(map_literal_guard());
    // Function calls nest at most Rhai's default (64; 8 in debug builds, where frames are
    // large): deeper recursion is an error, not a stack overflow.
}

/// Most entries one map literal may have in a recipe (see `limit`): parsing it costs the
/// square of its size.
pub(crate) const MAX_MAP_LITERAL: usize = 5000;

/// A token mapper that counts the entries of each open map literal (commas directly inside
/// `#{ }`) and turns the one past [`MAX_MAP_LITERAL`] into a syntax error.
fn map_literal_guard() -> impl Fn(Token, rhai::Position, &rhai::TokenizeState) -> Token + 'static {
    // (is a map literal, commas seen) per open bracket.
    let open = std::cell::RefCell::new(Vec::<(bool, usize)>::new());
    move |token, _, _| {
        let mut open = open.borrow_mut();
        match &token {
            Token::MapStart => open.push((true, 0)),
            Token::LeftBrace | Token::LeftBracket | Token::LeftParen => open.push((false, 0)),
            Token::RightBrace | Token::RightBracket | Token::RightParen => {
                open.pop();
            }
            Token::EOF => open.clear(),
            Token::Comma => {
                if let Some((true, n)) = open.last_mut() {
                    *n += 1;
                    if *n >= MAX_MAP_LITERAL {
                        open.clear();
                        return Token::LexError(Box::new(rhai::LexError::Runtime(format!(
                            "a map literal with more than {MAX_MAP_LITERAL} entries (Rhai parses one that big in quadratic time): build it in a loop, e.g. `let m = #{{}}; for i in 0..n {{ m[`k${{i}}`] = i; }}`"
                        ))));
                    }
                }
            }
            _ => {}
        }
        token
    }
}

/// Largest string a recipe may build, in bytes (also the total of the strings in one array
/// or map). `netns::exec` output is capped well below it (`exec::MAX_OUTPUT`).
pub(crate) const MAX_STRING: usize = 16 << 20;
/// Most items in arrays (and entries in maps) one value may hold, nested ones included.
pub(crate) const MAX_ITEMS: usize = 1_000_000;

fn assert_msg(ctx: NativeCallContext, cond: bool, msg: &str) -> RhaiResultOf<()> {
    if cond { Ok(()) } else { Err(fail(&ctx, NetError::new(format!("assertion failed: {msg}")))) }
}

fn assert_plain(ctx: NativeCallContext, cond: bool) -> RhaiResultOf<()> {
    if cond { Ok(()) } else { Err(fail(&ctx, NetError::new("assertion failed"))) }
}

/// Errors nslab throws are [`NetError`]s, so the diagnostic of an uncaught one keeps its help.
/// A script that catches one (`try { .. } catch (e) { .. }`) reads it as a value of type
/// `error`: `${e}` is its message, `e.message`, `e.help` and `e.errno` its parts.
pub(crate) fn register_error(engine: &mut Engine) {
    engine.register_type_with_name::<NetError>("error");
    engine.register_fn("to_string", |e: &mut NetError| e.message.clone());
    engine.register_fn("to_debug", |e: &mut NetError| format!("error({:?})", e.message));
    engine.register_get("message", |e: &mut NetError| e.message.clone());
    engine.register_get("help", |e: &mut NetError| -> Dynamic {
        e.help.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT)
    });
    engine.register_get("errno", |e: &mut NetError| -> Dynamic {
        e.errno.map(|n| Dynamic::from(n as rhai::INT)).unwrap_or(Dynamic::UNIT)
    });
}
