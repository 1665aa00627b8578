//! Network namespaces, and `--no-ipv6` (IPv6 off in each new netns and on each link made
//! outside them).

use std::os::fd::AsRawFd;
use std::rc::Rc;

use rtnetlink::packet_route::nsid::{NsidAttribute, NsidMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use super::Kernel;
use super::sysctl::{sysctl_path, sysctl_set};
use crate::net::error::{NetError, NetResult, from_nl, place};
use crate::net::netns;
use crate::net::netns_background::{self, Recorder};
use crate::net::nl::NlSocket;
use crate::net::op::{Op, v6_off_link, v6_off_netns};

impl Kernel {
    /// `ip netns add NAME`.
    pub(super) fn netns_add(&self, name: &str) -> NetResult<()> {
        // The netns is made on this thread or the background one, which also opens its
        // netlink socket while inside (and with --no-ipv6 turns IPv6 off there before
        // anything else exists in it), then comes back: no second trip to open the socket.
        let no_ipv6 = self.no_ipv6.get();
        // In a run, the kernel work goes to the background thread while the recipe goes on
        // (`netns_background`). Not with --no-ipv6, whose sysctl writes inside come first.
        if self.defer_veth.get()
            && !no_ipv6
            && let Some(record) = self.netns_recorder.borrow().clone()
        {
            netns_background::add(name, record)?;
            self.bg_netns.borrow_mut().insert(name.to_string(), self.site.get());
            return Ok(());
        }
        // The writes the plan and --explain print (`Op::no_ipv6_writes`), made here, inside.
        let writes: Vec<(String, String)> = if no_ipv6 {
            v6_off_netns(name).iter().filter_map(sysctl_write).collect()
        } else {
            Vec::new()
        };
        let sock = netns::add_with(name, || -> std::io::Result<NlSocket> {
            for (key, value) in &writes {
                match std::fs::write(sysctl_path(key), value) {
                    // A kernel booted with ipv6.disable=1: nothing to turn off.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    r => r?,
                }
            }
            NlSocket::open()
        })?;
        match sock {
            Ok(sock) => {
                self.socks
                    .borrow_mut()
                    .insert(Some(name.to_string()), (Rc::new(sock), netns::identity_here(name)));
                if no_ipv6 {
                    self.v6_off_ns.borrow_mut().insert(name.to_string());
                }
                Ok(())
            }
            Err(e) if no_ipv6 => {
                // Made, but not as asked: the op fails and the journal drops it.
                let _ = netns::del(name);
                Err(NetError::new(format!("cannot turn IPv6 off in netns {name} (--no-ipv6): {e}")))
            }
            // The netns exists; the next call in it opens a socket the usual way.
            Err(_) => Ok(()),
        }
    }

    /// Where a netns made in the background records its identity; set, a run makes its
    /// netns there ([`Kernel::set_defer_veth`], `netns_background`).
    pub(crate) fn set_netns_recorder(&self, record: Recorder) {
        *self.netns_recorder.borrow_mut() = Some(record);
    }

    /// Whether netns `name` was given to the background thread and not collected since.
    pub(crate) fn in_background(&self, name: &str) -> bool {
        self.bg_netns.borrow().contains_key(name)
    }

    /// Waits for the netns being made in the background and takes their sockets. The
    /// first that could not be made fails here, pointing back at its `netns::add`; the
    /// rest of the run rolls back.
    pub(super) fn collect_netns(&self) -> NetResult<()> {
        if self.bg_netns.borrow().is_empty() {
            return Ok(());
        }
        self.collected(netns_background::finished())
    }

    /// [`Kernel::collect_netns`] for the netns named only, when they are being made: waits
    /// for those and takes their sockets, the rest go on in the background.
    pub(super) fn collect_netns_named(&self, names: &[Option<&str>]) -> NetResult<()> {
        let mut made: Vec<_> = names
            .iter()
            .flatten()
            .filter(|n| self.in_background(n))
            .filter_map(|n| netns_background::take(n))
            .collect();
        // One failed: the error names the first netns that could not be made, as when all
        // are waited for, not the first this caller needed.
        if made.iter().any(|m| m.result.is_err()) {
            made.extend(netns_background::finished());
        }
        self.collected(made)
    }

    fn collected(&self, mut made: Vec<netns_background::Made>) -> NetResult<()> {
        made.sort_by_key(|m| m.seq);
        let mut first_err = None;
        for made in made {
            let Some(site) = self.bg_netns.borrow_mut().remove(&made.name) else { continue };
            self.note_time("(netns in background)", made.took);
            match made.result {
                Ok((sock, id)) => {
                    let here = netns::NetnsId { mntns: None, cookie: None, ..id };
                    self.socks
                        .borrow_mut()
                        .insert(Some(made.name.clone()), (Rc::new(sock), Some(here)));
                    self.made_ids.borrow_mut().push((made.name, id));
                }
                Err(e) => {
                    first_err.get_or_insert(NetError {
                        message: format!(
                            "{} could not be done: {} (made in the background while the recipe went on)",
                            Op::NetnsAdd { name: made.name }.command(),
                            e.message
                        ),
                        site,
                        ..e
                    });
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The identities of the netns collected from the background thread since last asked.
    pub(crate) fn take_made_ids(&self) -> Vec<(String, netns::NetnsId)> {
        std::mem::take(&mut *self.made_ids.borrow_mut())
    }

    /// The cookie of netns `name` read from the socket this executor opened in it, if it
    /// has one (see `netns::identity_with`).
    pub(crate) fn netns_cookie(&self, name: &str) -> Option<u64> {
        let socks = self.socks.borrow();
        let (sock, _) = socks.get(&Some(name.to_string()))?;
        sock.netns_cookie()
    }

    /// The id netns `ns` gives netns `other` (what IFLA_LINK_NETNSID says of a link whose
    /// peer lives there), or None when it gives it none: `ip netns list-id` in `ns`, for one.
    /// `other` None is the netns nslab runs in.
    pub(crate) fn nsid(&self, ns: Option<&str>, other: Option<&str>) -> NetResult<Option<i32>> {
        let file = match other {
            Some(o) => netns::open(o)?,
            None => std::fs::File::open("/proc/thread-self/ns/net")?,
        };
        let mut msg = NsidMessage::default();
        msg.header.family = AddressFamily::Unspec;
        msg.attributes.push(NsidAttribute::Fd(file.as_raw_fd() as u32));
        let answers =
            self.sock(ns)?.request(RouteNetlinkMessage::GetNsId(msg), 0).map_err(|e| {
                from_nl(e, &format!("cannot ask {} for a netns id", place(ns)), |_| None)
            })?;
        Ok(answers.iter().find_map(|m| match m {
            RouteNetlinkMessage::NewNsId(m) => m.attributes.iter().find_map(|a| match a {
                NsidAttribute::Id(id) if *id >= 0 => Some(*id),
                _ => None,
            }),
            _ => None,
        }))
    }

    /// `ip netns del NAME`.
    pub(super) fn netns_del(&self, name: &str) -> NetResult<()> {
        // An open socket keeps a deleted netns alive (the session stops probe servers).
        self.forget(name);
        netns::del(name)
    }

    /// The sysctl writes `--no-ipv6` makes along with `op` (none when it is off), for
    /// `--explain`. Asked before `op` is applied.
    pub(crate) fn no_ipv6_writes(&self, op: &Op) -> Vec<Op> {
        if !self.no_ipv6.get() {
            return Vec::new();
        }
        let off = self.v6_off_ns.borrow();
        op.no_ipv6_writes(|ns| ns.is_some_and(|n| off.contains(n)))
    }

    /// `--no-ipv6` for a link just created in `ns`, before it can come up (so it never gets
    /// a link-local address). Links inside a netns made with IPv6 off need nothing.
    pub(super) fn link_v6_off(&self, ns: Option<&str>, dev: &str) -> NetResult<()> {
        if !self.no_ipv6.get() || ns.is_some_and(|n| self.v6_off_ns.borrow().contains(n)) {
            return Ok(());
        }
        let owned_ns = ns.map(str::to_string);
        let (key, value) = sysctl_write(&v6_off_link(&owned_ns, dev)).expect("a sysctl write");
        match ns {
            // /proc/sys/net resolves against the opening thread's netns, and this thread is
            // where nslab runs: no netns thread needed.
            None => std::fs::write(sysctl_path(&key), &value).map_err(NetError::from),
            Some(_) => sysctl_set(ns, &key, &value),
        }
        .map_err(|e| {
            NetError::new(format!(
                "cannot turn IPv6 off on {dev} in {} (--no-ipv6): {e}",
                place(ns)
            ))
        })
    }
}

/// The key and value of a sysctl-writing Op.
fn sysctl_write(op: &Op) -> Option<(String, String)> {
    let Op::SysctlSet { key, value, .. } = op else { return None };
    Some((key.clone(), value.clone()))
}
