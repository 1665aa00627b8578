use crate::script::RhaiResultOf;
use rhai::plugin::*;

#[export_module]
pub mod link_mod {
    use crate::net::Op;
    use crate::script::modules::{ifname, nsname};
    use crate::script::{RhaiResultOf, apply, query, to_dyn};

    /// Brings a link up, like `ip link set DEV up`.
    ///
    /// ```rhai
    /// link::up("linux-bridge");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn up(ctx: NativeCallContext, dev: &str) -> RhaiResultOf<()> {
        apply(&ctx, Op::LinkUp { ns: None, dev: ifname(&ctx, dev)? })
    }

    /// Brings a link inside a netns up, like `ip -n NS link set DEV up`.
    ///
    /// ```rhai
    /// link::up("red", "veth-red");
    /// ```
    #[rhai_fn(name = "up", return_raw)]
    pub fn up_ns(ctx: NativeCallContext, ns: &str, dev: &str) -> RhaiResultOf<()> {
        apply(&ctx, Op::LinkUp { ns: nsname(&ctx, ns)?, dev: ifname(&ctx, dev)? })
    }

    /// Takes a link down, like `ip link set DEV down`.
    ///
    /// ```rhai
    /// link::down("linux-bridge");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn down(ctx: NativeCallContext, dev: &str) -> RhaiResultOf<()> {
        apply(&ctx, Op::LinkDown { ns: None, dev: ifname(&ctx, dev)? })
    }

    /// Takes a link inside a netns down.
    ///
    /// ```rhai
    /// link::down("red", "veth-red");
    /// ```
    #[rhai_fn(name = "down", return_raw)]
    pub fn down_ns(ctx: NativeCallContext, ns: &str, dev: &str) -> RhaiResultOf<()> {
        apply(&ctx, Op::LinkDown { ns: nsname(&ctx, ns)?, dev: ifname(&ctx, dev)? })
    }

    /// Plugs a link into a bridge (or a bond), like `ip link set DEV master BRIDGE`.
    ///
    /// ```rhai
    /// link::set_master("veth-red-br", "linux-bridge");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn set_master(ctx: NativeCallContext, dev: &str, bridge: &str) -> RhaiResultOf<()> {
        apply(
            &ctx,
            Op::LinkSetMaster {
                ns: None,
                dev: ifname(&ctx, dev)?,
                master: Some(ifname(&ctx, bridge)?),
            },
        )
    }

    /// Plugs a link inside a netns into a bridge in the same netns.
    ///
    /// ```rhai
    /// link::set_master("red", "veth-x", "br-in-red");
    /// ```
    #[rhai_fn(name = "set_master", return_raw)]
    pub fn set_master_ns(
        ctx: NativeCallContext,
        ns: &str,
        dev: &str,
        bridge: &str,
    ) -> RhaiResultOf<()> {
        apply(
            &ctx,
            Op::LinkSetMaster {
                ns: nsname(&ctx, ns)?,
                dev: ifname(&ctx, dev)?,
                master: Some(ifname(&ctx, bridge)?),
            },
        )
    }

    /// Unplugs a link from its bridge, like `ip link set DEV nomaster`.
    ///
    /// ```rhai
    /// link::set_master("veth-red-br", ());
    /// ```
    #[rhai_fn(name = "set_master", return_raw)]
    pub fn set_nomaster(ctx: NativeCallContext, dev: &str, nomaster: ()) -> RhaiResultOf<()> {
        // `()` is the form's marker; the parameter is named for `nslab doc`.
        let () = nomaster;
        apply(&ctx, Op::LinkSetMaster { ns: None, dev: ifname(&ctx, dev)?, master: None })
    }

    /// Unplugs a link inside a netns from its bridge. Like `ip -n NS link set DEV nomaster`.
    ///
    /// ```rhai
    /// link::set_master("red", "veth-x", ());
    /// ```
    #[rhai_fn(name = "set_master", return_raw)]
    pub fn set_nomaster_ns(
        ctx: NativeCallContext,
        ns: &str,
        dev: &str,
        nomaster: (),
    ) -> RhaiResultOf<()> {
        let () = nomaster;
        apply(
            &ctx,
            Op::LinkSetMaster { ns: nsname(&ctx, ns)?, dev: ifname(&ctx, dev)?, master: None },
        )
    }

    /// Moves a link into a netns, like `ip link set DEV netns NS`. Its addresses are lost
    /// on the way, as with `ip`.
    ///
    /// ```rhai
    /// link::set_netns("veth-red", "red");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn set_netns(ctx: NativeCallContext, dev: &str, ns: &str) -> RhaiResultOf<()> {
        let to = nsname(&ctx, ns)?.unwrap_or_default();
        apply(&ctx, Op::LinkSetNetns { ns: None, dev: ifname(&ctx, dev)?, to })
    }

    /// Moves a link from one netns into another, like `ip -n FROM link set DEV netns TO`.
    ///
    /// ```rhai
    /// link::set_netns("red", "veth-x", "green");
    /// ```
    #[rhai_fn(name = "set_netns", return_raw)]
    pub fn set_netns_from(
        ctx: NativeCallContext,
        from: &str,
        dev: &str,
        ns: &str,
    ) -> RhaiResultOf<()> {
        let to = nsname(&ctx, ns)?.unwrap_or_default();
        apply(&ctx, Op::LinkSetNetns { ns: nsname(&ctx, from)?, dev: ifname(&ctx, dev)?, to })
    }

    /// Changes a link this lab created, like `ip link set DEV mtu N address MAC txqueuelen N`:
    /// any of `mtu`, `mac` and `txqueuelen`, all at once (the kernel takes all or none).
    /// A link the lab did not create is refused.
    ///
    /// ```rhai
    /// veth::add("v-a", "v-b");
    /// link::set("v-a", #{mtu: 9000, mac: "02:00:00:00:00:0a", txqueuelen: 500});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn set(ctx: NativeCallContext, dev: &str, attrs: rhai::Map) -> RhaiResultOf<()> {
        let set = super::link_attrs(&ctx, &attrs)?;
        apply(&ctx, Op::LinkSet { ns: None, dev: ifname(&ctx, dev)?, set, old: None })
    }

    /// Changes a link inside a netns, like `ip -n NS link set DEV mtu N`.
    ///
    /// ```rhai
    /// netns::add("red");
    /// veth::add("v-red", "v-red-br", "red");
    /// link::set("red", "v-red-br", #{mtu: 1400});
    /// ```
    #[rhai_fn(name = "set", return_raw)]
    pub fn set_ns(
        ctx: NativeCallContext,
        ns: &str,
        dev: &str,
        attrs: rhai::Map,
    ) -> RhaiResultOf<()> {
        let set = super::link_attrs(&ctx, &attrs)?;
        apply(&ctx, Op::LinkSet { ns: nsname(&ctx, ns)?, dev: ifname(&ctx, dev)?, set, old: None })
    }

    /// Deletes a link this lab created, like `ip link del DEV` (a veth takes its peer along).
    ///
    /// ```rhai
    /// link::del("veth-red-br");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn del(ctx: NativeCallContext, dev: &str) -> RhaiResultOf<()> {
        apply(&ctx, Op::LinkDel { ns: None, dev: ifname(&ctx, dev)? })
    }

    /// Deletes a link inside a netns that this lab created.
    ///
    /// ```rhai
    /// link::del("red", "veth-red");
    /// ```
    #[rhai_fn(name = "del", return_raw)]
    pub fn del_ns(ctx: NativeCallContext, ns: &str, dev: &str) -> RhaiResultOf<()> {
        apply(&ctx, Op::LinkDel { ns: nsname(&ctx, ns)?, dev: ifname(&ctx, dev)? })
    }

    /// Creates a link of another kind than bridge or veth, like `ip link add NAME type KIND`:
    /// `"dummy"`, `"ifb"`, `"tap"`, `"wireguard"` (no options), or one of these with options:
    /// `"vxlan"` `#{id, remote | group, local, dev, port}` (port 4789, the IANA port, unless
    /// given), `"macvlan"` `#{parent, mode}` (mode `bridge` unless given), `"ipvlan"`
    /// `#{parent, mode}` (`l2`), `"vlan"` `#{parent, id}`, `"bond"` `#{mode}`
    /// (`balance-rr`). A parent (or a VXLAN's `dev`) is a link in the same place. The link
    /// starts down and carries the lab's tag; `link::list` shows its settings (`vxlan_id`,
    /// `vlan_id`, `parent`, `mode`, ...).
    ///
    /// ```rhai
    /// link::add("ifb0", "ifb");
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add(ctx: NativeCallContext, name: &str, kind: &str) -> RhaiResultOf<()> {
        super::add_link(&ctx, None, name, kind, rhai::Map::new())
    }

    /// `link::add` with options, e.g. a VXLAN to one other node or a macvlan on `eth0`.
    ///
    /// ```rhai
    /// link::add("vx0", "vxlan", #{id: 42, remote: "192.168.50.2", dev: "eth0"});
    /// link::add("mv0", "macvlan", #{parent: "eth0", mode: "bridge"});
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_opts(
        ctx: NativeCallContext,
        name: &str,
        kind: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        super::add_link(&ctx, None, name, kind, opts)
    }

    /// `link::add` inside a netns, like `ip -n NS link add NAME type KIND`.
    ///
    /// ```rhai
    /// link::add("red", "tap0", "tap");
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_ns(ctx: NativeCallContext, ns: &str, name: &str, kind: &str) -> RhaiResultOf<()> {
        let ns = nsname(&ctx, ns)?;
        super::add_link(&ctx, ns, name, kind, rhai::Map::new())
    }

    /// `link::add` inside a netns with options; the parent is a link of that netns.
    ///
    /// ```rhai
    /// link::add("node1", "vx0", "vxlan", #{id: 42, remote: "192.168.50.2", dev: "eth0"});
    /// link::add("node1", "eth0.10", "vlan", #{parent: "eth0", id: 10});
    /// ```
    #[rhai_fn(name = "add", return_raw)]
    pub fn add_ns_opts(
        ctx: NativeCallContext,
        ns: &str,
        name: &str,
        kind: &str,
        opts: rhai::Map,
    ) -> RhaiResultOf<()> {
        let ns = nsname(&ctx, ns)?;
        super::add_link(&ctx, ns, name, kind, opts)
    }

    /// The links here, like `ip -d link`: `#{name, index, kind, state, mac, mtu, master,
    /// ...}` each, with the kind's settings where they apply: `vxlan_id`, `remote`, `group`,
    /// `local`, `port` (VXLAN), `vlan_id` (VLAN), `mode` (macvlan, ipvlan, bond) and `parent`
    /// (the link it sits on).
    ///
    /// ```rhai
    /// for l in link::list() { print(`${l.name} ${l.state}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn list(ctx: NativeCallContext) -> RhaiResultOf<rhai::Array> {
        query(&ctx, |b| b.links(None)).map(|v| v.iter().map(to_dyn).collect())
    }

    /// The links inside a netns, like `ip -n NS link`.
    ///
    /// ```rhai
    /// let links = link::list("red");
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list_ns(ctx: NativeCallContext, ns: &str) -> RhaiResultOf<rhai::Array> {
        let ns = nsname(&ctx, ns)?;
        query(&ctx, |b| b.links(ns.as_deref())).map(|v| v.iter().map(to_dyn).collect())
    }
}

