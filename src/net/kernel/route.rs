//! Routes of the main table: `ip route add` / `ip route del`.

use std::net::IpAddr;

use ipnet::IpNet;
use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::route::{RouteMessage, RouteProtocol, RouteScope};

use super::Kernel;
use crate::net::error::{NetError, NetResult, from_nl};
use crate::net::op::is_link_local;
use crate::net::refusal::{
    gateway_needs_link, gateway_unreachable, no_route, route_dev_down, route_exists,
};

impl Kernel {
    /// `ip route add|del DEST [via GW] [dev DEV]` (`add` false: del).
    pub(super) fn route(
        &self,
        nsr: Option<&str>,
        add: bool,
        dest: Option<IpNet>,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> NetResult<()> {
        let msg = self.route_message(nsr, dest, via, dev)?;
        let sock = self.sock(nsr)?;
        let r = if add {
            sock.ack(RouteNetlinkMessage::NewRoute(msg), NLM_F_CREATE | NLM_F_EXCL)
        } else {
            sock.ack(RouteNetlinkMessage::DelRoute(msg), 0)
        };
        let d = dest.map(|d| d.to_string()).unwrap_or_else(|| "default".into());
        r.map_err(|e| {
            from_nl(
                e,
                &format!("cannot {} route {d}", if add { "add" } else { "delete" }),
                |errno| match errno {
                    libc::ENETUNREACH => Some(gateway_unreachable(
                        &via.map(|v| v.to_string()).unwrap_or_default(),
                        nsr,
                    )),
                    libc::EEXIST => Some(route_exists(nsr, &d)),
                    libc::ESRCH => Some(no_route(nsr, &d, via, dev)),
                    libc::EINVAL if add && dev.is_none() && via.is_some_and(is_link_local) => {
                        Some(gateway_needs_link(via.expect("checked")))
                    }
                    libc::ENETDOWN if add && dev.is_some() => {
                        Some(route_dev_down(&d, dev.unwrap_or("?"), nsr))
                    }
                    _ => None,
                },
            )
        })
    }

    fn route_message(
        &self,
        ns: Option<&str>,
        dest: Option<IpNet>,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> NetResult<RouteMessage> {
        fn bad(e: impl std::fmt::Display) -> NetError {
            NetError::new(e.to_string())
        }
        let mut b = RouteMessageBuilder::<IpAddr>::new();
        if let Some(d) = dest {
            b = b.destination_prefix(d.network(), d.prefix_len()).map_err(bad)?;
        } else {
            // A default route still needs its family: the gateway's, else IPv4, as `ip
            // route add default dev DEV` picks (without one the kernel answers EOPNOTSUPP).
            let any = match via {
                Some(IpAddr::V6(_)) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                _ => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            };
            b = b.destination_prefix(any, 0).map_err(bad)?;
        }
        if let Some(v) = via {
            b = b.gateway(v).map_err(bad)?;
        }
        if let Some(d) = dev {
            b = b.output_interface(self.link_index(ns, d)?);
        }
        if via.is_none() {
            // Like `ip route add PREFIX dev DEV`: a directly connected route.
            b = b.scope(RouteScope::Link);
        }
        // `ip route add` marks routes proto boot, rtnetlink's default is static: use ip's, so
        // `ip route` shows the same after `nslab run` as after the commands `nslab plan` prints
        // (a difference the plan proof test found).
        b = b.protocol(RouteProtocol::Boot);
        Ok(b.build())
    }
}
