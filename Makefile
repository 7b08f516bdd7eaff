# Thin wrapper over CMake. The two commands a new machine needs:
#   make demo   install deps, build, run the main job on the embedded example
#   make test   install deps, build, run every test (what CI runs)
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build demo test test-unit test-integration test-e2e fuzz bench format clean

all: build

deps:
	scripts/install-deps

configure:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

demo: deps build
	scripts/demo $(BUILD)

test: deps
	$(MAKE) build CMAKE_FLAGS="$(CMAKE_FLAGS) -DFOUNDRY_WERROR=ON"
	scripts/test $(BUILD)

test-unit: build
	cd $(BUILD) && ctest -L unit --output-on-failure -j $(JOBS)

test-integration: build
	cd $(BUILD) && ctest -L integration --output-on-failure

test-e2e: build
	cd $(BUILD) && ctest -L e2e --output-on-failure

bench:
	cmake -S . -B $(BUILD)-bench -DCMAKE_BUILD_TYPE=Release -DFOUNDRY_BENCH=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD)-bench -j $(JOBS)
	$(BUILD)-bench/bench/foundry_bench_vm_plan
	FOUNDRY_BENCH_RUNS=$${FOUNDRY_BENCH_RUNS:-100} $(BUILD)-bench/bench/foundry_bench_cloudinit

fuzz: build
	scripts/fuzz vm_loader

format:
	git ls-files '*.cpp' '*.h' '*.c' | xargs clang-format -i

clean:
	rm -rf $(BUILD)
