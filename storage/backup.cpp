#include "storage/backup.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sodium.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace crmsync::storage {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view magic = "crmsync-backup 1";

bool is_hex64(std::string_view s) {
  if (s.size() != 64)
    return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 20)
    return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return false;
    auto next = v * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != v)
      return false;
    v = next;
  }
  out = v;
  return true;
}

/// A line's words, split at single spaces.
std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  while (!line.empty()) {
    auto sp = line.find(' ');
    out.push_back(line.substr(0, sp));
    if (sp == std::string_view::npos)
      break;
    line.remove_prefix(sp + 1);
  }
  return out;
}

std::string sys_error(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

/// fsync of a file or directory by path.
bool sync_path(const std::string& path, int flags, std::string& err) {
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) {
    err = sys_error("cannot open " + path);
    return false;
  }
  bool ok = ::fsync(fd) == 0;
  if (!ok)
    err = sys_error("cannot sync " + path);
  ::close(fd);
  return ok;
}

bool copy_synced(const std::string& from, const std::string& to,
                 std::string& err) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    err = "cannot copy " + from + " to " + to + ": " + ec.message();
    return false;
  }
  return sync_path(to, O_RDONLY, err);
}

bool read_text(const std::string& path, std::string& out, std::string& err) {
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    err = sys_error("cannot read " + path);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

} // namespace

bool sha256_file_hex(const std::string& path, std::string& hex,
                     std::string& err) {
  if (sodium_init() < 0) {
    err = "libsodium failed to initialise";
    return false;
  }
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    err = sys_error("cannot open " + path);
    return false;
  }
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  std::vector<char> buf(1u << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    auto n = in.gcount();
    if (n > 0)
      crypto_hash_sha256_update(
          &st, reinterpret_cast<const unsigned char*>(buf.data()),
          static_cast<unsigned long long>(n));
  }
  if (in.bad()) {
    err = "cannot read " + path;
    return false;
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&st, digest);
  char out[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(out, sizeof(out), digest, sizeof(digest));
  hex.assign(out, crypto_hash_sha256_BYTES * 2);
  return true;
}

bool valid_backup_file_name(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '.')
    return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

std::string render_manifest(const backup_manifest& m) {
  std::string out{magic};
  out += "\nid " + m.id + "\nnode " + m.node + "\nsequence "
         + std::to_string(m.sequence) + "\ncreated " + m.created_at + "\n";
  for (auto& f : m.files)
    out += "file " + f.name + " " + std::to_string(f.bytes) + " " + f.sha256
           + "\n";
  return out;
}

bool parse_manifest(std::string_view text, backup_manifest& out,
                    std::string& err) {
  backup_manifest m;
  size_t line_no = 0;
  bool seen_magic = false;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (line.empty())
      continue;
    auto at = [&](std::string why) {
      err = "manifest line " + std::to_string(line_no) + ": " + why;
      return false;
    };
    if (!seen_magic) {
      if (line != magic)
        return at("not a crmsync backup (expected \"" + std::string{magic}
                  + "\")");
      seen_magic = true;
      continue;
    }
    auto w = words(line);
    if (w[0] == "file") {
      backup_file f;
      if (w.size() != 4 || !valid_backup_file_name(w[1])
          || !parse_u64(w[2], f.bytes) || !is_hex64(w[3]))
        return at("expected 'file NAME BYTES SHA256'");
      f.name = std::string{w[1]};
      f.sha256 = std::string{w[3]};
      m.files.push_back(std::move(f));
    } else if (w.size() != 2) {
      return at("expected 'KEY VALUE'");
    } else if (w[0] == "id") {
      m.id = std::string{w[1]};
    } else if (w[0] == "node") {
      m.node = std::string{w[1]};
    } else if (w[0] == "created") {
      m.created_at = std::string{w[1]};
    } else if (w[0] == "sequence") {
      if (!parse_u64(w[1], m.sequence))
        return at("the sequence is not a number");
    } else {
      return at("unknown key '" + std::string{w[0]} + "'");
    }
  }
  if (!seen_magic) {
    err = "the manifest is empty";
    return false;
  }
  if (m.id.empty() || m.files.empty()) {
    err = "the manifest names no id or no files";
    return false;
  }
  out = std::move(m);
  return true;
}

