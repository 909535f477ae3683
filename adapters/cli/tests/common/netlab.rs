//! A small network of namespaces for partition tests: each node runs in its own network
//! namespace, joined to a bridge in the test's namespace by a veth pair. Taking a node's
//! veth down drops every packet to and from it while its TCP connections stay open on both
//! sides, which is what a real partition does; bringing it up heals it. Needs root (CAP_NET_ADMIN)
//! and iproute2. Everything is removed when the lab is dropped.

use std::process::Command;

/// Runs `ip ARGS`, failing the test if it fails.
fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// Namespaces `n<tag>-<i>` on the bridge `b<tag>` with subnet `10.<a>.<b>.0/24`.
pub(crate) struct NetLab {
    tag: String,
    subnet: String,
    members: usize,
}

impl NetLab {
    /// A bridge and `members` namespaces, each with one address on the bridge's subnet.
    pub(crate) fn new(members: usize) -> NetLab {
        let pid = std::process::id();
        let tag = format!("{:x}", pid % 0xFFFF);
        let subnet = format!("10.{}.{}", 100 + (pid / 256) % 100, pid % 256);
        let lab = NetLab {
            tag,
            subnet,
            members: 0,
        };
        let bridge = lab.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&[
            "addr",
            "add",
            &format!("{}.1/24", lab.subnet),
            "dev",
            &bridge,
        ]);
        ip(&["link", "set", &bridge, "up"]);
        let mut lab = lab;
        for member in 0..members {
            let (netns, outside, inside) = lab.names(member);
            ip(&["netns", "add", &netns]);
            lab.members = member + 1;
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            ]);
            ip(&["link", "set", &inside, "netns", &netns]);
            ip(&["link", "set", &outside, "master", &bridge]);
            ip(&["link", "set", &outside, "up"]);
            let address = format!("{}/24", lab.address(member));
            ip(&[
                "netns", "exec", &netns, "ip", "addr", "add", &address, "dev", &inside,
            ]);
            ip(&["netns", "exec", &netns, "ip", "link", "set", &inside, "up"]);
            ip(&["netns", "exec", &netns, "ip", "link", "set", "lo", "up"]);
        }
        lab
    }

    fn bridge(&self) -> String {
        format!("b{}", self.tag)
    }

    /// (namespace, veth end on the bridge, veth end in the namespace) of `member`.
    fn names(&self, member: usize) -> (String, String, String) {
        (
            format!("n{}-{member}", self.tag),
            format!("v{}o{member}", self.tag),
            format!("v{}i{member}", self.tag),
        )
    }

    /// The namespace of `member`.
    pub(crate) fn netns(&self, member: usize) -> String {
        self.names(member).0
    }

    /// The address of `member` on the bridge.
    pub(crate) fn address(&self, member: usize) -> String {
        format!("{}.{}", self.subnet, 11 + member)
    }

    /// Cuts `member` off: every packet to and from it is dropped.
    pub(crate) fn isolate(&self, member: usize) {
        ip(&["link", "set", &self.names(member).1, "down"]);
    }

    /// Joins `member` to the network again.
    pub(crate) fn heal(&self, member: usize) {
        ip(&["link", "set", &self.names(member).1, "up"]);
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for member in 0..self.members {
            let (netns, outside, _) = self.names(member);
            let _ = Command::new("ip").args(["link", "del", &outside]).status();
            let _ = Command::new("ip").args(["netns", "del", &netns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge()])
            .status();
    }
}
