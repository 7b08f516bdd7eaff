#include "foundry/dataplane/bum_replicator.h"

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "foundry/common/log.h"
#include "foundry/dataplane/forwarder.h"
#include "libbpf_log.h"

namespace foundry::dataplane {

namespace {

// Pages per CPU for the perf ring: 64 KiB holds ~40 full-size frames per
// CPU, plenty for ARP storms between polls.
constexpr size_t kPerfPages = 16;

}  // namespace

Result<std::unique_ptr<BumReplicator>> BumReplicator::create(Forwarder& fw) {
  detail::LibbpfLogCapture log;
  auto vtep = FOUNDRY_TRY_CTX(fw.vtep(), "start BUM replication");
  if (!vtep)
    return fail(Error(ErrorKind::Operation, "start BUM replication: no VTEP configured")
                    .with_hint("set the VTEP address and uplink first"));
  std::unique_ptr<BumReplicator> r(new BumReplicator());
  r->fw_ = &fw;
  r->default_port_ = vtep->udp_port;

  r->sock_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!r->sock_) return fail_errno(ErrorKind::Operation, "start BUM replication: create UDP socket");
  // The VTEP may be configured before its address is: bind anyway, the
  // copies flow once the address exists.
  int one = 1;
  (void)::setsockopt(r->sock_.get(), IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
  sockaddr_in local{};
  local.sin_family = AF_INET;
  std::memcpy(&local.sin_addr, vtep->ip.octets.data(), 4);
  local.sin_port = 0;  // any source port; receivers do not care (RFC 7348 section 5)
  if (::bind(r->sock_.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0)
    return fail(sys_error(ErrorKind::Operation,
                          fmt::format("start BUM replication: bind UDP socket to VTEP address {}", vtep->ip.to_string()))
                    .with_hint("the VTEP address must be configured on the uplink in this network namespace"));

  r->pb_ = perf_buffer__new(fw.bum_events_fd(), kPerfPages, &BumReplicator::on_sample, &BumReplicator::on_lost,
                            r.get(), nullptr);
  if (!r->pb_)
    return fail(Error(ErrorKind::Operation, "start BUM replication: open the bum_events perf buffer")
                    .with_errno(errno)
                    .with_detail(log.text()));
  return r;
}

BumReplicator::~BumReplicator() {
  stop();
  if (pb_) perf_buffer__free(pb_);
}

void BumReplicator::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] {
    while (!stop_.load()) {
      auto r = poll(std::chrono::milliseconds(100));
      if (!r) spdlog::debug("dataplane: BUM replication: {}", r.error().to_string());
    }
  });
}

void BumReplicator::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

Result<int> BumReplicator::poll(std::chrono::milliseconds timeout) {
  uint64_t before = frames_.load();
  int n = perf_buffer__poll(pb_, static_cast<int>(timeout.count()));
  if (n < 0 && n != -EINTR)
    return fail(Error(ErrorKind::Operation, "poll the bum_events perf buffer").with_errno(-n));
  return static_cast<int>(frames_.load() - before);
}

void BumReplicator::on_sample(void* ctx, int, void* data, uint32_t size) {
  static_cast<BumReplicator*>(ctx)->replicate(static_cast<const uint8_t*>(data), size);
}

void BumReplicator::on_lost(void* ctx, int, unsigned long long count) {
  static_cast<BumReplicator*>(ctx)->lost_ += count;
}

void BumReplicator::replicate(const uint8_t* data, uint32_t size) {
  fdp_bum_event ev{};
  if (size < sizeof(ev)) return;
  std::memcpy(&ev, data, sizeof(ev));
  if (ev.frame_len > size - sizeof(ev)) return;  // not a sample we wrote
  frames_++;

  // VXLAN header (flags I, VNI) then the frame, as one datagram.
  std::vector<uint8_t> payload(8 + ev.frame_len);
  payload[0] = 0x08;
  payload[4] = static_cast<uint8_t>(ev.vni >> 16);
  payload[5] = static_cast<uint8_t>(ev.vni >> 8);
  payload[6] = static_cast<uint8_t>(ev.vni);
  std::memcpy(payload.data() + 8, data + sizeof(ev), ev.frame_len);

  // The flood list is read per frame: BUM traffic is light (ARP, DHCP,
  // neighbour discovery) and this way changes apply at once.
  auto remotes = fw_->flood_remotes().entries();
  if (!remotes) {
    send_errors_++;
    return;
  }
  for (const auto& [key, remote] : *remotes) {
    if (key.vni != ev.vni) continue;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    std::memcpy(&to.sin_addr, key.vtep.octets.data(), 4);
    to.sin_port = htons(remote.port ? remote.port : default_port_);
    ssize_t n = ::sendto(sock_.get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to),
                         sizeof(to));
    if (n < 0) {
      send_errors_++;
      spdlog::debug("dataplane: replicate BUM frame of VNI {} to {}: {}", ev.vni, key.vtep.to_string(),
                    std::strerror(errno));
    } else {
      datagrams_++;
    }
  }
}

}  // namespace foundry::dataplane
