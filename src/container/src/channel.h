// The sync channel between the runtime and the container's init: a
// SOCK_SEQPACKET socketpair, so each send is one message and a closed peer
// reads as end-of-file (a dead parent or child is noticed at once).
#pragma once

#include <string>

#include "foundry/common/error.h"
#include "foundry/common/unique_fd.h"

namespace foundry::container::detail {

enum class Msg : unsigned char {
  Go = 1,             // parent -> child: maps written (the cgroup follows: CgroupJoined)
  NeedRuntimeHooks,   // child -> parent: mounts done, run createRuntime hooks
  HooksDone,          // parent -> child: payload is the state JSON for container hooks
  Console,            // child -> parent: carries the pty master (SCM_RIGHTS)
  Ready,              // child -> parent: about to wait for start
  Done,               // parent -> child: state saved, wait for start
  Failed,             // child -> parent: payload is a serialized Error
  Pid,                // exec helper -> parent: payload is the exec'd process' pid
  CgroupJoined,       // parent -> child: the init is in its cgroup (sent after Go)
};

struct Message {
  Msg type = Msg::Failed;
  std::string payload;
  UniqueFd fd;  // when the message carried one
  bool eof = false;
};

Status send_msg(int sock, Msg type, const std::string& payload = "", int fd = -1);
// Blocks for the next message; eof=true when the peer closed its end.
Result<Message> recv_msg(int sock);

// An Error crosses the process boundary as JSON.
std::string serialize_error(const Error& e);
Error deserialize_error(const std::string& text);

// Sends fd over a connected AF_UNIX stream socket at `path` (the console
// socket protocol of runc: one message whose payload names the terminal).
Status send_fd_to_socket(const std::string& path, int fd, const std::string& name);

}  // namespace foundry::container::detail
