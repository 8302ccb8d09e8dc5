#include "blockdev/disk_uri.hpp"

#include <catch2/catch.hpp>

using namespace hcnode;
using namespace hcnode::blockdev;

TEST_CASE("rbd URIs parse pool, optional namespace, image and snapshot", "[blockdev][uri]") {
  auto a = parse_disk_uri("rbd:rbd/vm-1");
  REQUIRE(a.has_value());
  auto& la = std::get<RbdLocation>(a->location);
  CHECK(la.pool == "rbd");
  CHECK(la.ns.empty());
  CHECK(la.image == "vm-1");
  CHECK_FALSE(la.snapshot.has_value());

  auto b = parse_disk_uri("rbd:images/tenant1/golden.debian@v1");
  REQUIRE(b.has_value());
  auto& lb = std::get<RbdLocation>(b->location);
  CHECK(lb.pool == "images");
  CHECK(lb.ns == "tenant1");
  CHECK(lb.image == "golden.debian");
  CHECK(lb.snapshot == "v1");
}

TEST_CASE("gluster URIs parse host, port, volume and path", "[blockdev][uri]") {
  auto a = parse_disk_uri("gluster://127.0.0.2/vmstore/vms/a.qcow2");
  REQUIRE(a.has_value());
  auto& la = std::get<GlusterLocation>(a->location);
  CHECK(la.host == "127.0.0.2");
  CHECK(la.port == 24007);
  CHECK(la.volume == "vmstore");
  CHECK(la.path == "/vms/a.qcow2");

  auto b = parse_disk_uri("gluster://storage-1:24017/vol/x.raw");
  REQUIRE(b.has_value());
  CHECK(std::get<GlusterLocation>(b->location).port == 24017);
}

TEST_CASE("file URIs need an absolute clean path", "[blockdev][uri]") {
  auto a = parse_disk_uri("file:/var/lib/hcnode/a.img");
  REQUIRE(a.has_value());
  CHECK(std::get<FileLocation>(a->location).path == "/var/lib/hcnode/a.img");
}

TEST_CASE("to_string is the canonical spelling that parses back to the same URI", "[blockdev][uri]") {
  for (const char* text : {"rbd:rbd/vm-1", "rbd:p/ns/img@snap", "gluster://h/v/p/q.img",
                           "gluster://h:24010/v/p", "file:/a/b"}) {
    auto uri = parse_disk_uri(text);
    REQUIRE(uri.has_value());
    CHECK(uri->to_string() == text);
    CHECK(parse_disk_uri(uri->to_string()).value() == *uri);
  }
  // The default port is not spelled out.
  CHECK(parse_disk_uri("gluster://h:24007/v/p").value().to_string() == "gluster://h/v/p");
}

TEST_CASE("malformed disk URIs are refused with a reason", "[blockdev][uri]") {
  struct Case {
    const char* text;
    const char* reason;
  };
  const Case cases[] = {
      {"", "unknown scheme"},
      {"nbd://x/y", "unknown scheme"},
      {"rbd:", "expected rbd:POOL/IMAGE"},
      {"rbd:pool", "expected rbd:POOL/IMAGE"},
      {"rbd:/img", "pool name"},
      {"rbd:pool/", "image name"},
      {"rbd:pool/a/b/c", "image name"},
      {"rbd:pool/img@", "snapshot name"},
      {"rbd:pool/im g", "image name"},
      {"rbd:pool/.hidden", "image name"},
      {"rbd:pool/img@a@b", "snapshot name"},
      {"gluster://", "expected gluster://"},
      {"gluster://host/vol", "path inside the volume"},
      {"gluster://host/vol/", "path must be"},
      {"gluster://host/vol/a/../../etc/passwd", "path must be"},
      {"gluster://host/vol/a//b", "path must be"},
      {"gluster://host:0/vol/a", "port"},
      {"gluster://host:70000/vol/a", "port"},
      {"gluster://host:12x/vol/a", "port"},
      {"gluster://:24007/vol/a", "missing host"},
      {"gluster://ho$t/vol/a", "host may contain"},
      {"file:relative/path", "ABSOLUTE"},
      {"file:/a/./b", "ABSOLUTE"},
      {"file:/", "ABSOLUTE"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto r = parse_disk_uri(c.text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == EINVAL);
    CHECK(r.error().message().find(c.reason) != std::string::npos);
  }
}

TEST_CASE("RBD names: length and character limits", "[blockdev][uri]") {
  CHECK(is_valid_rbd_name("a"));
  CHECK(is_valid_rbd_name(std::string(96, 'x')));
  CHECK_FALSE(is_valid_rbd_name(std::string(97, 'x')));
  CHECK_FALSE(is_valid_rbd_name(""));
  CHECK_FALSE(is_valid_rbd_name("a/b"));
  CHECK_FALSE(is_valid_rbd_name(std::string("a\0b", 3)));
}
