#include "storage/pool_config.hpp"

#include <spdlog/fmt/fmt.h>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "storage/image_ref.hpp"

namespace hcnode::storage {

namespace {

using nlohmann::json;

Error bad(const std::string& source, const std::string& what) {
  return make_error(EINVAL, fmt::format("storage config{}: {}",
                                        source.empty() ? "" : " " + source, what));
}

// Every key of `obj` must be in `allowed`: a typo must not fall back to a default silently.
Status check_keys(const json& obj, std::initializer_list<const char*> allowed,
                  const std::string& where, const std::string& source) {
  for (const auto& [key, value] : obj.items()) {
    bool ok = false;
    for (const char* a : allowed) {
      ok = ok || key == a;
    }
    if (!ok) {
      return fail(bad(source, fmt::format("{}: unknown key '{}'", where, key)));
    }
  }
  return {};
}

Result<std::string> get_string(const json& obj, const char* key, const std::string& where,
                               const std::string& source, std::optional<std::string> dflt) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (dflt) {
      return *dflt;
    }
    return fail(bad(source, fmt::format("{}: missing \"{}\"", where, key)));
  }
  if (!it->is_string()) {
    return fail(bad(source, fmt::format("{}: \"{}\" must be a string", where, key)));
  }
  return it->get<std::string>();
}

bool is_clean_absolute(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return false;
  }
  std::stringstream ss(path.substr(1));
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part == "." || part == "..") {
      return false;
    }
  }
  return path.find("//") == std::string::npos;
}

// "/images/" -> "/images"; "/" stays "/".
std::string trim_slash(std::string path) {
  while (path.size() > 1 && path.back() == '/') {
    path.pop_back();
  }
  return path;
}

Result<PoolConfig> parse_pool(const std::string& name, const json& obj, const std::string& source) {
  const std::string where = "pool '" + name + "'";
  if (auto valid = validate_name(name, "pool name"); !valid) {
    return fail(bad(source, valid.error().context()));
  }
  if (!obj.is_object()) {
    return fail(bad(source, where + ": must be an object"));
  }
  PoolConfig pool;
  pool.name = name;
  std::string kind = HCN_TRY(get_string(obj, "kind", where, source, std::nullopt));
  if (kind == "rbd") {
    HCN_TRY_STATUS(check_keys(obj, {"kind", "pool", "namespace"}, where, source));
    RbdPool rbd;
    rbd.pool = HCN_TRY(get_string(obj, "pool", where, source, name));
    rbd.ns = HCN_TRY(get_string(obj, "namespace", where, source, ""));
    if (auto v = validate_name(rbd.pool, "RADOS pool name"); !v) {
      return fail(bad(source, where + ": " + v.error().context()));
    }
    if (!rbd.ns.empty()) {
      if (auto v = validate_name(rbd.ns, "RADOS namespace"); !v) {
        return fail(bad(source, where + ": " + v.error().context()));
      }
    }
    pool.location = rbd;
  } else if (kind == "gluster") {
    HCN_TRY_STATUS(check_keys(obj, {"kind", "host", "port", "volume", "dir"}, where, source));
    GlusterPool g;
    g.host = HCN_TRY(get_string(obj, "host", where, source, std::nullopt));
    g.volume = HCN_TRY(get_string(obj, "volume", where, source, std::nullopt));
    g.dir = trim_slash(HCN_TRY(get_string(obj, "dir", where, source, "/images")));
    if (auto it = obj.find("port"); it != obj.end()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 65535) {
        return fail(bad(source, where + ": \"port\" must be an integer in 1..65535"));
      }
      g.port = static_cast<uint16_t>(it->get<int64_t>());
    }
    if (g.host.empty()) {
      return fail(bad(source, where + ": \"host\" is empty"));
    }
    if (auto v = validate_name(g.volume, "volume name"); !v) {
      return fail(bad(source, where + ": " + v.error().context()));
    }
    if (!is_clean_absolute(g.dir)) {
      return fail(bad(source, where + ": \"dir\" must be an absolute path inside the volume "
                                      "without '.' or '..' (e.g. \"/images\")"));
    }
    pool.location = g;
  } else if (kind == "dir") {
    HCN_TRY_STATUS(check_keys(obj, {"kind", "path"}, where, source));
    DirPool d;
    d.path = trim_slash(HCN_TRY(get_string(obj, "path", where, source, std::nullopt)));
    if (!is_clean_absolute(d.path)) {
      return fail(bad(source, where + ": \"path\" must be an absolute path without '.' or '..'"));
    }
    pool.location = d;
  } else {
    return fail(bad(source, where + ": kind '" + kind + "' (expected rbd, gluster or dir)"));
  }
  return pool;
}

}  // namespace

const char* to_string(PoolKind kind) {
  switch (kind) {
    case PoolKind::kRbd: return "rbd";
    case PoolKind::kGluster: return "gluster";
    case PoolKind::kDir: return "dir";
  }
  return "unknown";
}

PoolKind PoolConfig::kind() const {
  if (std::holds_alternative<RbdPool>(location)) return PoolKind::kRbd;
  if (std::holds_alternative<GlusterPool>(location)) return PoolKind::kGluster;
  return PoolKind::kDir;
}

std::string PoolConfig::describe() const {
  if (const auto* r = std::get_if<RbdPool>(&location)) {
    return "rbd:" + r->pool + (r->ns.empty() ? "" : "/" + r->ns);
  }
  if (const auto* g = std::get_if<GlusterPool>(&location)) {
    return fmt::format("gluster://{}:{}/{}{}", g->host, g->port, g->volume,
                       g->dir == "/" ? "" : g->dir);
  }
  return "file:" + std::get<DirPool>(location).path;
}

