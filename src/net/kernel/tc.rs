//! Root qdiscs over rtnetlink: RTM_NEWQDISC / RTM_DELQDISC / RTM_GETQDISC on the netns's
//! socket, no `tc` process. The netem and tbf options are built in `net/tc.rs`.

use rtnetlink::packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_REPLACE, Nla};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcOption};

use super::Kernel;
use crate::net::error::{NetResult, from_nl, place};
use crate::net::refusal::qdisc_kind_missing;
use crate::net::tc::{Qdisc, QdiscInfo, handle_text};

const TCA_OPTIONS: u16 = 2;

/// The payload of a dumped `TCA_OPTIONS` the crate kept as raw bytes (netem, tbf).
fn raw_options(m: &TcMessage) -> Option<Vec<u8>> {
    m.attributes.iter().find_map(|a| match a {
        TcAttribute::Options(opts) => opts.iter().find_map(|o| match o {
            TcOption::Other(nla) if nla.kind() == TCA_OPTIONS => {
                let mut b = vec![0; nla.value_len()];
                nla.emit_value(&mut b);
                Some(b)
            }
            _ => None,
        }),
        _ => None,
    })
}

/// A qdisc message as [`QdiscInfo`].
fn info_of(m: &TcMessage, dev: String) -> QdiscInfo {
    let kind = m
        .attributes
        .iter()
        .find_map(|a| if let TcAttribute::Kind(k) = a { Some(k.clone()) } else { None })
        .unwrap_or_default();
    let qdisc = raw_options(m).and_then(|b| Qdisc::decode(&kind, &b));
    QdiscInfo {
        dev,
        kind,
        handle: handle_text(m.header.handle.into()),
        parent: handle_text(m.header.parent.into()),
        qdisc,
    }
}

impl Kernel {
    /// Every qdisc in `ns`, like `tc qdisc show`, with (index, info) pairs.
    fn qdisc_dump(&self, ns: Option<&str>) -> NetResult<Vec<(u32, QdiscInfo)>> {
        let names = self.link_names(ns)?;
        let msgs = self
            .sock(ns)?
            .dump(RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default()))
            .map_err(|e| from_nl(e, &format!("cannot list qdiscs in {}", place(ns)), |_| None))?;
        let mut out = Vec::new();
        for m in msgs {
            let RouteNetlinkMessage::NewQueueDiscipline(m) = m else { continue };
            let index = m.header.index as u32;
            let dev = names.get(&index).cloned().unwrap_or_else(|| index.to_string());
            out.push((index, info_of(&m, dev)));
        }
        Ok(out)
    }

    pub fn qdiscs(&self, ns: Option<&str>) -> NetResult<Vec<QdiscInfo>> {
        Ok(self.qdisc_dump(ns)?.into_iter().map(|(_, q)| q).collect())
    }

    /// The root qdisc of `dev`: one RTM_GETQDISC for the device's root. The kernel answers a
    /// get of a qdisc as a notification (qdisc_notify), which reaches the asker only with
    /// NLM_F_ECHO. A dump would walk every qdisc of the netns and need the link names too:
    /// 19 ms per call in a netns of 100 veths (NSLAB_TIMING), against one round trip.
    pub fn root_qdisc(&self, ns: Option<&str>, dev: &str) -> NetResult<QdiscInfo> {
        let index = self.link_index(ns, dev)?;
        let mut m = TcMessage::with_index(index as i32);
        m.header.parent = TcHandle::ROOT;
        let what = format!("cannot read the qdisc of {dev} in {}", place(ns));
        let answer = self
            .sock(ns)?
            .echo(RouteNetlinkMessage::GetQueueDiscipline(m))
            .map_err(|e| from_nl(e, &what, |_| None))?;
        let info = answer.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewQueueDiscipline(m) => Some(info_of(&m, dev.to_string())),
            _ => None,
        });
        // A link that never was up has no qdisc to report: the kernel's default comes.
        Ok(info.unwrap_or(QdiscInfo {
            dev: dev.to_string(),
            kind: "noop".into(),
            handle: "0:".into(),
            parent: "root".into(),
            qdisc: None,
        }))
    }

    /// `tc qdisc replace dev DEV root …`, or `tc qdisc del dev DEV root` for the default
    /// (nothing to do when the root is the kernel's own already).
    pub(super) fn tc_set(&self, ns: Option<&str>, dev: &str, qdisc: &Qdisc) -> NetResult<()> {
        let index = self.link_index(ns, dev)?;
        let mut m = TcMessage::with_index(index as i32);
        m.header.parent = TcHandle::ROOT;
        let what = format!("cannot set the qdisc of {dev} in {}", place(ns));
        let sock = self.sock(ns)?;
        match qdisc.options_attr() {
            None => {
                if self.root_qdisc(ns, dev)?.handle == "0:" {
                    return Ok(());
                }
                match sock.ack(RouteNetlinkMessage::DelQueueDiscipline(m), 0) {
                    // Gone meanwhile: the default is back, as asked.
                    Err(e) if crate::net::error::errno_of(&e) == Some(libc::ENOENT) => Ok(()),
                    r => r,
                }
            }
            Some(opts) => {
                m.attributes.push(TcAttribute::Kind(qdisc.kind().to_string()));
                // The whole TCA_OPTIONS attribute as built (header included): the crate
                // would nest an `Other` option inside a second TCA_OPTIONS.
                m.attributes
                    .push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, opts[4..].to_vec())));
                sock.ack(RouteNetlinkMessage::NewQueueDiscipline(m), NLM_F_CREATE | NLM_F_REPLACE)
            }
        }
        .map_err(|e| {
            from_nl(e, &what, |errno| match errno {
                // "Specified qdisc kind is unknown": the module is missing (netem here).
                libc::ENOENT => Some(qdisc_kind_missing(qdisc.kind())),
                _ => None,
            })
        })
    }
}
