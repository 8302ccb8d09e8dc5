// hcnode-vmm's virtio-blk disks end to end: the probe guest's virtio-blk driver (tests/guest)
// against our device and each real backend — a local file, an RBD image on the dev cluster, a
// file on the replica-3 Gluster volume. The host checks the bytes through its own path
// (pread, librbd, gfapi), not through hcnode's backends.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "base/fd.hpp"
#include "blockdev/disk_uri.hpp"
#include "blockdev/gluster/glfs_handles.hpp"
#include "blockdev/open_backend.hpp"
#include "blockdev/qcow2/qcow2_format.hpp"
#include "blockdev/sync_disk.hpp"
#include "blockdev/rbd/rados_handles.hpp"
#include "compute/exit_status.hpp"
#include "tests/integration/requirements.hpp"
#include "tests/integration/vmm_process.hpp"

using namespace hcnode;
using namespace hcnode::blockdev;
using namespace hcnode::testing;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kDiskSize = 64ull << 20;

// The probe's disk pattern (tests/guest/pattern.hpp, a contract): the u64 at byte offset o is
// mix(seed ^ o).
uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Counts the 8-byte words of `bytes` (read from disk offset `offset`) that do not match.
size_t pattern_mismatches(const std::vector<uint8_t>& bytes, uint64_t offset, uint64_t seed) {
  size_t bad = 0;
  for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    uint64_t v;
    std::memcpy(&v, bytes.data() + i, 8);
    if (v != mix(seed ^ (offset + i))) ++bad;
  }
  return bad;
}

// One scratch disk of kDiskSize on a backend, with an independent way to read it.
class ScratchDisk {
 public:
  virtual ~ScratchDisk() = default;
  virtual std::string uri() const = 0;
  virtual std::vector<uint8_t> read(uint64_t offset, uint64_t len) = 0;
  // A VMM holding the disk was killed: fence it the way HA will (RBD: blocklist its rados
  // client, so that its watch and lock go at once instead of after the 30 s watch timeout).
  virtual void fence(const std::string& client_address) { (void)client_address; }
};

class FileDisk final : public ScratchDisk {
 public:
  FileDisk() {
    path_ = (std::filesystem::path("/var/tmp") / (unique_name("hcnode-it-disk") + ".img")).string();
    Fd fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    REQUIRE(fd.valid());
    REQUIRE(::ftruncate(fd.get(), static_cast<off_t>(kDiskSize)) == 0);
  }
  ~FileDisk() override { std::filesystem::remove(path_); }
  std::string uri() const override { return "file:" + path_; }
  std::vector<uint8_t> read(uint64_t offset, uint64_t len) override {
    std::vector<uint8_t> out(len);
    Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd.valid());
    REQUIRE(::pread(fd.get(), out.data(), len, static_cast<off_t>(offset)) == static_cast<ssize_t>(len));
    return out;
  }

 private:
  std::string path_;
};

class RbdDisk final : public ScratchDisk {
 public:
  RbdDisk() {
    auto config = require_ceph();
    auto cluster = RadosCluster::connect(config);
    REQUIRE(cluster);
    cluster_ = std::make_unique<RadosCluster>(std::move(*cluster));
    auto io = RadosIoCtx::create(*cluster_, pool());
    REQUIRE(io);
    io_ = std::make_unique<RadosIoCtx>(std::move(*io));
    name_ = unique_name("it-disk");
    int order = 0;
    REQUIRE(rbd_create(io_->get(), name_.c_str(), kDiskSize, &order) == 0);
  }
  ~RbdDisk() override { rbd_remove(io_->get(), name_.c_str()); }
  static std::string pool() {
    const char* p = std::getenv("HCNODE_RBD_POOL");
    return p != nullptr ? p : "rbd";
  }
  std::string uri() const override { return "rbd:" + pool() + "/" + name_; }
  void fence(const std::string& client_address) override {
    auto r = cluster_->mon_command(R"({"prefix":"osd blocklist","blocklistop":"add","addr":")" +
                                   client_address + R"(","expire":600.0})");
    INFO((r ? *r : r.error().message()));
    REQUIRE(r);
  }
  std::vector<uint8_t> read(uint64_t offset, uint64_t len) override {
    auto image = RbdImage::open(*io_, name_, std::nullopt, /*read_only=*/true);
    REQUIRE(image);
    std::vector<uint8_t> out(len);
    REQUIRE(rbd_read(image->get(), offset, len, reinterpret_cast<char*>(out.data())) ==
            static_cast<ssize_t>(len));
    return out;
  }

 private:
  std::unique_ptr<RadosCluster> cluster_;
  std::unique_ptr<RadosIoCtx> io_;
  std::string name_;
};

