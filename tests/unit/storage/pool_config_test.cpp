#include "storage/pool_config.hpp"

#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "storage/image_info.hpp"

using namespace hcnode;
using namespace hcnode::storage;

namespace {

EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

constexpr const char* kFull = R"({
  "ceph": {"conf": "/etc/ceph/ceph.conf", "id": "admin", "keyring": "/k"},
  "pools": {
    "rbd":     {"kind": "rbd", "pool": "vms", "namespace": "tenant1"},
    "gluster": {"kind": "gluster", "host": "10.0.0.5", "port": 24008, "volume": "vmstore",
                "dir": "/images/"},
    "local":   {"kind": "dir", "path": "/var/lib/hcnode/images"}
  }
})";

}  // namespace

TEST_CASE("a storage config names rbd, gluster and dir pools", "[storage][config]") {
  auto c = parse_storage_config(kFull, "test.json");
  REQUIRE(c.has_value());
  REQUIRE(c->pools.size() == 3);
  REQUIRE(c->ceph.has_value());
  CHECK(c->ceph->id == "admin");
  CHECK(c->source == "test.json");

  const auto* rbd = c->find("rbd");
  REQUIRE(rbd != nullptr);
  CHECK(rbd->kind() == PoolKind::kRbd);
  CHECK(std::get<RbdPool>(rbd->location) == RbdPool{"vms", "tenant1"});
  CHECK(rbd->describe() == "rbd:vms/tenant1");

  const auto* g = c->find("gluster");
  REQUIRE(g != nullptr);
  CHECK(std::get<GlusterPool>(g->location) == GlusterPool{"10.0.0.5", 24008, "vmstore", "/images"});
  CHECK(g->describe() == "gluster://10.0.0.5:24008/vmstore/images");

  const auto* d = c->find("local");
  REQUIRE(d != nullptr);
  CHECK(d->kind() == PoolKind::kDir);
  CHECK(d->describe() == "file:/var/lib/hcnode/images");

  CHECK(c->find("nope") == nullptr);
  CHECK(c->pool_names() == "gluster, local, rbd");
}

TEST_CASE("defaults: rbd pool = the pool's name, gluster port 24007 and dir /images",
          "[storage][config]") {
  auto c = parse_storage_config(R"({"pools": {"rbd": {"kind": "rbd"},
      "g": {"kind": "gluster", "host": "h", "volume": "v"}}})");
  REQUIRE(c.has_value());
  CHECK(std::get<RbdPool>(c->find("rbd")->location) == RbdPool{"rbd", ""});
  CHECK(std::get<GlusterPool>(c->find("g")->location) == GlusterPool{"h", 24007, "v", "/images"});
  CHECK_FALSE(c->ceph.has_value());
}

TEST_CASE("config errors name the offending key", "[storage][config]") {
  struct Case {
    const char* json;
    const char* says;
  };
  const Case cases[] = {
      {"not json", "not valid JSON"},
      {"[]", "must be a JSON object"},
      {R"({})", "missing \"pools\""},
      {R"({"pools": {}, "extra": 1})", "unknown key 'extra'"},
      {R"({"pools": {"p": {"kind": "nfs"}}})", "kind 'nfs'"},
      {R"({"pools": {"p": {"pool": "x"}}})", "missing \"kind\""},
      {R"({"pools": {"p": {"kind": "rbd", "pol": "x"}}})", "unknown key 'pol'"},
      {R"({"pools": {".p": {"kind": "rbd"}}})", "pool name '.p'"},
      {R"({"pools": {"p": {"kind": "gluster", "host": "h"}}})", "missing \"volume\""},
      {R"({"pools": {"p": {"kind": "gluster", "host": "h", "volume": "v", "port": 0}}})",
       "1..65535"},
      {R"({"pools": {"p": {"kind": "gluster", "host": "h", "volume": "v", "dir": "images"}}})",
       "absolute path"},
      {R"({"pools": {"p": {"kind": "dir", "path": "/a/../b"}}})", "absolute path"},
      {R"({"pools": {"p": {"kind": "dir", "path": 5}}})", "must be a string"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    auto r = parse_storage_config(c.json, "f.json");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == EINVAL);
    CHECK(r.error().context().find(c.says) != std::string::npos);
    CHECK(r.error().context().find("f.json") != std::string::npos);
  }
}

TEST_CASE("without a config file the pools come from the dev cluster's environment",
          "[storage][config]") {
  auto c = storage_config_from_env(fake_env({{"HCNODE_RBD_POOL", "rbd"},
                                             {"HCNODE_GLUSTER_HOST", "127.0.0.2"},
                                             {"HCNODE_GLUSTER_PORT", "24007"},
                                             {"HCNODE_GLUSTER_VOLUME", "vmstore"},
                                             {"HCNODE_LOCAL_POOL_DIR", "/tmp/pool/"}}));
  REQUIRE(c.has_value());
  CHECK(c->source == "environment");
  REQUIRE(c->pools.size() == 3);
  CHECK(std::get<RbdPool>(c->find("rbd")->location).pool == "rbd");
  CHECK(std::get<GlusterPool>(c->find("gluster")->location) ==
        GlusterPool{"127.0.0.2", 24007, "vmstore", "/images"});
  CHECK(std::get<DirPool>(c->find("local")->location).path == "/tmp/pool");

  auto none = storage_config_from_env(fake_env({}));
  REQUIRE(none.has_value());
  CHECK(none->pools.empty());
  CHECK(none->pool_names() == "none configured");

  auto bad_port = storage_config_from_env(fake_env(
      {{"HCNODE_GLUSTER_HOST", "h"}, {"HCNODE_GLUSTER_VOLUME", "v"}, {"HCNODE_GLUSTER_PORT", "x"}}));
  CHECK_FALSE(bad_port.has_value());
}

TEST_CASE("HCNODE_STORAGE_CONFIG must name a readable file", "[storage][config]") {
  auto r = load_storage_config(fake_env({{"HCNODE_STORAGE_CONFIG", "/nonexistent/storage.json"}}));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == ENOENT);
  CHECK(r.error().context().find("/nonexistent/storage.json") != std::string::npos);
}

TEST_CASE("a config round-trips through JSON", "[storage][config]") {
  auto c = parse_storage_config(kFull, "x");
  REQUIRE(c.has_value());
  nlohmann::json j = *c;
  auto back = parse_storage_config(j.dump(), "x");
  REQUIRE(back.has_value());
  CHECK(back->pools == c->pools);
  CHECK(back->ceph->keyring == "/k");
}

TEST_CASE("result structs convert to JSON with snake_case keys", "[storage][json]") {
  ImageInfo info;
  info.pool = "rbd";
  info.name = "vm-1";
  info.size = 1 << 20;
  info.parent = "rbd/golden@golden";
  info.snapshots.push_back(SnapshotInfo{"golden", 4, 1 << 20, 1700000000, {"rbd/vm-1"}});
  nlohmann::json j = info;
  CHECK(j["pool_kind"] == "rbd");
  CHECK(j["format"] == "raw");
  CHECK(j["parent"] == "rbd/golden@golden");
  CHECK(j["snapshots"][0]["children"][0] == "rbd/vm-1");
  CHECK(j["backing_chain"].is_array());

  ImageSummary s;
  s.name = "x";
  nlohmann::json js = s;
  CHECK(js["parent"].is_null());

  DuReport du;
  du.pool = "p";
  du.images.push_back(DuEntry{"a", 1024, 512});
  nlohmann::json jd = du;
  CHECK(jd["images"][0]["used"] == 512);
  CHECK(jd["space"].is_null());
}
