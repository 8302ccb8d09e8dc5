#include "base/result.hpp"

#include <cerrno>

#include <catch2/catch.hpp>

using namespace hcnode;

namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) {
    return fail(EINVAL, "value " + std::to_string(v));
  }
  return v;
}

Result<int> doubled(int v) {
  int x = HCN_TRY(parse_positive(v));
  return 2 * x;
}

Status check_positive(int v) {
  HCN_TRY_STATUS(parse_positive(v));
  return {};
}

}  // namespace

TEST_CASE("Error message joins context and strerror", "[base][result]") {
  Error e(ENOENT, "open /nonexistent");
  CHECK(e.code() == ENOENT);
  CHECK(e.message() == "open /nonexistent: No such file or directory");
  CHECK(e.wrap("load kernel").message() == "load kernel: open /nonexistent: No such file or directory");
}

TEST_CASE("from_errno captures errno once and never yields code 0", "[base][result]") {
  errno = EACCES;
  CHECK(from_errno("x").code() == EACCES);
  errno = 0;
  CHECK(from_errno("x").code() == EIO);
}

TEST_CASE("from_negative_errno converts librados-style return codes", "[base][result]") {
  CHECK(from_negative_errno(-EROFS, "rbd write").code() == EROFS);
  CHECK(from_negative_errno(0, "odd").code() == EIO);
}

TEST_CASE("HCN_TRY propagates errors and unwraps values", "[base][result]") {
  REQUIRE(doubled(21).value() == 42);
  auto bad = doubled(-1);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code() == EINVAL);
  CHECK(bad.error().context() == "value -1");
  CHECK(check_positive(3).has_value());
  CHECK(check_positive(0).error().code() == EINVAL);
}
