# Data plane (src/dataplane): libbpf for the loader, clang + bpftool to build
# the XDP program and its skeleton at build time.
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf>=1.0)
find_program(FOUNDRY_BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(FOUNDRY_BPFTOOL bpftool PATHS /usr/sbin /sbin REQUIRED)
find_program(FOUNDRY_LLVM_STRIP NAMES llvm-strip llvm-strip-14)
# vmlinux.h is generated from this machine's kernel BTF. Point this at another
# BTF file (or at a vmlinux.h, see FOUNDRY_VMLINUX_H) to build elsewhere.
set(FOUNDRY_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH "Kernel BTF that vmlinux.h is dumped from")
set(FOUNDRY_VMLINUX_H "" CACHE FILEPATH "Use this vmlinux.h instead of dumping FOUNDRY_VMLINUX_BTF")
if(NOT FOUNDRY_VMLINUX_H AND NOT EXISTS ${FOUNDRY_VMLINUX_BTF})
  message(FATAL_ERROR "dataplane: ${FOUNDRY_VMLINUX_BTF} does not exist, so vmlinux.h cannot be generated. "
                      "Build on a kernel with CONFIG_DEBUG_INFO_BTF=y, or pass -DFOUNDRY_VMLINUX_BTF=<file> "
                      "or -DFOUNDRY_VMLINUX_H=<vmlinux.h>.")
endif()

# Agent (src/agent): gRPC C++ and protobuf from Debian, code generated at
# build time from proto/agent.proto.
pkg_check_modules(GRPCPP REQUIRED IMPORTED_TARGET grpc++)
pkg_check_modules(PROTOBUF REQUIRED IMPORTED_TARGET protobuf)
find_program(FOUNDRY_PROTOC protoc REQUIRED)
find_program(FOUNDRY_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
