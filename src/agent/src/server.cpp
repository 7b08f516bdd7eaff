#include "foundry/agent/server.h"

#include <chrono>

#include "foundry/common/file.h"
#include "foundry/common/log.h"

namespace foundry::agent {

namespace {

// A 100,000-entry FDB batch is a few MB; leave room.
constexpr int kMaxMessageBytes = 256 * 1024 * 1024;

}  // namespace

Result<std::unique_ptr<AgentServer>> AgentServer::start(DataplaneControl& dp, const std::vector<std::string>& addresses) {
  std::unique_ptr<AgentServer> s(new AgentServer());
  s->service_ = std::make_unique<AgentService>(dp);
  grpc::ServerBuilder b;
  b.SetMaxReceiveMessageSize(kMaxMessageBytes);
  b.SetMaxSendMessageSize(kMaxMessageBytes);
  for (const auto& a : addresses) {
    if (a.rfind("unix:", 0) == 0) {
      std::string path = a.substr(5);
      auto slash = path.rfind('/');
      if (slash != std::string::npos && slash > 0) FOUNDRY_TRY_CTX(make_dirs(path.substr(0, slash), 0755), "listen on {}", a);
    }
    b.AddListeningPort(a, grpc::InsecureServerCredentials());
  }
  b.RegisterService(s->service_.get());
  s->server_ = b.BuildAndStart();
  if (!s->server_)
    return fail(Error(ErrorKind::Operation, fmt::format("start the agent's gRPC server on {}", fmt::join(addresses, ", ")))
                    .with_hint("is another foundry-agent running? A stale socket file is replaced; a busy one is not"));
  return s;
}

AgentServer::~AgentServer() { shutdown(); }

void AgentServer::shutdown() {
  if (shut_down_ || !server_) return;
  shut_down_ = true;
  service_->stop_streams();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

void AgentServer::wait() {
  if (server_) server_->Wait();
}

std::shared_ptr<grpc::Channel> AgentServer::in_process_channel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  return server_->InProcessChannel(args);
}

}  // namespace foundry::agent
