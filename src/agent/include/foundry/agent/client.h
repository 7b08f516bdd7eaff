// A client of foundry-agent for the CLI and tests: one call per method,
// errors as Error (connection problems are ErrorKind::Connection, exit 3).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "agent.grpc.pb.h"
#include "foundry/agent/convert.h"
#include "foundry/common/error.h"

namespace foundry::agent {

class AgentClient {
 public:
  explicit AgentClient(std::shared_ptr<grpc::Channel> channel,
                       std::chrono::milliseconds deadline = std::chrono::seconds(30));
  // address: "unix:/run/foundry/agent.sock" or "host:port".
  static AgentClient connect(const std::string& address);

  template <typename Req, typename Resp>
  using Method = grpc::Status (v1::Agent::Stub::*)(grpc::ClientContext*, const Req&, Resp*);

  // A unary call with the client's deadline; what names it in errors.
  template <typename Req, typename Resp>
  Result<Resp> call(Method<Req, Resp> m, const Req& req, std::string_view what) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline_);
    Resp resp;
    grpc::Status st = (stub_.get()->*m)(&ctx, req, &resp);
    if (!st.ok()) return fail(from_grpc(st, what));
    return resp;
  }

  v1::Agent::Stub& stub() { return *stub_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Agent::Stub> stub_;
  std::chrono::milliseconds deadline_;
};

}  // namespace foundry::agent
