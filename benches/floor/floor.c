// floor: lab(N) with raw syscalls and raw rtnetlink, as an estimate of the
// floor a netlink tool can reach. Not product code.
//
//   floor build N      bridge + N named netns + veth pairs + addresses/routes
//   floor teardown N   remove the N named netns (umount+unlink) and br0
//   floor nsloop N     create N bare named netns, then delete them; prints
//                      NSLOOP create_ms=.. delete_ms=..
//
// How it does it (one process, no forks):
//   * netns: unshare(CLONE_NEWNET) on the main thread, bind-mount
//     /proc/thread-self/ns/net onto /run/netns/hI, open a netlink socket (it
//     stays bound to hI), setns() back to the original netns - what
//     `ip netns add` does, minus the exec.
//   * the veth peer is created directly inside hI (IFLA_NET_NS_FD in the peer
//     info), so no "link set vI netns hI" move.
//   * interface indexes are chosen by us (br0 = 2 in the sandbox root, vI = 2
//     in hI), so every request can be sent without a round trip; requests are
//     packed many per sendmsg() and the ACKs read afterwards.
//
// env FLOOR_SYNC=1: teardown first deletes every vI-br explicitly (one
// RTM_DELLINK each), so nothing is left to the kernel's asynchronous netns
// cleanup.  FLOOR_SYNC=group: br0 and every vI-br carry link group 42 (set at
// build, always), and ONE RTM_DELLINK{IFLA_GROUP=42} deletes them all (the
// kernel unregisters the whole batch together, `ip link del group 42`).
// env FLOOR_QUEUES=kernel: veth ends with the kernel's default queue count (one per CPU)
// instead of one each (see one_queue).
// env FLOOR_NOIPV6=1: set net.ipv6.conf.default.disable_ipv6=1 in the sandbox
// root and in every hI before links are made (experiment: IPv6 link-local
// chatter - DAD/RS/MLD multicast - is flooded by br0 to every port, O(N^2)).
// env FLOOR_BRIDGE_LAST=1: br0 made down, brought up by the last request.
// env FLOOR_ORDER=host: the recipe's order (benches/lab.rhai) instead of phases: per
// host, its netns, its veth, then its 4 requests inside, before the next host. The same
// requests; only when each host comes up differs (see benches/README.md, "Why the cost
// per host grows").
// env FLOOR_PIPE=1: the netns are made on a second thread, in order, and the main thread
// creates each veth pair as soon as its netns is there (what `nslab run` does): the two
// phases overlap, contending for RTNL.
// env FLOOR_TD=plain: teardown as before the tenth round, without first bringing br0 down
// (see benches/README.md, "Teardown": right after a build, the bridge still floods every
// host's IPv6 chatter to every port, and that competes with the teardown).
// env BENCH_INTERNAL_FILE: appends internal_<op>_ms=...
// Refuses to run unless BENCH_SANDBOX_PID names a process in our netns
// (set by bench/lib/prelude.sh).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LAB_GROUP 42 // link group of br0 and every vI-br (for bulk delete)
#define BR_IDX 2
#define NS_V_IDX 2
#define BUFSZ (1 << 20)
#ifndef CHUNK
#define CHUNK 64 // requests per sendmsg before draining ACKs (cc -DCHUNK=1: one round trip each)
#endif

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "floor: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (errno %d: %s)\n", errno, strerror(errno));
    va_end(ap);
    exit(1);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// ---- tiny netlink request builder -------------------------------------
struct nl {
    int fd;
    uint32_t seq;
    char *buf;
    size_t len;     // bytes queued
    int pending;    // requests queued, not yet sent
    int unacked;    // requests sent, ACK not yet read
};

