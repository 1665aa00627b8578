//! The Rhai side: the engine, `param` syntax, the stdlib resolver, diagnostics, and one file
//! per script module. Script functions build [`Op`]s and hand them to the current
//! [`Backend`]; they never talk to the kernel themselves.

mod catch;
pub mod diagnostic;
pub mod engine;
mod literal;
pub mod modules;
pub mod param;
pub mod recipe;
pub mod stdlib;

use std::cell::RefCell;
use std::rc::Rc;

use rhai::{Dynamic, EvalAltResult, NativeCallContext};
use serde::Serialize;

use crate::lab::Backend;
use crate::net::{NetError, NetResult, Op};

/// Return type of script functions (spelled out so generated definitions stay readable).
pub type RhaiResultOf<T> = Result<T, Box<EvalAltResult>>;

thread_local! {
    static BACKEND: RefCell<Option<Rc<dyn Backend>>> = const { RefCell::new(None) };
}

/// Installs the backend script functions on this thread talk to.
pub fn set_backend(b: Option<Rc<dyn Backend>>) {
    BACKEND.with(|c| *c.borrow_mut() = b);
}

pub fn backend(ctx: &NativeCallContext) -> RhaiResultOf<Rc<dyn Backend>> {
    BACKEND.with(|c| c.borrow().clone()).ok_or_else(|| {
        fail(
            ctx,
            NetError::new("no lab is running: this function needs `nslab run` or `nslab repl`"),
        )
    })
}

/// A script-visible error at the call site. Qualified calls (`netns::add`) get no position
/// from Rhai, so the call position is attached here.
pub fn fail(ctx: &NativeCallContext, e: NetError) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(e), ctx.call_position()))
}

pub fn check<T>(ctx: &NativeCallContext, r: NetResult<T>) -> RhaiResultOf<T> {
    r.map_err(|e| fail(ctx, e))
}

pub fn apply(ctx: &NativeCallContext, op: Op) -> RhaiResultOf<()> {
    let b = backend(ctx)?;
    check(ctx, b.apply(op))
}

pub fn query<T>(
    ctx: &NativeCallContext,
    f: impl FnOnce(&dyn Backend) -> NetResult<T>,
) -> RhaiResultOf<T> {
    let b = backend(ctx)?;
    check(ctx, b.settle())?;
    check(ctx, f(&*b))
}

pub fn to_dyn<T: Serialize>(v: &T) -> Dynamic {
    rhai::serde::to_dynamic(v).expect("plain data converts to Dynamic")
}

pub fn invalid(msg: impl Into<String>, help: impl Into<String>) -> NetError {
    NetError::new(msg).with_help(help).with_errno(libc::EINVAL)
}
