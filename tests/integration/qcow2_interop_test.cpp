// qcow2 interop with QEMU, both ways, on local files and on the dev cluster's Gluster volume
// (through gluster://, QEMU's gluster block driver from qemu-block-extra):
//   - an overlay hcnode creates and writes (partial clusters, cluster-crossing writes,
//     write-zeroes, discard) passes `qemu-img check` with no errors or leaks, and
//     `qemu-img compare` finds it equal to a raw image with the same writes;
//   - an overlay `qemu-img create` makes and `qemu-io` writes, and an image `qemu-img convert`
//     writes, read back in hcnode exactly as expected.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "blockdev/open_backend.hpp"
#include "blockdev/qcow2/qcow2_format.hpp"
#include "blockdev/sync_disk.hpp"
#include "tests/integration/requirements.hpp"

using namespace hcnode;
using namespace hcnode::blockdev;

namespace {

constexpr uint64_t kSize = 8 << 20;

std::vector<uint8_t> pattern(uint64_t size, unsigned seed) {
  std::vector<uint8_t> v(size);
  for (uint64_t i = 0; i < size; ++i) v[i] = static_cast<uint8_t>(seed * 37 + i / 512 * 3 + i);
  return v;
}

int shell(const std::string& cmd) {
  INFO(cmd);
  const int rc = std::system((cmd + " >/tmp/hcnode-qcow2-it.log 2>&1").c_str());
  if (rc != 0) {
    std::ifstream log("/tmp/hcnode-qcow2-it.log");
    std::string text((std::istreambuf_iterator<char>(log)), {});
    UNSCOPED_INFO(cmd << " ->\n" << text);
  }
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

// Runs commands at once and returns their exit statuses. Each QEMU process on gluster://
// spends ~10 s in glfs_fini on its way out; run side by side, those waits overlap.
std::vector<int> shell_all(const std::vector<std::string>& cmds) {
  const std::string base = "/tmp/hcnode-qcow2-it." + std::to_string(::getpid());
  std::string script;
  for (size_t i = 0; i < cmds.size(); ++i) {
    const std::string n = std::to_string(i);
    script += "{ ( " + cmds[i] + " ) >" + base + "." + n + ".log 2>&1; echo $? >" + base + "." +
              n + ".rc; } &\n";
  }
  script += "wait\n";
  {
    std::ofstream f(base + ".sh");
    f << script;
  }
  (void)std::system(("bash " + base + ".sh").c_str());
  std::vector<int> out;
  for (size_t i = 0; i < cmds.size(); ++i) {
    const std::string n = std::to_string(i);
    int rc = 128;
    std::ifstream(base + "." + n + ".rc") >> rc;
    if (rc != 0) {
      std::ifstream log(base + "." + n + ".log");
      std::string text((std::istreambuf_iterator<char>(log)), {});
      UNSCOPED_INFO(cmds[i] << " -> exit " << rc << "\n" << text);
    }
    out.push_back(rc);
    std::remove((base + "." + n + ".rc").c_str());
    std::remove((base + "." + n + ".log").c_str());
  }
  std::remove((base + ".sh").c_str());
  return out;
}

void require_qemu_img() {
  if (shell("qemu-img --version && qemu-io --version") != 0) {
    testing::missing_component("qemu-img / qemu-io (qemu-utils) not installed");
  }
}

// A place for images: a local directory or a directory on the Gluster volume. `uri(name)` is
// hcnode's URI, `qemu(name)` QEMU's name for the same file (identical for gluster://).
struct Place {
  std::string uri_prefix;
  std::string qemu_prefix;
  std::string uri(const std::string& name) const { return uri_prefix + name; }
  std::string qemu(const std::string& name) const { return qemu_prefix + name; }
};

std::shared_ptr<Backend> open(StorageSessions& sessions, const std::string& uri, bool qcow2,
                              bool growable = false) {
  auto parsed = parse_disk_uri(uri);
  REQUIRE(parsed.has_value());
  BackendOptions o;
  o.format = qcow2 ? ImageFormat::kQcow2 : ImageFormat::kRaw;
  o.growable = growable;
  auto b = open_backend(*parsed, o, sessions);
  INFO(uri << ": " << (b ? "" : b.error().message()));
  REQUIRE(b.has_value());
  return *b;
}

SyncDisk disk_of(std::shared_ptr<Backend> b) {
  auto d = SyncDisk::open(std::move(b));
  REQUIRE(d.has_value());
  return std::move(*d);
}

// The first byte offset where two images differ, or -1 (Catch would print 8 MiB vectors).
int64_t first_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.size() != b.size()) return 0;
  auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin());
  return ia == a.end() ? -1 : ia - a.begin();
}

void require_ok(const Status& s) {
  INFO((s ? "" : s.error().message()));
  REQUIRE(s.has_value());
}

// The writes applied to both an hcnode overlay and the expected raw image.
void guest_writes(SyncDisk& d, std::vector<uint8_t>* model) {
  struct W {
    uint64_t off, len;
    unsigned seed;
  };
  for (const W& w : {W{0, 4096, 1}, W{65536 - 1024, 3072, 2}, W{1 << 20, 65536, 3},
                     W{3 * 65536 + 512, 512, 4}, W{kSize - 8192, 8192, 5}}) {
    auto data = pattern(w.len, w.seed);
    require_ok(d.write(w.off, data));
    if (model) std::copy(data.begin(), data.end(), model->begin() + static_cast<ptrdiff_t>(w.off));
  }
  require_ok(d.write_zeroes(2 << 20, 65536 + 4096, false));
  if (model) std::fill_n(model->begin() + (2 << 20), 65536 + 4096, 0);
  require_ok(d.flush());
}