static void nl_open(struct nl *s) {
    s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s->fd < 0) die("socket");
    int sz = 4 << 20;
    setsockopt(s->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz);
    setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (bind(s->fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
    s->seq = 1;
    s->buf = malloc(BUFSZ);
    s->len = s->pending = s->unacked = 0;
}

static void nl_close(struct nl *s) {
    close(s->fd);
    free(s->buf);
}

static struct nlmsghdr *msg_begin(struct nl *s, uint16_t type, uint16_t flags, const void *hdr, size_t hlen) {
    struct nlmsghdr *h = (struct nlmsghdr *)(s->buf + s->len);
    memset(h, 0, NLMSG_SPACE(hlen));
    h->nlmsg_len = NLMSG_LENGTH(hlen);
    h->nlmsg_type = type;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    h->nlmsg_seq = s->seq++;
    memcpy(NLMSG_DATA(h), hdr, hlen);
    return h;
}

static struct rtattr *attr(struct nlmsghdr *h, uint16_t type, const void *data, size_t dlen) {
    struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
    a->rta_type = type;
    a->rta_len = RTA_LENGTH(dlen);
    if (dlen) memcpy(RTA_DATA(a), data, dlen);
    h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
    return a;
}
static void attr_str(struct nlmsghdr *h, uint16_t type, const char *s) { attr(h, type, s, strlen(s) + 1); }
static void attr_u32(struct nlmsghdr *h, uint16_t type, uint32_t v) { attr(h, type, &v, 4); }
static struct rtattr *nest(struct nlmsghdr *h, uint16_t type) { return attr(h, type, NULL, 0); }
static void nest_end(struct nlmsghdr *h, struct rtattr *a) { a->rta_len = (char *)h + h->nlmsg_len - (char *)a; }

static void nl_drain(struct nl *s);
static void msg_end(struct nl *s, struct nlmsghdr *h) {
    s->len += NLMSG_ALIGN(h->nlmsg_len);
    s->pending++;
    if (s->pending >= CHUNK || s->len > BUFSZ / 2) nl_drain(s);
}

// send everything queued, then read every outstanding ACK
static void nl_drain(struct nl *s) {
    if (s->len) {
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
        if (sendto(s->fd, s->buf, s->len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) die("sendto");
        s->unacked += s->pending;
        s->len = s->pending = 0;
    }
    char rb[65536];
    while (s->unacked > 0) {
        ssize_t r = recv(s->fd, rb, sizeof rb, 0);
        if (r < 0) die("recv");
        for (struct nlmsghdr *h = (struct nlmsghdr *)rb; NLMSG_OK(h, (size_t)r); h = NLMSG_NEXT(h, r)) {
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                if (e->error) {
                    errno = -e->error;
                    die("netlink request seq %u (type %u) failed", h->nlmsg_seq, e->msg.nlmsg_type);
                }
                s->unacked--;
            }
        }
    }
}

// ---- lab requests ------------------------------------------------------
static void link_up(struct nl *s, int idx) {
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = idx, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    struct nlmsghdr *h = msg_begin(s, RTM_NEWLINK, 0, &ifi, sizeof ifi);
    msg_end(s, h);
}

static void addr_add(struct nl *s, int idx, uint32_t a, int plen) {
    struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = plen, .ifa_index = idx};
    struct nlmsghdr *h = msg_begin(s, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
    attr(h, IFA_LOCAL, &a, 4);
    attr(h, IFA_ADDRESS, &a, 4);
    msg_end(s, h);
}

static void route_default(struct nl *s, uint32_t gw) {
    struct rtmsg rt = {.rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN, .rtm_protocol = RTPROT_BOOT,
                       .rtm_scope = RT_SCOPE_UNIVERSE, .rtm_type = RTN_UNICAST};
    struct nlmsghdr *h = msg_begin(s, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt);
    attr(h, RTA_GATEWAY, &gw, 4);
    msg_end(s, h);
}

static void bridge_add(struct nl *s) {
    // FLOOR_BRIDGE_LAST=1: br0 is made down and brought up by the very last request, after
    // every host is configured (nothing is flooded while the hosts come up).
    unsigned up = getenv("FLOOR_BRIDGE_LAST") ? 0 : IFF_UP;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = BR_IDX, .ifi_flags = up, .ifi_change = IFF_UP};
    struct nlmsghdr *h = msg_begin(s, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    attr_str(h, IFLA_IFNAME, "br0");
    attr_u32(h, IFLA_GROUP, LAB_GROUP);
    struct rtattr *li = nest(h, IFLA_LINKINFO);
    attr_str(h, IFLA_INFO_KIND, "bridge");
    nest_end(h, li);
    msg_end(s, h);
}

// One TX and one RX queue per veth end, as nslab makes them (src/net/kernel/veth.rs): the
// kernel then need not shrink its one-per-CPU default to the single queue a veth uses,
// which waits for an expedited RCU grace period per end. lab(1000): 1567 ms against 1857
// ms (benches/README.md). env FLOOR_QUEUES=kernel: the kernel's default, as before.
static int one_queue;

static void veth_add(struct nl *s, int i, int nsfd) {
    char name[IFNAMSIZ], peer[IFNAMSIZ];
    snprintf(name, sizeof name, "v%d-br", i);
    snprintf(peer, sizeof peer, "v%d", i);
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    struct nlmsghdr *h = msg_begin(s, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    attr_str(h, IFLA_IFNAME, name);
    attr_u32(h, IFLA_MASTER, BR_IDX);
    attr_u32(h, IFLA_GROUP, LAB_GROUP);
    if (one_queue) {
        attr_u32(h, IFLA_NUM_TX_QUEUES, 1);
        attr_u32(h, IFLA_NUM_RX_QUEUES, 1);
    }
    struct rtattr *li = nest(h, IFLA_LINKINFO);
    attr_str(h, IFLA_INFO_KIND, "veth");
    struct rtattr *data = nest(h, IFLA_INFO_DATA);
    struct rtattr *pi = nest(h, VETH_INFO_PEER);
    // the peer's struct ifinfomsg sits inside the VETH_INFO_PEER attribute
    struct ifinfomsg pifi = {.ifi_family = AF_UNSPEC, .ifi_index = NS_V_IDX};
    memcpy((char *)h + h->nlmsg_len, &pifi, sizeof pifi);
    h->nlmsg_len += NLMSG_ALIGN(sizeof pifi);
    attr_str(h, IFLA_IFNAME, peer);
    attr_u32(h, IFLA_NET_NS_FD, nsfd);
    if (one_queue) {
        attr_u32(h, IFLA_NUM_TX_QUEUES, 1);
        attr_u32(h, IFLA_NUM_RX_QUEUES, 1);
    }
    nest_end(h, pi);
    nest_end(h, data);
    nest_end(h, li);
    msg_end(s, h);
}

// one request deletes every link of the group in this netns (and veth peers)
static void link_del_group(struct nl *s, uint32_t group) {
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    struct nlmsghdr *h = msg_begin(s, RTM_DELLINK, 0, &ifi, sizeof ifi);
    attr_u32(h, IFLA_GROUP, group);
    msg_end(s, h);
}

static void link_down_name(struct nl *s, const char *name) {
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_change = IFF_UP};
    struct nlmsghdr *h = msg_begin(s, RTM_NEWLINK, 0, &ifi, sizeof ifi);
    attr_str(h, IFLA_IFNAME, name);
    msg_end(s, h);
}

static void link_del_name(struct nl *s, const char *name) {
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    struct nlmsghdr *h = msg_begin(s, RTM_DELLINK, 0, &ifi, sizeof ifi);
    attr_str(h, IFLA_IFNAME, name);
    msg_end(s, h);
}

// ---- named netns, the way `ip netns add/del` does it --------------------
static void rundir_setup(void) {
    mkdir("/run/netns", 0755);
    // like iproute2: make /run/netns a shared mount point (bind it onto itself if needed)
    if (mount("", "/run/netns", "none", MS_SHARED | MS_REC, NULL) != 0) {
        if (mount("/run/netns", "/run/netns", "none", MS_BIND | MS_REC, NULL) != 0) die("bind /run/netns");
        if (mount("", "/run/netns", "none", MS_SHARED | MS_REC, NULL) != 0) die("share /run/netns");
    }
}

// creates /run/netns/<name>; returns an fd of the new netns and, if sock is
// non-NULL, opens a netlink socket bound to it. Leaves us in the original netns.
// FLOOR_NOIPV6=1: new interfaces get no IPv6 (no link-local, DAD, RS, MLD),
// written in the netns we are currently in (only ever a sandbox netns).
static void maybe_noipv6(void) {
    if (!getenv("FLOOR_NOIPV6")) return;
    int fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY | O_CLOEXEC);
    if (fd < 0) die("open disable_ipv6");
    if (write(fd, "1", 1) != 1) die("write disable_ipv6");
    close(fd);
}

