//! Routes: `ip route add|del` with types, multipath, tables, metrics, source and onlink (the
//! message itself is built in net/routing/message.rs, shared with nothing else but its tests).

use std::net::IpAddr;

use ipnet::IpNet;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::RouteNetlinkMessage;

use super::Kernel;
use crate::net::error::{NetResult, from_nl};
use crate::net::op::is_link_local;
use crate::net::refusal::{
    bad_route_src, gateway_needs_link, gateway_unreachable, no_route, route_dev_down, route_exists,
};
use crate::net::routing::{RouteOpts, route_label, route_message};

impl Kernel {
    /// `ip route add|del …` (`add` false: del).
    pub(super) fn route(
        &self,
        nsr: Option<&str>,
        add: bool,
        dest: Option<IpNet>,
        via: Option<IpAddr>,
        dev: Option<&str>,
        opts: &RouteOpts,
    ) -> NetResult<()> {
        let index = |d: &str| self.link_index(nsr, d);
        let msg = route_message(dest, via, dev, opts, add, &index)?;
        let sock = self.sock(nsr)?;
        let r = if add {
            sock.ack(RouteNetlinkMessage::NewRoute(msg), NLM_F_CREATE | NLM_F_EXCL)
        } else {
            sock.ack(RouteNetlinkMessage::DelRoute(msg), 0)
        };
        let d = route_label(dest, opts);
        let gw = via.or(opts.nexthops.first().map(|h| h.via));
        r.map_err(|e| {
            from_nl(
                e,
                &format!("cannot {} route {d}", if add { "add" } else { "delete" }),
                |errno| match errno {
                    libc::ENETUNREACH => Some(gateway_unreachable(
                        &gw.map(|v| v.to_string()).unwrap_or_default(),
                        nsr,
                    )),
                    libc::EEXIST => Some(route_exists(nsr, &d)),
                    libc::ESRCH => Some(no_route(nsr, &d, via, dev)),
                    libc::EINVAL if add && dev.is_none() && gw.is_some_and(is_link_local) => {
                        Some(gateway_needs_link(gw.expect("checked")))
                    }
                    // "Invalid prefsrc address" / "Invalid source address".
                    libc::EINVAL if add && opts.src.is_some() => {
                        Some(bad_route_src(opts.src.expect("checked"), nsr))
                    }
                    libc::ENETDOWN if add && dev.is_some() => {
                        Some(route_dev_down(&d, dev.unwrap_or("?"), nsr))
                    }
                    _ => None,
                },
            )
        })
    }
}
