#include "base/fd.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "base/event_fd.hpp"
#include "base/mmap_region.hpp"

using namespace hcnode;

namespace {
bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }
}  // namespace

TEST_CASE("Fd closes on destruction and moves ownership", "[base][fd]") {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(raw >= 0);
  {
    Fd a(raw);
    Fd b(std::move(a));
    CHECK_FALSE(a.valid());
    CHECK(b.get() == raw);
    CHECK(is_open(raw));
  }
  CHECK_FALSE(is_open(raw));
}

TEST_CASE("Fd release gives up ownership without closing", "[base][fd]") {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(raw >= 0);
  {
    Fd a(raw);
    CHECK(a.release() == raw);
  }
  CHECK(is_open(raw));
  ::close(raw);
}

TEST_CASE("Fd move-assignment closes the previous descriptor", "[base][fd]") {
  int r1 = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int r2 = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  Fd a(r1);
  Fd b(r2);
  a = std::move(b);
  CHECK_FALSE(is_open(r1));
  CHECK(a.get() == r2);
}

TEST_CASE("EventFd accumulates signals and resets on consume", "[base][eventfd]") {
  auto efd = EventFd::create(EFD_NONBLOCK);
  REQUIRE(efd.has_value());
  CHECK(efd->consume().value() == 0);
  REQUIRE(efd->signal(2).has_value());
  REQUIRE(efd->signal().has_value());
  CHECK(efd->consume().value() == 3);
  CHECK(efd->consume().value() == 0);
}

TEST_CASE("MmapRegion maps zeroed memory and unmaps on destruction", "[base][mmap]") {
  auto region = MmapRegion::anonymous(1 << 20);
  REQUIRE(region.has_value());
  CHECK(region->size() == (1u << 20));
  CHECK(region->data()[12345] == 0);
  region->data()[12345] = 7;
  MmapRegion moved = std::move(*region);
  CHECK(moved.data()[12345] == 7);
  CHECK(region->data() == nullptr);
}

TEST_CASE("MmapRegion reports an impossible mapping as an error", "[base][mmap]") {
  auto region = MmapRegion::anonymous(size_t{1} << 62, 0);
  REQUIRE_FALSE(region.has_value());
  CHECK(region.error().code() == ENOMEM);
}
