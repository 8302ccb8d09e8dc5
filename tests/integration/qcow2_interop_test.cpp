// qcow2 interop with QEMU, both ways, on local files and on the dev cluster's Gluster volume
// (through gluster://, QEMU's gluster block driver from qemu-block-extra):
//   - an overlay hcnode creates and writes (partial clusters, cluster-crossing writes,
//     write-zeroes, discard) passes `qemu-img check` with no errors or leaks, and
//     `qemu-img compare` finds it equal to a raw image with the same writes;
//   - an overlay `qemu-img create` makes and `qemu-io` writes, and an image `qemu-img convert`
//     writes, read back in hcnode exactly as expected;
//   - a fresh `qemu-img create -b` overlay (its file 196616 bytes, not a multiple of 512; on
//     Gluster its bytes copied verbatim) opens with either cache policy, reads the backing
//     data, takes hcnode's writes, and then passes `qemu-img check` and `qemu-img compare`;
//     opened as a raw disk the same file is refused;
//   - compressed images `qemu-img convert -c` writes (deflate, and zstd with
//     -o compression_type=zstd) read back byte for byte as the raw file they came from, through
//     a clone too; hcnode's writes into their compressed clusters (copy-on-write) compare equal
//     to the raw file with the same writes, and `qemu-img check` finds no errors.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <cstdio>
#include <random>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <spdlog/fmt/fmt.h>

#include "blockdev/open_backend.hpp"
#include "blockdev/qcow2/qcow2_check.hpp"
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

// hcnode's open of `uri` as it is, success or error (for the refusals a test expects).
Result<std::shared_ptr<Backend>> try_open(StorageSessions& sessions, const std::string& uri,
                                          ImageFormat format, CachePolicy cache, bool read_only) {
  auto parsed = parse_disk_uri(uri);
  REQUIRE(parsed.has_value());
  BackendOptions o;
  o.read_only = read_only;
  o.cache = cache;
  o.format = format;
  return open_backend(*parsed, o, sessions);
}

