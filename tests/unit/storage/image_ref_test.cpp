#include "storage/image_ref.hpp"

#include <string>

#include <catch2/catch.hpp>

using namespace hcnode;
using namespace hcnode::storage;

TEST_CASE("image references parse POOL/NAME and, where allowed, @SNAP", "[storage][names]") {
  auto a = parse_image_ref("rbd/debian-12.golden");
  REQUIRE(a.has_value());
  CHECK(a->pool == "rbd");
  CHECK(a->name == "debian-12.golden");
  CHECK_FALSE(a->snapshot.has_value());
  CHECK(a->to_string() == "rbd/debian-12.golden");

  auto b = parse_image_ref("gluster/vm_1@golden", /*allow_snapshot=*/true);
  REQUIRE(b.has_value());
  CHECK(b->pool == "gluster");
  CHECK(b->name == "vm_1");
  CHECK(b->snapshot == "golden");
  CHECK(b->to_string() == "gluster/vm_1@golden");

  auto refused = parse_image_ref("gluster/vm_1@golden");
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code() == EINVAL);
  CHECK(refused.error().context().find("names a snapshot") != std::string::npos);
}

TEST_CASE("malformed image references are refused with the bad part named", "[storage][names]") {
  for (const char* text : {"", "rbd", "rbd/", "/img", "rbd/a/b", "rbd/.hidden", "rb d/x",
                           "rbd/x@", "rbd/x@.s", "rbd/x@a@b"}) {
    INFO(text);
    auto r = parse_image_ref(text, /*allow_snapshot=*/true);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == EINVAL);
  }
  auto r = parse_image_ref("rbd/a/b");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().context().find("image name 'a/b'") != std::string::npos);
}

TEST_CASE("names are 1..96 characters of [A-Za-z0-9._-], not starting with a dot",
          "[storage][names]") {
  CHECK(validate_name("a").has_value());
  CHECK(validate_name("Debian-12_amd64.v2").has_value());
  CHECK(validate_name(std::string(96, 'x')).has_value());

  auto too_long = validate_name(std::string(97, 'x'));
  REQUIRE_FALSE(too_long.has_value());
  CHECK(too_long.error().context().find("longer than 96") != std::string::npos);

  auto empty = validate_name("", "snapshot name");
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error().context() == "snapshot name is empty");

  for (const char* bad : {".x", ".", "..", "a/b", "a b", "a:b", "a@b", "ä", "a\nb", "a*",
                          "vm.importing-abc", "vm.creating-x1"}) {
    INFO(bad);
    auto r = validate_name(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == EINVAL);
  }
}

TEST_CASE("sizes must be positive multiples of 512", "[storage][size]") {
  CHECK(validate_size(512).has_value());
  CHECK(validate_size(uint64_t{1} << 40).has_value());
  auto zero = validate_size(0);
  REQUIRE_FALSE(zero.has_value());
  CHECK(zero.error().code() == EINVAL);
  auto odd = validate_size(1000);
  REQUIRE_FALSE(odd.has_value());
  CHECK(odd.error().context() == "size 1000 B is not a multiple of 512 bytes (next valid: 1024 B)");
}
