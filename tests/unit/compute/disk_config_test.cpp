// --disk specs and "disks" JSON entries: parsing, validation and their messages.
#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include "compute/disk_config.hpp"
#include "compute/vm_config.hpp"

using namespace hcnode;
using namespace hcnode::compute;

TEST_CASE("disk spec: every key parses and validates", "[config][disk]") {
  auto d = parse_disk_spec("uri=rbd:rbd/vm1,readonly=on,serial=vm1-root,queues=4,queue_size=512,cache=none");
  REQUIRE(d);
  CHECK(d->uri == "rbd:rbd/vm1");
  CHECK(d->read_only);
  CHECK(d->serial == "vm1-root");
  CHECK(d->queues == 4);
  CHECK(d->queue_size == 512);
  CHECK(d->cache == "none");
  CHECK(validate_disk(*d));
  auto minimal = parse_disk_spec("uri=file:/var/tmp/a.img");
  REQUIRE(minimal);
  CHECK_FALSE(minimal->read_only);
  CHECK(minimal->queues == 0);  // one per vCPU
  CHECK(validate_disk(*minimal));
}

TEST_CASE("disk spec: bad input is refused with a message naming the problem", "[config][disk]") {
  auto message = [](const std::string& spec) -> std::string {
    auto d = parse_disk_spec(spec);
    if (!d) return d.error().context();
    auto v = validate_disk(*d);
    return v ? "" : v.error().context();
  };
  CHECK(message("uri=file:/a.img,colour=red").find("unknown key 'colour'") != std::string::npos);
  CHECK(message("file:/a.img").find("not key=value") != std::string::npos);
  CHECK(message("uri=file:/a.img,,readonly=on").find("empty item") != std::string::npos);
  CHECK(message("readonly=on").find("no uri") != std::string::npos);
  CHECK(message("uri=nbd://x/y").find("uri") != std::string::npos);
  CHECK(message("uri=file:/a.img,readonly=maybe").find("readonly") != std::string::npos);
  CHECK(message("uri=file:/a.img,queues=x").find("queues") != std::string::npos);
  CHECK(message("uri=file:/a.img,queues=65").find("more than 64") != std::string::npos);
  CHECK(message("uri=file:/a.img,queue_size=100").find("power of two") != std::string::npos);
  CHECK(message("uri=file:/a.img,serial=0123456789abcdefghijk").find("20") != std::string::npos);
  CHECK(message("uri=file:/a.img,serial=a b").find("printable") != std::string::npos);
  CHECK(message("uri=file:/a.img,format=vmdk").find("unknown image format") != std::string::npos);
  CHECK(message("uri=file:/a.img,cache=unsafe").find("unsafe") != std::string::npos);
}

TEST_CASE("disk config: the JSON form and its round trip through VmConfig", "[config][disk]") {
  VmConfig config;
  auto json = nlohmann::json::parse(R"({"kernel": "/k", "disks": [
      {"uri": "rbd:rbd/a", "readonly": true, "queues": 2},
      {"uri": "gluster://127.0.0.2/vmstore/b.img", "serial": "b"}]})");
  REQUIRE(apply_json(json, config));
  REQUIRE(config.disks.size() == 2);
  CHECK(config.disks[0].read_only);
  CHECK(config.disks[0].queues == 2);
  CHECK(config.disks[1].serial == "b");
  CHECK(validate_settings(config));
  VmConfig again;
  REQUIRE(apply_json(config.to_json(), again));
  REQUIRE(again.disks.size() == 2);
  CHECK(again.disks[1].uri == config.disks[1].uri);

  VmConfig bad;
  CHECK_FALSE(apply_json(nlohmann::json::parse(R"({"disks": {"uri": "rbd:rbd/a"}})"), bad));
  CHECK_FALSE(apply_json(nlohmann::json::parse(R"({"disks": [{"uri": "rbd:rbd/a", "queues": -1}]})"), bad));
  VmConfig too_many;
  too_many.kernel = "/k";
  for (int i = 0; i < 17; ++i) too_many.disks.push_back(*parse_disk_spec("uri=file:/d" + std::to_string(i)));
  CHECK_FALSE(validate_settings(too_many));
}
