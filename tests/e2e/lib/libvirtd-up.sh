#!/bin/bash
# Makes libvirtd and virtlogd answer on qemu:///system the way a Debian host
# with systemd and udev has them; the libvirt tests and bench/ call this one
# script. Idempotent; says on stderr what it changed; exit 0 when libvirtd
# answers, else non-zero with the reason on stderr.
#
# Two things differ on machines without systemd and udev (containers, the
# Firecracker VMs CI runs on) and both slow every libvirt call there:
#
# 1. /dev/kvm stays 0600 root:root. Debian's udev rule makes it root:kvm
#    (0660 or 0666), and libvirt-qemu is in group kvm. When the qemu user
#    cannot open /dev/kvm, libvirt 9 treats its cached QEMU capabilities as
#    stale and probes QEMU again on every lookup (about 4 s each here; a
#    domain define does one per device). We apply the udev rule's group and
#    mode, only when /dev/kvm is exactly 0600 root:root and no udevd runs.
#
# 2. PID 1 may reap orphans late (here about 2 s after they exit). QEMU is an
#    orphan once libvirt daemonizes it, and libvirt waits for its pid to
#    vanish when a domain is destroyed, so every destroy waits for PID 1.
#    systemd reaps at once; we run libvirtd under `tini -s`, a subreaper that
#    reaps as promptly, when we start libvirtd ourselves.
set -euo pipefail
URI=qemu:///system
export PATH=$PATH:/usr/sbin:/sbin

[ "$(id -u)" = 0 ] || { echo "libvirtd-up: needs root to reach $URI" >&2; exit 2; }

if [ -c /dev/kvm ] && [ "$(stat -c %a:%U:%G /dev/kvm)" = 600:root:root ] &&
   getent group kvm >/dev/null && ! pgrep -x systemd-udevd >/dev/null; then
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
  echo "libvirtd-up: /dev/kvm was 0600 root:root and no udev runs: set root:kvm 0660 as Debian's udev rule does" >&2
fi

up() { virsh -c $URI uri >/dev/null 2>&1; }
up && exit 0

for p in libvirtd virtlogd virsh; do
  command -v $p >/dev/null || { echo "libvirtd-up: $p is not installed (scripts/install-deps)" >&2; exit 3; }
done
mkdir -p /var/log/libvirt /run/libvirt
virtlogd -d 2>/dev/null || true  # fails harmlessly when it runs already
if [ "$(cat /proc/1/comm)" != systemd ] && command -v tini >/dev/null; then
  # Detached from the caller: its own session, no inherited stdio (a test
  # that captures our output would otherwise wait for libvirtd to exit).
  setsid tini -s -- libvirtd </dev/null >>/var/log/libvirt/libvirtd-tini.log 2>&1 &
  echo "libvirtd-up: started libvirtd under tini -s (pid $!; PID 1 here is $(cat /proc/1/comm), not systemd)" >&2
else
  libvirtd -d
  echo "libvirtd-up: started libvirtd -d" >&2
fi
for _ in $(seq 150); do up && exit 0; sleep 0.1; done
echo "libvirtd-up: libvirtd did not answer on $URI within 15 s; see /var/log/libvirt/" >&2
exit 4
