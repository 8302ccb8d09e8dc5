#include "storage/rbd/clone_intents.hpp"

#include <unistd.h>

#include <ctime>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>

#include "storage/pool_driver.hpp"  // random_suffix

namespace hcnode::storage {

namespace {

// Owner of one librados operation object (created at construction, released exactly once).
template <typename Op, Op (*Create)(), void (*Release)(Op)>
class RadosOp {
 public:
  RadosOp() : op_(Create()) {}
  ~RadosOp() { Release(op_); }
  RadosOp(const RadosOp&) = delete;
  RadosOp& operator=(const RadosOp&) = delete;
  Op get() const { return op_; }

 private:
  Op op_;
};
using WriteOp = RadosOp<rados_write_op_t, rados_create_write_op, rados_release_write_op>;
using ReadOp = RadosOp<rados_read_op_t, rados_create_read_op, rados_release_read_op>;

class OmapIter {
 public:
  OmapIter() = default;
  ~OmapIter() {
    if (it_ != nullptr) rados_omap_get_end(it_);
  }
  OmapIter(const OmapIter&) = delete;
  OmapIter& operator=(const OmapIter&) = delete;
  rados_omap_iter_t* out() { return &it_; }
  rados_omap_iter_t get() const { return it_; }

 private:
  rados_omap_iter_t it_ = nullptr;
};

// Keys are "NAME/TOKEN"; image names never contain '/', and '0' follows '/' in ASCII, so the
// keys of NAME are exactly the range ["NAME/", "NAME0").
std::string key_prefix(const std::string& name) { return name + "/"; }
std::string key_range_end(const std::string& name) { return name + "0"; }

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

}  // namespace

std::string CloneIntent::describe() const {
  char when[32] = "?";
  const std::time_t t = static_cast<std::time_t>(started);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) != nullptr) std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
  return fmt::format("clone of {} started {} by pid {} on {} did not finish", parent, when, pid,
                     host);
}

Result<std::string> CloneIntents::begin(const std::string& name, const std::string& parent) {
  const std::string key = key_prefix(name) + random_suffix();
  const std::string value = nlohmann::json{{"parent", parent},
                                           {"host", host_name()},
                                           {"pid", static_cast<int64_t>(::getpid())},
                                           {"started", static_cast<int64_t>(std::time(nullptr))}}
                                .dump();
  const char* keys[] = {key.c_str()};
  const char* vals[] = {value.c_str()};
  const size_t key_lens[] = {key.size()};
  const size_t val_lens[] = {value.size()};
  WriteOp op;
  rados_write_op_omap_set2(op.get(), keys, vals, key_lens, val_lens, 1);
  if (int r = rados_write_op_operate(op.get(), io_, kCloneIntentsObject, nullptr, 0); r < 0) {
    return fail(from_negative_errno(r, fmt::format("recording the clone of {} in {}", name,
                                                   kCloneIntentsObject)));
  }
  return key;
}

Status CloneIntents::forget(const std::string& name) {
  const std::string from = key_prefix(name);
  const std::string to = key_range_end(name);
  WriteOp op;
  rados_write_op_omap_rm_range2(op.get(), from.c_str(), from.size(), to.c_str(), to.size());
  int r = rados_write_op_operate(op.get(), io_, kCloneIntentsObject, nullptr, 0);
  if (r == -ENOENT) r = 0;  // no record was ever written in this pool
  if (r < 0) {
    return fail(from_negative_errno(r, fmt::format("clearing the clone records of {} in {}", name,
                                                   kCloneIntentsObject)));
  }
  return {};
}

Status CloneIntents::abort(const std::string& key) {
  const char* keys[] = {key.c_str()};
  const size_t key_lens[] = {key.size()};
  WriteOp op;
  rados_write_op_omap_rm_keys2(op.get(), keys, key_lens, 1);
  int r = rados_write_op_operate(op.get(), io_, kCloneIntentsObject, nullptr, 0);
  if (r == -ENOENT) r = 0;
  if (r < 0) {
    return fail(from_negative_errno(r, fmt::format("clearing clone record {} in {}", key,
                                                   kCloneIntentsObject)));
  }
  return {};
}

Result<std::vector<CloneIntent>> CloneIntents::list(const std::string* name) {
  std::vector<CloneIntent> out;
  const std::string prefix = name != nullptr ? key_prefix(*name) : "";
  std::string after;
  for (;;) {
    ReadOp op;
    OmapIter it;
    unsigned char more = 0;
    int prval = 0;
    rados_read_op_omap_get_vals2(op.get(), after.c_str(), prefix.c_str(), 512, it.out(), &more,
                                 &prval);
    int r = rados_read_op_operate(op.get(), io_, kCloneIntentsObject, 0);
    if (r == -ENOENT) return out;  // no clone was ever recorded in this pool
    if (r == 0) r = prval;
    if (r < 0) {
      return fail(from_negative_errno(r, fmt::format("reading {}", kCloneIntentsObject)));
    }
    for (;;) {
      char* key = nullptr;
      char* val = nullptr;
      size_t key_len = 0;
      size_t val_len = 0;
      if (rados_omap_get_next2(it.get(), &key, &val, &key_len, &val_len) < 0 || key == nullptr) {
        break;
      }
      CloneIntent e;
      e.key.assign(key, key_len);
      after = e.key;
      const size_t slash = e.key.find('/');
      if (slash == std::string::npos) continue;  // not ours
      e.name = e.key.substr(0, slash);
      // A record whose value is unreadable still marks its image incomplete.
      auto doc = nlohmann::json::parse(std::string_view(val, val_len), nullptr, false);
      if (doc.is_object()) {
        e.parent = doc.value("parent", "");
        e.host = doc.value("host", "");
        e.pid = doc.value("pid", int64_t{0});
        e.started = doc.value("started", int64_t{0});
      }
      out.push_back(std::move(e));
    }
    if (!more) return out;
  }
}

}  // namespace hcnode::storage
