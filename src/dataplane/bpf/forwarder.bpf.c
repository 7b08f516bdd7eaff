// SPDX-License-Identifier: GPL-2.0
/* Foundry's XDP forwarder: an L2 switch per VNI and a VXLAN tunnel endpoint.
 *
 * Access ports (container-side veths) belong to one VNI each. A frame from an
 * access port is looked up by {VNI, destination MAC} in the forwarding
 * database: LOCAL entries are redirected to their port through tx_ports,
 * REMOTE entries are wrapped in VXLAN (RFC 7348) and sent to the underlay
 * next hop, and broadcast, multicast or unknown unicast (BUM) frames are
 * broadcast to the VNI's flood group, a devmap of its local ports. If remote
 * VTEPs take the VNI's BUM traffic, the frame is also copied to bum_events,
 * from which the agent does head-end replication (docs/dataplane.md).
 *
 * On the uplink, UDP to the VTEP's address and VXLAN port with the I flag and
 * a known VNI is decapsulated and the inner frame forwarded through the same
 * table; everything else on the uplink goes to the kernel (XDP_PASS).
 *
 * Every exit goes through finish(), which counts one verdict and one reason
 * (enum fdp_counter); user space reads the per-CPU counters.
 */
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "foundry/dataplane/forwarder_abi.h"

/* Header layouts written out here instead of taken from vmlinux.h: no
 * bitfields (iphdr's ihl/version), no unions, and the code reads the same as
 * the RFC diagrams. All are naturally packed. */
struct fdp_eth {
  __u8 dst[6];
  __u8 src[6];
  __be16 proto;
};

struct fdp_ipv4 {
  __u8 ver_ihl;
  __u8 tos;
  __be16 tot_len;
  __be16 id;
  __be16 frag_off;
  __u8 ttl;
  __u8 protocol;
  __u16 check;
  __be32 saddr;
  __be32 daddr;
};

struct fdp_ipv6 {
  __be32 ver_tc_flow;
  __be16 payload_len;
  __u8 nexthdr;
  __u8 hop_limit;
  __be32 saddr[4];
  __be32 daddr[4];
};

struct fdp_udp {
  __be16 source;
  __be16 dest;
  __be16 len;
  __u16 check;
};

struct fdp_vxlan {
  __u8 flags; /* RFC 7348: R R R R I R R R */
  __u8 reserved1[3];
  __be32 vni_reserved2; /* VNI in the upper 24 bits */
};

#define ETH_HLEN_ 14
#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define PROTO_TCP 6
#define PROTO_UDP 17
#define IP_DF 0x4000
#define IP_MF_OFFSET 0x3fff
#define VXLAN_FLAG_I 0x08
#define ENCAP_TTL 64
#define DEFAULT_MTU 1500
/* Outer IPv4 packet = inner frame + IPv4 (20) + UDP (8) + VXLAN (8). */
#define OUTER_IP_EXTRA 36

_Static_assert(sizeof(struct fdp_eth) == 14, "ethernet header");
_Static_assert(sizeof(struct fdp_ipv4) == 20, "ipv4 header");
_Static_assert(sizeof(struct fdp_ipv6) == 40, "ipv6 header");
_Static_assert(sizeof(struct fdp_udp) == 8, "udp header");
_Static_assert(sizeof(struct fdp_vxlan) == 8, "vxlan header");
_Static_assert(ETH_HLEN_ + sizeof(struct fdp_ipv4) + sizeof(struct fdp_udp) + sizeof(struct fdp_vxlan) ==
                   FDP_ENCAP_OVERHEAD,
               "encapsulation overhead");
/* pkt_start() and pkt_end() load these offsets. */
_Static_assert(__builtin_offsetof(struct xdp_md, data) == 0 && __builtin_offsetof(struct xdp_md, data_end) == 4,
               "xdp_md layout");
/* finish() indexes counters by verdict. */
_Static_assert(FDP_V_ABORTED == XDP_ABORTED && FDP_V_DROP == XDP_DROP && FDP_V_PASS == XDP_PASS &&
                   FDP_V_TX == XDP_TX && FDP_V_REDIRECT == XDP_REDIRECT,
               "verdict counters follow enum xdp_action");

/* ---- maps ---------------------------------------------------------------- */

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FDP_FDB_MAX_ENTRIES);
  __type(key, struct fdp_fdb_key);
  __type(value, struct fdp_fdb_entry);
} fdb SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FDP_PORTS_MAX);
  __type(key, __u32); /* ifindex */
  __type(value, struct fdp_port);
} ports SEC(".maps");

/* Egress interfaces for unicast redirects: key and value are the ifindex. */
struct {
  __uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
  __uint(max_entries, FDP_PORTS_MAX);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} tx_ports SEC(".maps");

/* The inner map of flood_groups. Sizes are spelled out: libbpf needs a
 * complete value type here, and vmlinux.h's bpf_devmap_val would only be a
 * forward declaration in this object's BTF. User space creates one per VNI
 * with exactly these parameters (the kernel compares them on insert). */
struct flood_group {
  __uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
  __uint(max_entries, FDP_FLOOD_GROUP_PORTS);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
  __uint(max_entries, FDP_VNI_MAX_ENTRIES);
  __type(key, __u32); /* VNI */
  __array(values, struct flood_group);
} flood_groups SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FDP_NEIGH_MAX);
  __type(key, __u32); /* next hop IPv4, network order */
  __type(value, struct fdp_neigh);
} neighbours SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct fdp_vtep);
} vtep SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FDP_VNI_MAX_ENTRIES);
  __type(key, __u32); /* VNI */
  __type(value, struct fdp_vni);
} vnis SEC(".maps");

