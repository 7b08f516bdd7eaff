// The whole file-to-XML path for one VM, as `vm create` runs it before it
// talks to libvirt: load + validate the YAML, derive MACs/taps/volume names,
// generate the domain XML. Goal (issue 2): under 1 ms per VM.
#include <benchmark/benchmark.h>

#include <string>

#include "foundry/config/vm_config.h"
#include "foundry/virt/domain_xml.h"
#include "foundry/virt/vm.h"

namespace {

std::string example(const char* name) { return std::string(FOUNDRY_SOURCE_DIR) + "/examples/" + name; }

void plan_one(benchmark::State& state, const char* file) {
  auto path = example(file);
  foundry::virt::Firmware fw{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"};
  for (auto _ : state) {
    auto vm = foundry::config::load_vm_file(path);
    if (!vm) {
      state.SkipWithError(vm.error().to_string().c_str());
      return;
    }
    auto plan = foundry::virt::plan_vm(*vm, fw, "/var/lib/libvirt/images/foundry/images/base", "qcow2");
    benchmark::DoNotOptimize(plan);
  }
}

void BM_plan_simple(benchmark::State& s) { plan_one(s, "simple-vm.yaml"); }
void BM_plan_multi_disk(benchmark::State& s) { plan_one(s, "multi-disk-vm.yaml"); }
BENCHMARK(BM_plan_simple)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_plan_multi_disk)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