// One gfapi connection for the whole test process (glfs_fini costs ~10 s).
GlfsVolume& gluster_volume() {
  static std::unique_ptr<GlfsVolume> volume = [] {
    auto v = GlfsVolume::connect(require_gluster());
    REQUIRE(v);
    return std::make_unique<GlfsVolume>(std::move(*v));
  }();
  return *volume;
}

class GlusterDisk final : public ScratchDisk {
 public:
  GlusterDisk() : server_(require_gluster()) {
    path_ = "/" + unique_name("it-disk") + ".img";
    auto file = GlfsFile::create(gluster_volume(), path_, O_RDWR | O_TRUNC);
    REQUIRE(file);
    REQUIRE(glfs_ftruncate(file->get(), static_cast<off_t>(kDiskSize), nullptr, nullptr) == 0);
  }
  ~GlusterDisk() override { (void)gluster_volume().unlink(path_); }
  std::string uri() const override {
    return "gluster://" + server_.host + ":" + std::to_string(server_.port) + "/" +
           server_.volume + path_;
  }
  std::vector<uint8_t> read(uint64_t offset, uint64_t len) override {
    auto file = GlfsFile::open(gluster_volume(), path_, O_RDONLY);
    REQUIRE(file);
    std::vector<uint8_t> out(len);
    REQUIRE(file->pread_all(out.data(), len, offset));
    return out;
  }

 private:
  GlusterServer server_;
  std::string path_;
};

std::unique_ptr<ScratchDisk> make_disk(const std::string& kind) {
  require_kvm();
  if (kind == "rbd") return std::make_unique<RbdDisk>();
  if (kind == "gluster") return std::make_unique<GlusterDisk>();
  return std::make_unique<FileDisk>();
}

std::vector<std::string> vm_args(const std::string& cmdline, const std::vector<std::string>& disks) {
  std::vector<std::string> args{"--kernel", probe_elf(), "--memory", "128M", "--vcpus", "1",
                                "--serial", "stdout", "--cmdline", cmdline, "--debug-exit"};
  for (const auto& d : disks) {
    args.push_back("--disk");
    args.push_back(d);
  }
  return args;
}

// Runs the probe to its end; returns its console output. Requires exit status `status`.
std::string run_probe(const std::string& cmdline, const std::vector<std::string>& disks,
                      int status = 0) {
  VmmProcess vmm(vm_args(cmdline, disks));
  auto rc = vmm.wait(120s);
  INFO("stdout:\n" << vmm.stdout_text() << "\nstderr:\n" << vmm.stderr_text());
  REQUIRE(rc.has_value());
  CHECK(*rc == status);
  return vmm.stdout_text();
}

// The key=value fields of the first console line starting with "probe: <record> ".
std::map<std::string, std::string> record(const std::string& out, const std::string& name,
                                          const std::string& must_contain = "") {
  std::istringstream lines(out);
  std::string line;
  const std::string prefix = "probe: " + name + " ";
  while (std::getline(lines, line)) {
    if (!line.starts_with(prefix) || line.find(must_contain) == std::string::npos) continue;
    std::map<std::string, std::string> fields;
    static const std::regex kv(R"((\w+)=("[^"]*"|\S+))");
    for (auto it = std::sregex_iterator(line.begin(), line.end(), kv); it != std::sregex_iterator(); ++it) {
      fields[(*it)[1]] = (*it)[2];
    }
    return fields;
  }
  FAIL("no '" << prefix << "' line in:\n" << out);
  return {};
}

