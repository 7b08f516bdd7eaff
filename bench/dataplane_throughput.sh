#!/bin/bash
# Throughput between two containers on two "hosts" (network namespaces this
# script creates), through Foundry's VTEP (foundry-agent + XDP forwarder on
# each host) and through a Linux bridge + kernel vxlan device on each host,
# in one run. Both topologies exist side by side; each round measures both
# paths back to back, so machine load hits them alike.
#
#   cA 192.0.2.1 -- [host A] == underlay 198.51.100.1 <-> .2 == [host B] -- cB 192.0.2.2
#   one more container per host (cA2 .3, cB2 .4), all VNI 100, container MTU 1450,
#   static FDB and ARP for the measured pair (no BUM dependency).
#
# Measures, per round and path:
#   tcp   iperf3 TCP cA -> cB, Mbit/s the receiver got (timeout-guarded)
#   small 60-byte frames (64 on the wire with FCS), UDP cA -> cB, sent by
#         trafgen (netsniff-ng) on cA's eth0; the rate is what arrives in cB:
#         the rx_packets counter of cB's eth0 over a steady window. Also
#         through a third topology, "direct": the same two containers joined
#         by one veth pair, to subtract the generator's and receiver's share.
#   fwd   "forwarding only: the receiver drops at ingress": the same small
#         measurement for foundry and kernel, with a tc clsact ingress drop
#         on cB's eth0 ingress (identical in both topologies, installed for this
#         measurement only, removed afterwards). veth counts rx_packets before
#         tc ingress, so every arrived frame is still counted, but cB's IP/UDP
#         stack (closed port, ICMP unreachable) no longer costs CPU time that
#         both paths would share on this 2-core machine. The "small" numbers
#         (with the receiver's stack) are the issue's measurement; "fwd" shows
#         the forwarding paths alone.
# and prints each round, the medians and the ratios foundry/kernel.
#
# Usage (root): bench/dataplane_throughput.sh [BUILD_DIR] [SECONDS] [ROUNDS]
#   BUILD_DIR holds src/agent/foundry-agent and src/cli/foundry (default: build)
#   SECONDS per measurement (default 10), ROUNDS (default 3)
# Environment: Foundry's attach mode (docs/dataplane.md, "Choosing the attach mode") per
#   measurement: FDTP_TCP_MODE (default tc) for iperf3, FDTP_SMALL_MODE (default native) for
#   trafgen, each one of native|generic|auto|tc; FDTP_XDP_MODE sets both. Two Foundry
#   topologies (prefixes t for TCP and f for small packets) with their own agents, each
#   attached once in its mode: no live mode switch during the measurements.
#   FDTP_ONLY=tcp|small: measure only that (the ratio of the other is then not printed),
#   FDTP_GEN_CPUS: trafgen sender processes (default 1; with 2 on this machine
#   the Foundry path pushes back, the send fails with EAGAIN and trafgen quits).
# Everything it creates (namespaces, agents, generators) is removed on exit,
# also on failure or Ctrl-C. Only 192.0.2.0/24 and 198.51.100.0/24 are used,
# only inside the script's namespaces; host sysctls and IRQs are not touched.
set -euo pipefail

BUILD=${1:-build}
SECS=${2:-10}
ROUNDS=${3:-3}
TCP_MODE=${FDTP_TCP_MODE:-${FDTP_XDP_MODE:-tc}}
SMALL_MODE=${FDTP_SMALL_MODE:-${FDTP_XDP_MODE:-native}}
GEN_CPUS=${FDTP_GEN_CPUS:-1}
ONLY=${FDTP_ONLY:-}
[ "$(id -u)" = 0 ] || { echo "dataplane_throughput: skipped: needs root" >&2; exit 0; }
for tool in iperf3 trafgen ip tc clang timeout awk; do
  command -v $tool >/dev/null || { echo "dataplane_throughput: needs $tool (apt-get install iperf3 netsniff-ng iproute2)" >&2; exit 1; }