/* Read only by user space (the BUM replicator); kept here so that it is
 * created and pinned with the rest of the forwarding state. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FDP_FLOOD_REMOTE_MAX);
  __type(key, struct fdp_flood_key);
  __type(value, struct fdp_flood_remote);
} flood_remote SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} bum_events SEC(".maps");

/* VNI -> its local ports as a list, for foundry_tc's flood. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FDP_VNI_MAX_ENTRIES);
  __type(key, __u32); /* VNI */
  __type(value, struct fdp_flood_ports);
} flood_ports SEC(".maps");

/* What learning wrote, for the agent's Watch stream. */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, FDP_LEARN_RING_BYTES);
} learn_events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, FDP_COUNTER_MAX);
  __type(key, __u32);
  __type(value, struct fdp_counter_val);
} counters SEC(".maps");

/* ---- helpers ------------------------------------------------------------- */

/* Packet bounds read through inline assembly: with plain ctx->data loads,
 * clang may merge the loads of several paths into one ctx access at a
 * variable offset, which the verifier rejects ("dereference of modified ctx
 * ptr"). An asm load is opaque, so each stays a constant-offset read. */
static __always_inline void *pkt_start(struct xdp_md *ctx)
{
  void *p;
  asm volatile("%[p] = *(u32 *)(%[ctx] + 0)" : [p] "=r"(p) : [ctx] "r"(ctx));
  return p;
}

static __always_inline void *pkt_end(struct xdp_md *ctx)
{
  void *p;
  asm volatile("%[p] = *(u32 *)(%[ctx] + 4)" : [p] "=r"(p) : [ctx] "r"(ctx));
  return p;
}

static __always_inline void count_len(__u32 idx, __u64 len)
{
  struct fdp_counter_val *c = bpf_map_lookup_elem(&counters, &idx);
  if (c) {
    /* Per-CPU slot: no other writer, so no atomics. */
    c->packets += 1;
    c->bytes += len;
  }
}

/* The frame's length. The programs are not multi-buffer aware (no
 * SEC("xdp.frags")), so the kernel hands them linear frames only and the
 * length is data_end - data: no helper call (bpf_xdp_get_buff_len), which
 * was four calls per forwarded frame. */
static __always_inline __u32 xdp_len(struct xdp_md *ctx)
{
  return (__u32)((long)pkt_end(ctx) - (long)pkt_start(ctx));
}

static __always_inline void count(struct xdp_md *ctx, __u32 idx) { count_len(idx, xdp_len(ctx)); }

static __always_inline int finish(struct xdp_md *ctx, int verdict, __u32 reason)
{
  __u64 len = xdp_len(ctx);
  count_len((__u32)verdict, len);
  count_len(reason, len);
  return verdict;
}

static __always_inline int is_multicast(const __u8 *mac) { return mac[0] & 1; }

static __always_inline int is_zero_mac(const __u8 *mac)
{
  return (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0;
}

/* One's complement sum over a 20-byte IPv4 header. On a header whose check
 * field is zero it yields the checksum to store; on a received header it
 * yields 0 when the checksum is right. */
static __always_inline __u16 ipv4_csum(const void *hdr)
{
  const __u16 *p = hdr;
  __u32 sum = 0;
#pragma unroll
  for (int i = 0; i < 10; i++)
    sum += p[i];
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u16)~sum;
}

/* murmur3's 32-bit mixing steps: cheap and good enough to spread flows over
 * 16384 source ports, which is all RFC 7348 asks of the hash. */
static __always_inline __u32 mix(__u32 h, __u32 k)
{
  k *= 0xcc9e2d51;
  k = (k << 15) | (k >> 17);
  k *= 0x1b873593;
  h ^= k;
  h = (h << 13) | (h >> 19);
  return h * 5 + 0xe6546b64;
}