void write_verify(const std::string& kind) {
  auto disk = make_disk(kind);
  const uint64_t offset = 1 << 20, bytes = 2 << 20, seed = 7;
  const std::string out = run_probe("mode=write-verify offset=1048576 bytes=2097152 bs=65536 depth=4 seed=7",
                                    {"uri=" + disk->uri() + ",serial=it-" + kind});
  auto blk = record(out, "blk");
  CHECK(blk["serial"] == "\"it-" + kind + "\"");
  CHECK(blk["capacity"] == std::to_string(kDiskSize / 512));
  auto wv = record(out, "write_verify");
  CHECK(wv["mismatches"] == "0");
  CHECK(wv["write_errors"] == "0");
  CHECK(wv["read_errors"] == "0");
  CHECK(wv["flush_status"] == "0");
  // The host reads the same bytes back through its own path.
  CHECK(pattern_mismatches(disk->read(offset, bytes), offset, seed) == 0);
  // And the guest reads what the host sees (verify-only over the same range).
  const std::string again = run_probe("mode=write-verify verify-only=1 offset=1048576 bytes=2097152 seed=7",
                                      {"uri=" + disk->uri()});
  CHECK(record(again, "write_verify")["mismatches"] == "0");
}

// `records` under kill -9: every record the guest reported acknowledged is on the disk.
void records_survive_kill(const std::string& kind) {
  auto disk = make_disk(kind);
  const uint64_t seed = 11;
  const std::string sock = (std::filesystem::temp_directory_path() / (unique_name("hcnode-vmm") + ".sock")).string();
  auto args = vm_args("mode=records count=0 seed=11", {"uri=" + disk->uri()});
  args.push_back("--control-socket");
  args.push_back(sock);
  VmmProcess vmm(args);
  REQUIRE(wait_for_socket(sock, 20s));
  const auto storage = control_request(sock, R"({"cmd":"describe"})")["result"]["storage"];
  const std::regex seq_re(R"(probe: record seq=(\d+))");
  uint64_t seen = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (seen < 40 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    const std::string out = vmm.stdout_text();
    for (auto it = std::sregex_iterator(out.begin(), out.end(), seq_re); it != std::sregex_iterator(); ++it) {
      seen = std::max<uint64_t>(seen, std::stoull((*it)[1]));
    }
  }
  REQUIRE(seen >= 40);
  vmm.signal(SIGKILL);
  REQUIRE(vmm.wait(10s) == 128 + SIGKILL);
  if (kind == "rbd") {
    // A VMM on RBD always has a rados client, and describe names it (the address HA fences):
    // without it the fence cannot happen, which is a failure, not a reason to skip it.
    INFO("describe: storage " << storage.dump());
    REQUIRE(storage.contains("rados_client_address"));
    disk->fence(storage["rados_client_address"].get<std::string>());
  }
  // The last word: what the killed VMM had printed by the time it died.
  const std::string out = vmm.stdout_text();
  for (auto it = std::sregex_iterator(out.begin(), out.end(), seq_re); it != std::sregex_iterator(); ++it) {
    seen = std::max<uint64_t>(seen, std::stoull((*it)[1]));
  }
  auto bytes = disk->read(0, seen * 512);
  for (uint64_t i = 1; i <= seen; ++i) {
    const uint8_t* sector = bytes.data() + (i - 1) * 512;
    INFO("record " << i << " of " << seen);
    REQUIRE(std::memcmp(sector, "HCNREC01", 8) == 0);
    uint64_t seq = 0, record_seed = 0;
    std::memcpy(&seq, sector + 8, 8);
    std::memcpy(&record_seed, sector + 16, 8);
    REQUIRE(seq == i);
    REQUIRE(record_seed == seed);
    std::vector<uint8_t> words(sector + 24, sector + 512);
    REQUIRE(pattern_mismatches(words, (i - 1) * 512 + 24, seed) == 0);
  }
}

