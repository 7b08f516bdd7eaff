#include "channel.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

namespace foundry::container::detail {

using json = nlohmann::json;

Status send_msg(int sock, Msg type, const std::string& payload, int fd) {
  std::string buf;
  buf.reserve(payload.size() + 1);
  buf.push_back(static_cast<char>(type));
  buf += payload;
  iovec iov{buf.data(), buf.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    std::memset(control, 0, sizeof control);
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  for (;;) {
    if (::sendmsg(sock, &mh, MSG_NOSIGNAL) >= 0) return ok();
    if (errno != EINTR) return fail_errno(ErrorKind::Operation, "sync channel: send");
  }
}

Result<Message> recv_msg(int sock) {
  // Errors and state documents are small; 64 KiB bounds a runaway peer.
  std::string buf(64 * 1024, '\0');
  iovec iov{buf.data(), buf.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n;
  for (;;) {
    n = ::recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    if (n >= 0) break;
    if (errno != EINTR) return fail_errno(ErrorKind::Operation, "sync channel: receive");
  }
  Message m;
  if (n == 0) {
    m.eof = true;
    return m;
  }
  m.type = static_cast<Msg>(buf[0]);
  m.payload.assign(buf.data() + 1, static_cast<size_t>(n - 1));
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
      m.fd.reset(fd);
    }
  }
  return m;
}

std::string serialize_error(const Error& e) {
  json j = {{"kind", static_cast<int>(e.kind())},
            {"errno", e.sys_errno()},
            {"message", e.message()},
            {"hint", e.hint()},
            {"detail", e.detail()},
            {"context", e.context()}};
  json diags = json::array();
  for (const auto& d : e.diagnostics()) diags.push_back({{"field", d.field}, {"message", d.message}, {"hint", d.hint}});
  j["diagnostics"] = diags;
  return j.dump();
}

Error deserialize_error(const std::string& text) {
  try {
    json j = json::parse(text);
    Error e(static_cast<ErrorKind>(j.at("kind").get<int>()), j.at("message").get<std::string>());
    e.with_errno(j.at("errno").get<int>());
    if (auto h = j.value("hint", ""); !h.empty()) e.with_hint(h);
    if (auto d = j.value("detail", ""); !d.empty()) e.with_detail(d);
    auto ctx = j.value("context", std::vector<std::string>{});
    for (auto it = ctx.rbegin(); it != ctx.rend(); ++it) e.wrap(*it);
    for (const auto& d : j.value("diagnostics", json::array()))
      e.add_diagnostic(Diagnostic{"", 0, 0, d.value("field", ""), d.value("message", ""), d.value("hint", "")});
    return e;
  } catch (const json::exception&) {
    return Error(ErrorKind::Operation, "container init failed: " + text);
  }
}

Status send_fd_to_socket(const std::string& path, int fd, const std::string& name) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return fail_errno(ErrorKind::Operation, "console socket: socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return fail(Error(ErrorKind::Validation, fmt::format("console socket path {} is too long", path))
                    .with_hint("use a path shorter than 108 bytes"));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return fail(sys_error(ErrorKind::Operation, fmt::format("cannot connect to console socket {}", path))
                    .with_hint("the caller must listen on --console-socket before create"));
  std::string payload = name;
  iovec iov{payload.data(), payload.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  std::memset(control, 0, sizeof control);
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (::sendmsg(s.get(), &mh, MSG_NOSIGNAL) < 0)
    return fail_errno(ErrorKind::Operation, "cannot send the terminal to console socket {}", path);
  return ok();
}

}  // namespace foundry::container::detail
