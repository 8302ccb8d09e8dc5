// How a process reaches Ceph: which ceph.conf, which cephx user, which keyring.
#pragma once

#include <string>

#include "base/result.hpp"

namespace hcnode::blockdev {

struct CephClientConfig {
  std::string conf_path;  // ceph.conf (mon_host etc.)
  std::string id = "hcnode";  // cephx user without the "client." prefix
  std::string keyring;    // keyring path; empty = whatever ceph.conf says

  // Reads HCNODE_CEPH_CONF (required), HCNODE_CEPH_ID (default hcnode) and HCNODE_CEPH_KEYRING,
  // as `deploy/devcluster.sh env` prints them.
  static Result<CephClientConfig> from_env();
};

}  // namespace hcnode::blockdev