void zeroes_and_read_only(const std::string& kind) {
  auto disk = make_disk(kind);
  const std::string out = run_probe("mode=zeroes offset=4194304 bytes=262144", {"uri=" + disk->uri()});
  auto z = record(out, "zeroes");
  CHECK(z["discard"] == "ok");
  CHECK(z["discard_nonzero_bytes"] == "0");
  CHECK(z["write_zeroes"] == "ok");
  CHECK(z["write_zeroes_nonzero_bytes"] == "0");
  auto host = disk->read(4 << 20, 256 << 10);
  CHECK(std::all_of(host.begin(), host.end(), [](uint8_t b) { return b == 0; }));

  // Read-only: the device says RO, refuses the write, and the bytes stay as they were.
  run_probe("mode=write-verify offset=0 bytes=65536 seed=3", {"uri=" + disk->uri()});
  const std::string ro = run_probe("mode=ro-check", {"uri=" + disk->uri() + ",readonly=on"});
  auto r = record(ro, "ro_check");
  CHECK(r["ro_feature"] == "1");
  CHECK(r["read_status"] == "0");
  CHECK(r["write_status"] == "1");
  CHECK(pattern_mismatches(disk->read(0, 65536), 0, 3) == 0);
}

// A copy-on-write clone of a scratch disk, the way every VM disk is made: a qcow2 overlay
// beside it whose backing file is the scratch disk (file, Gluster), or an RBD clone v2 of a
// snapshot of it. `spec` is the --disk value; `qemu_name` names the overlay for qemu-img.
struct Clone {
  std::string spec;
  std::string qemu_name;
  std::function<void()> remove;
};

Clone make_clone(const std::string& kind, ScratchDisk& golden) {
  auto uri = parse_disk_uri(golden.uri());
  REQUIRE(uri.has_value());
  if (kind == "rbd") {
    const auto& loc = std::get<RbdLocation>(uri->location);
    auto cluster = std::make_shared<RadosCluster>(*RadosCluster::connect(require_ceph()));
    auto io = std::make_shared<RadosIoCtx>(*RadosIoCtx::create(*cluster, loc.pool));
    {
      auto image = RbdImage::open(*io, loc.image, std::nullopt, false);
      REQUIRE(image);
      REQUIRE(rbd_snap_create(image->get(), "golden") == 0);
    }
    const std::string name = loc.image + "-clone";
    rbd_image_options_t opts;
    rbd_image_options_create(&opts);
    rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_CLONE_FORMAT, 2);
    const int r = rbd_clone3(io->get(), loc.image.c_str(), "golden", io->get(), name.c_str(), opts);
    rbd_image_options_destroy(opts);
    REQUIRE(r == 0);
    return Clone{"uri=rbd:" + loc.pool + "/" + name, "", [cluster, io, loc, name] {
                   rbd_remove(io->get(), name.c_str());
                   auto image = RbdImage::open(*io, loc.image, std::nullopt, false);
                   if (image) rbd_snap_remove(image->get(), "golden");
                 }};
  }
  // qcow2 overlay NAME-overlay.qcow2 next to the golden file, backing file named relative.
  std::string overlay_uri;
  std::string qemu_name;
  std::function<void()> remove;
  std::string backing;
  if (kind == "gluster") {
    auto loc = std::get<GlusterLocation>(uri->location);
    backing = loc.path.substr(loc.path.rfind('/') + 1);
    loc.path += "-overlay.qcow2";
    glfs_fd_t* fd = glfs_creat(gluster_volume().get(), loc.path.c_str(), O_RDWR | O_EXCL, 0644);
    REQUIRE(fd != nullptr);
    glfs_close(fd);
    overlay_uri = DiskUri{loc}.to_string();
    qemu_name = "gluster://" + loc.host + "/" + loc.volume + loc.path;
    remove = [path = loc.path] { (void)gluster_volume().unlink(path); };
  } else {
    const std::string path = std::get<FileLocation>(uri->location).path + "-overlay.qcow2";
    backing = std::filesystem::path(std::get<FileLocation>(uri->location).path).filename();
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    REQUIRE(fd.valid());
    overlay_uri = "file:" + path;
    qemu_name = path;
    remove = [path] { std::filesystem::remove(path); };
  }
  auto bytes = qcow2::format_new_image({kDiskSize, qcow2::kDefaultClusterBits, backing, "raw"});
  REQUIRE(bytes.has_value());
  StorageSessions sessions;
  BackendOptions growable;
  growable.growable = true;
  auto file = open_backend(*parse_disk_uri(overlay_uri), growable, sessions);
  REQUIRE(file.has_value());
  auto disk = SyncDisk::open(*file);
  REQUIRE(disk.has_value());
  REQUIRE(disk->write(0, *bytes).has_value());
  REQUIRE(disk->flush().has_value());
  sessions.prepare_process_exit();
  return Clone{"uri=" + overlay_uri + ",format=qcow2", qemu_name, remove};
}

