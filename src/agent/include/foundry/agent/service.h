// The gRPC service of agent.proto over a DataplaneControl.
#pragma once

#include <atomic>

#include "agent.grpc.pb.h"
#include "foundry/agent/control.h"

namespace foundry::agent {

class AgentService final : public ::foundry::agent::v1::Agent::Service {
 public:
  explicit AgentService(DataplaneControl& dp) : dp_(dp) {}

  // Ends running Watch streams (they poll this); for shutdown.
  void stop_streams() { stopping_ = true; }

  grpc::Status SetVtep(grpc::ServerContext*, const v1::SetVtepRequest*, v1::SetVtepResponse*) override;
  grpc::Status AttachInterface(grpc::ServerContext*, const v1::AttachInterfaceRequest*,
                               v1::AttachInterfaceResponse*) override;
  grpc::Status DetachInterface(grpc::ServerContext*, const v1::DetachInterfaceRequest*,
                               v1::DetachInterfaceResponse*) override;
  grpc::Status AddNeighbor(grpc::ServerContext*, const v1::AddNeighborRequest*, v1::AddNeighborResponse*) override;
  grpc::Status AddFloodVtep(grpc::ServerContext*, const v1::FloodVtepRequest*, v1::FloodVtepResponse*) override;
  grpc::Status DeleteFloodVtep(grpc::ServerContext*, const v1::FloodVtepRequest*, v1::FloodVtepResponse*) override;
  grpc::Status AddFdbEntry(grpc::ServerContext*, const v1::AddFdbEntryRequest*, v1::AddFdbEntryResponse*) override;
  grpc::Status DeleteFdbEntry(grpc::ServerContext*, const v1::DeleteFdbEntryRequest*,
                              v1::DeleteFdbEntryResponse*) override;
  grpc::Status AddFdbEntries(grpc::ServerContext*, const v1::AddFdbEntriesRequest*,
                             v1::AddFdbEntriesResponse*) override;
  grpc::Status DeleteFdbEntries(grpc::ServerContext*, const v1::DeleteFdbEntriesRequest*,
                                v1::DeleteFdbEntriesResponse*) override;
  grpc::Status ListFdb(grpc::ServerContext*, const v1::ListFdbRequest*, v1::ListFdbResponse*) override;
  grpc::Status GetStats(grpc::ServerContext*, const v1::GetStatsRequest*, v1::GetStatsResponse*) override;
  grpc::Status Watch(grpc::ServerContext*, const v1::WatchRequest*, grpc::ServerWriter<v1::FdbEvent>*) override;

 private:
  DataplaneControl& dp_;
  std::atomic<bool> stopping_{false};
};

}  // namespace foundry::agent