std::shared_ptr<Backend> open_qcow2(StorageSessions& sessions, const std::string& uri,
                                    CachePolicy cache, bool read_only) {
  auto b = try_open(sessions, uri, ImageFormat::kQcow2, cache, read_only);
  INFO(uri << " (cache=" << to_string(cache) << "): " << (b ? "" : b.error().message()));
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

  SECTION("a fresh qemu-img create -b overlay, its file not a multiple of 512 bytes, opens, "
          "reads the backing data, takes writes, and passes qemu-img check and compare") {
    // `qemu-img create` writes the header cluster, the refcount table, one refcount block and
    // only the 8 bytes of the one-entry L1 table: the file ends 8 bytes into its fourth 64 KiB
    // cluster, 196616 bytes. The qcow2 spec asks nothing more of a file (it ends after its
    // last cluster or table), so hcnode must open it; as a raw disk the same file is refused
    // (a guest sees whole 512-byte sectors). Both cache policies: kNone reads and writes
    // through O_DIRECT, whose aligned reads cross the unaligned end of the file.
    const std::vector<CachePolicy> caches{CachePolicy::kNone, CachePolicy::kWriteback};
    auto fresh = [&](CachePolicy cache) { return tag + "-fresh-" + to_string(cache) + ".qcow2"; };
    constexpr uint64_t kFreshFileSize = 3 * 65536 + 8;
    if (at.uri_prefix.rfind("file:", 0) == 0) {
      std::vector<std::string> creates;
      for (CachePolicy cache : caches) {
        creates.push_back("qemu-img create -q -f qcow2 -b " + golden + " -F raw " +
                          at.qemu(fresh(cache)));
      }
      REQUIRE(shell_all(creates) == std::vector<int>{0, 0});
      for (CachePolicy cache : caches) {
        struct stat st {};
        REQUIRE(::stat(at.qemu(fresh(cache)).c_str(), &st) == 0);
        REQUIRE(static_cast<uint64_t>(st.st_size) == kFreshFileSize);
      }
    } else {
      // QEMU's gluster driver pads its writes to 512 bytes (qemu-img on gluster:// leaves
      // 197120 bytes); such a file reaches a volume by a byte copy (`hcctl image import
      // --keep-qcow2`, cp through a FUSE mount). So: qemu-img writes it locally (-u: the
      // relative backing name points at the volume's golden image, not checked here), and
      // gfapi copies its bytes.
      char tmpl[] = "/tmp/hcnode-qcow2-fresh-XXXXXX";
      REQUIRE(::mkdtemp(tmpl) != nullptr);
      const std::string local = std::string(tmpl) + "/fresh.qcow2";
      REQUIRE(shell("qemu-img create -q -u -f qcow2 -b " + golden + " -F raw " + local + " " +
                    std::to_string(kSize)) == 0);
      std::ifstream f(local, std::ios::binary);
      const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
      (void)shell(std::string("rm -rf ") + tmpl);
      REQUIRE(bytes.size() == kFreshFileSize);
      for (CachePolicy cache : caches) {
        auto where = parse_disk_uri(at.uri(fresh(cache)));
        REQUIRE(where.has_value());
        const auto& g = std::get<GlusterLocation>(where->location);
        auto volume = sessions.gluster(g);
        REQUIRE(volume.has_value());
        auto file = GlfsFile::create(**volume, g.path, O_WRONLY | O_TRUNC);
        INFO((file ? "" : file.error().message()));
        REQUIRE(file.has_value());
        require_ok(file->pwrite_all(bytes.data(), bytes.size(), 0));
        require_ok(file->fsync());
      }
    }
    std::vector<uint8_t> model = golden_bytes;
    for (CachePolicy cache : caches) {
      INFO("cache=" << to_string(cache));
      const std::string uri = at.uri(fresh(cache));
      // As a raw disk: refused, with the size that makes it one.
      for (bool read_only : {true, false}) {
        auto raw = try_open(sessions, uri, ImageFormat::kRaw, cache, read_only);
        REQUIRE_FALSE(raw.has_value());
        CHECK(raw.error().code() == EINVAL);
        CHECK_THAT(raw.error().message(),
                   Catch::Contains(fmt::format("size {} is not a multiple of 512 bytes",
                                               kFreshFileSize)));
      }
      std::vector<uint8_t> got(kSize);
      {
        auto ro = disk_of(open_qcow2(sessions, uri, cache, true));
        CHECK(ro.info().size == kSize);
        require_ok(ro.read(0, got));
        REQUIRE(first_difference(got, golden_bytes) == -1);
      }
      std::vector<uint8_t> m = golden_bytes;
      {
        auto rw = disk_of(open_qcow2(sessions, uri, cache, false));
        require_ok(rw.read(0, got));
        REQUIRE(first_difference(got, golden_bytes) == -1);
        guest_writes(rw, &m);
        require_ok(rw.discard(5 << 20, 65536));
        std::fill_n(m.begin() + (5 << 20), 65536, 0);
        require_ok(rw.read(0, got));
        REQUIRE(first_difference(got, m) == -1);
      }
      model = m;  // the same writes on both overlays
    }
    {
      auto e = disk_of(open(sessions, at.uri(expect), false));
      require_ok(e.write(0, model));
      require_ok(e.flush());
    }
    std::vector<std::string> verify;
    for (CachePolicy cache : caches) {
      verify.push_back("qemu-img check -f qcow2 " + at.qemu(fresh(cache)));
      verify.push_back("qemu-img compare -f qcow2 -F raw " + at.qemu(fresh(cache)) + " " +
                       at.qemu(expect));
    }
    const auto qemu = shell_all(verify);
    REQUIRE(qemu.size() == 4);
    for (size_t i = 0; i < caches.size(); ++i) {
      INFO(verify[2 * i] << " -> " << qemu[2 * i] << "; " << verify[2 * i + 1] << " -> "
                         << qemu[2 * i + 1]);
      // check: no errors (exit 3 = leaked clusters only, which the qcow2 layer may leave);
      // compare: equal.
      CHECK((qemu[2 * i] == 0 || qemu[2 * i] == 3));
      CHECK(qemu[2 * i + 1] == 0);
    }
    // And read back after a reopen, through the O_DIRECT path.
    for (CachePolicy cache : caches) {
      auto ro = disk_of(open_qcow2(sessions, at.uri(fresh(cache)), CachePolicy::kNone, true));
      std::vector<uint8_t> got(kSize);
      require_ok(ro.read(0, got));
      CHECK(first_difference(got, model) == -1);
    }
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

// A raw disk for compression: compressible data (text-like runs, the pattern with a repeating
// period), random clusters (QEMU stores them uncompressed: the image mixes both kinds), zeroes.
std::vector<uint8_t> compressible_disk(uint64_t size) {
  std::vector<uint8_t> v(size, 0);
  std::mt19937_64 rng(1234);
  for (uint64_t c = 0; c < size / 65536; ++c) {
    uint8_t* p = v.data() + c * 65536;
    switch (c % 5) {
      case 0:
      case 1:  // words of a small alphabet: compresses to roughly a third
        for (uint64_t i = 0; i < 65536; ++i) p[i] = static_cast<uint8_t>("qcow2 compressed "[rng() % 17]);
        break;
      case 2:  // random: incompressible
        for (uint64_t i = 0; i < 65536; i += 8) {
          const uint64_t r = rng();
          std::memcpy(p + i, &r, 8);
        }
        break;
      case 3:  // a short period
        for (uint64_t i = 0; i < 65536; ++i) p[i] = static_cast<uint8_t>(c * 7 + i % 251);
        break;
      default:
        break;  // zeroes (qemu-img leaves them unallocated)
    }
  }
  return v;
}

// The "N% compressed clusters" that `qemu-img check` reports, or -1.
double compressed_percent(const std::string& image) {
  const std::string log = image + ".check";
  (void)std::system(("qemu-img check " + image + " >" + log + " 2>&1").c_str());
  std::ifstream f(log);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  std::remove(log.c_str());
  const auto at = text.find("% compressed clusters");
  if (at == std::string::npos) return -1;
  const auto start = text.rfind(' ', at);
  return std::atof(text.substr(start + 1, at - start - 1).c_str());
}

void compressed_interop(const std::string& dir, const std::string& ctype) {
  StorageSessions sessions;
  const std::string raw = dir + "/source.raw";
  const std::string image = dir + "/c-" + ctype + ".qcow2";
  const std::string expect = dir + "/expect-" + ctype + ".raw";
  const std::string clone = dir + "/clone-" + ctype + ".qcow2";
  const auto source = compressible_disk(kSize);
  {
    std::ofstream f(raw, std::ios::binary);
    f.write(reinterpret_cast<const char*>(source.data()), static_cast<std::streamsize>(source.size()));
  }
  REQUIRE(shell("qemu-img convert -c -f raw -O qcow2 -o compression_type=" + ctype + " " + raw +
                " " + image) == 0);
  REQUIRE(shell("qemu-img info " + image + " | grep -q 'compression type: " + ctype + "'") == 0);
  const double percent = compressed_percent(image);
  INFO(image << ": " << percent << "% compressed clusters");
  REQUIRE(percent > 10);  // most clusters are compressed, the random ones are not
  // hcnode's checker counts compressed references as QEMU does: QEMU's fresh image is clean
  // for both (qemu-img check exit 0; check_image: no errors, no leaks).
  REQUIRE(shell("qemu-img check -q -f qcow2 " + image) == 0);
  {
    auto d = disk_of(open(sessions, "file:" + image, false));
    auto report = blockdev::qcow2::check_image(d);
    REQUIRE(report.has_value());
    for (const auto& p : report->problems) UNSCOPED_INFO(p);
    CHECK(report->clean());
    CHECK(report->data_clusters > 0);
  }

  // Every byte as in the raw file, read in the 4 MiB chunks an import uses.
  {
    auto d = disk_of(open(sessions, "file:" + image, true));
    std::vector<uint8_t> got(kSize);
    for (uint64_t off = 0; off < kSize; off += 4 << 20) {
      require_ok(d.read(off, {got.data() + off, std::min<uint64_t>(4 << 20, kSize - off)}));
    }
    REQUIRE(first_difference(got, source) == -1);
  }
  // Through a clone: an overlay `qemu-img create` makes, whose backing file is the compressed
  // image (named relative; the overlay's file ends 8 bytes into a cluster).
  REQUIRE(shell("qemu-img create -q -f qcow2 -b c-" + ctype + ".qcow2 -F qcow2 " + clone) == 0);
  REQUIRE(shell("qemu-img info " + clone + " | grep -q 'backing file: c-" + ctype + ".qcow2'") == 0);
  {
    auto d = disk_of(open(sessions, "file:" + clone, true));
    std::vector<uint8_t> got(kSize);
    require_ok(d.read(0, got));
    CHECK(first_difference(got, source) == -1);
  }
  // Writes into compressed clusters (partial, cluster-crossing, whole), write-zeroes and
  // discard; the same writes to a raw copy are the expectation qemu-img compares against.
  std::vector<uint8_t> model = source;
  {
    auto d = disk_of(open(sessions, "file:" + image, true, true));
    guest_writes(d, &model);
    require_ok(d.discard(65536 * 5, 65536));  // cluster 5: compressible, compressed
    std::fill_n(model.begin() + 65536 * 5, 65536, 0);
    std::vector<uint8_t> got(kSize);
    require_ok(d.read(0, got));
    REQUIRE(first_difference(got, model) == -1);
  }
  {
    std::ofstream f(expect, std::ios::binary);
    f.write(reinterpret_cast<const char*>(model.data()), static_cast<std::streamsize>(model.size()));
  }
  CHECK(shell("qemu-img compare -f qcow2 -F raw " + image + " " + expect) == 0);
  // No errors. Exit status 3 = leaked clusters only: the compressed clusters that writes
  // replaced keep their refcounts (hcnode never frees clusters, qcow2_backend.hpp).
  const int check = shell("qemu-img check -f qcow2 " + image);
  CHECK((check == 0 || check == 3));
  // And hcnode's reading of what it wrote, after a reopen.
  {
    auto d = disk_of(open(sessions, "file:" + image, true));
    std::vector<uint8_t> got(kSize);
    require_ok(d.read(0, got));
    CHECK(first_difference(got, model) == -1);
  }
  sessions.prepare_process_exit();
}

}  // namespace

TEST_CASE("qcow2 compressed images qemu-img convert -c writes: reads and copy-on-write",
          "[qcow2][interop][compressed]") {
  require_qemu_img();
  const std::string ctype = GENERATE(std::string("zlib"), std::string("zstd"));
  INFO("compression_type=" << ctype);
  char tmpl[] = "/tmp/hcnode-qcow2c-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  compressed_interop(dir, ctype);
  (void)shell("rm -rf " + dir);
}

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
  for (const char* f : {"-golden.raw", "-overlay.qcow2", "-expect.raw", "-qemu.qcow2",
                        "-converted.qcow2", "-fresh-none.qcow2", "-fresh-writeback.qcow2"}) {
    (void)volume->unlink("/" + tag + f);
  }
  volume->skip_fini_at_exit();
}
