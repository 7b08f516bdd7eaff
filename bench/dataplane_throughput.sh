#!/bin/bash
# TCP throughput between two containers on two "hosts" (network namespaces
# this script creates), once through Foundry's VTEP (foundry-agent + XDP
# forwarder on each host) and once through a Linux bridge + kernel vxlan
# device on each host, in one run; prints both and the ratio.
#
#   cA 192.0.2.1 -- [host A] == underlay 198.51.100.1 <-> .2 == [host B] -- cB 192.0.2.2
#   VNI 100, container MTU 1450, static FDB and ARP (no BUM dependency).
#
# Usage (root): bench/dataplane_throughput.sh [BUILD_DIR] [SECONDS]
#   BUILD_DIR holds src/agent/foundry-agent and src/cli/foundry (default: build)
# Everything it creates (namespaces, agents, sockets) is removed on exit,
# also on failure or Ctrl-C. Only 192.0.2.0/24 and 198.51.100.0/24 are used.
set -euo pipefail

BUILD=${1:-build}
SECS=${2:-10}
AGENT=$(realpath "$BUILD/src/agent/foundry-agent")
CLI=$(realpath "$BUILD/src/cli/foundry")
[ "$(id -u)" = 0 ] || { echo "dataplane_throughput: skipped: needs root" >&2; exit 0; }
command -v iperf3 >/dev/null || { echo "dataplane_throughput: needs iperf3 (apt-get install iperf3)" >&2; exit 1; }

P=fdtp$$
TMP=$(mktemp -d /tmp/foundry-tput.XXXXXX)
PIDS=()
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  for ns in ha hb ca cb; do ip netns del "$P-$ns" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

MAC_A=02:00:c0:00:02:01
MAC_B=02:00:c0:00:02:02

# Namespaces, the underlay and the two containers' veths (host ends pa/pb).
topology() {
  for ns in ha hb ca cb; do ip netns add "$P-$ns"; ip -n "$P-$ns" link set lo up; done
  ip link add ua netns "$P-ha" type veth peer name ub netns "$P-hb"
  ip -n "$P-ha" addr add 198.51.100.1/24 dev ua; ip -n "$P-ha" link set ua up
  ip -n "$P-hb" addr add 198.51.100.2/24 dev ub; ip -n "$P-hb" link set ub up
  ip link add pa netns "$P-ha" type veth peer name eth0 netns "$P-ca"
  ip link add pb netns "$P-hb" type veth peer name eth0 netns "$P-cb"
  ip -n "$P-ca" link set eth0 address $MAC_A mtu 1450 up
  ip -n "$P-cb" link set eth0 address $MAC_B mtu 1450 up
  ip -n "$P-ca" addr add 192.0.2.1/24 dev eth0
  ip -n "$P-cb" addr add 192.0.2.2/24 dev eth0
  ip -n "$P-ca" neigh add 192.0.2.2 lladdr $MAC_B dev eth0 nud permanent
  ip -n "$P-cb" neigh add 192.0.2.1 lladdr $MAC_A dev eth0 nud permanent
  ip -n "$P-ha" link set pa mtu 1450 up
  ip -n "$P-hb" link set pb mtu 1450 up
}

teardown() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  PIDS=()
  for ns in ha hb ca cb; do ip netns del "$P-$ns" 2>/dev/null || true; done
}

# Mbit/s received, iperf3 TCP from cA to cB.
measure() {
  ip netns exec "$P-cb" iperf3 -s -1 -B 192.0.2.2 >/dev/null 2>&1 &
  local srv=$!
  sleep 0.5
  ip netns exec "$P-ca" ping -c 2 -W 1 192.0.2.2 >/dev/null || { echo "no connectivity ($1)" >&2; kill $srv; return 1; }
  ip netns exec "$P-ca" iperf3 -c 192.0.2.2 -t "$SECS" -J >"$TMP/$1.json"
  wait $srv || true
  python3 -c 'import json,sys; print("%.0f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e6))' "$TMP/$1.json"
}

start_agent() {  # host-ns-suffix socket
  # ip netns exec gives the agent a private mount namespace without
  # /sys/fs/bpf; the agent mounts its own bpffs there, so the host's is not touched.
  ip netns exec "$P-$1" "$AGENT" --listen "unix:$2" >"$TMP/agent-$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do [ -S "$2" ] && return 0; sleep 0.1; done
  echo "foundry-agent in $1 did not start:" >&2; cat "$TMP/agent-$1.log" >&2; return 1
}

foundry_run() {
  topology
  start_agent ha "$TMP/a.sock"
  start_agent hb "$TMP/b.sock"
  "$CLI" net --agent "unix:$TMP/a.sock" vtep --uplink ua --address 198.51.100.1 >/dev/null
  "$CLI" net --agent "unix:$TMP/b.sock" vtep --uplink ub --address 198.51.100.2 >/dev/null
  "$CLI" net --agent "unix:$TMP/a.sock" attach pa --vni 100 --peer-netns "$P-ca" --peer-if eth0 >/dev/null
  "$CLI" net --agent "unix:$TMP/b.sock" attach pb --vni 100 --peer-netns "$P-cb" --peer-if eth0 >/dev/null
  # Underlay next hops: the outer Ethernet header of encapsulated frames.
  local mac_ua mac_ub
  mac_ua=$(ip -n "$P-ha" -br link show ua | awk '{print $3}')
  mac_ub=$(ip -n "$P-hb" -br link show ub | awk '{print $3}')
  "$CLI" net --agent "unix:$TMP/a.sock" neighbor 198.51.100.2 --dev ua --mac "$mac_ub" >/dev/null
  "$CLI" net --agent "unix:$TMP/b.sock" neighbor 198.51.100.1 --dev ub --mac "$mac_ua" >/dev/null
  "$CLI" net --agent "unix:$TMP/a.sock" fdb add 100 $MAC_B --vtep 198.51.100.2 >/dev/null
  "$CLI" net --agent "unix:$TMP/b.sock" fdb add 100 $MAC_A --vtep 198.51.100.1 >/dev/null
  measure foundry || { teardown; return 1; }
  "$CLI" net --agent "unix:$TMP/a.sock" stats >"$TMP/stats-a.txt" 2>&1 || true
  teardown
}

kernel_run() {
  topology
  local h peer local_ip remote_ip port
  for h in a b; do
    if [ $h = a ]; then local_ip=198.51.100.1; remote_ip=198.51.100.2; port=pa; else local_ip=198.51.100.2; remote_ip=198.51.100.1; port=pb; fi
    ip -n "$P-h$h" link add br0 type bridge
    ip -n "$P-h$h" link add vx100 type vxlan id 100 local $local_ip remote $remote_ip dstport 4789 dev "u$h"
    ip -n "$P-h$h" link set vx100 mtu 1450 master br0 up
    ip -n "$P-h$h" link set $port master br0
    ip -n "$P-h$h" link set br0 up
  done
  measure kernel || { teardown; return 1; }
  teardown
}

echo "TCP, iperf3 -t $SECS, cA -> cB across two hosts, VNI 100, MTU 1450"
# Each run tears its namespaces and agents down itself (the EXIT trap of this
# shell does not reach into the $(...) subshells); the trap is the backstop.
F=$(foundry_run) || F=
echo "foundry (XDP VTEP):            $F Mbit/s"
K=$(kernel_run) || K=
echo "kernel (bridge + vxlan):       $K Mbit/s"
[ -n "$F" ] && [ -n "$K" ] || { echo "a run failed; see above" >&2; exit 1; }
python3 -c "import sys; print('ratio foundry/kernel:          %.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$F" "$K"
