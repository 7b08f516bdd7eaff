// foundry container ...: the thin client of foundryd (seed 002). Every
// command is one JSON-RPC call over the daemon's Unix socket; nothing here
// touches namespaces or cgroups. Also the seed's `foundry start
// --container-id ID`.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli.h"
#include "foundry/daemon/jsonrpc.h"

namespace foundry::cli {

namespace {

using json = nlohmann::json;

struct ContainerArgs {
  std::string socket;  // --socket, else $FOUNDRY_SOCKET, else /run/foundry/foundryd.sock
  std::string id;
  std::string bundle;
  std::string network;
  std::string signal = "TERM";
  bool all = false;
  bool force = false;
  int tail = -1;
};

ContainerArgs& args() {
  static ContainerArgs a;
  return a;
}

Result<json> rpc(const std::string& method, const json& params,
                 std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  return daemon::call(daemon::socket_path(args().socket), method, params, timeout);
}

std::string str(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

void print_state(const json& s, const Globals& g) {
  if (g.output == OutputFormat::Json) {
    std::printf("%s\n", s.dump(2).c_str());
    return;
  }
  std::printf("%-10s %s\n", "ID:", str(s, "id").c_str());
  std::printf("%-10s %s\n", "Status:", str(s, "status").c_str());
  std::printf("%-10s %s\n", "PID:", str(s, "pid").c_str());
  std::printf("%-10s %s\n", "Bundle:", str(s, "bundle").c_str());
  std::printf("%-10s %s\n", "Created:", str(s, "created").c_str());
  if (s.contains("exitCode")) std::printf("%-10s %s\n", "Exit code:", str(s, "exitCode").c_str());
  if (s.contains("network"))
    std::printf("%-10s %s %s\n", "Network:", str(s["network"], "name").c_str(), str(s["network"], "ip").c_str());
  std::printf("%-10s %s\n", "Log:", str(s, "log").c_str());
}

Status do_create(const Globals& g) {
  auto& a = args();
  std::error_code ec;
  std::string bundle = std::filesystem::absolute(a.bundle.empty() ? "." : a.bundle, ec).lexically_normal().string();
  while (bundle.size() > 1 && bundle.back() == '/') bundle.pop_back();
  json params = {{"id", a.id}, {"bundle", bundle}};
  if (!a.network.empty()) params["network"] = a.network;
  json s = FOUNDRY_TRY(rpc("create", params));
  if (g.output == OutputFormat::Json) {
    std::printf("%s\n", s.dump(2).c_str());
  } else {
    std::printf("✓ Container '%s' created (pid %s)\n", a.id.c_str(), str(s, "pid").c_str());
    if (s.contains("network"))
      std::printf("✓ Network %s: %s\n", str(s["network"], "name").c_str(), str(s["network"], "ip").c_str());
  }
  return ok();
}

Status do_start(const Globals& g) {
  json s = FOUNDRY_TRY(rpc("start", {{"id", args().id}}));
  if (g.output == OutputFormat::Json) std::printf("%s\n", s.dump(2).c_str());
  else std::printf("✓ Container '%s' started\n", args().id.c_str());
  return ok();
}

Status do_state(const Globals& g) {
  json s = FOUNDRY_TRY(rpc("state", {{"id", args().id}}));
  print_state(s, g);
  return ok();
}

Status do_kill(const Globals& g) {
  (void)g;
  FOUNDRY_TRY(rpc("kill", {{"id", args().id}, {"signal", args().signal}, {"all", args().all}}));
  return ok();
}

Status do_delete(const Globals& g) {
  FOUNDRY_TRY(rpc("delete", {{"id", args().id}, {"force", args().force}}));
  if (g.output != OutputFormat::Json) std::printf("✓ Container '%s' deleted\n", args().id.c_str());
  return ok();
}

Status do_list(const Globals& g) {
  json all = FOUNDRY_TRY(rpc("list", json::object()));
  if (g.output == OutputFormat::Json) {
    std::printf("%s\n", all.dump(2).c_str());
    return ok();
  }
  std::printf("%-24s %-9s %-8s %-5s %-31s %s\n", "ID", "STATUS", "PID", "EXIT", "CREATED", "BUNDLE");
  for (const auto& s : all)
    std::printf("%-24s %-9s %-8s %-5s %-31s %s\n", str(s, "id").c_str(), str(s, "status").c_str(),
                str(s, "pid").c_str(), s.contains("exitCode") ? str(s, "exitCode").c_str() : "-",
                str(s, "created").c_str(), str(s, "bundle").c_str());
  return ok();
}

Status do_logs(const Globals& g) {
  json p = {{"id", args().id}};
  if (args().tail >= 0) p["tail"] = args().tail;
  json r = FOUNDRY_TRY(rpc("logs", p));
  if (g.output == OutputFormat::Json) std::printf("%s\n", r.dump(2).c_str());
  else std::fwrite(r["data"].get<std::string>().data(), 1, r["data"].get<std::string>().size(), stdout);
  return ok();
}

struct ExecArgs {
  std::vector<std::string> env;
  std::string cwd;
  std::string user;
  bool interactive = false;
  std::vector<std::string> command;
};

ExecArgs& exec_args() {
  static ExecArgs e;
  return e;
}

// The process' stdout and stderr become ours, and its exit code our exit
// code (as with `docker exec`): scripts can test it.
Status do_exec_with(const ExecArgs& e, const Globals& g) {
  json p = {{"id", args().id}, {"args", e.command}};
  if (!e.env.empty()) p["env"] = e.env;
  if (!e.cwd.empty()) p["cwd"] = e.cwd;
  if (!e.user.empty()) p["user"] = e.user;
  if (e.interactive) {
    std::string in;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) in.append(buf, n);
    p["stdin"] = in;
  }
  // The command runs as long as it runs; the daemon answers when it ends.
  json r = FOUNDRY_TRY(rpc("exec", p, std::chrono::hours(24 * 365)));
  if (g.output == OutputFormat::Json) {
    std::printf("%s\n", r.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    const std::string out = r.value("stdout", ""), err = r.value("stderr", "");
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fwrite(err.data(), 1, err.size(), stderr);
  }
  std::fflush(stdout);
  std::fflush(stderr);
  int code = r.value("exitCode", 0);
  if (code != 0) std::exit(code);
  return ok();
}

Status do_exec(const Globals& g) { return do_exec_with(exec_args(), g); }

void add_socket(CLI::App* c) {
  c->add_option("--socket", args().socket, "foundryd's socket (default: $FOUNDRY_SOCKET or /run/foundry/foundryd.sock)");
}

void register_container(CLI::App& app, Globals& g) {
  auto* c = app.add_subcommand("container", "Containers from OCI bundles, run by foundryd");
  c->require_subcommand(1);
  c->footer(R"(
Each command asks foundryd over its Unix socket; the daemon must be running
(systemctl start foundryd, or foundryd as root). Exit codes: 1 configuration,
2 validation, 3 daemon not reachable, 4 operation failed.

Examples:
  foundry container create --bundle /srv/bundles/web web
  foundry container start web
  foundry container logs web
  foundry container exec web -- ps
  foundry -o json container list)");
  add_socket(c);
  auto& a = args();

  auto* create = c->add_subcommand("create", "Create a container from a bundle (it waits for start)");
  create->add_option("-b,--bundle,--bundle-path", a.bundle, "Bundle directory (default: current directory)");
  create->add_option("-n,--network", a.network, "CNI network to attach (a name from /etc/foundry/cni)");
  create->add_option("ID,--container-id", a.id, "Container id")->required();
  set_action(create, [&g] { return do_create(g); });

  auto* start = c->add_subcommand("start", "Start a created container");
  start->add_option("ID,--container-id", a.id, "Container id")->required();
  set_action(start, [&g] { return do_start(g); });

  auto* state = c->add_subcommand("state", "Show a container's state");
  state->add_option("ID", a.id, "Container id")->required();
  set_action(state, [&g] { return do_state(g); });

  auto* kill = c->add_subcommand("kill", "Send a signal to a container (default TERM)");
  kill->add_option("ID", a.id, "Container id")->required();
  kill->add_option("SIGNAL", a.signal, "Signal name or number")->capture_default_str();
  kill->add_flag("-a,--all", a.all, "Signal every process of the container");
  set_action(kill, [&g] { return do_kill(g); });

  auto* del = c->add_subcommand("delete", "Delete a container (running ones need --force)");
  del->add_option("ID", a.id, "Container id")->required();
  del->add_flag("-f,--force", a.force, "Kill it first if it runs");
  set_action(del, [&g] { return do_delete(g); });

  auto* list = c->add_subcommand("list", "List containers");
  set_action(list, [&g] { return do_list(g); });

  auto* logs = c->add_subcommand("logs", "Print a container's output");
  logs->add_option("ID", a.id, "Container id")->required();
  logs->add_option("--tail", a.tail, "Only the last N lines");
  set_action(logs, [&g] { return do_logs(g); });

  auto* exec = c->add_subcommand("exec", "Run a command in a running container; its output and exit code are yours");
  ExecArgs& ea = exec_args();
  exec->add_option("-e,--env", ea.env, "Set an environment variable (KEY=value; repeatable)")->allow_extra_args(false);
  exec->add_option("-w,--cwd", ea.cwd, "Working directory inside the container");
  exec->add_option("-u,--user", ea.user, "uid[:gid] to run as");
  exec->add_flag("-i,--interactive", ea.interactive, "Send this command's stdin to the process (read to its end first)");
  exec->add_option("ID", a.id, "Container id")->required();
  exec->add_option("COMMAND", ea.command, "The program and its arguments (put -- before them)")->required();
  set_action(exec, [&g] { return do_exec(g); });

  // The seed's spelling (`foundry create --bundle-path P --container-id ID`
  // needs the VM group's top-level `create` to dispatch on its flags).
  auto* seed_start = app.add_subcommand("start", "Start a created container (seed spelling)");
  seed_start->group("");
  seed_start->add_option("--container-id", a.id, "Container id")->required();
  add_socket(seed_start);
  set_action(seed_start, [&g] { return do_start(g); });
}

const CommandGroup reg(50, register_container);

}  // namespace

Status container_create(const std::string& bundle, const std::string& id, const Globals& g) {
  args().bundle = bundle;
  args().id = id;
  return do_create(g);
}

}  // namespace foundry::cli