static __always_inline __u32 fmix(__u32 h)
{
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

static __always_inline __u32 load_mac_hi(const __u8 *m)
{
  return ((__u32)m[0] << 24) | ((__u32)m[1] << 16) | ((__u32)m[2] << 8) | m[3];
}

static __always_inline __u32 load_mac_lo(const __u8 *m) { return ((__u32)m[4] << 8) | m[5]; }

static __always_inline __u32 hash_ports(__u32 h, __u8 proto, void *l4, void *data_end)
{
  if (proto != PROTO_TCP && proto != PROTO_UDP)
    return h;
  __be32 *ports = l4;
  if ((void *)(ports + 1) > data_end)
    return h;
  return mix(h, *ports);
}

/* UDP source port for the outer header: a hash of the inner flow (IP
 * addresses, protocol and ports when present, else the MACs), so that ECMP
 * and RSS in the underlay spread flows but keep each flow in order. */
static __always_inline __u16 flow_source_port(void *data, void *data_end)
{
  struct fdp_eth *eth = data;
  __u32 h = 0x9747b28c;
  if ((void *)(eth + 1) > data_end)
    return FDP_SPORT_BASE;
  h = mix(h, eth->proto);
  if (eth->proto == bpf_htons(ETH_P_IP_)) {
    struct fdp_ipv4 *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) <= data_end) {
      h = mix(h, ip->saddr);
      h = mix(h, ip->daddr);
      h = mix(h, ip->protocol);
      if (ip->ver_ihl == 0x45 && !(ip->frag_off & bpf_htons(IP_MF_OFFSET)))
        h = hash_ports(h, ip->protocol, ip + 1, data_end);
      return FDP_SPORT_BASE | (fmix(h) & FDP_SPORT_MASK);
    }
  } else if (eth->proto == bpf_htons(ETH_P_IPV6_)) {
    struct fdp_ipv6 *ip6 = (void *)(eth + 1);
    if ((void *)(ip6 + 1) <= data_end) {
#pragma unroll
      for (int i = 0; i < 4; i++) {
        h = mix(h, ip6->saddr[i]);
        h = mix(h, ip6->daddr[i]);
      }
      h = mix(h, ip6->nexthdr);
      h = hash_ports(h, ip6->nexthdr, ip6 + 1, data_end);
      return FDP_SPORT_BASE | (fmix(h) & FDP_SPORT_MASK);
    }
  }
  h = mix(h, load_mac_hi(eth->dst));
  h = mix(h, load_mac_lo(eth->dst));
  h = mix(h, load_mac_hi(eth->src));
  h = mix(h, load_mac_lo(eth->src));
  return FDP_SPORT_BASE | (fmix(h) & FDP_SPORT_MASK);
}

static __always_inline void make_fdb_key(struct fdp_fdb_key *k, __u32 vni, const __u8 *mac)
{
  /* Zero the whole key, padding included: the hash covers every byte. */
  __builtin_memset(k, 0, sizeof(*k));
  k->vni = vni;
  __builtin_memcpy(k->mac, mac, 6);
}

/* Learns the source MAC of a frame received on a local port. Writes only
 * when the entry is new or moved: the common case (a known MAC on the same
 * port) costs one lookup and no write, so the hash bucket's cache line stays
 * shared between CPUs. Static entries belong to the control plane. */
static __always_inline void learn(__u64 len, __u32 vni, const __u8 *src, __u32 ifindex)
{
  struct fdp_fdb_key key;
  make_fdb_key(&key, vni, src);
  struct fdp_fdb_entry *old = bpf_map_lookup_elem(&fdb, &key);
  if (old) {
    if (old->type == FDP_FDB_LOCAL && old->ifindex == ifindex)
      return;
    if (old->flags & FDP_FDB_F_STATIC) {
      count_len(FDP_E_LEARN_STATIC, len);
      return;
    }
  }
  struct fdp_fdb_entry entry;
  __builtin_memset(&entry, 0, sizeof(entry));
  entry.type = FDP_FDB_LOCAL;
  entry.flags = FDP_FDB_F_LEARNED;
  entry.ifindex = ifindex;
  if (bpf_map_update_elem(&fdb, &key, &entry, BPF_ANY) != 0) {
    count_len(FDP_E_LEARN_FAILED, len);
    return;
  }
  count_len(old ? FDP_E_LEARN_MOVE : FDP_E_LEARN_NEW, len);
  struct fdp_learn_event ev = {.vni = vni, .ifindex = ifindex, .kind = old ? FDP_LEARN_MOVE : FDP_LEARN_NEW};
  __builtin_memcpy(ev.mac, src, 6);
  if (bpf_ringbuf_output(&learn_events, &ev, sizeof(ev), 0) != 0)
    count_len(FDP_E_LEARN_EVENT_LOST, len);
}

static __always_inline int redirect_port(struct xdp_md *ctx, __u32 ifindex, __u32 reason)
{
  /* The low bits of flags are the verdict when ifindex is not in the map. */
  long r = bpf_redirect_map(&tx_ports, ifindex, XDP_DROP);
  if (r != XDP_REDIRECT)
    return finish(ctx, XDP_DROP, FDP_R_DROP_NO_TX_PORT);
  return finish(ctx, XDP_REDIRECT, reason);
}

/* BUM: broadcast to the VNI's local ports except the one it came in on.
 * Frames from local ports also go to the agent for head-end replication to
 * remote VTEPs when the VNI has any; frames that came out of a tunnel never
 * go back into one (split horizon). */
static __always_inline int flood(struct xdp_md *ctx, __u32 vni, __u32 ingress, int from_uplink)
{
  void *group = bpf_map_lookup_elem(&flood_groups, &vni);
  if (!group)
    return finish(ctx, XDP_DROP, FDP_R_DROP_NO_FLOOD_GROUP);
  if (!from_uplink) {
    struct fdp_vni *info = bpf_map_lookup_elem(&vnis, &vni);
    if (info && (info->flags & FDP_VNI_F_REMOTE_FLOOD)) {
      __u64 len = xdp_len(ctx);
      struct fdp_bum_event ev = {.vni = vni, .ingress_ifindex = ingress, .frame_len = (__u32)len, .pad = 0};
      /* In XDP programs this helper also copies len bytes of the packet. */
      long err = bpf_perf_event_output(ctx, &bum_events, BPF_F_CURRENT_CPU | (len << 32), &ev, sizeof(ev));
      count(ctx, err ? FDP_E_BUM_LOST : FDP_E_BUM_TO_AGENT);
    }
  }
  long r = bpf_redirect_map(group, 0, BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS);
  if (r != XDP_REDIRECT)
    return finish(ctx, XDP_DROP, FDP_R_DROP_NO_TX_PORT);
  return finish(ctx, XDP_REDIRECT, FDP_R_FLOOD_LOCAL);
}

