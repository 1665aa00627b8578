//! nslab: programmable Linux network labs. Rhai recipes drive network namespaces, bridges,
//! veths, addresses, routes and NAT over netlink.

pub mod cli;
pub(crate) mod graph;
pub(crate) mod lab;
pub(crate) mod net;
pub(crate) mod script;