// The golden image's data shows through a fresh clone; the guest's writes (4 KiB, so every
// first write to a cluster copies the rest of it from the golden image) land in the clone
// only; the golden image is unchanged; qemu-img checks the overlay clean.
void clone_write_verify(const std::string& kind) {
  auto golden = make_disk(kind);
  run_probe("mode=write-verify offset=1048576 bytes=2097152 bs=65536 depth=4 seed=7",
            {"uri=" + golden->uri()});
  Clone clone = make_clone(kind, *golden);
  struct Cleanup {
    Clone& c;
    ~Cleanup() { c.remove(); }
  } cleanup{clone};
  auto through = record(run_probe("mode=write-verify verify-only=1 offset=1048576 bytes=2097152 seed=7",
                                  {clone.spec}), "write_verify");
  CHECK(through["mismatches"] == "0");
  auto wv = record(run_probe("mode=write-verify offset=2097152 bytes=1048576 bs=4096 depth=8 seed=9",
                             {clone.spec}), "write_verify");
  CHECK(wv["mismatches"] == "0");
  CHECK(wv["write_errors"] == "0");
  CHECK(wv["flush_status"] == "0");
  // A new VMM sees the clone's own data after the parent's.
  CHECK(record(run_probe("mode=write-verify verify-only=1 offset=1048576 bytes=1048576 seed=7",
                         {clone.spec}), "write_verify")["mismatches"] == "0");
  CHECK(record(run_probe("mode=write-verify verify-only=1 offset=2097152 bytes=1048576 seed=9",
                         {clone.spec}), "write_verify")["mismatches"] == "0");
  CHECK(pattern_mismatches(golden->read(1 << 20, 2 << 20), 1 << 20, 7) == 0);
  if (!clone.qemu_name.empty()) {
    INFO("qemu-img check -f qcow2 " << clone.qemu_name);
    CHECK(std::system(("qemu-img check -q -f qcow2 '" + clone.qemu_name + "'").c_str()) == 0);
  }
}

// --- a clone of a compressed golden image (cloud images ship as `qemu-img convert -c`) -------
// The golden disk: in [1 MiB, 3 MiB) every 64 KiB cluster holds the probe's pattern (seed 7)
// in its first half and zeroes in its second, so QEMU compresses each one (random data alone
// would be stored uncompressed); zeroes elsewhere.
constexpr uint64_t kCompressedDisk = 8ull << 20;
constexpr uint64_t kHalfFrom = 1ull << 20, kHalfTo = 3ull << 20;

std::vector<uint8_t> half_pattern_disk() {
  std::vector<uint8_t> d(kCompressedDisk, 0);
  for (uint64_t c = kHalfFrom; c < kHalfTo; c += 65536) {
    for (uint64_t o = c; o < c + 32768; o += 8) {
      const uint64_t v = mix(7 ^ o);
      std::memcpy(d.data() + o, &v, 8);
    }
  }
  return d;
}

int shell_quiet(const std::string& cmd) {
  INFO(cmd);
  const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  REQUIRE(fd.valid());
  REQUIRE(::pwrite(fd.get(), bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()));
}