/* Wraps the frame in Ethernet + IPv4 + UDP + VXLAN towards remote_ip. */
static __always_inline int encap(struct xdp_md *ctx, __u32 vni, __be32 remote_ip, __u16 remote_port)
{
  __u32 zero = 0;
  struct fdp_vtep *vt = bpf_map_lookup_elem(&vtep, &zero);
  if (!vt || vt->ip == 0)
    return finish(ctx, XDP_DROP, FDP_R_DROP_NO_VTEP);
  struct fdp_neigh *nh = bpf_map_lookup_elem(&neighbours, &remote_ip);
  if (!nh)
    return finish(ctx, XDP_DROP, FDP_R_DROP_NO_NEIGH);

  __u32 inner_len = xdp_len(ctx);
  __u32 mtu = vt->mtu ? vt->mtu : DEFAULT_MTU;
  if (inner_len + OUTER_IP_EXTRA > mtu)
    return finish(ctx, XDP_DROP, FDP_R_DROP_TOO_BIG);

  __u16 sport = flow_source_port(pkt_start(ctx), pkt_end(ctx));
  __u16 dport = remote_port ? remote_port : vt->port;

  if (bpf_xdp_adjust_head(ctx, -FDP_ENCAP_OVERHEAD) != 0)
    return finish(ctx, XDP_DROP, FDP_R_DROP_HEADROOM);

  void *data = pkt_start(ctx);
  void *data_end = pkt_end(ctx);
  struct fdp_eth *eth = data;
  struct fdp_ipv4 *ip = (void *)(eth + 1);
  struct fdp_udp *udp = (void *)(ip + 1);
  struct fdp_vxlan *vx = (void *)(udp + 1);
  if ((void *)(vx + 1) > data_end)
    return finish(ctx, XDP_DROP, FDP_R_DROP_HEADROOM);

  __builtin_memcpy(eth->dst, nh->dst_mac, 6);
  __builtin_memcpy(eth->src, nh->src_mac, 6);
  eth->proto = bpf_htons(ETH_P_IP_);

  /* Built on the stack so the checksum is computed over known bytes. ID 0
   * with DF set: RFC 6864 allows it for atomic datagrams, and VXLAN must
   * not be fragmented (RFC 7348 section 4.3). */
  struct fdp_ipv4 hdr = {
      .ver_ihl = 0x45,
      .tos = 0,
      .tot_len = bpf_htons(inner_len + OUTER_IP_EXTRA),
      .id = 0,
      .frag_off = bpf_htons(IP_DF),
      .ttl = ENCAP_TTL,
      .protocol = PROTO_UDP,
      .check = 0,
      .saddr = vt->ip,
      .daddr = remote_ip,
  };
  hdr.check = ipv4_csum(&hdr);
  *ip = hdr;

  udp->source = bpf_htons(sport);
  udp->dest = bpf_htons(dport);
  udp->len = bpf_htons(inner_len + sizeof(struct fdp_udp) + sizeof(struct fdp_vxlan));
  udp->check = 0; /* RFC 7348 section 5: SHOULD be zero over IPv4 */

  vx->flags = VXLAN_FLAG_I;
  vx->reserved1[0] = 0;
  vx->reserved1[1] = 0;
  vx->reserved1[2] = 0;
  vx->vni_reserved2 = bpf_htonl(vni << 8);

  if (nh->ifindex == ctx->ingress_ifindex)
    return finish(ctx, XDP_TX, FDP_R_ENCAP);
  return redirect_port(ctx, nh->ifindex, FDP_R_ENCAP);
}

/* Forwards the Ethernet frame at ctx->data within vni. */
static __always_inline int forward(struct xdp_md *ctx, __u32 vni, __u32 ingress, int from_uplink)
{
  void *data = pkt_start(ctx);
  void *data_end = pkt_end(ctx);
  struct fdp_eth *eth = data;
  if ((void *)(eth + 1) > data_end)
    return finish(ctx, XDP_DROP, FDP_R_DROP_MALFORMED);
  if (is_multicast(eth->dst))
    return flood(ctx, vni, ingress, from_uplink);

  struct fdp_fdb_key key;
  make_fdb_key(&key, vni, eth->dst);
  struct fdp_fdb_entry *e = bpf_map_lookup_elem(&fdb, &key);
  if (!e)
    return flood(ctx, vni, ingress, from_uplink); /* unknown unicast */

  if (e->type == FDP_FDB_LOCAL) {
    if (e->ifindex == ingress)
      return finish(ctx, XDP_DROP, FDP_R_DROP_SAME_PORT);
    if (e->flags & FDP_FDB_F_REWRITE)
      __builtin_memcpy(eth->dst, e->rewrite_mac, 6);
    return redirect_port(ctx, e->ifindex, FDP_R_FWD_LOCAL);
  }
  if (e->type == FDP_FDB_REMOTE) {
    if (from_uplink)
      return finish(ctx, XDP_DROP, FDP_R_DROP_SPLIT_HORIZON);
    return encap(ctx, vni, e->remote_ip, e->remote_port);
  }
  return finish(ctx, XDP_DROP, FDP_R_DROP_BAD_FDB);
}

