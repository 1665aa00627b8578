//! nslab: programmable Linux network labs. Rhai recipes drive network namespaces, bridges,
//! veths, addresses, routes and NAT over netlink.

pub mod cli;
pub mod graph;
pub mod lab;
pub mod net;
pub mod script;