std::vector<uint8_t> read_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(fd.valid());
  std::vector<uint8_t> out(static_cast<size_t>(std::filesystem::file_size(path)));
  REQUIRE(::pread(fd.get(), out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
  return out;
}

// The probe reads the compressed golden image itself (read-only), then writes through a clone
// of it (each first 4 KiB write to a cluster copies the rest from the compressed golden), and
// QEMU reads the clone back (qemu-img convert: QEMU's own reading of both images).
void compressed_golden(const std::string& ctype) {
  require_kvm();
  if (shell_quiet("qemu-img --version") != 0) missing_component("qemu-img (qemu-utils) not installed");
  const std::string dir = (std::filesystem::path("/var/tmp") / unique_name("hcnode-it-cq")).string();
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{dir};
  const std::string raw = dir + "/golden.raw", golden = dir + "/golden.qcow2";
  const std::string clone = dir + "/clone.qcow2", out = dir + "/clone.raw";
  const auto source = half_pattern_disk();
  write_file(raw, source);
  REQUIRE(shell_quiet("qemu-img convert -c -f raw -O qcow2 -o compression_type=" + ctype + " " +
                      raw + " " + golden) == 0);
  // qemu-img check's statistics: "..., N% compressed clusters" with N > 0.
  REQUIRE(shell_quiet("qemu-img check " + golden + " | grep -Eq '[1-9][0-9.]*% compressed clusters'") == 0);

  // 1. The guest reads [1 MiB, 3 MiB) of the compressed golden image: the pattern halves
  // match word for word, every zero half mismatches (32 clusters x 4096 words) and the first
  // mismatch is the first zero half. (The probe reports that as a mismatch failure.)
  {
    VmmProcess vmm(vm_args("mode=write-verify verify-only=1 offset=1048576 bytes=2097152 bs=65536 depth=4 seed=7",
                           {"uri=file:" + golden + ",format=qcow2,readonly=on"}));
    auto rc = vmm.wait(120s);
    INFO("stdout:\n" << vmm.stdout_text() << "\nstderr:\n" << vmm.stderr_text());
    REQUIRE(rc.has_value());
    auto wv = record(vmm.stdout_text(), "write_verify");
    CHECK(wv["read_errors"] == "0");
    CHECK(wv["mismatches"] == std::to_string((kHalfTo - kHalfFrom) / 65536 * 32768 / 8));
    CHECK(std::stoull(wv["first_bad"], nullptr, 16) == kHalfFrom + 32768);
  }
  // 2. A clone (an overlay with the backing file named relative, as hcnode makes them); the
  // guest writes 4 KiB blocks over the pattern-and-zero clusters and reads them back.
  auto overlay = qcow2::format_new_image({kCompressedDisk, qcow2::kDefaultClusterBits, "golden.qcow2", "qcow2"});
  REQUIRE(overlay.has_value());
  write_file(clone, *overlay);
  auto wv = record(run_probe("mode=write-verify offset=1572864 bytes=524288 bs=4096 depth=8 seed=9",
                             {"uri=file:" + clone + ",format=qcow2"}), "write_verify");
  CHECK(wv["mismatches"] == "0");
  CHECK(wv["write_errors"] == "0");
  CHECK(wv["read_errors"] == "0");
  // 3. QEMU reads the clone: the golden bytes with the guest's pattern over what it wrote.
  auto want = source;
  for (uint64_t o = 1572864; o < 1572864 + 524288; o += 8) {
    const uint64_t v = mix(9 ^ o);
    std::memcpy(want.data() + o, &v, 8);
  }
  REQUIRE(shell_quiet("qemu-img convert -f qcow2 -O raw " + clone + " " + out) == 0);
  const auto got = read_file(out);
  REQUIRE(got.size() == want.size());
  const auto diff = std::mismatch(got.begin(), got.end(), want.begin());
  CHECK(diff.first == got.end());
  CHECK(shell_quiet("qemu-img check -q -f qcow2 " + clone) == 0);
  // The golden image was opened read-only: untouched.
  CHECK(shell_quiet("qemu-img compare -q -f qcow2 -F raw " + golden + " " + raw) == 0);
}

}  // namespace

TEST_CASE("virtio-blk on a local file: probe write-verify, host reads the same bytes", "[kvm][blk][file]") {
  write_verify("file");
}
TEST_CASE("virtio-blk on RBD: probe write-verify, host reads the same bytes through librbd",
          "[kvm][blk][rbd]") {
  write_verify("rbd");
}
TEST_CASE("virtio-blk on Gluster: probe write-verify, host reads the same bytes through gfapi",
          "[kvm][blk][gluster]") {
  write_verify("gluster");
}