static int netns_create(const char *name, int orig, struct nl *sock) {
    char path[64];
    snprintf(path, sizeof path, "/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL, 0);
    if (fd < 0) die("create %s", path);
    close(fd);
    if (unshare(CLONE_NEWNET) < 0) die("unshare");
    if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0) die("bind %s", path);
    maybe_noipv6();
    int nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) die("open ns");
    if (sock) nl_open(sock);
    if (setns(orig, CLONE_NEWNET) < 0) die("setns back");
    return nsfd;
}

static void netns_delete(const char *name) {
    char path[64];
    snprintf(path, sizeof path, "/run/netns/%s", name);
    if (umount2(path, MNT_DETACH) < 0) die("umount %s", path);
    if (unlink(path) < 0) die("unlink %s", path);
}

static uint32_t host_addr(int i) {
    return htonl((10u << 24) | ((uint32_t)(i / 250) << 8) | (uint32_t)(i % 250 + 2));
}

// Host i's 4 requests in one sendmsg on its netns's socket (lo up, vI up, address, default
// route), then that socket and the netns fd are closed.
static void host_config(struct nl *s, int nsfd, int i) {
    close(nsfd);
    link_up(s, 1);
    link_up(s, NS_V_IDX);
    addr_add(s, NS_V_IDX, host_addr(i), 16);
    route_default(s, htonl(0x0a000001));
    nl_drain(s);
    nl_close(s);
}

