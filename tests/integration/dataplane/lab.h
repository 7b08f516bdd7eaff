// The seed's verification lab as a test fixture: named network namespaces
// (`ip netns add`), veth pairs between them, addresses, pings.
//
// Names carry the test process's pid, so parallel runs do not collide, and
// every namespace is deleted when the Lab goes away, also when the test
// failed halfway: deleting a namespace deletes the veths in it, and a veth
// pair goes with either end. The real root namespace is never touched: the
// "hosts" are namespaces too.
#pragma once

#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/common/subprocess.h"

namespace foundry::dataplane::testing {

class Lab {
 public:
  Lab() : prefix_("fdp" + std::to_string(::getpid()) + "-") {}
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;
  ~Lab() {
    for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it)
      (void)run({"ip", "netns", "del", *it});
  }

  // Creates namespace <prefix><suffix> with its loopback up; returns its name.
  Result<std::string> add_netns(const std::string& suffix) {
    std::string name = prefix_ + suffix;
    (void)run({"ip", "netns", "del", name});  // leftover of a crashed run with our pid
    FOUNDRY_TRY(run_checked({"ip", "netns", "add", name}));
    namespaces_.push_back(name);
    FOUNDRY_TRY(ip(name, {"link", "set", "lo", "up"}));
    return name;
  }

  static std::string path(const std::string& ns) { return "/run/netns/" + ns; }

  static RunOptions timeout(std::chrono::seconds s) {
    RunOptions o;
    o.timeout = s;
    return o;
  }

  // `ip -n ns args...`
  static Status ip(const std::string& ns, std::vector<std::string> args) {
    std::vector<std::string> argv{"ip", "-n", ns};
    argv.insert(argv.end(), args.begin(), args.end());
    FOUNDRY_TRY(run_checked(argv, timeout(std::chrono::seconds(10))));
    return ok();
  }

  // A veth pair: host_if in host_ns, peer_if in peer_ns; both up, MTU set.
  static Status veth(const std::string& host_ns, const std::string& host_if, const std::string& peer_ns,
                     const std::string& peer_if, int mtu = 1500) {
    FOUNDRY_TRY(ip(host_ns, {"link", "add", host_if, "mtu", std::to_string(mtu), "type", "veth", "peer", "name",
                             peer_if, "mtu", std::to_string(mtu), "netns", peer_ns}));
    FOUNDRY_TRY(ip(host_ns, {"link", "set", host_if, "up"}));
    FOUNDRY_TRY(ip(peer_ns, {"link", "set", peer_if, "up"}));
    return ok();
  }

  // A container end: address, fixed MAC (so FDB entries can name it).
  static Status address(const std::string& ns, const std::string& ifname, const std::string& cidr,
                        const std::string& mac = "") {
    if (!mac.empty()) FOUNDRY_TRY(ip(ns, {"link", "set", ifname, "address", mac}));
    FOUNDRY_TRY(ip(ns, {"addr", "add", cidr, "dev", ifname}));
    return ok();
  }

  // Pings from ns; returns how many of count echoes were answered.
  static Result<int> ping(const std::string& ns, const std::string& to, int count = 3) {
    auto r = FOUNDRY_TRY(run({"ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", std::to_string(count), "-i",
                              "0.2", "-W", "1", to},
                             timeout(std::chrono::seconds(20))));
    // "3 packets transmitted, 3 received, 0% packet loss, time 402ms"
    size_t at = r.out.find(" received");
    if (at == std::string::npos)
      return fail(ErrorKind::Operation, "ping from {} to {}: unexpected output: {} {}", ns, to, r.out, r.err);
    size_t start = r.out.rfind(' ', at - 1);
    return std::stoi(r.out.substr(start + 1, at - start - 1));
  }

 private:
  std::string prefix_;
  std::vector<std::string> namespaces_;
};

}  // namespace foundry::dataplane::testing
