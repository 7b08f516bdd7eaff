// Head-end replication of broadcast, multicast and unknown-unicast frames to
// remote VTEPs, in user space.
//
// XDP floods a BUM frame to the VNI's local ports with one broadcast
// redirect but cannot also clone it towards other hosts. When a VNI has
// remote VTEPs in flood_remote, the program copies such frames into the
// bum_events perf buffer; this class reads them and sends each one, VXLAN
// header prepended, as a UDP datagram to every remote VTEP of the VNI. The
// kernel's stack adds the outer IPv4/Ethernet headers and resolves the next
// hop; the remote VTEP decapsulates and floods locally as usual.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>

#include "foundry/common/error.h"
#include "foundry/common/unique_fd.h"

struct perf_buffer;

namespace foundry::dataplane {

class Forwarder;

class BumReplicator {
 public:
  // Call in the network namespace whose stack reaches the underlay (the
  // host's): the UDP socket is created there, bound to the VTEP's address so
  // that copies leave with the VTEP as outer source. The forwarder must
  // outlive the replicator and have a VTEP configured.
  static Result<std::unique_ptr<BumReplicator>> create(Forwarder& fw);
  ~BumReplicator();
  BumReplicator(const BumReplicator&) = delete;
  BumReplicator& operator=(const BumReplicator&) = delete;

  // Waits up to timeout for copies and replicates them; returns how many
  // frames were handled. For callers with their own event loop.
  Result<int> poll(std::chrono::milliseconds timeout);
  // Polls on a background thread until stop() or destruction.
  void start();
  void stop();

  uint64_t frames() const { return frames_.load(); }       // BUM frames received
  uint64_t datagrams() const { return datagrams_.load(); } // copies sent
  uint64_t lost() const { return lost_.load(); }           // perf ring overruns
  uint64_t send_errors() const { return send_errors_.load(); }

 private:
  BumReplicator() = default;
  static void on_sample(void* ctx, int cpu, void* data, uint32_t size);
  static void on_lost(void* ctx, int cpu, unsigned long long count);
  void replicate(const uint8_t* data, uint32_t size);

  Forwarder* fw_ = nullptr;
  perf_buffer* pb_ = nullptr;
  UniqueFd sock_;
  uint16_t default_port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> frames_{0}, datagrams_{0}, lost_{0}, send_errors_{0};
};

}  // namespace foundry::dataplane
