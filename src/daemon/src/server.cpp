#include "foundry/daemon/server.h"

#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "foundry/common/file.h"
#include "foundry/common/log.h"
#include "foundry/daemon/jsonrpc.h"

namespace foundry::daemon {

using json = nlohmann::json;

Server::Server(ServerOptions opts, Supervisor& sup) : opts_(std::move(opts)), sup_(sup) {
  group gr{}, *res = nullptr;
  char buf[4096];
  if (::getgrnam_r(opts_.group.c_str(), &gr, buf, sizeof buf, &res) == 0 && res) group_gid_ = gr.gr_gid;
}

Status Server::listen() {
  std::string dir = std::filesystem::path(opts_.socket).parent_path().string();
  FOUNDRY_TRY_CTX(make_dirs(dir, 0755), "create the socket directory");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (opts_.socket.size() >= sizeof addr.sun_path)
    return fail(ErrorKind::Config, "socket path {} is too long (at most {} bytes)", opts_.socket,
                sizeof addr.sun_path - 1);
  std::memcpy(addr.sun_path, opts_.socket.c_str(), opts_.socket.size() + 1);
  struct stat st {};
  if (::lstat(opts_.socket.c_str(), &st) == 0) {
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      return fail(Error(ErrorKind::Operation, fmt::format("foundryd is already running on {}", opts_.socket))
                      .with_hint("stop it first, or pass another --socket"));
    ::unlink(opts_.socket.c_str());  // left by a daemon that died
  }
  listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_fd_) return fail_errno(ErrorKind::Operation, "cannot create the daemon socket");
  // The socket is born with the umask's mode; narrow it before anyone can
  // connect, then open it to the group.
  mode_t old = ::umask(0177);
  int rc = ::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0) return fail_errno(ErrorKind::Operation, "cannot bind {}", opts_.socket);
  if (group_gid_ != static_cast<gid_t>(-1)) ::chown(opts_.socket.c_str(), 0, group_gid_);
  ::chmod(opts_.socket.c_str(), 0660);
  if (::listen(listen_fd_.get(), 64) != 0) return fail_errno(ErrorKind::Operation, "cannot listen on {}", opts_.socket);
  return ok();
}

bool Server::peer_allowed(int fd, std::string& who) const {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  who = fmt::format("pid {} uid {}", cred.pid, cred.uid);
  if (cred.uid == 0) return true;
  if (group_gid_ == static_cast<gid_t>(-1)) return false;
  if (cred.gid == group_gid_) return true;
  // Supplementary groups of the peer, as the kernel has them now.
  auto status = read_file(fmt::format("/proc/{}/status", cred.pid));
  if (!status) return false;
  std::istringstream in(*status);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Groups:", 0) != 0) continue;
    std::istringstream g(line.substr(7));
    gid_t gid;
    while (g >> gid)
      if (gid == group_gid_) return true;
  }
  return false;
}

namespace {
// Container output may be any bytes; JSON strings must be UTF-8.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
}  // namespace

void Server::send_line(int fd, std::string out) {
  out += "\n";
  std::string_view rest = out;
  while (!rest.empty()) {
    ssize_t w = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 1000);
      continue;
    }
    if (w <= 0) break;
    rest.remove_prefix(static_cast<size_t>(w));
  }
}

std::string Server::handle_line(int client, const std::string& line) {
  json req;
  try {
    req = json::parse(line);
  } catch (const json::exception& e) {
    return response_error(nullptr, kParseError, std::string("parse error: ") + e.what()).dump();
  }
  json id = req.is_object() && req.contains("id") ? req["id"] : json(nullptr);
  if (!req.is_object() || req.value("jsonrpc", "") != "2.0" || !req.contains("method") || !req["method"].is_string() ||
      (req.contains("params") && !req["params"].is_object() && !req["params"].is_null()) ||
      (!id.is_null() && !id.is_string() && !id.is_number()))
    return response_error(id, kInvalidRequest, "invalid request: need jsonrpc \"2.0\", a method and object params")
        .dump();
  bool notification = !req.contains("id");
  std::string method = req["method"];
  json params = req.value("params", json::object());
  if (params.is_null()) params = json::object();
  bool not_found = false;
  json resp;
  if (method == "exec") {
    auto token = sup_.exec_start(params);
    if (token) {
      if (!notification) pending_execs_[*token] = PendingExec{client, id};
      return "";
    }
    spdlog::warn("exec failed: {}", token.error().to_string());
    return notification ? "" : dump({{"jsonrpc", "2.0"}, {"id", id}, {"error", error_object(token.error())}});
  }
  try {
    auto r = sup_.handle(method, params, not_found);
    if (r) {
      resp = response_ok(id, *r);
    } else if (not_found) {
      resp = response_error(id, kMethodNotFound, r.error().message());
    } else {
      json err = error_object(r.error());
      resp = {{"jsonrpc", "2.0"}, {"id", id}, {"error", err}};
      spdlog::warn("{} failed: {}", method, r.error().to_string());
    }
  } catch (const std::exception& e) {
    // A programming error must not take the daemon (and its containers' exit
    // bookkeeping) down: it becomes this request's error.
    resp = response_error(id, -32603, std::string("internal error: ") + e.what());
  }
  if (notification) return "";
  return dump(resp);
}

