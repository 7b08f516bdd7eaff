#include "foundry/daemon/jsonrpc.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "foundry/common/unique_fd.h"

namespace foundry::daemon {

using json = nlohmann::json;

json error_object(const Error& e) {
  json diags = json::array();
  for (const auto& d : e.diagnostics())
    diags.push_back({{"file", d.file}, {"line", d.line}, {"column", d.column}, {"field", d.field},
                     {"message", d.message}, {"hint", d.hint}});
  json data = {{"kind", std::string(to_string(e.kind()))},
               {"errno", e.sys_errno()},
               {"detail", e.detail()},
               {"hint", e.hint()},
               {"context", e.context()},
               {"diagnostics", diags},
               {"text", e.to_string()}};
  return {{"code", kApplicationBase + e.exit_code()}, {"message", e.message()}, {"data", data}};
}

Error error_from_object(const json& err) {
  int code = err.value("code", 0);
  std::string message = err.value("message", std::string("unknown error"));
  ErrorKind kind = ErrorKind::Operation;
  if (code > kApplicationBase && code <= kApplicationBase + 5) kind = static_cast<ErrorKind>(code - kApplicationBase);
  else if (code == kPermissionDenied) kind = ErrorKind::Connection;
  else if (code == kInvalidParams || code == kInvalidRequest || code == kMethodNotFound) kind = ErrorKind::Config;
  Error e(kind, message);
  const json data = err.value("data", json::object());
  if (data.is_object()) {
    e.with_errno(data.value("errno", 0));
    if (auto h = data.value("hint", std::string()); !h.empty()) e.with_hint(h);
    if (auto d = data.value("detail", std::string()); !d.empty()) e.with_detail(d);
    auto ctx = data.value("context", std::vector<std::string>{});
    for (auto it = ctx.rbegin(); it != ctx.rend(); ++it) e.wrap(*it);
    for (const auto& d : data.value("diagnostics", json::array()))
      e.add_diagnostic(Diagnostic{d.value("file", ""), d.value("line", 0), d.value("column", 0), d.value("field", ""),
                                  d.value("message", ""), d.value("hint", "")});
  }
  return e;
}

json response_ok(const json& id, json result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json response_error(const json& id, int code, const std::string& message, json data) {
  json err = {{"code", code}, {"message", message}};
  if (!data.is_null()) err["data"] = std::move(data);
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", err}};
}

std::string socket_path(const std::string& explicit_path) {
  if (!explicit_path.empty()) return explicit_path;
  if (const char* env = std::getenv(kSocketEnv); env && *env) return env;
  return kDefaultSocket;
}

Result<json> call(const std::string& socket, const std::string& method, const json& params,
                  std::chrono::milliseconds timeout) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno(ErrorKind::Connection, "cannot create a socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.size() >= sizeof addr.sun_path)
    return fail(ErrorKind::Config, "socket path {} is too long", socket);
  std::memcpy(addr.sun_path, socket.c_str(), socket.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    std::string why = e == ENOENT || e == ECONNREFUSED ? "foundryd is not running" : "cannot reach foundryd";
    errno = e;
    return fail(sys_error(ErrorKind::Connection, fmt::format("{} (socket {})", why, socket))
                    .with_hint(e == EACCES ? "run as root or as a member of the foundry group"
                                           : "start it with `systemctl start foundryd` (or run `foundryd` as root)"));
  }
  json req = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}};
  std::string line = req.dump() + "\n";
  std::string_view rest = line;
  while (!rest.empty()) {
    ssize_t n = ::send(fd.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    // A daemon that refuses the peer answers at once and closes: its
    // answer is still there to read.
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) break;
    if (n <= 0) return fail_errno(ErrorKind::Connection, "cannot send to foundryd");
    rest.remove_prefix(static_cast<size_t>(n));
  }
  std::string buf;
  char chunk[65536];
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (buf.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return fail(ErrorKind::Connection, "foundryd did not answer {} within {} s", method, timeout.count() / 1000);
    pollfd p{fd.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::recv(fd.get(), chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno(ErrorKind::Connection, "cannot read from foundryd");
    if (n == 0) return fail(ErrorKind::Connection, "foundryd closed the connection during {}", method);
    buf.append(chunk, static_cast<size_t>(n));
  }
  json resp;
  try {
    resp = json::parse(buf.substr(0, buf.find('\n')));
  } catch (const json::exception& e) {
    return fail(ErrorKind::Connection, "foundryd sent an unreadable response: {}", e.what());
  }
  if (resp.contains("error")) return fail(error_from_object(resp["error"]));
  if (!resp.contains("result")) return fail(ErrorKind::Connection, "foundryd sent a response without a result");
  return resp["result"];
}

}  // namespace foundry::daemon
