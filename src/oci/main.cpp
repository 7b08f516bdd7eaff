// foundry-oci: a runc-compatible command line over foundry_container, without
// a daemon. Podman (--runtime), containerd shims and the OCI validation tools
// call it the way they call runc:
//   foundry-oci [--root DIR] [--log FILE] [--log-format text|json]
//               [--systemd-cgroup] [--debug] COMMAND ...
// Errors go to stderr once (with a hint) and, with --log, to the log file in
// the format conmon and containerd read. The exit code follows the Foundry
// convention: 1 config, 2 validation, 4 operation, 5 storage.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <algorithm>
#include <mutex>
#include <set>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "foundry/common/file.h"
#include "foundry/container/runtime.h"
#include "foundry/container/state.h"

namespace {

using foundry::Error;
using foundry::ErrorKind;
using foundry::Result;
using foundry::Status;
namespace fc = foundry::container;
using json = nlohmann::json;

// runc's log formats: logrus text ("time=... level=... msg=...") or one JSON
// object per line ({"level","msg","time"}), which conmon parses on failure.
class LogFileSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  LogFileSink(std::FILE* f, bool json_format) : f_(f), json_(json_format) {}
  ~LogFileSink() override {
    if (f_) std::fclose(f_);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string level(spdlog::level::to_string_view(msg.level).data(), spdlog::level::to_string_view(msg.level).size());
    if (level == "warning") level = "warning";
    std::string text(msg.payload.data(), msg.payload.size());
    std::string time = fc::now_rfc3339();
    if (json_) {
      std::string line = json{{"level", level == "warn" ? "warning" : level}, {"msg", text}, {"time", time}}.dump();
      std::fprintf(f_, "%s\n", line.c_str());
    } else {
      std::fprintf(f_, "time=\"%s\" level=%s msg=%s\n", time.c_str(), level.c_str(), json(text).dump().c_str());
    }
    std::fflush(f_);
  }
  void flush_() override { std::fflush(f_); }

 private:
  std::FILE* f_;
  bool json_;
};

struct Globals {
  std::string root = fc::kDefaultStateRoot;
  std::string log_file;
  std::string log_format = "text";
  bool systemd_cgroup = false;
  bool debug = false;
};

void setup_logging(const Globals& g) {
  std::vector<spdlog::sink_ptr> sinks;
  auto err = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  err->set_pattern(g.debug ? "foundry-oci: %H:%M:%S.%f %l: %v" : "foundry-oci: %l: %v");
  err->set_level(g.debug ? spdlog::level::debug : spdlog::level::warn);
  sinks.push_back(err);
  if (!g.log_file.empty()) {
    std::FILE* f = std::fopen(g.log_file.c_str(), "ae");
    if (f) {
      auto s = std::make_shared<LogFileSink>(f, g.log_format == "json");
      s->set_level(g.debug ? spdlog::level::debug : spdlog::level::info);
      sinks.push_back(s);
    } else {
      std::fprintf(stderr, "foundry-oci: cannot open log file %s\n", g.log_file.c_str());
    }
  }
  auto logger = std::make_shared<spdlog::logger>("foundry-oci", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::debug);
  spdlog::set_default_logger(logger);
}

// The edge: one line on stderr (plus diagnostics and a hint), and the same
// message in the log file for conmon/containerd.
int report(const Error& e) {
  std::string msg = e.to_string();
  for (const auto& d : e.diagnostics()) std::fprintf(stderr, "%s\n", d.to_string().c_str());
  std::fprintf(stderr, "foundry-oci: error: %s\n", msg.c_str());
  if (!e.hint().empty()) std::fprintf(stderr, "hint: %s\n", e.hint().c_str());
  // stderr is already written; the log file gets it without the sink above.
  auto logger = spdlog::default_logger();
  for (auto& s : logger->sinks())
    if (dynamic_cast<LogFileSink*>(s.get()))
      s->log(spdlog::details::log_msg("foundry-oci", spdlog::level::err, msg));
  return e.exit_code();
}