bool list_backup_files(const std::string& dir, std::vector<backup_file>& out,
                       std::string& err) {
  std::error_code ec;
  fs::directory_iterator it{dir, ec};
  if (ec) {
    err = "cannot read " + dir + ": " + ec.message();
    return false;
  }
  std::vector<backup_file> files;
  for (const auto& entry : it) {
    if (!entry.is_regular_file(ec))
      continue;
    auto name = entry.path().filename().string();
    if (!valid_backup_file_name(name)) {
      err = "unexpected file name in " + dir + ": " + name;
      return false;
    }
    auto size = entry.file_size(ec);
    if (ec) {
      err = "cannot read the size of " + name + ": " + ec.message();
      return false;
    }
    files.push_back(backup_file{std::move(name), size, {}});
  }
  out = std::move(files);
  return true;
}

bool restore_backup(const std::string& backup_dir, const std::string& db_path,
                    std::string& note, std::string& err) {
  std::string text;
  backup_manifest m;
  if (!read_text(backup_dir + "/" + manifest_name, text, err))
    return false;
  if (!parse_manifest(text, m, err)) {
    err = backup_dir + "/" + manifest_name + ": " + err;
    return false;
  }
  const std::string marker = db_path + ".restored";
  std::error_code ec;
  if (fs::exists(db_path, ec)) {
    std::string restored_id;
    std::string ignored;
    if (read_text(marker, restored_id, ignored) && restored_id == m.id + "\n") {
      note = "the database at " + db_path + " was restored from backup " + m.id
             + " before; starting on it";
      return true;
    }
    err = db_path
          + " already holds a database; --restore-from refuses to "
            "replace it (move it away first, or drop the flag)";
    return false;
  }
  // Every file checked before any is put in place.
  const std::string data = backup_dir + "/" + backup_data_dir;
  for (auto& f : m.files) {
    auto path = data + "/" + f.name;
    auto size = fs::file_size(path, ec);
    if (ec) {
      err = "backup file " + path + " is missing: " + ec.message();
      return false;
    }
    if (size != f.bytes) {
      err = "backup file " + path + " has " + std::to_string(size)
            + " bytes; the manifest says " + std::to_string(f.bytes);
      return false;
    }
    std::string hex;
    if (!sha256_file_hex(path, hex, err))
      return false;
    if (hex != f.sha256) {
      err = "backup file " + path
            + " does not match its SHA-256 in the manifest (damaged)";
      return false;
    }
  }
  const std::string staging = db_path + ".restoring";
  fs::remove_all(staging, ec); // what an interrupted restore left
  if (!fs::create_directories(staging, ec) || ec) {
    err = "cannot create " + staging + ": " + ec.message();
    return false;
  }
  for (auto& f : m.files)
    if (!copy_synced(data + "/" + f.name, staging + "/" + f.name, err))
      return false;
  if (!sync_path(staging, O_RDONLY | O_DIRECTORY, err))
    return false;
  {
    std::ofstream out{marker, std::ios::binary | std::ios::trunc};
    out << m.id << "\n";
    if (!out.flush()) {
      err = sys_error("cannot write " + marker);
      return false;
    }
  }
  if (!sync_path(marker, O_RDONLY, err))
    return false;
  fs::rename(staging, db_path, ec);
  if (ec) {
    err = "cannot move " + staging + " to " + db_path + ": " + ec.message();
    return false;
  }
  auto parent = fs::path{db_path}.parent_path().string();
  if (!sync_path(parent.empty() ? "." : parent, O_RDONLY | O_DIRECTORY, err))
    return false;
  note = "restored backup " + m.id + " (node " + m.node + ", sequence "
         + std::to_string(m.sequence) + ", " + std::to_string(m.files.size())
         + " files) into " + db_path;
  return true;
}

} // namespace crmsync::storage
