//! `try { .. } catch (e) { .. }` with errors that read like uncaught ones.
//!
//! Rhai's own `try` hands a caught error that is not a thrown value (an unknown function, a
//! wrong type, a limit) to the script as a map of its raw text: `${e}` printed `#{"message":
//! "Function not found: nat::masquerade (&str | ImmutableString | String, …)", …}` (issue
//! 14). Rhai has no hook for that conversion, so `try` is replaced by a custom syntax of the
//! same shape whose catch value is an `error` (see `engine::register_error`) carrying the
//! words an uncaught diagnostic shows (`diagnostic::words`). Thrown values (`throw "x"`) and
//! nslab's own errors are passed through unchanged, as Rhai does; `throw;` in the catch
//! block re-throws the caught error; `return`, `break` and interruption go through.

use rhai::{Dynamic, Engine, EvalAltResult, EvalContext, Expression, ImmutableString};

use super::diagnostic;
use crate::net::NetError;

pub fn register(engine: &mut Engine) {
    engine.disable_symbol("try");
    engine.register_custom_syntax_with_state_raw("try", parse, true, eval);
}

/// `try BLOCK catch BLOCK` or `try BLOCK catch ( IDENT ) BLOCK`.
fn parse(
    symbols: &[ImmutableString],
    look_ahead: &str,
    _state: &mut Dynamic,
) -> Result<Option<ImmutableString>, rhai::ParseError> {
    let next = match symbols.len() {
        1 => Some("$block$"),
        2 => Some("catch"),
        3 if look_ahead == "(" => Some("("),
        3 => Some("$block$"),
        4 if symbols[3] == "(" => Some("$ident$"),
        4 => None,
        5 => Some(")"),
        6 => Some("$block$"),
        _ => None,
    };
    Ok(next.map(Into::into))
}

fn eval(
    ctx: &mut EvalContext,
    inputs: &[Expression],
    _state: &Dynamic,
) -> super::RhaiResultOf<Dynamic> {
    let err = match ctx.eval_expression_tree(&inputs[0]) {
        Ok(_) => return Ok(Dynamic::UNIT),
        Err(e) if e.is_pseudo_error() || !e.is_catchable() => return Err(e),
        Err(e) => e,
    };
    let (var, handler) = match inputs.len() {
        3 => (inputs[1].get_string_value().map(str::to_string), &inputs[2]),
        _ => (None, &inputs[1]),
    };
    let before = ctx.scope().len();
    if let Some(name) = var {
        ctx.scope_mut().push(name, value_of(&err));
    }
    let r = ctx.eval_expression_tree(handler);
    ctx.scope_mut().rewind(before);
    match r {
        Ok(_) => Ok(Dynamic::UNIT),
        // `throw;` re-throws what was caught.
        Err(e) if matches!(&*e, EvalAltResult::ErrorRuntime(v, _) if v.is_unit()) => {
            let mut err = err;
            err.set_position(e.position());
            Err(err)
        }
        Err(e) => Err(e),
    }
}

/// What the catch variable holds: a thrown value as thrown (nslab's errors are `error`
/// values already), anything else as an `error` with the diagnostic's own words.
fn value_of(err: &EvalAltResult) -> Dynamic {
    match err.unwrap_inner() {
        EvalAltResult::ErrorRuntime(v, _) => v.clone(),
        inner => {
            let (message, help) = diagnostic::words(inner);
            let mut e = NetError::new(message);
            e.help = help;
            Dynamic::from(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let mut e = Engine::new();
        crate::script::engine::register_error(&mut e);
        register(&mut e);
        e
    }

    #[test]
    fn caught_errors_read_like_uncaught_ones() {
        let e = engine();
        let s: String = e
            .eval(r#"let r = ""; try { undefined_fn(1, "a"); } catch (err) { r = `${err}`; } r"#)
            .unwrap();
        assert_eq!(s, "unknown function undefined_fn(int, string)");
        let s: String =
            e.eval(r#"let r = ""; try { throw "plain" } catch (x) { r = x; } r"#).unwrap();
        assert_eq!(s, "plain");
        let n: rhai::INT = e.eval("let n = 1; try { n = 2; } catch { n = 3; } n").unwrap();
        assert_eq!(n, 2);
        let n: rhai::INT = e.eval("let n = 1; try { x } catch { n = 3 } n").unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn control_flow_and_rethrow_pass_through() {
        let e = engine();
        let n: rhai::INT = e.eval("fn f() { try { return 5; } catch { return 6; } } f()").unwrap();
        assert_eq!(n, 5);
        let n: rhai::INT =
            e.eval("let n = 0; loop { n += 1; try { if n > 2 { break; } } catch {} } n").unwrap();
        assert_eq!(n, 3);
        let r = e.run("try { throw \"a\"; } catch (x) { throw; }");
        assert!(
            matches!(*r.unwrap_err(), EvalAltResult::ErrorRuntime(ref v, _) if v.to_string() == "a")
        );
        // The catch variable goes out of scope with its block.
        assert!(e.run("try { throw 1; } catch (x) { } x").is_err());
    }
}
