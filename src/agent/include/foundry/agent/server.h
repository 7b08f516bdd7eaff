// Serving agent.proto: gRPC over a Unix socket (and TCP if asked).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "foundry/agent/control.h"
#include "foundry/agent/service.h"
#include "foundry/common/error.h"

namespace foundry::agent {

inline constexpr const char* kDefaultAgentAddress = "unix:/run/foundry/agent.sock";

class AgentServer {
 public:
  // Listens on every address ("unix:/path", "host:port"); the directory of
  // a Unix socket is created (0755) if missing. No addresses: in-process
  // only (tests).
  static Result<std::unique_ptr<AgentServer>> start(DataplaneControl& dp, const std::vector<std::string>& addresses);
  ~AgentServer();

  // Ends Watch streams, then stops accepting and waits up to a second for
  // calls in flight.
  void shutdown();
  void wait();
  std::shared_ptr<grpc::Channel> in_process_channel();

 private:
  AgentServer() = default;
  std::unique_ptr<AgentService> service_;
  std::unique_ptr<grpc::Server> server_;
  bool shut_down_ = false;
};

}  // namespace foundry::agent