done
AGENT=$(realpath "$BUILD/src/agent/foundry-agent")
CLI=$(realpath "$BUILD/src/cli/foundry")
[ -x "$AGENT" ] && [ -x "$CLI" ] || { echo "dataplane_throughput: build foundry-agent and foundry first ($BUILD)" >&2; exit 1; }

P=fdtp$$
NSS=()
PIDS=()
TMP=$(mktemp -d /tmp/foundry-tput.XXXXXX)
cleanup() {
  set +e
  local pid ns
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  # Anything still running in our namespaces was started by this script.
  for ns in "${NSS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  done
  for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

MAC_A=02:00:c0:00:02:01
MAC_B=02:00:c0:00:02:02
MAC_A2=02:00:c0:00:02:03
MAC_B2=02:00:c0:00:02:04

mkns() { ip netns add "$1"; NSS+=("$1"); ip -n "$1" link set lo up; }

# Namespaces for one path (prefix $1): hosts ha hb, containers ca ca2 on A,
# cb cb2 on B, host-side ports pa pa2 / pb pb2, underlay ua <-> ub.
topology() {
  local x=$1 ns
  for ns in ha hb ca ca2 cb cb2; do mkns "$P-$x$ns"; done
  ip link add ua netns "$P-${x}ha" type veth peer name ub netns "$P-${x}hb"
  ip -n "$P-${x}ha" addr add 198.51.100.1/24 dev ua; ip -n "$P-${x}ha" link set ua up
  ip -n "$P-${x}hb" addr add 198.51.100.2/24 dev ub; ip -n "$P-${x}hb" link set ub up
  container "$x" ha pa ca $MAC_A 192.0.2.1
  container "$x" ha pa2 ca2 $MAC_A2 192.0.2.3
  container "$x" hb pb cb $MAC_B 192.0.2.2
  container "$x" hb pb2 cb2 $MAC_B2 192.0.2.4
  ip -n "$P-${x}ca" neigh add 192.0.2.2 lladdr $MAC_B dev eth0 nud permanent
  ip -n "$P-${x}cb" neigh add 192.0.2.1 lladdr $MAC_A dev eth0 nud permanent
}

container() {  # prefix host port container mac ip
  local x=$1 h=$2 port=$3 c=$4
  ip link add "$port" netns "$P-$x$h" type veth peer name eth0 netns "$P-$x$c"
  ip -n "$P-$x$c" link set eth0 address "$5" mtu 1450 up
  ip -n "$P-$x$c" addr add "$6/24" dev eth0
  ip -n "$P-$x$h" link set "$port" mtu 1450 up
}

start_agent() {  # host-ns socket
  # ip netns exec gives the agent a private mount namespace; the agent
  # mounts its own bpffs there, so the host's /sys/fs/bpf is not touched.
  ip netns exec "$1" "$AGENT" --listen "unix:$2" >"$TMP/agent-${1##*-}.log" 2>&1 &
  PIDS+=($!)
  local _
  for _ in $(seq 50); do [ -S "$2" ] && return 0; sleep 0.1; done
  echo "foundry-agent in $1 did not start:" >&2; cat "$TMP/agent-${1##*-}.log" >&2; return 1
}

setup_foundry() {  # prefix mode
  local x=$1 mode=$2
  topology "$x"
  local A="unix:$TMP/${x}a.sock" B="unix:$TMP/${x}b.sock" mac_ua mac_ub
  start_agent "$P-${x}ha" "$TMP/${x}a.sock"
  start_agent "$P-${x}hb" "$TMP/${x}b.sock"
  "$CLI" net --agent "$A" vtep --uplink ua --address 198.51.100.1 --mode "$mode" >/dev/null
  "$CLI" net --agent "$B" vtep --uplink ub --address 198.51.100.2 --mode "$mode" >/dev/null
  "$CLI" net --agent "$A" attach pa --vni 100 --peer-netns "$P-${x}ca" --peer-if eth0 --mode "$mode" >/dev/null
  "$CLI" net --agent "$A" attach pa2 --vni 100 --peer-netns "$P-${x}ca2" --peer-if eth0 --mode "$mode" >/dev/null
  "$CLI" net --agent "$B" attach pb --vni 100 --peer-netns "$P-${x}cb" --peer-if eth0 --mode "$mode" >/dev/null
  "$CLI" net --agent "$B" attach pb2 --vni 100 --peer-netns "$P-${x}cb2" --peer-if eth0 --mode "$mode" >/dev/null
  # Underlay next hops (outer Ethernet of encapsulated frames), static FDB
  # for the measured pair, head-end replication for the rest.
  mac_ua=$(ip -n "$P-${x}ha" -br link show ua | awk '{print $3}')
  mac_ub=$(ip -n "$P-${x}hb" -br link show ub | awk '{print $3}')
  "$CLI" net --agent "$A" neighbor 198.51.100.2 --dev ua --mac "$mac_ub" >/dev/null
  "$CLI" net --agent "$B" neighbor 198.51.100.1 --dev ub --mac "$mac_ua" >/dev/null
  "$CLI" net --agent "$A" fdb add 100 $MAC_B --vtep 198.51.100.2 >/dev/null
  "$CLI" net --agent "$B" fdb add 100 $MAC_A --vtep 198.51.100.1 >/dev/null
  "$CLI" net --agent "$A" fdb add 100 $MAC_A --dev pa >/dev/null
  "$CLI" net --agent "$B" fdb add 100 $MAC_B --dev pb >/dev/null
  "$CLI" net --agent "$A" flood add 100 198.51.100.2 >/dev/null
  "$CLI" net --agent "$B" flood add 100 198.51.100.1 >/dev/null
}

setup_kernel() {
  topology k
  local h local_ip remote_ip
  for h in a b; do
    if [ $h = a ]; then local_ip=198.51.100.1; remote_ip=198.51.100.2; else local_ip=198.51.100.2; remote_ip=198.51.100.1; fi
    ip -n "$P-kh$h" link add br0 type bridge
    ip -n "$P-kh$h" link add vx100 type vxlan id 100 local $local_ip remote $remote_ip dstport 4789 dev "u$h"
    ip -n "$P-kh$h" link set vx100 mtu 1450 master br0 up
    ip -n "$P-kh$h" link set "p$h" master br0
    ip -n "$P-kh$h" link set "p${h}2" master br0
    ip -n "$P-kh$h" link set br0 up
  done
  # The bridges' own FDB, as static as Foundry's: the measured pair is never flooded.
  # "replace": the bridge may have learned a MAC already from IPv6 autoconfiguration.
  ip netns exec "$P-kha" bridge fdb replace $MAC_B dev vx100 master static
  ip netns exec "$P-kha" bridge fdb replace $MAC_B dev vx100 dst 198.51.100.2 self permanent
  ip netns exec "$P-kha" bridge fdb replace $MAC_A dev pa master static
  ip netns exec "$P-khb" bridge fdb replace $MAC_A dev vx100 master static
  ip netns exec "$P-khb" bridge fdb replace $MAC_A dev vx100 dst 198.51.100.1 self permanent
  ip netns exec "$P-khb" bridge fdb replace $MAC_B dev pb master static
}

# The same generator and receiver joined by one veth pair, no forwarding at
# all: the baseline that is subtracted to get what each path itself costs.
setup_direct() {
  mkns "$P-dca"; mkns "$P-dcb"
  # Not "eth0" on this side at creation: the name is also checked where ip
  # runs (the host's namespace), which may have an eth0 of its own.
  ip link add "${P}d" netns "$P-dca" type veth peer name eth0 netns "$P-dcb"
  ip -n "$P-dca" link set "${P}d" name eth0
  ip -n "$P-dca" link set eth0 address $MAC_A mtu 1450 up
  ip -n "$P-dcb" link set eth0 address $MAC_B mtu 1450 up
  ip -n "$P-dca" addr add 192.0.2.1/24 dev eth0
  ip -n "$P-dcb" addr add 192.0.2.2/24 dev eth0
  ip -n "$P-dca" neigh add 192.0.2.2 lladdr $MAC_B dev eth0 nud permanent
  ip -n "$P-dcb" neigh add 192.0.2.1 lladdr $MAC_A dev eth0 nud permanent
}

check_path() {  # prefix
  local x=$1
  ip netns exec "$P-${x}ca" ping -c 3 -i 0.2 -W 1 192.0.2.2 >/dev/null &&
    ip netns exec "$P-${x}ca2" ping -c 2 -i 0.2 -W 1 192.0.2.4 >/dev/null || {
    echo "dataplane_throughput: no connectivity through the $x path" >&2
    if [ "$x" = f ] || [ "$x" = t ]; then
      "$CLI" net --agent "unix:$TMP/${x}a.sock" stats >&2 || true
      "$CLI" net --agent "unix:$TMP/${x}b.sock" stats >&2 || true
      "$CLI" net --agent "unix:$TMP/${x}a.sock" fdb list >&2 || true
    fi
    return 1; }
}

# Mbit/s the receiver got, iperf3 TCP from cA to cB, into RESULT. The
# measurements run in this shell, not in $(...), so that every process they
# start is in PIDS for the EXIT trap.
tcp_run() {  # prefix
  local x=$1 out="$TMP/tcp-$1.txt"
  timeout $((SECS + 20)) ip netns exec "$P-${x}cb" iperf3 -s -1 -B 192.0.2.2 >/dev/null 2>&1 &
  local srv=$!
  PIDS+=($srv)
  local _
  for _ in $(seq 50); do ip netns exec "$P-${x}cb" ss -Htln 'sport = :5201' | grep -q . && break; sleep 0.1; done
  local rp0 rb0
  rp0=$(rx_packets "$P-${x}cb"); rb0=$(rx_bytes "$P-${x}cb")
  if ! timeout $((SECS + 15)) ip netns exec "$P-${x}ca" iperf3 -c 192.0.2.2 -t "$SECS" -f m >"$out" 2>&1; then
    echo "dataplane_throughput: iperf3 through the $x path failed:" >&2; cat "$out" >&2
    kill $srv 2>/dev/null || true; return 1
  fi
  wait $srv 2>/dev/null || true
  # Bytes per packet the receiving container got: ~64 KB when GSO packets
  # arrive whole, ~1.4 KB when something on the way segmented them.
  TCP_RX_SIZE=$(( ($(rx_bytes "$P-${x}cb") - rb0) / ($(rx_packets "$P-${x}cb") - rp0 + 1) ))
  RESULT=$(awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i + 1) == "Mbits/sec") v = $i } END { if (v == "") exit 1; printf "%.0f\n", v }' "$out")
}