static __always_inline int is_vlan(__be16 proto)
{
  return proto == bpf_htons(ETH_P_8021Q_) || proto == bpf_htons(ETH_P_8021AD_);
}

/* A frame from a container. Access ports are untagged: a VLAN tag would let
 * a container step outside its VNI's broadcast domain, so tagged frames are
 * dropped (and counted) rather than passed to the host. */
static __always_inline int handle_access(struct xdp_md *ctx, const struct fdp_port *port, __u32 ifindex)
{
  void *data = pkt_start(ctx);
  void *data_end = pkt_end(ctx);
  struct fdp_eth *eth = data;
  if ((void *)(eth + 1) > data_end)
    return finish(ctx, XDP_DROP, FDP_R_DROP_MALFORMED);
  if (is_vlan(eth->proto))
    return finish(ctx, XDP_DROP, FDP_R_DROP_VLAN);
  if (is_multicast(eth->src) || is_zero_mac(eth->src))
    return finish(ctx, XDP_DROP, FDP_R_DROP_BAD_SRC_MAC);
  __u32 vni = port->vni;
  if (port->flags & FDP_PORT_F_LEARN)
    learn(xdp_len(ctx), vni, eth->src, ifindex);
  return forward(ctx, vni, ifindex, 0);
}

/* The outer headers of a frame from the underlay, checked alike by the XDP
 * and the TC program. 0 when it is VXLAN to this VTEP with the I flag and a
 * known VNI (*vni, *tot_len = the outer IPv4 length, *inner set);
 * FDP_R_PASS_NOT_VXLAN when it is not ours (the kernel gets it); else the
 * reason to drop it. `len` is the whole frame's length. */
static __always_inline __u32 check_vxlan(void *data, void *data_end, __u32 len, __u32 *vni, __u32 *tot_len,
                                         struct fdp_eth **inner)
{
  struct fdp_eth *eth = data;
  struct fdp_ipv4 *ip = (void *)(eth + 1);
  struct fdp_udp *udp = (void *)(ip + 1);
  if ((void *)(udp + 1) > data_end || eth->proto != bpf_htons(ETH_P_IP_))
    return FDP_R_PASS_NOT_VXLAN;

  __u32 zero = 0;
  struct fdp_vtep *vt = bpf_map_lookup_elem(&vtep, &zero);
  if (!vt || vt->ip == 0 || ip->ver_ihl != 0x45 || ip->daddr != vt->ip || ip->protocol != PROTO_UDP ||
      (ip->frag_off & bpf_htons(IP_MF_OFFSET)) || udp->dest != bpf_htons(vt->port))
    return FDP_R_PASS_NOT_VXLAN;

  /* The kernel's ip_rcv() would verify this; we bypass it. */
  if (ipv4_csum(ip) != 0)
    return FDP_R_DROP_BAD_CSUM;

  struct fdp_vxlan *vx = (void *)(udp + 1);
  struct fdp_eth *in = (void *)(vx + 1);
  if ((void *)(in + 1) > data_end)
    return FDP_R_DROP_MALFORMED;
  __u32 tl = bpf_ntohs(ip->tot_len);
  if (tl < OUTER_IP_EXTRA + ETH_HLEN_ || tl > len - ETH_HLEN_ || bpf_ntohs(udp->len) != tl - sizeof(struct fdp_ipv4))
    return FDP_R_DROP_MALFORMED;
  /* The UDP checksum is not verified: RFC 7348 section 5 leaves that to the
   * receiver (MAY), and Linux sends VXLAN over IPv4 with checksum 0. */
  if (!(vx->flags & VXLAN_FLAG_I))
    return FDP_R_DROP_BAD_VXLAN;
  __u32 v = bpf_ntohl(vx->vni_reserved2) >> 8;
  if (!bpf_map_lookup_elem(&vnis, &v))
    return FDP_R_DROP_UNKNOWN_VNI;
  *vni = v;
  *tot_len = tl;
  *inner = in;
  return 0;
}

/* A frame from the underlay. It is ours when it is IPv4 (no options, not a
 * fragment) UDP to the VTEP's address and port; the kernel gets everything
 * else, including what is too short to tell. Once it is ours, any defect is
 * a drop: nothing else on this host would accept it either. */
static __always_inline int handle_uplink(struct xdp_md *ctx, __u32 ifindex)
{
  __u32 vni, tot_len;
  struct fdp_eth *inner;
  __u32 why = check_vxlan(pkt_start(ctx), pkt_end(ctx), xdp_len(ctx), &vni, &tot_len, &inner);
  if (why == FDP_R_PASS_NOT_VXLAN)
    return finish(ctx, XDP_PASS, why);
  if (why != 0)
    return finish(ctx, XDP_DROP, why);
  __u32 ip_avail = xdp_len(ctx) - ETH_HLEN_;

  /* Bytes after the IPv4 packet (link padding) are not part of the inner
   * frame. */
  if (ip_avail > tot_len && bpf_xdp_adjust_tail(ctx, -(int)(ip_avail - tot_len)) != 0)
    return finish(ctx, XDP_DROP, FDP_R_DROP_HEADROOM);
  if (bpf_xdp_adjust_head(ctx, FDP_ENCAP_OVERHEAD) != 0)
    return finish(ctx, XDP_DROP, FDP_R_DROP_HEADROOM);
  count(ctx, FDP_E_DECAP);

  void *data = pkt_start(ctx);
  void *data_end = pkt_end(ctx);
  inner = data;
  if ((void *)(inner + 1) > data_end)
    return finish(ctx, XDP_DROP, FDP_R_DROP_MALFORMED);
  /* RFC 7348 section 6: decapsulated frames with an inner VLAN tag SHOULD
   * be discarded unless configured otherwise. */
  if (is_vlan(inner->proto))
    return finish(ctx, XDP_DROP, FDP_R_DROP_VLAN);
  if (is_multicast(inner->src) || is_zero_mac(inner->src))
    return finish(ctx, XDP_DROP, FDP_R_DROP_BAD_SRC_MAC);
  return forward(ctx, vni, ifindex, 1);
}

