//! The kernel side: typed operations named after iproute2 verbs. Knows nothing of Rhai.

pub mod bridge_vlan;
pub mod capture;
pub mod decode;
pub mod error;
pub mod exec;
pub mod fw;
pub(crate) mod fw_eval;
pub mod info;
pub mod kernel;
pub mod kernel_version;
pub mod link_detail;
pub mod link_kind;
pub mod nat;
pub mod nat_syntax;
pub mod netns;
pub mod netns_background;
pub mod nft_probe;
pub mod nl;
pub mod op;
pub mod probe;
pub mod refusal;
pub mod routing;
pub mod rule;
pub mod tap;
pub mod tc;
pub mod wireguard;

pub use error::{NetError, NetResult};
pub(crate) use kernel::Kernel;
pub(crate) use op::{Ns, Op};
