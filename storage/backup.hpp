// Node backups: the manifest that describes one, and bringing a node's
// database back from one.
//
// A backup is a directory: BACKUP (the manifest, text, one fact per line)
// and rocksdb/ (the files of a RocksDB checkpoint, storage::db::checkpoint).
// The node makes the checkpoint while it serves; `crmsyncctl backup DIR`
// copies it over HTTP and writes the manifest with every file's size and
// SHA-256; `crmsyncd --restore-from DIR` checks them all before it puts a
// single file in place. A library of its own (crmsync_backup: no RocksDB),
// so that crmsyncctl links it too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace crmsync::storage {

struct backup_file {
  std::string name;
  uint64_t bytes = 0;
  std::string sha256; ///< lower-case hex
};

struct backup_manifest {
  std::string id;
  std::string node;
  uint64_t sequence = 0;  ///< the last write in the copy
  std::string created_at; ///< RFC 3339, UTC
  std::vector<backup_file> files;
};

/// The manifest's name inside a backup directory, and the data's.
inline constexpr const char* manifest_name = "BACKUP";
inline constexpr const char* backup_data_dir = "rocksdb";

/// A file name a backup may hold: letters, digits, '.', '_' and '-', not
/// starting with '.', at most 255 bytes (no path can be smuggled in).
bool valid_backup_file_name(std::string_view name);

/// Lower-case hex SHA-256 of a file's contents, read in pieces (files of
/// any size). False with `err` when the file cannot be read.
bool sha256_file_hex(const std::string& path, std::string& hex,
                     std::string& err);

std::string render_manifest(const backup_manifest& m);

/// False with `err` naming the line at fault.
bool parse_manifest(std::string_view text, backup_manifest& out,
                    std::string& err);

/// The regular files of `dir` (not recursive) with their sizes; sha256 is
/// left empty. False with `err` when the directory cannot be read or holds
/// a name valid_backup_file_name refuses.
bool list_backup_files(const std::string& dir, std::vector<backup_file>& out,
                       std::string& err);

/// Puts the database of the backup at `backup_dir` at `db_path`.
/// - Refuses (false, `err`) when `db_path` already holds a database, unless
///   it was restored from this very backup (then `note` says so and nothing
///   is done: a restart with the same flag starts on the restored data).
/// - Checks every file's size and SHA-256 against the manifest first; one
///   mismatch refuses the whole backup and writes nothing.
/// - Copies into `db_path`.restoring, syncs, then renames, so an interrupted
///   restore leaves no half database at `db_path`.
bool restore_backup(const std::string& backup_dir, const std::string& db_path,
                    std::string& note, std::string& err);

} // namespace crmsync::storage
