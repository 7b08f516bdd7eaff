// foundryd and the `foundry container` client: the lifecycle over JSON-RPC,
// exit codes and logs, a daemon restart adopting running containers, a
// kill -9 in the middle of create cleaned on the next start, peer
// credentials, and protocol errors. Each test runs its own foundryd on a
// socket, state root and log directory in its temporary tree.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "bundle.h"
#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"
#include "foundry/container/state.h"
#include "foundry/daemon/jsonrpc.h"

using namespace foundry::container::testing;
using json = nlohmann::json;
namespace fs = std::filesystem;
namespace rpc = foundry::daemon;

extern char** environ;

namespace {

std::string foundryd_binary() { return std::string(FOUNDRY_BINARY_DIR) + "/src/daemon/foundryd"; }
std::string foundry_binary() { return std::string(FOUNDRY_BINARY_DIR) + "/src/cli/foundry"; }

class Daemon : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = skip_reason();
    if (!why.empty()) GTEST_SKIP() << why;
    if (::access(foundryd_binary().c_str(), X_OK) != 0) GTEST_SKIP() << "foundryd is not built";
    b_ = std::make_unique<Bundle>();
    sock_ = b_->tmp() + "/foundryd.sock";
    root_ = b_->tmp() + "/dstate";
    logs_ = b_->tmp() + "/dlogs";
    start_daemon();
  }
  void TearDown() override {
    if (!b_) return;
    if (daemon_ <= 0) start_daemon();
    if (daemon_ > 0) {
      auto l = rpc::call(sock_, "list", json::object());
      if (l)
        for (const auto& c : *l) (void)rpc::call(sock_, "delete", {{"id", c["id"]}, {"force", true}});
      stop_daemon(SIGTERM);
    }
    reap_children();
    b_.reset();
  }

  // private_net: run foundryd in a network namespace of its own (unshare
  // execs it, so the pid is foundryd's): CNI bridges it makes stay there.
  void start_daemon(bool private_net = false) {
    std::vector<std::string> argv = {foundryd_binary(), "--socket",     sock_,   "--root",
                                     root_,             "--log-dir",    logs_,   "--group",
                                     "foundry-test-nonexistent-group", "--cni-conf-dir", b_->tmp() + "/cni"};
    if (private_net) argv.insert(argv.begin(), {foundry::find_program("unshare"), "--net", "--"});
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::string log = b_->tmp() + "/foundryd.log";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ASSERT_EQ(::posix_spawn(&daemon_, argv[0].c_str(), &fa, nullptr, cargv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 500; ++i) {
      if (rpc::call(sock_, "version", json::object())) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "foundryd did not answer: " << foundry::read_file(log).value_or("");
  }

  void stop_daemon(int sig) {
    if (daemon_ <= 0) return;
    ::kill(daemon_, sig);
    wait_child(daemon_, 10000);
    daemon_ = -1;
  }

  // The real client binary, as a user types it.
  OciRun client(const std::vector<std::string>& args, const std::string& socket = "") {
    std::vector<std::string> argv = {foundry_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    foundry::RunOptions o;
    o.extra_env = {"FOUNDRY_SOCKET=" + (socket.empty() ? sock_ : socket)};
    o.timeout = std::chrono::seconds(60);
    auto r = foundry::run(argv, o);
    OciRun out;
    if (!r) {
      out.err = r.error().to_string();
      return out;
    }
    out.rc = r->exit_code;
    out.out = r->out;
    out.err = r->err;
    return out;
  }

  json state_of(const std::string& id) {
    auto s = rpc::call(sock_, "state", {{"id", id}});
    return s ? *s : json::object();
  }

  std::string wait_status(const std::string& id, const std::string& want) {
    std::string last;
    for (int i = 0; i < 500; ++i) {
      last = state_of(id).value("status", "");
      if (last == want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return last;
  }

  std::unique_ptr<Bundle> b_;
  pid_t daemon_ = -1;
  std::string sock_, root_, logs_;
};

}  // namespace

TEST_F(Daemon, LifecycleThroughTheClient) {
  b_->set_args({"sh", "-c", "echo out-line; echo err-line >&2; exit 3"});
  b_->write_config();
  auto c = client({"container", "create", "--bundle", b_->dir(), "web"});
  ASSERT_EQ(c.rc, 0) << c.err;
  EXPECT_NE(c.out.find("✓ Container 'web' created (pid "), std::string::npos) << c.out;
  auto l = client({"container", "list"});
  EXPECT_NE(l.out.find("web                      created"), std::string::npos) << l.out;
  auto s = client({"container", "start", "web"});
  ASSERT_EQ(s.rc, 0) << s.err;
  EXPECT_EQ(s.out, "✓ Container 'web' started\n");
  EXPECT_EQ(wait_status("web", "stopped"), "stopped");
  auto logs = client({"container", "logs", "web"});
  EXPECT_EQ(logs.out, "out-line\nerr-line\n");
  EXPECT_EQ(client({"container", "logs", "--tail", "1", "web"}).out, "err-line\n");
  auto st = client({"-o", "json", "container", "state", "web"});
  ASSERT_EQ(st.rc, 0) << st.err;
  json j = json::parse(st.out);
  EXPECT_EQ(j["status"], "stopped");
  EXPECT_EQ(j["exitCode"], 3);  // the daemon is the init's parent: it knows
  auto d = client({"container", "delete", "web"});
  EXPECT_EQ(d.rc, 0) << d.err;
  EXPECT_FALSE(fs::exists(logs_ + "/web.log"));
  EXPECT_FALSE(fs::exists(root_ + "/web"));
  auto missing = client({"container", "state", "web"});
  EXPECT_EQ(missing.rc, 4);
  EXPECT_NE(missing.err.find("error: container \"web\" does not exist"), std::string::npos) << missing.err;
}

TEST_F(Daemon, SeedSpellingAndErrors) {
  b_->set_args({"sleep", "1000"});
  b_->write_config();
  ASSERT_EQ(client({"container", "create", "--bundle-path", b_->dir(), "--container-id", "seed"}).rc, 0);
  auto s = client({"start", "--container-id", "seed"});
  EXPECT_EQ(s.rc, 0) << s.err;
  EXPECT_EQ(wait_status("seed", "running"), "running");
  auto again = client({"start", "--container-id", "seed"});
  EXPECT_EQ(again.rc, 4);
  EXPECT_NE(again.err.find("cannot start container \"seed\": it is already running"), std::string::npos);
  auto refuse = client({"container", "delete", "seed"});
  EXPECT_EQ(refuse.rc, 4);
  auto k = client({"container", "kill", "seed", "KILL"});
  EXPECT_EQ(k.rc, 0) << k.err;
  EXPECT_EQ(wait_status("seed", "stopped"), "stopped");
  EXPECT_EQ(state_of("seed")["exitCode"], 137);
  EXPECT_EQ(client({"container", "delete", "seed"}).rc, 0);

  std::string empty = b_->tmp() + "/empty";
  fs::create_directories(empty);
  auto nocfg = client({"container", "create", "--bundle", empty, "x"});
  EXPECT_EQ(nocfg.rc, 1);
  EXPECT_NE(nocfg.err.find("has no config.json"), std::string::npos) << nocfg.err;
  auto exec = client({"container", "exec", "x", "--", "true"});
  EXPECT_EQ(exec.rc, 4);
  EXPECT_NE(exec.err.find("error: container \"x\" does not exist"), std::string::npos) << exec.err;
  auto list = client({"-o", "json", "container", "list"});
  EXPECT_EQ(json::parse(list.out), json::array());
}

TEST_F(Daemon, NotRunningSaysHowToStartIt) {
  auto r = client({"container", "list"}, b_->tmp() + "/nothing-here.sock");
  EXPECT_EQ(r.rc, 3);
  EXPECT_NE(r.err.find("error: foundryd is not running (socket " + b_->tmp() + "/nothing-here.sock)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("hint: start it with `systemctl start foundryd`"), std::string::npos) << r.err;
}

TEST_F(Daemon, RestartAdoptsRunningContainers) {
  b_->set_args({"sleep", "1000"});
  b_->write_config();
  ASSERT_TRUE(rpc::call(sock_, "create", {{"id", "long"}, {"bundle", b_->dir()}}));
  ASSERT_TRUE(rpc::call(sock_, "start", {{"id", "long"}}));
  b_->set_args({"true"});
  b_->write_config();
  ASSERT_TRUE(rpc::call(sock_, "create", {{"id", "short"}, {"bundle", b_->dir()}}));
  ASSERT_TRUE(rpc::call(sock_, "start", {{"id", "short"}}));
  ASSERT_EQ(wait_status("short", "stopped"), "stopped");
  pid_t pid = state_of("long")["pid"].get<pid_t>();

  stop_daemon(SIGTERM);
  EXPECT_EQ(::kill(pid, 0), 0) << "the container must outlive the daemon";
  start_daemon();

  auto l = rpc::call(sock_, "list", json::object());
  ASSERT_TRUE(l);
  ASSERT_EQ(l->size(), 2u);
  json by_id;
  for (const auto& c : *l) by_id[c["id"].get<std::string>()] = c;
  EXPECT_EQ(by_id["long"]["status"], "running");
  EXPECT_EQ(by_id["long"]["pid"], pid);
  EXPECT_EQ(by_id["short"]["status"], "stopped");
  EXPECT_EQ(by_id["short"]["exitCode"], 0);  // recorded before the restart

  ASSERT_TRUE(rpc::call(sock_, "kill", {{"id", "long"}, {"signal", "KILL"}}));
  EXPECT_EQ(wait_status("long", "stopped"), "stopped");
  reap_children();  // the test process is the orphaned init's subreaper
  json s = state_of("long");
  EXPECT_TRUE(s["exitCode"].is_null());  // not the new daemon's child: unknown, and said so
  EXPECT_NE(s.value("note", "").find("predates this foundryd"), std::string::npos) << s.dump();
  json rec = b_->record("long");
  (void)rec;
  EXPECT_TRUE(rpc::call(sock_, "delete", {{"id", "long"}}));
  EXPECT_TRUE(rpc::call(sock_, "delete", {{"id", "short"}}));
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(Daemon, KillNineDuringCreateLeavesNothing) {
  std::string marker = b_->tmp() + "/hook.pid";
  b_->config()["hooks"] = {
      {"createRuntime", {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "echo $$ > " + marker + "; exec sleep 60"}}}}}};
  b_->set_args({"true"});
  b_->write_config();
  std::thread creator([&] { (void)rpc::call(sock_, "create", {{"id", "half"}, {"bundle", b_->dir()}}); });
  for (int i = 0; i < 500 && !fs::exists(marker); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(fs::exists(marker)) << "the create never reached its createRuntime hook";
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the hook wrote its pid
  json rec = json::parse(*foundry::read_file(root_ + "/half/state.json"));
  std::vector<std::string> cgroups;
  for (const auto& d : rec["cgroup"]["dirs"]) cgroups.push_back(d["path"]);
  pid_t init = rec["pid"].get<pid_t>();
  ASSERT_FALSE(cgroups.empty());

  stop_daemon(SIGKILL);
  creator.join();
  // The hook is this test's own program; the daemon cannot know it.
  ::kill(std::stoi(*foundry::read_file(marker)), SIGKILL);
  // The init dies with its parent (parent-death signal).
  for (int i = 0; i < 200 && ::kill(init, 0) == 0; ++i) {
    reap_children();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(::kill(init, 0), 0);

  start_daemon();
  auto l = rpc::call(sock_, "list", json::object());
  ASSERT_TRUE(l);
  EXPECT_EQ(*l, json::array());
  for (const auto& d : cgroups) EXPECT_FALSE(fs::exists(d)) << d;
  EXPECT_FALSE(fs::exists(root_ + "/half"));
  EXPECT_FALSE(fs::exists(logs_ + "/half.log"));
  EXPECT_TRUE(host_mounts_mentioning(b_->rootfs()).empty());
  EXPECT_NE(foundry::read_file(b_->tmp() + "/foundryd.log").value_or("").find("recover: half: removed a half-made container"),
            std::string::npos);
}

TEST_F(Daemon, PeerCredentialsAreChecked) {
  ::chmod(sock_.c_str(), 0666);  // let the file permission through: the daemon must still refuse
  pid_t child = ::fork();
  if (child == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(10);
    auto r = rpc::call(sock_, "version", json::object());
    if (r) ::_exit(11);
    if (r.error().message().find("permission denied: pid") == 0 && r.error().kind() == foundry::ErrorKind::Connection)
      ::_exit(0);
    std::fprintf(stderr, "unexpected: %s\n", r.error().to_string().c_str());
    ::_exit(12);
  }
  int st = 0;
  ::waitpid(child, &st, 0);
  EXPECT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_TRUE(rpc::call(sock_, "version", json::object()));  // root still may
}

TEST_F(Daemon, ProtocolErrors) {
  auto raw = [&](const std::string& line) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, sock_.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return json();
    std::string msg = line + "\n";
    ::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL);
    std::string in;
    char buf[4096];
    while (in.find('\n') == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return json::parse(in.substr(0, in.find('\n')));
  };
  EXPECT_EQ(raw("this is not json")["error"]["code"], rpc::kParseError);
  EXPECT_EQ(raw(R"({"id": 1, "method": "list"})")["error"]["code"], rpc::kInvalidRequest);
  json nf = raw(R"({"jsonrpc": "2.0", "id": 7, "method": "teleport"})");
  EXPECT_EQ(nf["error"]["code"], rpc::kMethodNotFound);
  EXPECT_EQ(nf["id"], 7);
  json bad = raw(R"({"jsonrpc": "2.0", "id": "a", "method": "create", "params": {"id": "x"}})");
  EXPECT_EQ(bad["error"]["code"], rpc::kApplicationBase + 1);
  EXPECT_EQ(bad["error"]["message"], "parameter \"bundle\" is required (a non-empty string)");
  json ok = raw(R"({"jsonrpc": "2.0", "id": 2, "method": "list", "params": {}})");
  EXPECT_EQ(ok["result"], json::array());
}

TEST_F(Daemon, CniNetworkPerContainer) {
  if (::access("/usr/lib/cni/bridge", X_OK) != 0 || ::access("/usr/lib/cni/host-local", X_OK) != 0)
    GTEST_SKIP() << "containernetworking-plugins is not installed (/usr/lib/cni)";
  if (foundry::find_program("unshare").empty()) GTEST_SKIP() << "unshare (util-linux) is missing";
  stop_daemon(SIGTERM);
  start_daemon(true);
  // The daemon installed its default network beside ours, in the test's directory.
  EXPECT_TRUE(fs::exists(b_->tmp() + "/cni/10-foundry.conflist"));
  json conf = {{"cniVersion", "1.0.0"},
               {"name", "it-net"},
               {"plugins",
                {{{"type", "bridge"},
                  {"bridge", "fbd" + std::to_string(::getpid() % 100000)},
                  {"isGateway", false},
                  {"ipMasq", false},
                  {"ipam",
                   {{"type", "host-local"},
                    {"dataDir", b_->tmp() + "/ipam"},
                    {"ranges", {{{{"subnet", "192.0.2.0/24"}, {"rangeStart", "192.0.2.10"}, {"rangeEnd", "192.0.2.20"}}}}}}}}}}};
  std::ofstream(b_->tmp() + "/cni/20-it.conflist") << conf.dump(2);
  for (const char* set : {"bounding", "effective", "permitted"})
    b_->config()["process"]["capabilities"][set].push_back("CAP_NET_RAW");
  const std::pair<const char*, const char*> ctrs[] = {{"net-a", "192.0.2.11"}, {"net-b", "192.0.2.10"}};
  for (const auto& [id, peer] : ctrs) {
    b_->set_args({"sh", "-c", std::string("sleep 0.2; ping -c 1 -W 3 ") + peer + "; rc=$?; sleep 1; exit $rc"});
    b_->write_config();
    auto c = client({"container", "create", "--network", "it-net", "--bundle", b_->dir(), id});
    ASSERT_EQ(c.rc, 0) << c.err;
    EXPECT_NE(c.out.find("✓ Network it-net: 192.0.2."), std::string::npos) << c.out;
  }
  EXPECT_EQ(state_of("net-a")["network"]["ip"], "192.0.2.10/24");
  EXPECT_EQ(state_of("net-b")["network"]["ip"], "192.0.2.11/24");
  for (const auto& [id, peer] : ctrs) ASSERT_EQ(client({"container", "start", id}).rc, 0);
  for (const auto& [id, peer] : ctrs) {
    EXPECT_EQ(wait_status(id, "stopped"), "stopped");
    json s = state_of(id);
    EXPECT_EQ(s["exitCode"], 0) << id << " could not ping " << peer << ": "
                                << client({"container", "logs", id}).out;
  }
  for (const auto& [id, peer] : ctrs) EXPECT_EQ(client({"container", "delete", id}).rc, 0);
  EXPECT_FALSE(fs::exists(b_->tmp() + "/ipam/it-net/192.0.2.10"));
  EXPECT_FALSE(fs::exists(b_->tmp() + "/ipam/it-net/192.0.2.11"));

  auto unknown = client({"container", "create", "--network", "nope", "--bundle", b_->dir(), "x"});
  EXPECT_EQ(unknown.rc, 1);
  EXPECT_NE(unknown.err.find("no CNI network \"nope\" in " + b_->tmp() + "/cni"), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find("hint: networks there: foundry, it-net"), std::string::npos) << unknown.err;
}

TEST_F(Daemon, ExecThroughTheClient) {
  b_->config()["hostname"] = "daemon-box";
  b_->set_args({"sleep", "1000"});
  b_->write_config();
  ASSERT_EQ(client({"container", "create", "--bundle", b_->dir(), "ex"}).rc, 0);
  ASSERT_EQ(client({"container", "start", "ex"}).rc, 0);
  // Output on the caller's stdout/stderr, the exit code as the caller's;
  // the container's hostname and pid namespace (pid 1 is its sleep).
  auto r = client({"container", "exec", "ex", "--", "sh", "-c",
                   "echo out; echo err >&2; hostname; cat /proc/1/comm; exit 3"});
  EXPECT_EQ(r.rc, 3) << r.err;
  EXPECT_EQ(r.out, "out\ndaemon-box\nsleep\n");
  EXPECT_EQ(r.err, "err\n");
  auto env = client({"container", "exec", "-e", "A=1", "-w", "/tmp", "-u", "65534", "ex", "--", "sh", "-c",
                     "echo $A $(pwd) $(id -u)"});
  EXPECT_EQ(env.rc, 0) << env.err;
  EXPECT_EQ(env.out, "1 /tmp 65534\n");
  // Plain JSON-RPC: stdin in the request, output in the answer.
  auto raw = rpc::call(sock_, "exec", {{"id", "ex"}, {"args", {"cat"}}, {"stdin", "fed through stdin\n"}});
  ASSERT_TRUE(raw) << raw.error().to_string();
  EXPECT_EQ((*raw)["stdout"], "fed through stdin\n");
  EXPECT_EQ((*raw)["exitCode"], 0);
  // The container's own output log is not the exec's.
  EXPECT_EQ(client({"container", "logs", "ex"}).out, "");

  auto missing = client({"container", "exec", "ex", "--", "no-such-program"});
  EXPECT_EQ(missing.rc, 2);
  EXPECT_NE(missing.err.find("error: exec in container \"ex\": process.args[0]: executable \"no-such-program\" not "
                             "found in the container's PATH"),
            std::string::npos)
      << missing.err;
  // A long exec does not hold the daemon up: other requests are answered meanwhile.
  std::thread slow([&] { (void)rpc::call(sock_, "exec", {{"id", "ex"}, {"args", {"sleep", "2"}}}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(rpc::call(sock_, "list", json::object()));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
  slow.join();

  ASSERT_EQ(client({"container", "kill", "ex", "KILL"}).rc, 0);
  EXPECT_EQ(wait_status("ex", "stopped"), "stopped");
  auto stopped = client({"container", "exec", "ex", "--", "true"});
  EXPECT_EQ(stopped.rc, 4);
  EXPECT_NE(stopped.err.find("error: cannot exec in container \"ex\": it is not running"), std::string::npos)
      << stopped.err;
  EXPECT_EQ(client({"container", "delete", "ex"}).rc, 0);
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(Daemon, BadInputLeavesNothing) {
  // A bad config.json: the JSON path in the error, exit 2, no state, no log.
  b_->config()["process"]["args"] = "sh -c true";
  b_->write_config();
  auto bad = client({"container", "create", "--bundle", b_->dir(), "bad"});
  EXPECT_EQ(bad.rc, 2);
  EXPECT_NE(bad.err.find(b_->dir() + "/config.json: process.args: must be an array, found a string"),
            std::string::npos)
      << bad.err;
  // A program missing from the rootfs fails create, not start.
  b_->set_args({"no-such-program"});
  b_->write_config();
  auto missing = client({"container", "create", "--bundle", b_->dir(), "noexe"});
  EXPECT_EQ(missing.rc, 2);
  EXPECT_NE(missing.err.find("error: create container \"noexe\": process.args[0]: executable \"no-such-program\" not "
                             "found in the container's PATH"),
            std::string::npos)
      << missing.err;
  for (const char* id : {"bad", "noexe"}) {
    EXPECT_FALSE(fs::exists(root_ + "/" + id)) << id;
    EXPECT_FALSE(fs::exists(logs_ + "/" + id + ".log")) << id;
    for (const char* h : {"memory", "pids", "cpu", "unified"})
      EXPECT_FALSE(fs::exists(std::string("/sys/fs/cgroup/") + h + "/foundry/" + id)) << h << " " << id;
  }
  auto unknown = client({"container", "delete", "nope"});
  EXPECT_EQ(unknown.rc, 4);
  EXPECT_NE(unknown.err.find("error: container \"nope\" does not exist"), std::string::npos) << unknown.err;
  EXPECT_EQ(client({"-o", "json", "container", "list"}).out, "[]\n");
}