TEST_CASE("virtio-blk on a local file: acknowledged records survive kill -9 of the VMM", "[kvm][blk][file]") {
  records_survive_kill("file");
}
TEST_CASE("virtio-blk on RBD: acknowledged records survive kill -9 of the VMM", "[kvm][blk][rbd]") {
  records_survive_kill("rbd");
}
TEST_CASE("virtio-blk on Gluster: acknowledged records survive kill -9 of the VMM", "[kvm][blk][gluster]") {
  records_survive_kill("gluster");
}

TEST_CASE("virtio-blk on a local file: discard and write-zeroes read back as zeroes, read-only refuses writes",
          "[kvm][blk][file]") {
  zeroes_and_read_only("file");
}
TEST_CASE("virtio-blk on RBD: discard and write-zeroes read back as zeroes, read-only refuses writes",
          "[kvm][blk][rbd]") {
  zeroes_and_read_only("rbd");
}
TEST_CASE("virtio-blk on Gluster: discard and write-zeroes read back as zeroes, read-only refuses writes",
          "[kvm][blk][gluster]") {
  zeroes_and_read_only("gluster");
}

TEST_CASE("virtio-blk: a hostile guest gets the right statuses and the VMM keeps serving",
          "[kvm][blk][hostile]") {
  auto disk = make_disk("file");
  const std::string sock = (std::filesystem::temp_directory_path() / (unique_name("hcnode-vmm") + ".sock")).string();
  auto args = vm_args("mode=hostile offset=1048576", {"uri=" + disk->uri() + ",queues=2"});
  args.push_back("--control-socket");
  args.push_back(sock);
  VmmProcess vmm(args);
  auto rc = vmm.wait(120s);
  const std::string out = vmm.stdout_text();
  INFO("stdout:\n" << out << "\nstderr:\n" << vmm.stderr_text());
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  CHECK(record(out, "hostile_done")["alive"] == "1");
  // Request-level errors get their status byte (virtio 1.2 5.2.6.2).
  CHECK(record(out, "hostile", "case=unknown-type")["status"] == "2");
  CHECK(record(out, "hostile", "case=past-end")["status"] == "1");
  CHECK(record(out, "hostile", "case=sector-overflow")["status"] == "1");
  CHECK(record(out, "hostile", "case=misaligned-length")["status"] == "1");
  CHECK(record(out, "hostile", "case=discard-bad-flags")["status"] == "2");
  CHECK(record(out, "hostile", "case=short-header")["status"] == "1");
  // Malformed chains come back unprocessed (used length 0); none of them wedges the queue.
  for (const char* c : {"loop", "next-out-of-range", "buffer-outside-ram", "readable-after-writable", "no-status"}) {
    auto fields = record(out, "hostile", std::string("case=") + c);
    CHECK(fields["completed"] == "1");
    CHECK(fields["used_len"] == "0");
    CHECK(fields["timeout_reset"] == "0");
  }
  // A corrupt ring: NEEDS_RESET, then the driver resets and the device works again.
  CHECK(record(out, "hostile", "case=avail-jump")["needs_reset"] == "1");
  CHECK(record(out, "hostile_check", "case=avail-jump")["ok"] == "1");
}

