// cloud-init benchmarks (docs/BENCHMARKS.md, "cloud-init NoCloud ISO").
//
// In one run:
//   generate/*          the three documents from a VmConfig (generation alone)
//   iso_in_memory       the ISO from the documents, in memory (what vm create
//                       uploads to libvirt)
//   iso_to_file_nofsync the same, written to a file with a plain write
//   iso_to_file         the same with write_iso_file (temp file, fsync, rename)
//   cloud_localds       Debian's cloud-localds on the same three files
//   generate_and_iso    documents + ISO in memory, the whole in-process path
// The comparison cases run one call per repetition, FOUNDRY_BENCH_RUNS times
// (default 100), so mean and median are per run; at the end the ratio of
// cloud-localds to each in-process case is printed.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "foundry/cloudinit/cloudinit.h"
#include "foundry/cloudinit/iso.h"
#include "foundry/common/file.h"
#include "foundry/common/subprocess.h"

using namespace foundry;
using namespace foundry::cloudinit;
namespace fs = std::filesystem;

namespace {

config::NetworkInterface make_nic(const char* cidr, const char* gw, std::vector<std::string> dns,
                                  bool default_route) {
  config::NetworkInterface n;
  n.ip = *net::Ipv4Cidr::parse(cidr);
  n.gateway = *net::Ipv4::parse(gw);
  n.dns_servers = std::move(dns);
  n.bridge = "br0";
  n.default_route = default_route;
  return n;
}

// The seed's example VM, with realistic key lengths.
config::VmConfig seed_vm(int nics = 1) {
  config::VmConfig vm;
  vm.name = "my-vm";
  vm.vcpus = 4;
  vm.memory_gib = 8;
  vm.network_interfaces.push_back(
      make_nic("10.55.22.22/24", "10.55.22.1", {"8.8.8.8", "1.1.1.1"}, true));
  for (int i = 1; i < nics; ++i)
    vm.network_interfaces.push_back(make_nic(("192.168." + std::to_string(i) + ".50/24").c_str(),
                                             ("192.168." + std::to_string(i) + ".1").c_str(),
                                             {"192.168.1.1"}, false));
  config::CloudInit ci;
  ci.fqdn = "my-vm.example.com";
  ci.hostname = "my-vm";
  ci.ssh_keys = {
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFooBarBazQuxQuuxCorgeGraultGarplyWaldoFredPlugh "
      "admin@example.com",
      "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQC" + std::string(500, 'x') + " ops@example.com"};
  ci.root_password_hash =
      "$6$rounds=5000$saltsaltsalt$"
      "Y5e1D1uP7H2w7d0rNn0bS0bB7y9i8kFvU6Ykq0Jm1Lh3oY8c2u0J0j5e5n4bY4sV9Z1p3Q6m2k5L8x1c0vA.";
  vm.cloud_init = ci;
  return vm;
}

int runs() {
  const char* v = std::getenv("FOUNDRY_BENCH_RUNS");
  int n = v ? std::atoi(v) : 0;
  return n > 0 ? n : 100;
}

Documents seed_docs() {
  GenerateOptions o;
  o.source_date_epoch = 1730534400;
  return generate(seed_vm(), o).value();
}

// A private directory for the files the file-writing cases need; removed at
// exit.
struct BenchDir {
  fs::path path;
  BenchDir() {
    std::string tmpl = (fs::temp_directory_path() / "foundry-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path = tmpl;
    Documents d = seed_docs();
    (void)write_file_atomic((path / "user-data").string(), d.user_data);
    (void)write_file_atomic((path / "meta-data").string(), d.meta_data);
    (void)write_file_atomic((path / "network-config").string(), d.network_config);
  }
  ~BenchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
BenchDir& bench_dir() {
  static BenchDir d;
  return d;
}

void generate_docs(benchmark::State& state) {
  auto vm = seed_vm(static_cast<int>(state.range(0)));
  GenerateOptions o;  // content-derived instance-id: the hash is part of the work
  for (auto _ : state) {
    auto d = generate(vm, o);
    if (!d) state.SkipWithError(d.error().to_string().c_str());
    benchmark::DoNotOptimize(d);
  }
}

void iso_in_memory(benchmark::State& state) {
  Documents d = seed_docs();
  for (auto _ : state) {
    auto iso = build_cloud_init_iso(d, 1730534400);
    if (!iso) state.SkipWithError(iso.error().to_string().c_str());
    benchmark::DoNotOptimize(iso);
  }
}

void generate_and_iso(benchmark::State& state) {
  auto vm = seed_vm();
  for (auto _ : state) {
    auto d = generate(vm);
    auto iso = build_cloud_init_iso(*d, 0);
    if (!iso) state.SkipWithError(iso.error().to_string().c_str());
    benchmark::DoNotOptimize(iso);
  }
}

void iso_to_file(benchmark::State& state) {
  Documents d = seed_docs();
  std::string out = (bench_dir().path / "foundry.iso").string();
  for (auto _ : state) {
    auto iso = build_cloud_init_iso(d, 1730534400);
    if (!iso || !write_iso_file(out, *iso))
      state.SkipWithError("building or writing the ISO failed");
  }
}

// cloud-localds neither fsyncs nor renames; this is the like-for-like file
// case (plain write of the image, no durability).
void iso_to_file_nofsync(benchmark::State& state) {
  Documents d = seed_docs();
  std::string out = (bench_dir().path / "foundry-nofsync.iso").string();
  for (auto _ : state) {
    auto iso = build_cloud_init_iso(d, 1730534400);
    std::ofstream f(out, std::ios::binary | std::ios::trunc);
    if (iso) f.write(reinterpret_cast<const char*>(iso->data()), std::streamsize(iso->size()));
    f.close();
    if (!iso || !f) state.SkipWithError("building or writing the ISO failed");
  }
}

double children_cpu_us() {
  struct rusage ru {};
  ::getrusage(RUSAGE_CHILDREN, &ru);
  auto us = [](const timeval& t) { return double(t.tv_sec) * 1e6 + double(t.tv_usec); };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

void cloud_localds(benchmark::State& state) {
  if (find_program("cloud-localds").empty()) {
    state.SkipWithError("cloud-localds is not installed (Debian cloud-image-utils)");
    for (auto _ : state) {
    }
    return;
  }
  const fs::path& dir = bench_dir().path;
  std::vector<std::string> argv = {"cloud-localds",
                                   "-N",
                                   (dir / "network-config").string(),
                                   (dir / "localds.iso").string(),
                                   (dir / "user-data").string(),
                                   (dir / "meta-data").string()};
  RunOptions ro;
  ro.timeout = std::chrono::seconds(60);
  // Its work happens in child processes (bash, genisoimage, ...), which the
  // process CPU clock does not see; their CPU time comes from
  // RUSAGE_CHILDREN (children run() has reaped, and theirs).
  double child_cpu_us = 0;
  for (auto _ : state) {
    double before = children_cpu_us();
    auto r = run(argv, ro);
    child_cpu_us += children_cpu_us() - before;
    if (!r || !r->ok())
      state.SkipWithError(r ? r->describe().c_str() : r.error().to_string().c_str());
  }
  state.counters["child_cpu_us"] =
      benchmark::Counter(child_cpu_us, benchmark::Counter::kAvgIterations);
}

// Prints the usual console table, then per-run medians side by side: wall
// time, and CPU time (ours, or cloud-localds's children), which is the
// steadier number on a loaded machine.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  // A custom reporter does not see --benchmark_color; colour only on a tty.
  RatioReporter() : ConsoleReporter(::isatty(STDOUT_FILENO) ? OO_ColorTabular : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& report) override {
    for (const auto& r : report) {
      if (r.run_type != Run::RT_Aggregate || r.error_occurred) continue;
      auto& s = stats_[r.run_name.function_name][r.aggregate_name];
      s.real = r.GetAdjustedRealTime();
      s.cpu = r.GetAdjustedCPUTime();
      if (auto c = r.counters.find("child_cpu_us"); c != r.counters.end()) s.cpu += c->second.value;
    }
    ConsoleReporter::ReportRuns(report);
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    auto& os = GetOutputStream();
    auto base = stats_.find("cloud_localds");
    if (base == stats_.end()) {
      os << "\nno cloud-localds result: no ratio\n";
      return;
    }
    const Sample& ref = base->second["median"];
    os << fmt::format("\n{:<20} {:>12} {:>12} {:>12} {:>13} {:>12}\n", "per run (us)", "wall mean",
                      "wall median", "CPU median", "wall speedup", "CPU speedup");
    for (const char* name : {"iso_in_memory", "iso_to_file_nofsync", "iso_to_file",
                             "generate_and_iso", "cloud_localds"}) {
      auto s = stats_.find(name);
      if (s == stats_.end()) continue;
      const Sample& med = s->second["median"];
      os << fmt::format("{:<20} {:>12.1f} {:>12.1f} {:>12.1f} {:>12.1f}x {:>11.1f}x\n", name,
                        s->second["mean"].real, med.real, med.cpu, ref.real / med.real,
                        ref.cpu / med.cpu);
    }
  }

 private:
  struct Sample {
    double real = 0, cpu = 0;
  };
  std::map<std::string, std::map<std::string, Sample>> stats_;
};

}  // namespace

int main(int argc, char** argv) {
  const int n = runs();
  benchmark::RegisterBenchmark("generate", generate_docs)
      ->Arg(1)
      ->Arg(4)
      ->Unit(benchmark::kMicrosecond);
  for (auto [name, fn] : std::initializer_list<std::pair<const char*, void (*)(benchmark::State&)>>{
           {"iso_in_memory", iso_in_memory},
           {"iso_to_file", iso_to_file},
           {"iso_to_file_nofsync", iso_to_file_nofsync},
           {"generate_and_iso", generate_and_iso},
           {"cloud_localds", cloud_localds}})
    benchmark::RegisterBenchmark(name, fn)
        ->Iterations(1)
        ->Repetitions(n)
        ->ReportAggregatesOnly(true)
        ->UseRealTime()
        // libisofs writes the image from a thread of its own: count all
        // threads, not only the one running the loop.
        ->MeasureProcessCPUTime()
        ->Unit(benchmark::kMicrosecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