const PoolConfig* StorageConfig::find(std::string_view name) const {
  for (const auto& p : pools) {
    if (p.name == name) {
      return &p;
    }
  }
  return nullptr;
}

std::string StorageConfig::pool_names() const {
  if (pools.empty()) {
    return "none configured";
  }
  std::string out;
  for (const auto& p : pools) {
    out += (out.empty() ? "" : ", ") + p.name;
  }
  return out;
}

Result<StorageConfig> parse_storage_config(std::string_view json_text, std::string source) {
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return fail(bad(source, "not valid JSON"));
  }
  if (!doc.is_object()) {
    return fail(bad(source, "the document must be a JSON object"));
  }
  HCN_TRY_STATUS(check_keys(doc, {"ceph", "pools"}, "top level", source));
  StorageConfig config;
  config.source = source;
  if (auto it = doc.find("ceph"); it != doc.end()) {
    if (!it->is_object()) {
      return fail(bad(source, "\"ceph\" must be an object"));
    }
    HCN_TRY_STATUS(check_keys(*it, {"conf", "id", "keyring"}, "ceph", source));
    blockdev::CephClientConfig ceph;
    ceph.conf_path = HCN_TRY(get_string(*it, "conf", "ceph", source, "/etc/ceph/ceph.conf"));
    ceph.id = HCN_TRY(get_string(*it, "id", "ceph", source, "hcnode"));
    ceph.keyring = HCN_TRY(get_string(*it, "keyring", "ceph", source, ""));
    config.ceph = ceph;
  }
  auto pools = doc.find("pools");
  if (pools == doc.end()) {
    return fail(bad(source, "missing \"pools\""));
  }
  if (!pools->is_object()) {
    return fail(bad(source, "\"pools\" must be an object of NAME: {kind, …}"));
  }
  // nlohmann::json objects iterate in key order, so pools come out sorted by name.
  for (const auto& [name, value] : pools->items()) {
    config.pools.push_back(HCN_TRY(parse_pool(name, value, source)));
  }
  return config;
}

EnvLookup process_env() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') {
      return std::nullopt;
    }
    return std::string(v);
  };
}

Result<StorageConfig> storage_config_from_env(const EnvLookup& env) {
  StorageConfig config;
  config.source = "environment";
  if (auto pool = env("HCNODE_RBD_POOL")) {
    if (auto v = validate_name(*pool, "HCNODE_RBD_POOL"); !v) {
      return fail(v.error());
    }
    config.pools.push_back(PoolConfig{"rbd", RbdPool{*pool, ""}});
  }
  auto host = env("HCNODE_GLUSTER_HOST");
  auto volume = env("HCNODE_GLUSTER_VOLUME");
  if (host && volume) {
    GlusterPool g;
    g.host = *host;
    g.volume = *volume;
    if (auto port = env("HCNODE_GLUSTER_PORT")) {
      char* end = nullptr;
      long value = std::strtol(port->c_str(), &end, 10);
      if (end == nullptr || *end != '\0' || value < 1 || value > 65535) {
        return fail(EINVAL, "HCNODE_GLUSTER_PORT='" + *port + "': expected 1..65535");
      }
      g.port = static_cast<uint16_t>(value);
    }
    config.pools.push_back(PoolConfig{"gluster", g});
  }
  if (auto dir = env("HCNODE_LOCAL_POOL_DIR")) {
    std::string path = trim_slash(*dir);
    if (!is_clean_absolute(path)) {
      return fail(EINVAL, "HCNODE_LOCAL_POOL_DIR='" + *dir + "': expected an absolute path");
    }
    config.pools.push_back(PoolConfig{"local", DirPool{path}});
  }
  return config;
}

Result<StorageConfig> load_storage_config(const EnvLookup& env) {
  std::string path;
  bool must_exist = false;
  if (auto p = env("HCNODE_STORAGE_CONFIG")) {
    path = *p;
    must_exist = true;
  } else {
    path = "/etc/hcnode/storage.json";
  }
  std::ifstream in(path);
  if (!in) {
    if (must_exist) {
      return fail(ENOENT, "storage config " + path + " (HCNODE_STORAGE_CONFIG) cannot be read");
    }
    return storage_config_from_env(env);
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_storage_config(text.str(), path);
}

void to_json(nlohmann::json& j, const PoolConfig& pool) {
  j = json::object();
  j["kind"] = to_string(pool.kind());
  if (const auto* r = std::get_if<RbdPool>(&pool.location)) {
    j["pool"] = r->pool;
    j["namespace"] = r->ns;
  } else if (const auto* g = std::get_if<GlusterPool>(&pool.location)) {
    j["host"] = g->host;
    j["port"] = g->port;
    j["volume"] = g->volume;
    j["dir"] = g->dir;
  } else {
    j["path"] = std::get<DirPool>(pool.location).path;
  }
}

void to_json(nlohmann::json& j, const StorageConfig& config) {
  j = json::object();
  if (config.ceph) {
    j["ceph"] = {{"conf", config.ceph->conf_path},
                 {"id", config.ceph->id},
                 {"keyring", config.ceph->keyring}};
  }
  json pools = json::object();
  for (const auto& p : config.pools) {
    pools[p.name] = p;
  }
  j["pools"] = pools;
}

}  // namespace hcnode::storage
