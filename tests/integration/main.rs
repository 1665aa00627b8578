//! One integration-test crate: every test runs the real `nslab` binary. Tests that build
//! labs do it inside a throwaway sandbox (`nslab run --sandbox`, or `nslab sandbox -- bash`
//! to look at the lab with independent tools while it exists): never on the host.

mod bench;
mod capture;
mod common;
mod doc;
mod features;
mod fw;
mod graph;
mod hardening;
mod hardening_journal;
mod lifecycle;
mod links;
mod ops;
mod plan;
mod plan_fw;
mod probes;
mod repl;
mod routing;
mod run;
mod sandbox;
mod script;
mod tc;
