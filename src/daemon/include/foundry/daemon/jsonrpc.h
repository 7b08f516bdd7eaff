// JSON-RPC 2.0 between `foundry` and foundryd over a Unix stream socket.
//
// Framing: one JSON object per line (requests and responses never contain a
// raw newline: JSON strings escape it). A connection may carry any number of
// requests; responses come back in order.
//
// Errors: the protocol's own codes (-32700 parse error, -32600 invalid
// request, -32601 method not found, -32602 invalid params), -32001 for a
// peer that may not use the daemon, and for failures of the operation itself
// 1000 + the Foundry error kind (1001 config ... 1005 storage), so a client
// exits with the same code a local run would. `data` carries the hint,
// context chain and diagnostics of the Error.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "foundry/common/error.h"

namespace foundry::daemon {

inline constexpr const char* kDefaultSocket = "/run/foundry/foundryd.sock";
inline constexpr const char* kSocketEnv = "FOUNDRY_SOCKET";

inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kPermissionDenied = -32001;
inline constexpr int kApplicationBase = 1000;

// {"code", "message", "data"} for an Error.
nlohmann::json error_object(const Error& e);
// The Error a client reports for an error object from the daemon.
Error error_from_object(const nlohmann::json& err);
nlohmann::json response_ok(const nlohmann::json& id, nlohmann::json result);
nlohmann::json response_error(const nlohmann::json& id, int code, const std::string& message,
                              nlohmann::json data = nullptr);

// The socket a client uses: explicit, else $FOUNDRY_SOCKET, else the default.
std::string socket_path(const std::string& explicit_path = "");

// One call: connect, send, read the response. A daemon that is not running
// is ErrorKind::Connection with a hint on how to start it.
Result<nlohmann::json> call(const std::string& socket, const std::string& method, const nlohmann::json& params,
                            std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace foundry::daemon