TEST_CASE("virtio-blk: two disks on two backends in one VM, described and counted on the control socket",
          "[kvm][blk][rbd]") {
  auto file = make_disk("file");
  auto rbd = make_disk("rbd");
  const std::string sock = (std::filesystem::temp_directory_path() / (unique_name("hcnode-vmm") + ".sock")).string();
  // mode=io on the second disk runs long enough to look at it from outside.
  auto args = vm_args("mode=io disk=1 rw=randrw bs=4096 depth=8 queues=2 seconds=4",
                      {"uri=" + file->uri() + ",serial=first", "uri=" + rbd->uri() + ",serial=second,queues=2"});
  args.push_back("--control-socket");
  args.push_back(sock);
  VmmProcess vmm(args);
  REQUIRE(wait_for_socket(sock, 20s));
  auto describe = control_request(sock, R"({"cmd":"describe"})");
  REQUIRE(describe["ok"] == true);
  const auto& disks = describe["result"]["disks"];
  REQUIRE(disks.size() == 2);
  CHECK(disks[0]["backend"] == "file");
  CHECK(disks[0]["serial"] == "first");
  CHECK(disks[1]["backend"] == "rbd");
  CHECK(disks[1]["serial"] == "second");
  CHECK(disks[1]["queues"] == 2);
  CHECK(disks[1]["size"] == kDiskSize);
  // The rados client this VMM uses: what fencing will blocklist.
  CHECK(describe["result"]["storage"]["rados_client_address"].get<std::string>().find(":0/") != std::string::npos);
  // Counters move while the guest runs: reads and writes counted, no count asked of a time
  // span (how many I/Os fit in the guest's 4 s is speed, not correctness; 60 s is only the hang
  // guard of the polling).
  nlohmann::json disk_stats;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto stats = control_request(sock, R"({"cmd":"stats"})");
    if (!stats.is_object() || stats["ok"] != true) break;
    disk_stats = stats["result"]["disks"];
    // Requests are counted when the device takes them and timed when they complete: wait
    // for both, each of which only grows.
    if (disk_stats[1]["ops"]["write"].get<uint64_t>() > 0 && disk_stats[1]["ops"]["read"].get<uint64_t>() > 0 &&
        disk_stats[1]["latency_us"]["p50"].get<double>() > 0) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(disk_stats.is_array());
  const uint64_t seen_writes = disk_stats[1]["ops"]["write"].get<uint64_t>();
  const uint64_t seen_reads = disk_stats[1]["ops"]["read"].get<uint64_t>();
  CHECK(seen_writes > 0);
  CHECK(seen_reads > 0);
  CHECK(disk_stats[1]["errors"] == 0);
  CHECK(disk_stats[1]["latency_us"]["p50"].get<double>() > 0);
  CHECK(disk_stats[0]["ops"]["write"] == 0);  // the other disk: untouched
  auto rc = vmm.wait(120s);
  INFO("stdout:\n" << vmm.stdout_text() << "\nstderr:\n" << vmm.stderr_text());
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  auto io = record(vmm.stdout_text(), "io");
  CHECK(io["errors"] == "0");
  // The guest counts every request it saw completed, and drains them all before it reports:
  // what the VMM had counted mid-run is part of that.
  CHECK(std::stoull(io["ops"]) >= seen_reads + seen_writes);
}

TEST_CASE("hcnode-vmm refuses a disk it cannot open with exit status 8 and names it", "[kvm][blk]") {
  require_kvm();
  VmmProcess vmm(vm_args("mode=print", {"uri=file:/nonexistent/hcnode-disk.img"}));
  auto rc = vmm.wait(30s);
  REQUIRE(rc.has_value());
  CHECK(*rc == compute::kExitDiskUnavailable);
  CHECK(vmm.stderr_text().find("/nonexistent/hcnode-disk.img") != std::string::npos);
  VmmProcess bad(vm_args("mode=print", {"uri=file:/tmp/x.img,queues=100"}));
  REQUIRE(bad.wait(30s) == compute::kExitBadConfig);
  CHECK(bad.stderr_text().find("queues") != std::string::npos);
}

TEST_CASE("virtio-blk on a qcow2 clone of a local file: parent data shows through and writes diverge",
          "[kvm][blk][file][qcow2]") {
  clone_write_verify("file");
}
TEST_CASE("virtio-blk on an RBD clone v2: parent data shows through and writes diverge",
          "[kvm][blk][rbd][clone]") {
  clone_write_verify("rbd");
}
TEST_CASE("virtio-blk on a qcow2 clone on Gluster: parent data shows through and writes diverge",
          "[kvm][blk][gluster][qcow2]") {
  clone_write_verify("gluster");
}

TEST_CASE("virtio-blk on a compressed qcow2 golden image (deflate) and a clone of it",
          "[kvm][blk][file][qcow2][compressed]") {
  compressed_golden("zlib");
}
TEST_CASE("virtio-blk on a compressed qcow2 golden image (zstd) and a clone of it",
          "[kvm][blk][file][qcow2][compressed]") {
  compressed_golden("zstd");
}
