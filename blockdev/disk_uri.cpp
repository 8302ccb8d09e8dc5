#include "blockdev/disk_uri.hpp"

#include <charconv>

namespace hcnode::blockdev {
namespace {

constexpr size_t kMaxNameLength = 96;
constexpr size_t kMaxPathLength = 4096;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

std::unexpected<Error> bad(std::string_view text, const std::string& why) {
  return fail(EINVAL, "invalid disk URI '" + std::string(text) + "': " + why);
}

// A path inside a volume or on the host: absolute, no empty, "." or ".." components, no NUL.
bool is_clean_absolute_path(std::string_view path) {
  if (path.empty() || path.front() != '/' || path.size() > kMaxPathLength) {
    return false;
  }
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return false;
    }
    if (part.find('\0') != std::string_view::npos) {
      return false;
    }
    start = end + 1;
  }
  return true;
}

Result<DiskUri> parse_rbd(std::string_view text, std::string_view rest) {
  RbdLocation loc;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    std::string_view snap = rest.substr(at + 1);
    if (!is_valid_rbd_name(snap)) {
      return bad(text, "snapshot name must be 1..96 characters of [A-Za-z0-9._-]");
    }
    loc.snapshot = std::string(snap);
    rest = rest.substr(0, at);
  }
  size_t first = rest.find('/');
  if (first == std::string_view::npos) {
    return bad(text, "expected rbd:POOL/IMAGE[@SNAP]");
  }
  loc.pool = std::string(rest.substr(0, first));
  std::string_view tail = rest.substr(first + 1);
  if (size_t second = tail.find('/'); second != std::string_view::npos) {
    loc.ns = std::string(tail.substr(0, second));
    tail = tail.substr(second + 1);
    if (!is_valid_rbd_name(loc.ns)) {
      return bad(text, "namespace must be 1..96 characters of [A-Za-z0-9._-]");
    }
  }
  loc.image = std::string(tail);
  if (!is_valid_rbd_name(loc.pool)) {
    return bad(text, "pool name must be 1..96 characters of [A-Za-z0-9._-]");
  }
  if (!is_valid_rbd_name(loc.image)) {
    return bad(text, "image name must be 1..96 characters of [A-Za-z0-9._-]");
  }
  return DiskUri{loc};
}

Result<DiskUri> parse_gluster(std::string_view text, std::string_view rest) {
  GlusterLocation loc;
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return bad(text, "expected gluster://HOST[:PORT]/VOLUME/PATH");
  }
  std::string_view hostport = rest.substr(0, slash);
  std::string_view after = rest.substr(slash + 1);
  if (size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    std::string_view port = hostport.substr(colon + 1);
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535) {
      return bad(text, "port must be a number in 1..65535");
    }
    loc.port = static_cast<uint16_t>(value);
    hostport = hostport.substr(0, colon);
  }
  if (hostport.empty() || hostport.size() > 253) {
    return bad(text, "missing host");
  }
  for (char c : hostport) {
    if (!is_name_char(c)) {
      return bad(text, "host may contain only [A-Za-z0-9._-]");
    }
  }
  loc.host = std::string(hostport);
  size_t vol_end = after.find('/');
  if (vol_end == std::string_view::npos) {
    return bad(text, "expected a path inside the volume");
  }
  loc.volume = std::string(after.substr(0, vol_end));
  if (!is_valid_rbd_name(loc.volume)) {
    return bad(text, "volume name must be 1..96 characters of [A-Za-z0-9._-]");
  }
  loc.path = std::string(after.substr(vol_end));
  if (!is_clean_absolute_path(loc.path)) {
    return bad(text, "path must be non-empty without empty, '.' or '..' components");
  }
  return DiskUri{loc};
}

}  // namespace

bool is_valid_rbd_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || name.front() == '.') {
    return false;
  }
  for (char c : name) {
    if (!is_name_char(c)) {
      return false;
    }
  }
  return true;
}

Result<DiskUri> parse_disk_uri(std::string_view text) {
  if (text.starts_with("rbd:")) {
    return parse_rbd(text, text.substr(4));
  }
  if (text.starts_with("gluster://")) {
    return parse_gluster(text, text.substr(10));
  }
  if (text.starts_with("file:")) {
    std::string_view path = text.substr(5);
    if (!is_clean_absolute_path(path)) {
      return bad(text, "expected file:/ABSOLUTE/PATH without empty, '.' or '..' components");
    }
    return DiskUri{FileLocation{std::string(path)}};
  }
  return bad(text, "unknown scheme (expected rbd:, gluster:// or file:)");
}

std::string DiskUri::to_string() const {
  struct Visitor {
    std::string operator()(const RbdLocation& l) const {
      std::string s = "rbd:" + l.pool + "/";
      if (!l.ns.empty()) {
        s += l.ns + "/";
      }
      s += l.image;
      if (l.snapshot) {
        s += "@" + *l.snapshot;
      }
      return s;
    }
    std::string operator()(const GlusterLocation& l) const {
      std::string s = "gluster://" + l.host;
      if (l.port != 24007) {
        s += ":" + std::to_string(l.port);
      }
      return s + "/" + l.volume + l.path;
    }
    std::string operator()(const FileLocation& l) const { return "file:" + l.path; }
  };
  return std::visit(Visitor{}, location);
}

}  // namespace hcnode::blockdev