SEC("xdp")
int foundry_forward(struct xdp_md *ctx)
{
  __u32 ifindex = ctx->ingress_ifindex;
  struct fdp_port *port = bpf_map_lookup_elem(&ports, &ifindex);
  if (!port)
    return finish(ctx, XDP_PASS, FDP_R_PASS_NOT_PORT);
  if (port->flags & FDP_PORT_F_UPLINK)
    return handle_uplink(ctx, ifindex);
  return handle_access(ctx, port, ifindex);
}

/* Attached to the container end of a veth pair. veth delivers frames that
 * XDP redirected into it only when the receiving end runs NAPI, which it
 * does when it has an XDP program (or GRO enabled); without one they are
 * dropped silently. This program makes that so and does nothing else. */
SEC("xdp")
int foundry_pass(struct xdp_md *ctx __attribute__((unused)))
{
  return XDP_PASS;
}


/* ---- TC (clsact ingress) ------------------------------------------------- */

/* foundry_tc is the same switch and VTEP as foundry_forward, on the skb path
 * (cls_bpf, direct action, on clsact ingress of the host-side port and of
 * the uplink). It exists for TCP: native XDP on a veth takes GSO away from
 * its peer, so a container's TCP stream crosses XDP one MTU-sized frame at a
 * time, while on the skb path a 64 KB GSO packet stays one packet through
 * forwarding, encapsulation (bpf_skb_adjust_room marks it as UDP tunnel GSO,
 * segmented only if some device on the way cannot take it) and
 * decapsulation. Same maps, same counters, same decisions; the differences
 * are in docs/dataplane.md ("TC mode"). */

#define TC_ACT_OK_ 0
#define TC_ACT_SHOT_ 2
#define TC_ACT_REDIRECT_ 7

/* __sk_buff's data and data_end, read through asm for the reason given at
 * pkt_start(). */
static __always_inline void *skb_start(struct __sk_buff *skb)
{
  void *p;
  asm volatile("%[p] = *(u32 *)(%[ctx] + %[off])"
               : [p] "=r"(p)
               : [ctx] "r"(skb), [off] "i"(__builtin_offsetof(struct __sk_buff, data)));
  return p;
}

static __always_inline void *skb_end(struct __sk_buff *skb)
{
  void *p;
  asm volatile("%[p] = *(u32 *)(%[ctx] + %[off])"
               : [p] "=r"(p)
               : [ctx] "r"(skb), [off] "i"(__builtin_offsetof(struct __sk_buff, data_end)));
  return p;
}

/* Counts verdict (FDP_V_*, as in XDP: drop, pass, redirect) and reason, and
 * returns the TC action for the verdict. */
static __always_inline int tc_finish(struct __sk_buff *skb, __u32 verdict, __u32 reason)
{
  __u64 len = skb->len;
  count_len(verdict, len);
  count_len(reason, len);
  if (verdict == FDP_V_REDIRECT)
    return TC_ACT_REDIRECT_;
  if (verdict == FDP_V_PASS)
    return TC_ACT_OK_;
  return TC_ACT_SHOT_;
}

/* Headers we parse must be in the linear part for direct access; a stack's
 * own packets have them there, this covers the rest. */
static __always_inline void tc_pull(struct __sk_buff *skb, __u32 want)
{
  __u32 linear = (__u32)((long)skb_end(skb) - (long)skb_start(skb));
  if (linear < want && skb->len > linear)
    bpf_skb_pull_data(skb, skb->len < want ? skb->len : want);
}

static __always_inline int tc_redirect_port(struct __sk_buff *skb, __u32 ifindex, __u32 reason)
{
  /* Only to configured access ports, as XDP only redirects through
   * tx_ports: an FDB entry cannot send frames to an arbitrary interface. */
  struct fdp_port *p = bpf_map_lookup_elem(&ports, &ifindex);
  if (!p || (p->flags & FDP_PORT_F_UPLINK))
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_NO_TX_PORT);
  bpf_redirect(ifindex, 0);
  return tc_finish(skb, FDP_V_REDIRECT, reason);
}

/* BUM: a clone to every other local port of the VNI, then the original is
 * dropped (counted as one redirect, as XDP's broadcast). */
