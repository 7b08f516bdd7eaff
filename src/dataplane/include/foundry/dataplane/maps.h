// Typed access to the forwarder's BPF maps.
//
// MapCodec<T> translates a C++ value (types.h) to and from the byte layout in
// forwarder_abi.h; TypedMap<K, V> pairs two codecs with a map fd and turns
// libbpf's negative error codes into Errors that name the map and the key.
#pragma once

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "foundry/common/error.h"
#include "foundry/dataplane/types.h"

namespace foundry::dataplane {

template <typename T>
struct MapCodec;  // specialised below for every key and value type

#define FOUNDRY_DATAPLANE_CODEC(T, AbiT)   \
  template <>                              \
  struct MapCodec<T> {                     \
    using Abi = AbiT;                      \
    static Abi encode(const T& v);         \
    static T decode(const Abi& a);         \
    static std::string describe(const T& v); \
  }

FOUNDRY_DATAPLANE_CODEC(uint32_t, __u32);  // ifindex or VNI, host order
FOUNDRY_DATAPLANE_CODEC(net::Ipv4, __u32); // network order
FOUNDRY_DATAPLANE_CODEC(FdbKey, fdp_fdb_key);
FOUNDRY_DATAPLANE_CODEC(FdbEntry, fdp_fdb_entry);
FOUNDRY_DATAPLANE_CODEC(PortConfig, fdp_port);
FOUNDRY_DATAPLANE_CODEC(Neighbor, fdp_neigh);
FOUNDRY_DATAPLANE_CODEC(VtepConfig, fdp_vtep);
FOUNDRY_DATAPLANE_CODEC(VniConfig, fdp_vni);
FOUNDRY_DATAPLANE_CODEC(FloodRemoteKey, fdp_flood_key);
FOUNDRY_DATAPLANE_CODEC(FloodRemote, fdp_flood_remote);

#undef FOUNDRY_DATAPLANE_CODEC

// Error for a failed map operation. err is libbpf's return value (-errno).
Error map_error(int err, std::string_view map, std::string_view op, std::string_view key);

// A borrowed map fd (the Forwarder owns the map) with typed operations.
template <typename K, typename V>
class TypedMap {
 public:
  using KeyCodec = MapCodec<K>;
  using ValueCodec = MapCodec<V>;
  using KeyAbi = typename KeyCodec::Abi;
  using ValueAbi = typename ValueCodec::Abi;
  static_assert(std::is_trivially_copyable_v<KeyAbi> && std::is_trivially_copyable_v<ValueAbi>);

  TypedMap() = default;
  TypedMap(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }

  // flags: BPF_ANY, BPF_NOEXIST (fails with EEXIST) or BPF_EXIST.
  Status put(const K& key, const V& value, uint64_t flags = BPF_ANY) {
    KeyAbi k = KeyCodec::encode(key);
    ValueAbi v = ValueCodec::encode(value);
    int err = bpf_map_update_elem(fd_, &k, &v, flags);
    if (err) return fail(map_error(err, name_, "update", KeyCodec::describe(key)));
    return ok();
  }

  Result<std::optional<V>> get(const K& key) const {
    KeyAbi k = KeyCodec::encode(key);
    ValueAbi v{};
    int err = bpf_map_lookup_elem(fd_, &k, &v);
    if (err == -ENOENT) return std::optional<V>{};
    if (err) return fail(map_error(err, name_, "lookup", KeyCodec::describe(key)));
    return std::optional<V>{ValueCodec::decode(v)};
  }

  // True when the key was present.
  Result<bool> erase(const K& key) {
    KeyAbi k = KeyCodec::encode(key);
    int err = bpf_map_delete_elem(fd_, &k);
    if (err == -ENOENT) return false;
    if (err) return fail(map_error(err, name_, "delete", KeyCodec::describe(key)));
    return true;
  }

  // A snapshot of all entries. Entries written concurrently may or may not
  // appear; one deleted mid-walk is skipped.
  Result<std::vector<std::pair<K, V>>> entries() const {
    std::vector<std::pair<K, V>> out;
    KeyAbi cur{};
    KeyAbi next{};
    bool first = true;
    for (;;) {
      int err = bpf_map_get_next_key(fd_, first ? nullptr : &cur, &next);
      if (err == -ENOENT) break;
      if (err) return fail(map_error(err, name_, "iterate", ""));
      first = false;
      cur = next;
      ValueAbi v{};
      err = bpf_map_lookup_elem(fd_, &cur, &v);
      if (err == -ENOENT) continue;
      if (err) return fail(map_error(err, name_, "lookup", KeyCodec::describe(KeyCodec::decode(cur))));
      out.emplace_back(KeyCodec::decode(cur), ValueCodec::decode(v));
    }
    return out;
  }

  // Deletes every entry; returns how many were removed.
  Result<size_t> clear() {
    auto all = FOUNDRY_TRY(entries());
    size_t n = 0;
    for (const auto& [k, v] : all)
      if (FOUNDRY_TRY(erase(k))) ++n;
    return n;
  }

 private:
  int fd_ = -1;
  std::string name_;
};

using FdbMap = TypedMap<FdbKey, FdbEntry>;
using PortMap = TypedMap<uint32_t, PortConfig>;
using NeighborMap = TypedMap<net::Ipv4, Neighbor>;
using VniMap = TypedMap<Vni, VniConfig>;
using FloodRemoteMap = TypedMap<FloodRemoteKey, FloodRemote>;

}  // namespace foundry::dataplane