int run_status(const Status& st) { return st ? 0 : report(st.error()); }

// runc stops reading options at `exec`'s first positional argument (the
// id): in `exec ID sh -c x` the -c is the command's. CLI11 would take it
// as exec's --cap, so a `--` goes in after the id unless one is there.
std::vector<std::string> separate_exec_command(int argc, char** argv) {
  static const std::set<std::string> global_values = {"--root", "--log", "--log-format", "--rootless", "--criu"};
  static const std::set<std::string> exec_values = {
      "-p", "--process", "-e", "--env", "--cwd", "-u", "--user", "-g", "--additional-gids", "-c", "--cap",
      "--console-socket", "--pid-file", "--preserve-fds", "--process-label", "--apparmor", "--cgroup"};
  std::vector<std::string> args(argv, argv + argc);
  size_t i = 1;
  auto skip_options = [&](const std::set<std::string>& with_value) {
    while (i < args.size() && args[i].size() > 1 && args[i][0] == '-' && args[i] != "--") {
      bool takes = with_value.count(args[i]) > 0;
      i += takes ? 2 : 1;
    }
  };
  skip_options(global_values);
  if (i >= args.size() || args[i] != "exec") return args;
  ++i;
  skip_options(exec_values);
  if (i >= args.size() || args[i] == "--") return args;  // no id yet, or already separated
  size_t after_id = i + 1;
  if (after_id < args.size() && args[after_id] != "--") args.insert(args.begin() + static_cast<long>(after_id), "--");
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  Globals g;
  CLI::App app{"foundry-oci: an OCI runtime (runc-compatible command line) built on Foundry's container library",
               "foundry-oci"};
  app.set_version_flag("-v,--version",
                       std::string("foundry-oci version 0.1.0\nspec: ") + fc::kOciVersion);
  app.require_subcommand(1);
  app.add_option("--root", g.root, "Directory for container state")->capture_default_str();
  app.add_option("--log", g.log_file, "Append log messages to this file");
  app.add_option("--log-format", g.log_format, "Log file format")->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--systemd-cgroup", g.systemd_cgroup,
               "Accepted for runc compatibility; cgroups are always managed through the cgroup filesystem");
  app.add_flag("--debug", g.debug, "Log debug messages");
  std::string rootless_dummy, criu_dummy;
  app.add_option("--rootless", rootless_dummy, "Accepted for runc compatibility")->group("");
  app.add_option("--criu", criu_dummy, "Accepted for runc compatibility")->group("");

  std::function<int()> action;

  // create
  fc::CreateOptions copts;
  bool no_new_keyring = false;
  auto* create = app.add_subcommand("create", "Create a container; its process waits for `start`");
  auto add_create_opts = [&](CLI::App* c) {
    c->add_option("-b,--bundle", copts.bundle, "Bundle directory (default: current directory)");
    c->add_option("--pid-file", copts.pid_file, "Write the container's pid to this file");
    c->add_option("--console-socket", copts.console_socket, "AF_UNIX socket that receives the pty master");
    c->add_option("--preserve-fds", copts.preserve_fds, "Pass this many extra fds (from 3) to the container");
    c->add_flag("--no-pivot", copts.no_pivot, "Use chroot instead of pivot_root (rootfs on ramfs)");
    c->add_flag("--no-new-keyring", no_new_keyring, "Accepted for runc compatibility");
    c->add_option("id", copts.id, "Container id")->required();
  };
  add_create_opts(create);
  create->callback([&] {
    action = [&] {
      fc::Runtime rt(g.root);
      auto st = rt.create(copts);
      return st ? 0 : report(st.error());
    };
  });

  // run
  auto* run = app.add_subcommand("run", "Create and start a container, wait for it, delete it");
  bool detach = false;
  add_create_opts(run);
  run->add_flag("-d,--detach", detach, "Return after start instead of waiting");
  run->callback([&] {
    action = [&] {
      fc::Runtime rt(g.root);
      auto r = rt.run(copts, detach);
      if (!r) return report(r.error());
      if (r->oom_kills > 0)
        spdlog::warn("container \"{}\" was killed by the OOM killer ({} OOM kill{} in its memory cgroup)", copts.id,
                     r->oom_kills, r->oom_kills == 1 ? "" : "s");
      return r->exit_code;
    };
  });

  std::string id;
  auto* start = app.add_subcommand("start", "Start a created container");
  start->add_option("id", id, "Container id")->required();
  start->callback([&] { action = [&] { return run_status(fc::Runtime(g.root).start(id)); }; });

  auto* state = app.add_subcommand("state", "Print the OCI state of a container");
  state->add_option("id", id, "Container id")->required();
  state->callback([&] {
    action = [&] {
      auto s = fc::Runtime(g.root).state(id);
      if (!s) return report(s.error());
      std::printf("%s\n", s->dump(2).c_str());
      return 0;
    };
  });

  auto* kill = app.add_subcommand("kill", "Send a signal to a container's init (default SIGTERM)");
  std::string sig = "SIGTERM";
  bool all = false;
  kill->add_option("id", id, "Container id")->required();
  kill->add_option("signal", sig, "Signal name or number")->capture_default_str();
  kill->add_flag("-a,--all", all, "Signal every process in the container's cgroup");
  kill->callback([&] {
    action = [&] {
      auto n = fc::parse_signal(sig);
      if (!n) return report(n.error());
      return run_status(fc::Runtime(g.root).kill(id, *n, all));
    };
  });

  auto* del = app.add_subcommand("delete", "Delete a container (created or stopped; --force: any)");
  bool force = false;
  del->add_option("id", id, "Container id")->required();
  del->add_flag("-f,--force", force, "Kill a running container first");
  del->callback([&] { action = [&] { return run_status(fc::Runtime(g.root).remove(id, force)); }; });

  // exec: runc's options; the command follows the id (after `--` when it
  // has options of its own).
  auto* exec = app.add_subcommand("exec", "Run a process inside a created or running container");
  fc::ExecChanges changes;
  std::vector<std::string> exec_cmd;
  std::string process_file, exec_console, exec_pid_file;
  bool exec_detach = false;
  int exec_preserve = 0;
  std::vector<std::string> ignored;
  exec->add_option("-p,--process", process_file, "process.json with the whole process (replaces the other options)");
  exec->add_option("-e,--env", changes.env, "Set an environment variable (KEY=value; repeatable)")->allow_extra_args(false);
  exec->add_option("--cwd", changes.cwd, "Working directory inside the container");
  exec->add_option("-u,--user", changes.user, "uid[:gid] to run as");
  exec->add_option("-g,--additional-gids", changes.additional_gids, "Additional gids (repeatable)")->allow_extra_args(false);
  exec->add_option("-c,--cap", changes.caps, "Add a capability (repeatable)")->allow_extra_args(false);
  exec->add_flag("--no-new-privs", changes.no_new_privileges, "Set no_new_privs for the process");
  exec->add_flag("-t,--tty", changes.tty, "Allocate a pty (its master goes to --console-socket)");
  exec->add_option("--console-socket", exec_console, "AF_UNIX socket that receives the pty master");
  exec->add_option("--pid-file", exec_pid_file, "Write the process' pid to this file");
  exec->add_flag("-d,--detach", exec_detach, "Return once the process runs");
  exec->add_option("--preserve-fds", exec_preserve, "Pass this many extra fds (from 3) to the process");
  exec->add_option("--process-label,--apparmor,--cgroup", ignored, "Accepted for runc compatibility")->group("");
  bool ignore_paused = false;
  exec->add_flag("--ignore-paused", ignore_paused, "Accepted for runc compatibility")->group("");
  exec->add_option("id", id, "Container id")->required();
  exec->add_option("command", exec_cmd, "The program and its arguments (unless --process)");
  exec->callback([&] {
    action = [&] {
      fc::Runtime rt(g.root);
      fc::ExecOptions o;
      o.id = id;
      o.console_socket = exec_console;
      o.pid_file = exec_pid_file;
      o.preserve_fds = exec_preserve;
      if (!process_file.empty()) {
        auto text = foundry::read_file(process_file);
        if (!text) return report(std::move(text).error().wrap("read --process"));
        auto p = fc::parse_process_spec(*text, process_file);
        if (!p) return report(p.error());
        o.process = std::move(*p);
      } else {
        changes.args = exec_cmd;
        auto base = rt.container_process(id);
        if (!base) return report(base.error());
        auto p = fc::exec_process(*base, changes);
        if (!p) return report(p.error());
        o.process = std::move(*p);
      }
      auto r = rt.exec_wait(o, exec_detach);
      if (!r) return report(r.error());
      return r->exit_code;
    };
  });

  auto* list = app.add_subcommand("list", "List containers");
  std::string format = "table";
  bool quiet = false;
  list->add_option("-f,--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  list->add_flag("-q,--quiet", quiet, "Only ids");
  list->callback([&] {
    action = [&] {
      fc::Runtime rt(g.root);
      json all_states = json::array();
      for (const auto& cid : rt.list()) {
        auto s = rt.state(cid);
        if (s) all_states.push_back(*s);
      }
      if (format == "json") {
        std::printf("%s\n", all_states.dump(2).c_str());
      } else if (quiet) {
        for (const auto& s : all_states) std::printf("%s\n", s["id"].get<std::string>().c_str());
      } else {
        std::printf("%-24s %-8s %-10s %-40s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
        for (const auto& s : all_states)
          std::printf("%-24s %-8d %-10s %-40s %s\n", s["id"].get<std::string>().c_str(), s["pid"].get<int>(),
                      s["status"].get<std::string>().c_str(), s["bundle"].get<std::string>().c_str(),
                      s["created"].get<std::string>().c_str());
      }
      return 0;
    };
  });

  auto* spec = app.add_subcommand("spec", "Write a default config.json into the bundle directory");
  std::string spec_bundle = ".";
  bool rootless = false;
  spec->add_option("-b,--bundle", spec_bundle, "Bundle directory")->capture_default_str();
  spec->add_flag("--rootless", rootless, "Map the caller's uid/gid to root in a user namespace");
  spec->callback([&] {
    action = [&] {
      std::string path = spec_bundle + "/config.json";
      if (::access(path.c_str(), F_OK) == 0)
        return report(Error(ErrorKind::Config, fmt::format("{} already exists", path))
                          .with_hint("remove it first; spec never overwrites a configuration"));
      auto st = foundry::write_file_atomic(path, fc::default_spec_json(rootless), 0644);
      return st ? 0 : report(st.error());
    };
  });

  auto* features = app.add_subcommand("features", "Print the features this runtime supports (JSON)");
  features->callback([&] {
    action = [&] {
      std::printf("%s\n", fc::features_json().dump(4).c_str());
      return 0;
    };
  });

  try {
    std::vector<std::string> args = separate_exec_command(argc, argv);
    std::reverse(args.begin(), args.end());
    args.pop_back();  // the program name
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  // A closed stdout (a caller that stopped reading) must not kill the
  // runtime halfway through an operation; write errors are reported instead.
  ::signal(SIGPIPE, SIG_IGN);
  setup_logging(g);
  if (g.systemd_cgroup) spdlog::debug("--systemd-cgroup: accepted; cgroups are managed through the filesystem");
  if (!action) return 1;
  try {
    return action();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "foundry-oci: internal error: %s\n", e.what());
    return 4;
  }
}
