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
use std::collections::HashMap;
use std::rc::Rc;

use rhai::{Dynamic, EvalAltResult, NativeCallContext, Position};
use serde::Serialize;

use crate::lab::Backend;
use crate::net::{NetError, NetResult, Op};

/// Return type of script functions (spelled out so generated definitions stay readable).
pub type RhaiResultOf<T> = Result<T, Box<EvalAltResult>>;

thread_local! {
    static BACKEND: RefCell<Option<Rc<dyn Backend>>> = const { RefCell::new(None) };
    static SITES: RefCell<Sites> = RefCell::new(Sites::default());
}

/// The call sites script functions were called from, numbered: what a run holds back keeps
/// the number ([`crate::net::NetError::site`]), so an error that surfaces later points at
/// the call it belongs to. A recipe has few distinct sites, whatever its loops run.
#[derive(Default)]
struct Sites {
    all: Vec<(Option<String>, Position)>,
    by_pos: HashMap<Position, Vec<u64>>,
}

/// The number of the call site of `ctx` (its source, its position there).
fn site_of(ctx: &NativeCallContext) -> u64 {
    let (src, pos) = (ctx.call_source(), ctx.call_position());
    SITES.with(|s| {
        let mut s = s.borrow_mut();
        let known = s
            .by_pos
            .get(&pos)
            .and_then(|ids| ids.iter().copied().find(|&i| s.all[i as usize].0.as_deref() == src));
        known.unwrap_or_else(|| {
            let id = s.all.len() as u64;
            s.all.push((src.map(str::to_string), pos));
            s.by_pos.entry(pos).or_default().push(id);
            id
        })
    })
}

/// The source (as Rhai names it: the recipe's path, a stdlib module's name) and position of
/// call site `id`.
pub fn site(id: u64) -> Option<(Option<String>, Position)> {
    SITES.with(|s| s.borrow().all.get(usize::try_from(id).ok()?).cloned())
}

/// Installs the backend script functions on this thread talk to.
pub fn set_backend(b: Option<Rc<dyn Backend>>) {
    BACKEND.with(|c| *c.borrow_mut() = b);
}

/// The backend, told where the script calls it from (`Backend::set_site`).
pub fn backend(ctx: &NativeCallContext) -> RhaiResultOf<Rc<dyn Backend>> {
    let b = BACKEND.with(|c| c.borrow().clone()).ok_or_else(|| {
        fail(
            ctx,
            NetError::new("no lab is running: this function needs `nslab run` or `nslab repl`"),
        )
    })?;
    b.set_site(site_of(ctx));
    Ok(b)
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