static __always_inline int tc_flood(struct __sk_buff *skb, __u32 vni, __u32 ingress, int from_uplink)
{
  struct fdp_flood_ports *fp = bpf_map_lookup_elem(&flood_ports, &vni);
  if (!fp)
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_NO_FLOOD_GROUP);
  __u64 len = skb->len;
  if (!from_uplink) {
    struct fdp_vni *info = bpf_map_lookup_elem(&vnis, &vni);
    if (info && (info->flags & FDP_VNI_F_REMOTE_FLOOD)) {
      struct fdp_bum_event ev = {.vni = vni, .ingress_ifindex = ingress, .frame_len = (__u32)len, .pad = 0};
      /* With an skb context this helper also copies len bytes of the packet. */
      long err = bpf_perf_event_output(skb, &bum_events, BPF_F_CURRENT_CPU | (len << 32), &ev, sizeof(ev));
      count_len(err ? FDP_E_BUM_LOST : FDP_E_BUM_TO_AGENT, len);
    }
  }
  __u32 n = fp->count;
  for (__u32 i = 0; i < FDP_TC_FLOOD_PORTS; i++) {
    if (i >= n)
      break;
    __u32 out = fp->ifindex[i];
    if (out != ingress && out != 0)
      bpf_clone_redirect(skb, out, 0);
  }
  count_len(FDP_V_REDIRECT, len);
  count_len(FDP_R_FLOOD_LOCAL, len);
  return TC_ACT_SHOT_;
}

/* Outer headers as one block, written with one bpf_skb_store_bytes. */
struct fdp_outer {
  struct fdp_eth eth;
  struct fdp_ipv4 ip;
  struct fdp_udp udp;
  struct fdp_vxlan vx;
} __attribute__((packed));

_Static_assert(sizeof(struct fdp_outer) == FDP_ENCAP_OVERHEAD, "outer headers");

#define ADJ_ROOM_ENCAP_L2(len) (((__u64)(len)&BPF_ADJ_ROOM_ENCAP_L2_MASK) << BPF_ADJ_ROOM_ENCAP_L2_SHIFT)

static __always_inline int tc_encap(struct __sk_buff *skb, __u32 vni, __be32 remote_ip, __u16 remote_port)
{
  __u32 zero = 0;
  struct fdp_vtep *vt = bpf_map_lookup_elem(&vtep, &zero);
  if (!vt || vt->ip == 0)
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_NO_VTEP);
  struct fdp_neigh *nh = bpf_map_lookup_elem(&neighbours, &remote_ip);
  if (!nh)
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_NO_NEIGH);

  __u32 inner_len = skb->len;
  __u32 mtu = vt->mtu ? vt->mtu : DEFAULT_MTU;
  /* A GSO packet is checked per segment: gso_size is the inner MSS, and
   * attach keeps container MTUs at uplink MTU - 50. */
  if ((skb->gso_size == 0 && inner_len + OUTER_IP_EXTRA > mtu) || inner_len + OUTER_IP_EXTRA > 0xffff)
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_TOO_BIG);

  void *data = skb_start(skb);
  void *data_end = skb_end(skb);
  struct fdp_eth *inner = data;
  if ((void *)(inner + 1) > data_end)
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_MALFORMED);
  __u16 sport = flow_source_port(data, data_end);
  __u16 dport = remote_port ? remote_port : vt->port;
  __be16 inner_proto = inner->proto;

  struct fdp_outer o;
  __builtin_memcpy(o.eth.dst, nh->dst_mac, 6);
  __builtin_memcpy(o.eth.src, nh->src_mac, 6);
  o.eth.proto = bpf_htons(ETH_P_IP_);
  o.ip.ver_ihl = 0x45;
  o.ip.tos = 0;
  o.ip.tot_len = bpf_htons(inner_len + OUTER_IP_EXTRA);
  o.ip.id = 0;
  o.ip.frag_off = bpf_htons(IP_DF);
  o.ip.ttl = ENCAP_TTL;
  o.ip.protocol = PROTO_UDP;
  o.ip.check = 0;
  o.ip.saddr = vt->ip;
  o.ip.daddr = remote_ip;
  o.ip.check = ipv4_csum(&o.ip);
  o.udp.source = bpf_htons(sport);
  o.udp.dest = bpf_htons(dport);
  o.udp.len = bpf_htons(inner_len + sizeof(struct fdp_udp) + sizeof(struct fdp_vxlan));
  o.udp.check = 0;
  o.vx.flags = VXLAN_FLAG_I;
  o.vx.reserved1[0] = 0;
  o.vx.reserved1[1] = 0;
  o.vx.reserved1[2] = 0;
  o.vx.vni_reserved2 = bpf_htonl(vni << 8);
  __u32 egress = nh->ifindex;

  if (inner_proto == bpf_htons(ETH_P_IP_) || inner_proto == bpf_htons(ETH_P_IPV6_)) {
    /* Room after the Ethernet header, marked as Ethernet-over-UDP tunnel:
     * the kernel records the inner headers, and a GSO packet becomes UDP
     * tunnel GSO. The gso_size (inner MSS) stays: container MTUs already
     * leave room for the outer headers. The old Ethernet header stays in
     * front and is overwritten by the outer one; the inner one is written
     * into the new room. */
    __u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
                  BPF_F_ADJ_ROOM_ENCAP_L2_ETH | ADJ_ROOM_ENCAP_L2(ETH_HLEN_);
    struct fdp_eth saved;
    if (bpf_skb_load_bytes(skb, 0, &saved, sizeof(saved)) != 0)
      return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_MALFORMED);
    if (bpf_skb_adjust_room(skb, FDP_ENCAP_OVERHEAD, BPF_ADJ_ROOM_MAC, flags) != 0)
      return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_HEADROOM);
    if (bpf_skb_store_bytes(skb, FDP_ENCAP_OVERHEAD, &saved, sizeof(saved), 0) != 0)
      return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_HEADROOM);
  } else {
    /* bpf_skb_adjust_room takes only IP packets; others (ARP) are never
     * GSO, so plain headroom in front of the frame does. */
    if (bpf_skb_change_head(skb, FDP_ENCAP_OVERHEAD, 0) != 0)
      return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_HEADROOM);
  }
  if (bpf_skb_store_bytes(skb, 0, &o, sizeof(o), 0) != 0)
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_HEADROOM);
  bpf_redirect(egress, 0);
  return tc_finish(skb, FDP_V_REDIRECT, FDP_R_ENCAP);
}