rx_packets() { ip netns exec "$1" cat /sys/class/net/eth0/statistics/rx_packets; }
rx_bytes() { ip netns exec "$1" cat /sys/class/net/eth0/statistics/rx_bytes; }
tx_packets() { ip netns exec "$1" cat /sys/class/net/eth0/statistics/tx_packets; }
now() { date +%s.%N; }

# Frames per second that arrive in cB while trafgen in cA sends 60-byte UDP
# frames to it as fast as it can: RESULT="arrived_pps sent_pps".
small_run() {  # prefix
  local x=$1 cfg="$TMP/small.cfg"
  # Ethernet, IPv4 (checksum by trafgen), UDP 9 (discard) with zero
  # checksum, 18 bytes payload: 60 bytes, 64 with the FCS.
  cat >"$cfg" <<EOF
{
  eth(da=$MAC_B, sa=$MAC_A, type=0x0800),
  ipv4(saddr=192.0.2.1, daddr=192.0.2.2, ttl=64, df),
  udp(sport=40000, dport=9, csum=0),
  fill(0x00, 18)
}
EOF
  # trafgen forks its senders: in a process group of their own (setsid
  # execs in place, so $! is the group) they stop together with SIGTERM
  # (SIGINT is ignored by background jobs of a script). --no-sock-mem and
  # --notouch-irq: leave the host's sysctls and IRQ affinities alone.
  setsid ip netns exec "$P-${x}ca" trafgen --dev eth0 --conf "$cfg" --cpus "$GEN_CPUS" --no-sock-mem --notouch-irq \
    --no-cpu-stats >"$TMP/trafgen-$x.log" 2>&1 &
  local gen=$!
  PIDS+=($gen)
  sleep 1 # warm-up: rings, caches, the receiver's first ICMP errors
  kill -0 $gen 2>/dev/null || { echo "dataplane_throughput: trafgen failed:" >&2; cat "$TMP/trafgen-$x.log" >&2; return 1; }
  local r0 s0 t0 r1 s1 t1
  r0=$(rx_packets "$P-${x}cb"); s0=$(tx_packets "$P-${x}ca"); t0=$(now)
  sleep "$SECS"
  r1=$(rx_packets "$P-${x}cb"); s1=$(tx_packets "$P-${x}ca"); t1=$(now)
  # A sender that gave up during the window (EAGAIN when the path pushes
  # back) would understate the rate without a word.
  kill -0 $gen 2>/dev/null || { echo "dataplane_throughput: trafgen stopped during the $x measurement:" >&2
    cat "$TMP/trafgen-$x.log" >&2; return 1; }
  kill -TERM -- -$gen 2>/dev/null || true
  wait $gen 2>/dev/null || true
  RESULT=$(awk -v r=$((r1 - r0)) -v s=$((s1 - s0)) -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f %.0f\n", r / (t1 - t0), s / (t1 - t0) }')
}

# small_run, retried up to twice when trafgen quits (EAGAIN: the first
# veth's ring was full because its NAPI fell behind, which happens under
# load from other processes; a measurement is never taken from a sender that
# stopped). Retries are counted in RETRIES and reported.
RETRIES=0
small_measure() {  # prefix
  local attempt
  for attempt in 1 2 3; do
    if small_run "$1"; then return 0; fi
    [ $attempt = 3 ] && return 1
    RETRIES=$((RETRIES + 1))
    echo "  (trafgen quit on the $1 path; measuring again)" >&2
  done
}

# Drop everything at cB's eth0 ingress (tc clsact, before the IP stack), and
# undo it. This kernel has neither cls_matchall nor act_gact, so the drop is a
# two-instruction cls_bpf program in direct-action mode (TC_ACT_SHOT), built
# here with clang.
drop_on() {
  if [ ! -f "$TMP/drop.o" ]; then
    printf '%s\n' '__attribute__((section("tc"), used)) int drop(void *skb) { return 2; /* TC_ACT_SHOT */ }' \
      'char _license[] __attribute__((section("license"), used)) = "GPL";' >"$TMP/drop.c"
    clang -O2 -target bpf -c "$TMP/drop.c" -o "$TMP/drop.o"
  fi
  ip netns exec "$P-${1}cb" tc qdisc add dev eth0 clsact
  ip netns exec "$P-${1}cb" tc filter add dev eth0 ingress bpf da obj "$TMP/drop.o" sec tc
}
drop_off() { ip netns exec "$P-${1}cb" tc qdisc del dev eth0 clsact; }

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "dataplane_throughput: $(date -u +%FT%TZ), kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "two hosts, VNI 100, container MTU 1450, $SECS s per measurement, $ROUNDS rounds; Foundry attach mode: $TCP_MODE for TCP, $SMALL_MODE for small packets"
[ "$ONLY" = small ] || setup_foundry t "$TCP_MODE"
[ "$ONLY" = tcp ] || setup_foundry f "$SMALL_MODE"
setup_kernel
setup_direct
[ "$ONLY" = small ] || check_path t
[ "$ONLY" = tcp ] || check_path f
check_path k

printf '%-6s %12s %12s %14s %14s %14s %14s %14s %14s %14s\n' round tcp_foundry tcp_kernel small_foundry small_kernel small_direct sent_foundry sent_kernel fwd_foundry fwd_kernel
printf '%-6s %12s %12s %14s %14s %14s %14s %14s %14s %14s\n' "" Mbit/s Mbit/s "arrived pps" "arrived pps" "arrived pps" pps pps "arrived pps" "arrived pps"
tf=0 tk=0 sf=0 sk=0 sd=0 gf=0 gk=0 ff=0 fk=0
for r in $(seq "$ROUNDS"); do
  if [ "$ONLY" != small ]; then
    tcp_run t; tf=$RESULT; zf=$TCP_RX_SIZE
    tcp_run k; tk=$RESULT; zk=$TCP_RX_SIZE
    echo "  (TCP bytes per received packet in cB: foundry $zf, kernel $zk)"
  fi
  if [ "$ONLY" != tcp ]; then
    small_measure f; read -r sf gf <<<"$RESULT"
    small_measure k; read -r sk gk <<<"$RESULT"
    small_measure d; read -r sd _ <<<"$RESULT"
    # Forwarding only: the receiver drops at ingress (same drop on both paths).
    drop_on f; small_measure f; read -r ff _ <<<"$RESULT"; drop_off f
    drop_on k; small_measure k; read -r fk _ <<<"$RESULT"; drop_off k
  fi
  printf '%-6s %12s %12s %14s %14s %14s %14s %14s %14s %14s\n' "$r" "$tf" "$tk" "$sf" "$sk" "$sd" "$gf" "$gk" "$ff" "$fk"
  echo "$tf $tk $sf $sk $sd $ff $fk" >>"$TMP/rounds"
done

TF=$(awk '{print $1}' "$TMP/rounds" | median)
TK=$(awk '{print $2}' "$TMP/rounds" | median)
SF=$(awk '{print $3}' "$TMP/rounds" | median)
SK=$(awk '{print $4}' "$TMP/rounds" | median)
SD=$(awk '{print $5}' "$TMP/rounds" | median)
FF=$(awk '{print $6}' "$TMP/rounds" | median)
FK=$(awk '{print $7}' "$TMP/rounds" | median)
[ "$RETRIES" = 0 ] || echo "small-packet measurements repeated after trafgen quit: $RETRIES"
printf '%-6s %12s %12s %14s %14s %14s %14s %14s %14s %14s\n' median "$TF" "$TK" "$SF" "$SK" "$SD" "" "" "$FF" "$FK"
awk -v tf="$TF" -v tk="$TK" -v sf="$SF" -v sk="$SK" 'BEGIN {
  printf "ratio foundry/kernel: TCP %.2f (goal >= 1), small packets %.2f (goal >= 2)\n", tk ? tf / tk : 0, sk ? sf / sk : 0 }'