/// `link::set`'s map: `mtu`, `mac`, `txqueuelen`, at least one.
fn link_attrs(ctx: &NativeCallContext, m: &rhai::Map) -> RhaiResultOf<crate::net::op::LinkAttrs> {
    use crate::script::{check, invalid};
    let known = ["mtu", "mac", "txqueuelen"];
    crate::script::modules::check_opts(ctx, m, &known)?;
    if m.is_empty() {
        return check(
            ctx,
            Err(invalid(
                "link::set has nothing to set",
                "give #{mtu: N}, #{mac: \"02:..\"} or #{txqueuelen: N}",
            )),
        );
    }
    let int = |key: &str| -> RhaiResultOf<Option<u32>> {
        let Some(v) = m.get(key) else { return Ok(None) };
        let n = v.as_int().ok().and_then(|n| u32::try_from(n).ok());
        check(
            ctx,
            n.map(Some).ok_or_else(|| {
                invalid(
                    format!("option `{key}` must be a whole number from 0 to {}", u32::MAX),
                    format!("e.g. #{{{key}: 1500}}"),
                )
            }),
        )
    };
    let mac = match m.get("mac") {
        None => None,
        Some(v) => {
            let s = v.clone().into_string().map_err(|_| {
                crate::script::fail(
                    ctx,
                    invalid("option `mac` must be a string", "e.g. #{mac: \"02:00:00:00:00:0a\"}"),
                )
            })?;
            check(ctx, crate::net::op::parse_mac(&s))?;
            Some(s.to_lowercase())
        }
    };
    Ok(crate::net::op::LinkAttrs { mtu: int("mtu")?, mac, txqueuelen: int("txqueuelen")? })
}

/// `link::add` in all its forms: the options checked, then one Op.
fn add_link(
    ctx: &NativeCallContext,
    ns: Option<String>,
    name: &str,
    kind: &str,
    opts: rhai::Map,
) -> crate::script::RhaiResultOf<()> {
    let name = crate::script::modules::ifname(ctx, name)?;
    let kind =
        crate::script::check(ctx, crate::script::modules::link_opts::link_kind(kind, &opts))?;
    crate::script::apply(ctx, crate::net::Op::LinkAdd { ns, name, kind })
}