static __always_inline int tc_forward(struct __sk_buff *skb, __u32 vni, __u32 ingress, int from_uplink)
{
  void *data = skb_start(skb);
  void *data_end = skb_end(skb);
  struct fdp_eth *eth = data;
  if ((void *)(eth + 1) > data_end)
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_MALFORMED);
  if (is_multicast(eth->dst))
    return tc_flood(skb, vni, ingress, from_uplink);

  struct fdp_fdb_key key;
  make_fdb_key(&key, vni, eth->dst);
  struct fdp_fdb_entry *e = bpf_map_lookup_elem(&fdb, &key);
  if (!e)
    return tc_flood(skb, vni, ingress, from_uplink);

  if (e->type == FDP_FDB_LOCAL) {
    if (e->ifindex == ingress)
      return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_SAME_PORT);
    if (e->flags & FDP_FDB_F_REWRITE)
      __builtin_memcpy(eth->dst, e->rewrite_mac, 6);
    return tc_redirect_port(skb, e->ifindex, FDP_R_FWD_LOCAL);
  }
  if (e->type == FDP_FDB_REMOTE) {
    if (from_uplink)
      return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_SPLIT_HORIZON);
    return tc_encap(skb, vni, e->remote_ip, e->remote_port);
  }
  return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_BAD_FDB);
}

static __always_inline int tc_access(struct __sk_buff *skb, const struct fdp_port *port, __u32 ifindex)
{
  tc_pull(skb, ETH_HLEN_ + 40 + 4);
  void *data = skb_start(skb);
  void *data_end = skb_end(skb);
  struct fdp_eth *eth = data;
  if ((void *)(eth + 1) > data_end)
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_MALFORMED);
  /* The stack takes a VLAN tag out of the frame (skb->vlan_tci) before
   * clsact ingress runs; a test frame still carries it inline. */
  if (skb->vlan_present || is_vlan(eth->proto))
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_VLAN);
  if (is_multicast(eth->src) || is_zero_mac(eth->src))
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_BAD_SRC_MAC);
  __u32 vni = port->vni;
  if (port->flags & FDP_PORT_F_LEARN)
    learn(skb->len, vni, eth->src, ifindex);
  return tc_forward(skb, vni, ifindex, 0);
}

static __always_inline int tc_uplink(struct __sk_buff *skb, __u32 ifindex)
{
  tc_pull(skb, FDP_ENCAP_OVERHEAD + ETH_HLEN_);
  __u32 vni, tot_len;
  struct fdp_eth *inner;
  __u32 why = check_vxlan(skb_start(skb), skb_end(skb), skb->len, &vni, &tot_len, &inner);
  if (why == FDP_R_PASS_NOT_VXLAN)
    return tc_finish(skb, FDP_V_PASS, why);
  if (why != 0)
    return tc_finish(skb, FDP_V_DROP, why);
  __u32 ip_avail = skb->len - ETH_HLEN_;

  struct fdp_eth saved = *inner;
  __u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO;
  if (saved.proto == bpf_htons(ETH_P_IP_))
    flags |= BPF_F_ADJ_ROOM_DECAP_L3_IPV4;
  else if (saved.proto == bpf_htons(ETH_P_IPV6_))
    flags |= BPF_F_ADJ_ROOM_DECAP_L3_IPV6;
  if (ip_avail > tot_len && bpf_skb_change_tail(skb, tot_len + ETH_HLEN_, 0) != 0)
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_HEADROOM);
  /* Removes outer IPv4, UDP, VXLAN and the inner Ethernet header behind
   * the outer Ethernet header, which then takes the inner one's bytes. */
  if (bpf_skb_adjust_room(skb, -FDP_ENCAP_OVERHEAD, BPF_ADJ_ROOM_MAC, flags) != 0)
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_HEADROOM);
  if (bpf_skb_store_bytes(skb, 0, &saved, sizeof(saved), 0) != 0)
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_HEADROOM);
  count_len(FDP_E_DECAP, skb->len);

  if (is_vlan(saved.proto))
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_VLAN);
  if (is_multicast(saved.src) || is_zero_mac(saved.src))
    return tc_finish(skb, FDP_V_DROP, FDP_R_DROP_BAD_SRC_MAC);
  return tc_forward(skb, vni, ifindex, 1);
}

SEC("tc")
int foundry_tc(struct __sk_buff *skb)
{
  __u32 ifindex = skb->ifindex;
  struct fdp_port *port = bpf_map_lookup_elem(&ports, &ifindex);
  if (!port)
    return tc_finish(skb, FDP_V_PASS, FDP_R_PASS_NOT_PORT);
  if (port->flags & FDP_PORT_F_UPLINK)
    return tc_uplink(skb, ifindex);
  return tc_access(skb, port, ifindex);
}

char LICENSE[] SEC("license") = "GPL";