[ "$ONLY" = tcp ] || awk -v ff="$FF" -v fk="$FK" 'BEGIN {
  printf "ratio foundry/kernel, small packets, forwarding only (the receiver drops at ingress): %.2f\n", fk ? ff / fk : 0 }'
# trafgen sends from the sender's syscall, and veth runs the whole path in
# that CPU's softirq before the next send: generator, path and receiver share
# one CPU (run to completion). What the path itself costs per packet is the
# time per packet minus that of the direct veth (same generator, receiver).
[ "$ONLY" = tcp ] || awk -v sf="$SF" -v sk="$SK" -v sd="$SD" 'BEGIN {
  cf = 1e9 / sf - 1e9 / sd; ck = 1e9 / sk - 1e9 / sd
  printf "per packet: direct %.0f ns; path on top: foundry %.0f ns, kernel %.0f ns; kernel/foundry path cost %.2f\n",
    1e9 / sd, cf, ck, (cf > 0 ? ck / cf : 0) }'

# Where Foundry's frames went on host A (encapsulated) and B (decapsulated):
# every drop reason would show here.
for x in t f; do
  [ -S "$TMP/${x}a.sock" ] || continue
  if [ $x = t ]; then m=$TCP_MODE; else m=$SMALL_MODE; fi
  echo "foundry ($m, $( [ $x = t ] && echo TCP || echo small packets)) host A counters (nonzero):"
  "$CLI" net --agent "unix:$TMP/${x}a.sock" stats | sed 's/^/  /'
  echo "foundry ($m) host B counters (nonzero):"
  "$CLI" net --agent "unix:$TMP/${x}b.sock" stats | sed 's/^/  /'
done
