/* The binary contract between forwarder.bpf.c and its user-space loader.
 *
 * This header is C, shared by the BPF program (compiled with clang -target bpf
 * against vmlinux.h) and by C++ (after <linux/types.h>). It includes nothing
 * itself, so each side brings its own __u8/__u16/__u32/__u64.
 *
 * Every struct here is a map key or value. Pinned maps outlive the process
 * (docs/dataplane.md), so a change to any layout below is a new pin
 * directory version (/sys/fs/bpf/foundry/v2), never an in-place edit.
 * Padding is explicit and must be zero in keys: the kernel hashes all bytes.
 * Addresses are in network byte order, ports and the VNI in host order.
 */
#ifndef FOUNDRY_DATAPLANE_FORWARDER_ABI_H
#define FOUNDRY_DATAPLANE_FORWARDER_ABI_H

#define FDP_VXLAN_PORT 4789
#define FDP_VNI_MAX 0x00ffffffu /* VNIs are 24 bits */
/* Outer Ethernet (14) + IPv4 without options (20) + UDP (8) + VXLAN (8). */
#define FDP_ENCAP_OVERHEAD 50
/* RFC 7348 section 5: the source port comes from a hash of the inner flow,
 * in the dynamic range 49152-65535. */
#define FDP_SPORT_BASE 49152u
#define FDP_SPORT_MASK 0x3fffu

/* Map sizes. fdb is sized for the agent's 100,000-entry acceptance goal with
 * room for learned entries; the loader may override it before load. */
#define FDP_FDB_MAX_ENTRIES 131072
#define FDP_PORTS_MAX 1024
#define FDP_NEIGH_MAX 4096
#define FDP_VNI_MAX_ENTRIES 4096
#define FDP_FLOOD_REMOTE_MAX 16384
/* One flood group (inner devmap) per VNI; each holds that VNI's local ports. */
#define FDP_FLOOD_GROUP_PORTS 256

enum fdp_fdb_type {
  FDP_FDB_LOCAL = 1,  /* a port on this host: redirect to ifindex */
  FDP_FDB_REMOTE = 2, /* behind another VTEP: VXLAN encapsulation */
};

enum fdp_fdb_flags {
  FDP_FDB_F_STATIC = 1 << 0,  /* installed by the control plane; learning never overwrites it */
  FDP_FDB_F_LEARNED = 1 << 1, /* written by the data plane from a source MAC */
  FDP_FDB_F_REWRITE = 1 << 2, /* LOCAL: replace the destination MAC by rewrite_mac */
};

struct fdp_fdb_key {
  __u32 vni;
  __u8 mac[6];
  __u16 pad; /* zero */
};

struct fdp_fdb_entry {
  __u8 type;  /* enum fdp_fdb_type */
  __u8 flags; /* enum fdp_fdb_flags */
  __u8 rewrite_mac[6];
  __u32 ifindex;     /* LOCAL */
  __u32 remote_ip;   /* REMOTE: VTEP IPv4, network order */
  __u16 remote_port; /* REMOTE: UDP destination port; 0 = the VTEP's port */
  __u16 pad;
};

enum fdp_port_flags {
  FDP_PORT_F_UPLINK = 1 << 0, /* underlay interface: VXLAN is decapsulated here */
  FDP_PORT_F_LEARN = 1 << 1,  /* learn source MACs of frames received here */
};

/* ports: ingress ifindex -> what the interface is. */
struct fdp_port {
  __u32 vni;   /* access VNI of a local port; unused on the uplink */
  __u32 flags; /* enum fdp_port_flags */
};

/* neighbours: underlay next hop IPv4 (network order) -> outer Ethernet. */
struct fdp_neigh {
  __u32 ifindex; /* egress interface towards the next hop */
  __u8 src_mac[6];
  __u8 dst_mac[6];
};

/* vtep: single entry at key 0. */
struct fdp_vtep {
  __u32 ip;             /* own underlay IPv4, network order; 0 = no VTEP */
  __u32 uplink_ifindex; /* informational; next hops name their egress */
  __u16 port;           /* VXLAN UDP port (host order), usually 4789 */
  __u16 mtu;            /* uplink MTU: outer IPv4 length must fit */
  __u32 flags;
};

enum fdp_vni_flags {
  /* Some remote VTEP takes this VNI's BUM traffic: copy locally originated
   * broadcast, multicast and unknown unicast frames to bum_events for
   * head-end replication by the agent. */
  FDP_VNI_F_REMOTE_FLOOD = 1 << 0,
};

/* vnis: VNI -> settings. A VXLAN packet whose VNI is absent is dropped. */
struct fdp_vni {
  __u32 flags; /* enum fdp_vni_flags */
  __u32 pad;
};

/* flood_remote: {VNI, VTEP} pairs the agent replicates BUM frames to. */
struct fdp_flood_key {
  __u32 vni;
  __u32 remote_ip; /* network order */
};