Status Server::run() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
  UniqueFd sfd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sfd) return fail_errno(ErrorKind::Operation, "signalfd");
  sup_.reap();  // children that ended before the signalfd existed

  struct Client {
    UniqueFd fd;
    std::string in;
  };
  std::map<int, Client> clients;
  // A client that leaves while its exec runs: the fd number may be reused
  // by the next connection, which must not get the old answer.
  auto forget_client = [&](int fd) {
    clients.erase(fd);
    std::erase_if(pending_execs_, [fd](const auto& kv) { return kv.second.client == fd; });
  };
  for (;;) {
    // Exec answers: processes reaped on SIGCHLD, or killed by a delete.
    for (auto& [token, result] : sup_.take_finished_execs()) {
      auto pe = pending_execs_.find(token);
      if (pe == pending_execs_.end()) continue;  // the client has gone
      if (clients.count(pe->second.client))
        send_line(pe->second.client, dump(response_ok(pe->second.request_id, result)));
      pending_execs_.erase(pe);
    }
    std::vector<pollfd> fds;
    fds.push_back({listen_fd_.get(), POLLIN, 0});
    fds.push_back({sfd.get(), POLLIN, 0});
    for (auto& [fd, c] : clients) fds.push_back({fd, POLLIN, 0});
    auto adopted = sup_.adopted_fds();
    for (auto& [fd, id] : adopted) fds.push_back({fd, POLLIN, 0});
    int r = ::poll(fds.data(), fds.size(), -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail_errno(ErrorKind::Operation, "poll");
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si{};
      bool stop = false;
      while (::read(sfd.get(), &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD) sup_.reap();
        else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) stop = true;
      }
      if (stop) {
        spdlog::info("stopping; containers keep running and are adopted by the next foundryd");
        ::unlink(opts_.socket.c_str());
        return ok();
      }
    }
    size_t base = 2 + clients.size();
    for (size_t i = 0; i < adopted.size(); ++i)
      if (fds[base + i].revents & (POLLIN | POLLHUP)) sup_.adopted_exited(adopted[i].second);
    for (size_t i = 2; i < base; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int fd = fds[i].fd;
      Client& c = clients[fd];
      char buf[65536];
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        forget_client(fd);
        continue;
      }
      c.in.append(buf, static_cast<size_t>(n));
      if (c.in.size() > (1 << 20)) {  // no request is that large
        forget_client(fd);
        continue;
      }
      size_t nl;
      while ((nl = c.in.find('\n')) != std::string::npos) {
        std::string line = c.in.substr(0, nl);
        c.in.erase(0, nl + 1);
        if (line.empty()) continue;
        std::string out = handle_line(fd, line);
        if (!out.empty()) send_line(fd, std::move(out));
      }
    }
    if (fds[0].revents & POLLIN) {
      for (;;) {
        int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) break;
        std::string who;
        if (!peer_allowed(fd, who)) {
          std::string msg = response_error(nullptr, kPermissionDenied,
                                           fmt::format("permission denied: {} is neither root nor in group {}", who,
                                                       opts_.group))
                                .dump() +
                            "\n";
          ::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL);
          ::close(fd);
          spdlog::warn("refused a connection from {}", who);
          continue;
        }
        clients[fd].fd.reset(fd);
      }
    }
  }
}

}  // namespace foundry::daemon
