// Storage pools: where images live, named in one JSON config.
//
// A pool is one of
//   rbd      an RBD pool (and optional RADOS namespace)     image NAME -> rbd:POOL[/NS]/NAME
//   gluster  a directory on a Gluster volume (gfapi)         image NAME -> gluster://HOST:PORT/VOLUME/DIR/NAME.{raw,qcow2}
//   dir      a local directory (single-machine use)          image NAME -> file:/PATH/NAME.{raw,qcow2}
//
// The config file (HCNODE_STORAGE_CONFIG, else /etc/hcnode/storage.json):
//
//   {
//     "ceph":  {"conf": "/etc/ceph/ceph.conf", "id": "hcnode", "keyring": "/etc/ceph/…keyring"},
//     "pools": {
//       "rbd":     {"kind": "rbd", "pool": "rbd", "namespace": ""},
//       "gluster": {"kind": "gluster", "host": "127.0.0.2", "port": 24007, "volume": "vmstore",
//                   "dir": "/images"},
//       "local":   {"kind": "dir", "path": "/var/lib/hcnode/images"}
//     }
//   }
//
// "ceph" is optional (absent: HCNODE_CEPH_CONF / HCNODE_CEPH_ID / HCNODE_CEPH_KEYRING, as the
// data path does). Unknown keys are errors (a typo must not silently fall back to a default).
//
// Without a config file the pools come from the dev cluster's environment
// (`eval "$(deploy/devcluster.sh env)"`):
//   HCNODE_RBD_POOL=P                         -> pool "rbd"     {kind rbd, pool P}
//   HCNODE_GLUSTER_HOST/PORT/VOLUME           -> pool "gluster" {kind gluster, dir "/images"}
//   HCNODE_LOCAL_POOL_DIR=D (optional)        -> pool "local"   {kind dir, path D}
//
// Pure code (no I/O beyond reading the one file): unit-tested in tests/unit/storage.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "blockdev/rbd/ceph_client_config.hpp"

namespace hcnode::storage {

struct RbdPool {
  std::string pool;  // the RADOS pool
  std::string ns;    // RADOS namespace; empty = the default namespace
  bool operator==(const RbdPool&) const = default;
};

struct GlusterPool {
  std::string host;
  uint16_t port = 24007;
  std::string volume;
  std::string dir = "/images";  // absolute path inside the volume; created on first write
  bool operator==(const GlusterPool&) const = default;
};

struct DirPool {
  std::string path;  // absolute local path; created on first write
  bool operator==(const DirPool&) const = default;
};

enum class PoolKind { kRbd, kGluster, kDir };
const char* to_string(PoolKind kind);  // "rbd", "gluster", "dir"

struct PoolConfig {
  std::string name;  // what the CLI calls it: POOL in POOL/NAME
  std::variant<RbdPool, GlusterPool, DirPool> location;

  PoolKind kind() const;
  // Where the pool's images live, for people: "rbd:rbd", "gluster://127.0.0.2:24007/vmstore/images",
  // "file:/var/lib/hcnode/images".
  std::string describe() const;
  bool operator==(const PoolConfig&) const = default;
};

struct StorageConfig {
  std::vector<PoolConfig> pools;                   // sorted by name (file) / env order; unique
  std::optional<blockdev::CephClientConfig> ceph;  // nullopt: from HCNODE_CEPH_* at first use
  std::string source;                              // the file it came from, or "environment"

  // nullptr if no pool has that name.
  const PoolConfig* find(std::string_view name) const;
  // "rbd, gluster, local" (or "none configured") — for "unknown pool" messages.
  std::string pool_names() const;
};

// Parses a config document. EINVAL with the offending key for: not JSON, unknown keys, missing
// required fields, a bad kind, an invalid pool name (same rules as image names), duplicate
// names, relative directories, a port outside 1..65535.
Result<StorageConfig> parse_storage_config(std::string_view json_text, std::string source = "");

// Reads an environment variable (nullopt when unset or empty). Tests pass their own.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
// The real process environment.
EnvLookup process_env();

// The default pools from the dev cluster's environment (see the top of this file). An
// environment with none of the variables gives a config with no pools (not an error: every
// operation then fails with "unknown pool … (none configured)").
Result<StorageConfig> storage_config_from_env(const EnvLookup& env);

// The config hcctl and the agent use: HCNODE_STORAGE_CONFIG (must exist if set), else
// /etc/hcnode/storage.json if it exists, else storage_config_from_env().
Result<StorageConfig> load_storage_config(const EnvLookup& env = process_env());

// The document parse_storage_config reads ("ceph" only when set; "source" is not written):
// parse_storage_config(to_json(c).dump()) gives c back except for `source`.
void to_json(nlohmann::json& j, const StorageConfig& config);
void to_json(nlohmann::json& j, const PoolConfig& pool);

}  // namespace hcnode::storage