struct fdp_flood_remote {
  __u16 port; /* UDP destination port; 0 = the VTEP's port */
  __u16 pad;
  __u32 pad2;
};

/* Sample written to bum_events ahead of the frame bytes. The sample may
 * carry trailing padding (perf aligns records to 8 bytes): frame_len says
 * how many of the bytes after this header are the frame. */
struct fdp_bum_event {
  __u32 vni;
  __u32 ingress_ifindex;
  __u32 frame_len;
  __u32 pad;
};

/* learn_events: ring buffer record for every FDB write the program makes. */
/* The local ports of a VNI as a plain list, for the TC program's flood
 * (bpf_clone_redirect to each): TC cannot broadcast through a devmap as XDP
 * does. Kept by user space alongside the VNI's flood group; a VNI with more
 * local ports than FDP_TC_FLOOD_PORTS floods in TC mode to the first ones
 * only, in ifindex order (docs/dataplane.md). */
#define FDP_TC_FLOOD_PORTS 64

struct fdp_flood_ports {
  __u32 count;
  __u32 ifindex[FDP_TC_FLOOD_PORTS];
};

enum fdp_learn_kind {
  FDP_LEARN_NEW = 1,
  FDP_LEARN_MOVE = 2,
};

struct fdp_learn_event {
  __u32 vni;
  __u32 ifindex;
  __u8 mac[6];
  __u8 kind; /* enum fdp_learn_kind */
  __u8 pad;
};

#define FDP_LEARN_RING_BYTES (256 * 1024)

/* counters: per-CPU array indexed by enum fdp_counter. Every frame the
 * program sees bumps exactly one FDP_V_* (its verdict) and exactly one
 * FDP_R_* (why); FDP_E_* count events that come on top. */
enum fdp_counter {
  /* verdicts */
  FDP_V_ABORTED = 0,
  FDP_V_DROP,
  FDP_V_PASS,
  FDP_V_TX,
  FDP_V_REDIRECT,
  /* reasons: forwarded */
  FDP_R_FWD_LOCAL,       /* unicast to a LOCAL port */
  FDP_R_FLOOD_LOCAL,     /* BUM: broadcast to the VNI's local ports */
  FDP_R_ENCAP,           /* encapsulated towards a REMOTE VTEP */
  /* reasons: passed to the kernel */
  FDP_R_PASS_NOT_PORT,   /* ingress interface is not a configured port */
  FDP_R_PASS_NOT_VXLAN,  /* uplink traffic that is not VXLAN for this VTEP */
  /* reasons: dropped */
  FDP_R_DROP_MALFORMED,  /* truncated or inconsistent headers */
  FDP_R_DROP_VLAN,       /* 802.1Q/802.1ad tag on an access port */
  FDP_R_DROP_BAD_SRC_MAC,/* multicast or zero source MAC */
  FDP_R_DROP_BAD_CSUM,   /* outer IPv4 header checksum wrong */
  FDP_R_DROP_BAD_VXLAN,  /* VXLAN header without the I flag */
  FDP_R_DROP_UNKNOWN_VNI,/* VXLAN VNI not in vnis */
  FDP_R_DROP_SAME_PORT,  /* destination is the ingress port */
  FDP_R_DROP_SPLIT_HORIZON, /* decapsulated frame for a REMOTE entry */
  FDP_R_DROP_NO_VTEP,    /* REMOTE destination but no VTEP configured */
  FDP_R_DROP_NO_NEIGH,   /* no underlay next hop for the remote VTEP */
  FDP_R_DROP_TOO_BIG,    /* encapsulated frame would exceed the uplink MTU */
  FDP_R_DROP_NO_FLOOD_GROUP, /* BUM in a VNI without local flood group */
  FDP_R_DROP_NO_TX_PORT, /* egress ifindex is not in tx_ports */
  FDP_R_DROP_HEADROOM,   /* bpf_xdp_adjust_head/tail (XDP) or bpf_skb_adjust_room/change_head/tail (TC) refused */
  FDP_R_DROP_BAD_FDB,    /* FDB entry of unknown type */
  /* events */
  FDP_E_DECAP,           /* VXLAN header removed */
  FDP_E_LEARN_NEW,       /* source MAC learned */
  FDP_E_LEARN_MOVE,      /* learned MAC moved to another port */
  FDP_E_LEARN_FAILED,    /* fdb full or update refused */
  FDP_E_LEARN_STATIC,    /* source MAC matches a static entry elsewhere: kept */
  FDP_E_BUM_TO_AGENT,    /* BUM frame copied to bum_events */
  FDP_E_BUM_LOST,        /* copy to bum_events failed (no reader) */
  FDP_E_LEARN_EVENT_LOST,/* learn_events ring full: a watcher missed an entry */
  FDP_COUNTER_MAX,
};

struct fdp_counter_val {
  __u64 packets;
  __u64 bytes;
};

#endif /* FOUNDRY_DATAPLANE_FORWARDER_ABI_H */
