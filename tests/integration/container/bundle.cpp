#include "bundle.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"
#include "foundry/container/spec.h"

extern char** environ;

namespace foundry::container::testing {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string slurp(const std::string& p) {
  auto r = read_file(p);
  return r ? *r : "";
}

// Container inits orphaned by `create` must come back to the test so it can
// observe how they ended (and so nothing is left as a zombie of init).
struct Subreaper {
  Subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
};
const Subreaper subreaper;

}  // namespace

std::string oci_binary() { return std::string(FOUNDRY_BINARY_DIR) + "/src/oci/foundry-oci"; }

std::string skip_reason() {
  if (::geteuid() != 0) return "needs root (namespaces, cgroups, mounts)";
  if (::access(oci_binary().c_str(), X_OK) != 0) return "foundry-oci is not built at " + oci_binary();
  if (::access("/bin/busybox", X_OK) != 0) return "busybox-static is not installed (/bin/busybox)";
  auto file = foundry::run({"file", "-L", "/bin/busybox"});
  if (file && file->out.find("statically linked") == std::string::npos && file->out.find("static-pie") == std::string::npos)
    return "/bin/busybox is not statically linked (install busybox-static)";
  return "";
}

Bundle::Bundle() {
  std::string t = (fs::temp_directory_path() / "foundry-it-XXXXXX").string();
  tmp_ = ::mkdtemp(t.data());
  // A user-namespaced root (mapped to an unprivileged host uid) must be
  // able to walk down to its rootfs.
  ::chmod(tmp_.c_str(), 0755);
  dir_ = tmp_ + "/bundle";
  state_root_ = tmp_ + "/state";
  fs::create_directories(dir_ + "/rootfs/bin");
  for (const char* d : {"proc", "sys", "dev", "tmp", "etc", "root", "data"}) fs::create_directories(rootfs() + "/" + d);
  fs::permissions(rootfs() + "/tmp", fs::perms::all | fs::perms::sticky_bit);
  fs::copy_file("/bin/busybox", rootfs() + "/bin/busybox");
  auto list = foundry::run({"/bin/busybox", "--list"});
  if (list) {
    std::istringstream in(list->out);
    std::string applet;
    while (std::getline(in, applet))
      if (!applet.empty() && applet != "busybox") ::symlink("busybox", (rootfs() + "/bin/" + applet).c_str());
  }
  std::ofstream(rootfs() + "/etc/passwd") << "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n";
  std::ofstream(rootfs() + "/etc/group") << "root:x:0:\nnogroup:x:65534:\n";
  config_ = json::parse(default_spec_json(false));
}

Bundle::~Bundle() {
  for (const auto& id : ids_) (void)oci({"delete", "--force", id}, 30);
  reap_children();
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

void Bundle::set_args(const std::vector<std::string>& args) { config_["process"]["args"] = args; }

void Bundle::write_config() const {
  std::ofstream(dir_ + "/config.json") << config_.dump(2) << "\n";
}

std::string Bundle::new_id(const std::string& hint) {
  static std::atomic<int> counter{0};
  std::string id = "it-" + hint + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  ids_.push_back(id);
  return id;
}

OciRun Bundle::oci(const std::vector<std::string>& args, int timeout_s) const {
  OciRun r;
  static std::atomic<int> n{0};
  int k = n++;
  std::string out = tmp_ + "/oci-" + std::to_string(k) + ".out";
  std::string err = tmp_ + "/oci-" + std::to_string(k) + ".err";
  std::vector<std::string> argv = {oci_binary(), "--root", state_root_};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addchdir_np(&fa, dir_.c_str());
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r.err = "posix_spawn failed";
    return r;
  }
  int st = wait_child(pid, timeout_s * 1000);
  if (st == -1) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &st, 0);
    r.err = "timed out; ";
  }
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = slurp(out);
  r.err += slurp(err);
  return r;
}

OciRun Bundle::run(const std::string& hint) {
  write_config();
  return oci({"run", new_id(hint)});
}

json Bundle::record(const std::string& id) const {
  auto t = read_file(state_root_ + "/" + id + "/state.json");
  if (!t) return json::object();
  return json::parse(*t);
}

std::string Bundle::wait_status(const std::string& id, const std::string& want, int timeout_ms) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string last;
  for (;;) {
    reap_children();  // a zombie init only counts as stopped; reaping keeps /proc clean
    auto r = oci({"state", id});
    if (r.rc == 0) last = json::parse(r.out).value("status", "");
    else last = "error: " + r.err;
    if (last == want || std::chrono::steady_clock::now() > deadline) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::vector<std::pair<pid_t, int>> reap_children() {
  std::vector<std::pair<pid_t, int>> out;
  for (;;) {
    int st = 0;
    pid_t p = ::waitpid(-1, &st, WNOHANG);
    if (p <= 0) break;
    out.emplace_back(p, st);
  }
  return out;
}

int wait_child(pid_t pid, int timeout_ms) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    int r;
    do {
      r = ::poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    ::close(pidfd);
    if (r == 0) return -1;
  }
  int st = 0;
  if (::waitpid(pid, &st, 0) != pid) return -1;
  return st;
}

std::vector<std::string> host_mounts_mentioning(const std::string& needle) {
  std::vector<std::string> out;
  std::istringstream in(slurp("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) out.push_back(line);
  return out;
}

std::string validate_against_schema(const std::string& json_text, const std::string& schema_file) {
  std::string dir = std::string(FOUNDRY_SOURCE_DIR) + "/../../shared/data/oci-runtime-spec";
  if (!fs::exists(dir + "/" + schema_file)) dir = "/work/shared/data/oci-runtime-spec";
  if (!fs::exists(dir + "/" + schema_file)) return "skip: no OCI schemas (../shared/data/oci-runtime-spec)";
  std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  auto probe = foundry::run({python, "-c", "import jsonschema"});
  if (!probe || !probe->ok()) return "skip: python3-jsonschema is not installed";
  std::string doc = (fs::temp_directory_path() / ("foundry-schema-" + std::to_string(::getpid()) + ".json")).string();
  std::ofstream(doc) << json_text;
  auto r = foundry::run({python, "-m", "jsonschema", "--base-uri", "file://" + fs::canonical(dir).string() + "/", "-i", doc,
                dir + "/" + schema_file});
  fs::remove(doc);
  if (!r) return "cannot run the validator: " + r.error().to_string();
  if (r->exit_code != 0) return r->out + r->err;
  return "";
}

}  // namespace foundry::container::testing