// FLOOR_PIPE: the netns thread and what it has made so far.
struct pipe {
    int n;
    struct nl *ns;
    int *nsfd;
    int made; // under lock
    pthread_mutex_t lock;
    pthread_cond_t more;
};

static void *netns_thread(void *arg) {
    struct pipe *p = arg;
    int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    char name[32];
    for (int i = 1; i <= p->n; i++) {
        snprintf(name, sizeof name, "h%d", i);
        int fd = netns_create(name, orig, &p->ns[i]);
        pthread_mutex_lock(&p->lock);
        p->nsfd[i] = fd;
        p->made = i;
        pthread_cond_signal(&p->more);
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

static void require_sandbox(void) {
    const char *pid = getenv("BENCH_SANDBOX_PID");
    char p[64];
    struct stat a, b;
    if (!pid) goto bad;
    snprintf(p, sizeof p, "/proc/%s/ns/net", pid);
    if (stat(p, &a) || stat("/proc/self/ns/net", &b) || a.st_ino != b.st_ino || a.st_dev != b.st_dev) goto bad;
    return;
bad:
    fprintf(stderr, "floor: refusing to run outside the bench sandbox (BENCH_SANDBOX_PID)\n");
    exit(97);
}

static void report(const char *op, double ms) {
    const char *f = getenv("BENCH_INTERNAL_FILE");
    if (!f) return;
    FILE *o = fopen(f, "a");
    if (!o) return;
    fprintf(o, "internal_%s_ms=%.1f\n", op, ms);
    fclose(o);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: floor build|teardown|nsloop N\n");
        return 2;
    }
    require_sandbox();
    int n = atoi(argv[2]);
    one_queue = !(getenv("FLOOR_QUEUES") && !strcmp(getenv("FLOOR_QUEUES"), "kernel"));
    struct rlimit rl = {.rlim_cur = 4 * (rlim_t)n + 64, .rlim_max = 4 * (rlim_t)n + 64};
    struct rlimit cur;
    getrlimit(RLIMIT_NOFILE, &cur);
    if (cur.rlim_max < rl.rlim_max) rl.rlim_max = cur.rlim_max;
    if (rl.rlim_cur > rl.rlim_max) rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    double t0 = now_ms();
    char name[32];
    if (!strcmp(argv[1], "build")) {
        int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        rundir_setup();
        maybe_noipv6();
        struct nl root;
        nl_open(&root);
        bridge_add(&root);
        addr_add(&root, BR_IDX, htonl(0x0a000001), 16);
        struct nl *ns = calloc(n + 1, sizeof *ns);
        int *nsfd = calloc(n + 1, sizeof *nsfd);
        const char *order = getenv("FLOOR_ORDER");
        if (order && !strcmp(order, "host")) {
            nl_drain(&root);
            for (int i = 1; i <= n; i++) {
                snprintf(name, sizeof name, "h%d", i);
                nsfd[i] = netns_create(name, orig, &ns[i]);
                veth_add(&root, i, nsfd[i]);
                nl_drain(&root);
                host_config(&ns[i], nsfd[i], i);
            }
            report("build", now_ms() - t0);
            return 0;
        }
        if (getenv("FLOOR_PIPE")) {
            struct pipe p = {.n = n, .ns = ns, .nsfd = nsfd, .made = 0};
            pthread_mutex_init(&p.lock, NULL);
            pthread_cond_init(&p.more, NULL);
            pthread_t th;
            if (pthread_create(&th, NULL, netns_thread, &p)) die("pthread_create");
            for (int i = 1; i <= n; i++) {
                pthread_mutex_lock(&p.lock);
                int ready = p.made >= i;
                pthread_mutex_unlock(&p.lock);
                if (!ready) {
                    // send what is queued, then wait for the netns
                    nl_drain(&root);
                    pthread_mutex_lock(&p.lock);
                    while (p.made < i) pthread_cond_wait(&p.more, &p.lock);
                    pthread_mutex_unlock(&p.lock);
                }
                veth_add(&root, i, nsfd[i]);
            }
            nl_drain(&root);
            pthread_join(th, NULL);
            double t_veth = now_ms();
            for (int i = 1; i <= n; i++) host_config(&ns[i], nsfd[i], i);
            report("build", now_ms() - t0);
            const char *f = getenv("BENCH_INTERNAL_FILE");
            FILE *o = f ? fopen(f, "a") : NULL;
            if (o) {
                fprintf(o, "phase_netns_veth_ms=%.1f phase_nscfg_ms=%.1f\n", t_veth - t0, now_ms() - t_veth);
                fclose(o);
            }
            return 0;
        }
        // 1. all named netns (+ a netlink socket inside each)
        for (int i = 1; i <= n; i++) {
            snprintf(name, sizeof name, "h%d", i);
            nsfd[i] = netns_create(name, orig, &ns[i]);
        }
        double t_ns = now_ms();
        // 2. all veth pairs, peer created directly in hI, pipelined on one socket
        for (int i = 1; i <= n; i++) veth_add(&root, i, nsfd[i]);
        nl_drain(&root);
        double t_veth = now_ms();
        // 3. per-host config, 4 requests in one sendmsg per netns
        for (int i = 1; i <= n; i++) host_config(&ns[i], nsfd[i], i);
        if (getenv("FLOOR_BRIDGE_LAST")) {
            link_up(&root, BR_IDX);
            nl_drain(&root);
        }
        double t_cfg = now_ms();
        report("build", t_cfg - t0);
        const char *f = getenv("BENCH_INTERNAL_FILE");
        FILE *o = f ? fopen(f, "a") : NULL;
        if (o) {
            fprintf(o, "phase_netns_ms=%.1f phase_veth_ms=%.1f phase_nscfg_ms=%.1f\n", t_ns - t0, t_veth - t_ns,
                    t_cfg - t_veth);
            fclose(o);
        }
    } else if (!strcmp(argv[1], "teardown")) {
        struct nl root;
        nl_open(&root);
        const char *sync = getenv("FLOOR_SYNC");
        if (sync && !strcmp(sync, "group")) {
            // br0 and all vI-br (and so their peers vI) in ONE request
            link_del_group(&root, LAB_GROUP);
            nl_drain(&root);
        } else if (sync) {
            for (int i = 1; i <= n; i++) {
                snprintf(name, sizeof name, "v%d-br", i);
                link_del_name(&root, name);
            }
            nl_drain(&root);
        }
        const char *td = getenv("FLOOR_TD");
        if (!(td && !strcmp(td, "plain")) && !(sync && !strcmp(sync, "group"))) {
            link_down_name(&root, "br0");
            nl_drain(&root);
        }
        for (int i = 1; i <= n; i++) {
            snprintf(name, sizeof name, "h%d", i);
            netns_delete(name);
        }
        if (!(sync && !strcmp(sync, "group"))) {
            link_del_name(&root, "br0");
            nl_drain(&root);
        }
        report("teardown", now_ms() - t0);
    } else if (!strcmp(argv[1], "nsloop")) {
        int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        rundir_setup();
        for (int i = 1; i <= n; i++) {
            snprintf(name, sizeof name, "bare%d", i);
            close(netns_create(name, orig, NULL));
        }
        double t1 = now_ms();
        for (int i = 1; i <= n; i++) {
            snprintf(name, sizeof name, "bare%d", i);
            netns_delete(name);
        }
        double t2 = now_ms();
        printf("NSLOOP tool=floor n=%d create_ms=%.1f delete_ms=%.1f\n", n, t1 - t0, t2 - t1);
    } else {
        fprintf(stderr, "usage: floor build|teardown|nsloop N\n");
        return 2;
    }
    return 0;
}