void interop_at(const Place& at, const std::string& tag) {
  StorageSessions sessions;
  const std::string golden = tag + "-golden.raw";
  const std::string overlay = tag + "-overlay.qcow2";
  const std::string expect = tag + "-expect.raw";
  const std::string theirs = tag + "-qemu.qcow2";
  const std::string converted = tag + "-converted.qcow2";
  const auto created = shell_all(
      {"qemu-img create -q -f raw " + at.qemu(golden) + " " + std::to_string(kSize),
       "qemu-img create -q -f raw " + at.qemu(expect) + " " + std::to_string(kSize),
       "qemu-img create -q -f raw " + at.qemu(overlay) + " 0"});
  REQUIRE(created == std::vector<int>{0, 0, 0});
  const auto golden_bytes = pattern(kSize, 9);
  {
    auto g = disk_of(open(sessions, at.uri(golden), false));
    require_ok(g.write(0, golden_bytes));
    require_ok(g.flush());
    auto e = disk_of(open(sessions, at.uri(expect), false));
    require_ok(e.write(0, golden_bytes));
    require_ok(e.flush());
  }

  SECTION("an overlay hcnode writes passes qemu-img check and compares equal") {
    auto bytes = blockdev::qcow2::format_new_image({kSize, 16, golden, "raw"});
    REQUIRE(bytes.has_value());
    {
      auto f = disk_of(open(sessions, at.uri(overlay), false, true));
      require_ok(f.write(0, *bytes));
      require_ok(f.flush());
    }
    std::vector<uint8_t> model = golden_bytes;
    {
      auto ov = disk_of(open(sessions, at.uri(overlay), true));
      guest_writes(ov, &model);
      require_ok(ov.discard(5 << 20, 65536));  // a whole cluster: reads back as zeroes
      std::fill_n(model.begin() + (5 << 20), 65536, 0);
      auto e = disk_of(open(sessions, at.uri(expect), false));
      auto ex = model;
      require_ok(e.write(0, ex));
      require_ok(e.flush());
      std::vector<uint8_t> got(kSize);
      require_ok(ov.read(0, got));
      REQUIRE(first_difference(got, model) == -1);
    }
    const auto qemu = shell_all(
        {"qemu-img check -f qcow2 " + at.qemu(overlay),
         "qemu-img compare -f qcow2 -F raw " + at.qemu(overlay) + " " + at.qemu(expect),
         "qemu-img info " + at.qemu(overlay) + " | grep -q 'backing file: " + golden + "'"});
    CHECK(qemu[0] == 0);  // check: no errors, no leaks
    CHECK(qemu[1] == 0);  // compare: equal
    CHECK(qemu[2] == 0);  // info: the relative backing file
  }

  SECTION("images qemu-img and qemu-io write read back correctly in hcnode") {
    // QEMU writes an overlay (create, then qemu-io) while it converts the golden image.
    const auto qemu = shell_all(
        {"qemu-img create -q -f qcow2 -b " + golden + " -F raw " + at.qemu(theirs) +
             " && qemu-io -f qcow2 -c 'write -P 0x77 1048576 102400' -c 'write -z 3145728 65536'"
             " -c 'write -P 0x42 7000 1000' " + at.qemu(theirs),
         "qemu-img convert -f raw -O qcow2 " + at.qemu(golden) + " " + at.qemu(converted)});
    REQUIRE(qemu == std::vector<int>{0, 0});
    std::vector<uint8_t> model = golden_bytes;
    std::fill_n(model.begin() + 1048576, 102400, 0x77);
    std::fill_n(model.begin() + 3145728, 65536, 0);
    std::fill_n(model.begin() + 7000, 1000, 0x42);
    auto q = disk_of(open(sessions, at.uri(theirs), true));
    std::vector<uint8_t> got(kSize);
    require_ok(q.read(0, got));
    CHECK(first_difference(got, model) == -1);

    auto c = disk_of(open(sessions, at.uri(converted), true));
    require_ok(c.read(0, got));
    CHECK(first_difference(got, golden_bytes) == -1);
  }
  sessions.prepare_process_exit();
}

}  // namespace

TEST_CASE("qcow2 interop with qemu-img both ways on local files", "[qcow2][interop]") {
  require_qemu_img();
  char tmpl[] = "/tmp/hcnode-qcow2-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  interop_at(Place{"file:" + dir + "/", dir + "/"}, "f");
  (void)shell("rm -rf " + dir);
}

TEST_CASE("qcow2 interop with qemu-img both ways on Gluster through gluster://",
          "[qcow2][interop][gluster]") {
  require_qemu_img();
  const auto server = testing::require_gluster();
  if (shell("qemu-img --help | grep -qw gluster") != 0) {
    testing::missing_component("QEMU's gluster block driver (qemu-block-extra) not installed");
  }
  const std::string prefix = "gluster://" + server.host + "/" + server.volume + "/";
  const std::string tag = testing::unique_name("it-qcow2");
  interop_at(Place{prefix, prefix}, tag);
  // Remove what this test made (QEMU has no rm; gfapi does).
  auto volume = GlfsVolume::connect(server);
  REQUIRE(volume.has_value());
  for (const char* f : {"-golden.raw", "-overlay.qcow2", "-expect.raw", "-qemu.qcow2", "-converted.qcow2"}) {
    (void)volume->unlink("/" + tag + f);
  }
  volume->skip_fini_at_exit();
}
