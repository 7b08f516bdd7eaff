#include "foundry/agent/client.h"

namespace foundry::agent {

AgentClient::AgentClient(std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds deadline)
    : channel_(std::move(channel)), stub_(v1::Agent::NewStub(channel_)), deadline_(deadline) {}

AgentClient AgentClient::connect(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 * 1024 * 1024);
  args.SetMaxSendMessageSize(256 * 1024 * 1024);
  return AgentClient(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

}  // namespace foundry::agent
