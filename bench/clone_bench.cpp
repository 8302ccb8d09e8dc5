// hcnode-clone-bench: times ImageService::clone N times in ONE process (the agent's case: the
// cluster connection is already up), then removes the clones (timed too). bench/clone drives it.
//
//   hcnode-clone-bench --source POOL/GOLDEN[@SNAP] --prefix NAME --count N [--keep]
//   hcnode-clone-bench --remove POOL/PREFIX --count N      removes PREFIX-0 .. PREFIX-(N-1)
//                                                           (missing ones are fine)
// Clones are POOL/NAME-0 .. POOL/NAME-(N-1) in the source's pool. Pools come from the storage
// config (HCNODE_STORAGE_CONFIG, else the dev cluster's environment).
// Prints one JSON line on stdout:
//   {"connect_ms": …, "clone_ms": [...], "total_ms": …, "info_ms": [...], "remove_ms": [...],
//    "errors": […]}
// info_ms: ImageService::info on each fresh clone (after all clones; not in total_ms).
// Exit 0 if every clone (and removal) succeeded, 1 otherwise, 2 on bad arguments.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "storage/image_service.hpp"

using namespace hcnode;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

int usage(const char* why) {
  std::fprintf(stderr,
               "hcnode-clone-bench: %s\nusage: hcnode-clone-bench --source POOL/GOLDEN[@SNAP] "
               "--prefix NAME --count N [--keep]\n       hcnode-clone-bench --remove POOL/PREFIX "
               "--count N\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::err);
  std::string source_text, prefix, remove_text;
  long count = 0;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--source") {
      source_text = next();
    } else if (a == "--prefix") {
      prefix = next();
    } else if (a == "--remove") {
      remove_text = next();
    } else if (a == "--count") {
      count = std::strtol(next().c_str(), nullptr, 10);
    } else if (a == "--keep") {
      keep = true;
    } else {
      return usage(("unknown argument " + a).c_str());
    }
  }
  if (count <= 0) {
    return usage("--count must be positive");
  }
  auto config = storage::load_storage_config();
  if (!config) {
    std::fprintf(stderr, "hcnode-clone-bench: %s\n", config.error().message().c_str());
    return 1;
  }
  auto service = storage::ImageService::create(std::move(*config));
  if (!service) {
    std::fprintf(stderr, "hcnode-clone-bench: %s\n", service.error().message().c_str());
    return 1;
  }
  storage::ImageService& svc = **service;
  nlohmann::json out;
  nlohmann::json errors = nlohmann::json::array();
  std::vector<double> remove_ms;
  auto remove_all = [&](const std::string& pool, const std::string& name_prefix, bool quiet_enoent) {
    for (long i = 0; i < count; ++i) {
      storage::ImageRef ref{pool, name_prefix + "-" + std::to_string(i), std::nullopt};
      const auto t0 = Clock::now();
      auto r = svc.remove(ref);
      if (r) {
        remove_ms.push_back(ms_since(t0));
      } else if (!(quiet_enoent && r.error().code() == ENOENT)) {
        errors.push_back(r.error().message());
      }
    }
  };

  if (!remove_text.empty()) {
    auto ref = storage::parse_image_ref(remove_text);
    if (!ref) {
      return usage(ref.error().context().c_str());
    }
    remove_all(ref->pool, ref->name, true);
    out["remove_ms"] = remove_ms;
    out["errors"] = errors;
    std::printf("%s\n", out.dump().c_str());
    std::fflush(stdout);
    svc.sessions().prepare_process_exit();
    return errors.empty() ? 0 : 1;
  }

  auto source = storage::parse_image_ref(source_text, true);
  if (!source) {
    return usage(source.error().context().c_str());
  }
  if (prefix.empty()) {
    return usage("--prefix is required");
  }
  // Connect (rados client / glfs_init) and check the source before timing clones.
  auto t_connect = Clock::now();
  storage::ImageRef golden = *source;
  golden.snapshot.reset();
  if (auto info = svc.info(golden); !info) {
    std::fprintf(stderr, "hcnode-clone-bench: %s\n", info.error().message().c_str());
    return 1;
  }
  out["connect_ms"] = ms_since(t_connect);

  std::vector<double> clone_ms;
  const auto t_all = Clock::now();
  for (long i = 0; i < count; ++i) {
    storage::ImageRef target{source->pool, prefix + "-" + std::to_string(i), std::nullopt};
    const auto t0 = Clock::now();
    auto r = svc.clone(*source, target);
    const double ms = ms_since(t0);
    if (r) {
      clone_ms.push_back(ms);
    } else {
      errors.push_back(r.error().message());
    }
  }
  out["total_ms"] = ms_since(t_all);
  out["clone_ms"] = clone_ms;
  // Diagnosis, not part of the total: what ImageService::info costs on a fresh clone (clone()
  // returns one, so it is part of every clone's time).
  std::vector<double> info_ms;
  for (long i = 0; i < count; ++i) {
    storage::ImageRef target{source->pool, prefix + "-" + std::to_string(i), std::nullopt};
    const auto t0 = Clock::now();
    if (svc.info(target)) {
      info_ms.push_back(ms_since(t0));
    }
  }
  out["info_ms"] = info_ms;
  if (!keep) {
    remove_all(source->pool, prefix, false);
  }
  out["remove_ms"] = remove_ms;
  out["errors"] = errors;
  std::printf("%s\n", out.dump().c_str());
  std::fflush(stdout);
  svc.sessions().prepare_process_exit();
  return errors.empty() ? 0 : 1;
}
