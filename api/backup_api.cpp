// Online backups of the node's database (service admin only).
//
//   POST   /admin/v1/backups                      make one (a RocksDB
//   checkpoint) GET    /admin/v1/backups                      the open ones GET
//   /admin/v1/backups/{id}/files/{name}    a piece of one of its files DELETE
//   /admin/v1/backups/{id}                 let it go
//
// A backup is a checkpoint under DATA_DIR/backups/{id}: its tables are hard
// links, so making one costs little space while the database moves on; it
// is made on a thread of its own (the flush waits for the disk) while the
// node serves. `crmsyncctl backup DIR` copies it piece by piece (at most
// max_piece bytes an answer, so neither side holds a large file in memory)
// and deletes it. One is made at a time, at most max_open are kept, and one
// left behind (a copy that died) goes after open_for; a restart clears
// them all (nobody can be copying across it).
#include "api/api_impl.hpp"

#include <filesystem>
#include <fstream>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "storage/backup.hpp"

namespace crmsync::http {

namespace {

namespace fs = std::filesystem;

constexpr uint64_t max_piece = 8u << 20;
constexpr size_t max_open = 2;
constexpr auto open_for = std::chrono::hours(1);

/// "" when the node has no data directory (an API made by a test).
std::string backups_root(const node_info& info) {
  return info.data_dir.empty() ? std::string{} : info.data_dir + "/backups";
}

/// The open backups' directory names, removing those past open_for.
std::vector<std::string> sweep(const std::string& root) {
  std::vector<std::string> open;
  std::error_code ec;
  fs::directory_iterator it{root, ec};
  if (ec)
    return open;
  auto oldest = fs::file_time_type::clock::now() - open_for;
  for (const auto& entry : it) {
    auto name = entry.path().filename().string();
    if (!entry.is_directory(ec))
      continue;
    auto made = entry.last_write_time(ec);
    if (!ec && made < oldest) {
      fs::remove_all(entry.path(), ec);
      log::info("backup " + name + " was never deleted; removed after "
                + std::to_string(open_for.count()) + " h");
      continue;
    }
    open.push_back(std::move(name));
  }
  return open;
}

void write_files(json::writer& w, const std::vector<storage::backup_file>& fs) {
  uint64_t total = 0;
  w.key("files").begin_array();
  for (auto& f : fs) {
    total += f.bytes;
    w.begin_object();
    w.key("name").value(f.name);
    w.key("bytes").value(f.bytes);
    w.end_object();
  }
  w.end_array();
  w.key("bytes").value(total);
}

/// Answers 503 when the node has no data directory.
bool has_root(const node_info& info, const responder_ptr& r) {
  if (!backups_root(info).empty())
    return true;
  fail(r, 503, "no_data_dir", "this node has no data directory to back up");
  return false;
}

/// "{id}" and "{name}" path segments, checked as file names: nothing that
/// could leave the backups' directory.
bool checked(const responder_ptr& r, std::string_view id,
             std::string_view name = "x") {
  if (storage::valid_backup_file_name(id)
      && storage::valid_backup_file_name(name))
    return true;
  fail(r, 404, "not_found", "no such backup or file");
  return false;
}

} // namespace

void api::impl::make_backup(responder_ptr r) {
  auto root = backups_root(info);
  auto now = system_now_ms();
  // The time names it (sorts in order); the random part keeps two made in
  // one second apart.
  auto stamp = format_rfc3339(now);
  std::string id;
  for (char c : stamp)
    if (c != '-' && c != ':')
      id += c;
  id += "-" + crypto::random_token(6);
  auto dir = root + "/" + id;
  std::error_code ec;
  fs::create_directories(root, ec);
  uint64_t sequence = 0;
  std::vector<storage::backup_file> files;
  std::string err;
  auto made = db.checkpoint(dir, sequence);
  // The next backup may start once this one is answered: the flag goes
  // before each answer, so a client that posts again right after it is
  // not told one is still running.
  if (made) {
    fs::remove_all(dir, ec);
    backup_running = false;
    log::error("backup: " + sys.render(made));
    return fail(r, 500, "backup_failed",
                "the checkpoint could not be written: "
                    + to_api_error(made).message);
  }
  if (!storage::list_backup_files(dir, files, err)) {
    fs::remove_all(dir, ec);
    backup_running = false;
    log::error("backup: " + err);
    return fail(r, 500, "backup_failed", err);
  }
  storage::write_batch b;
  put_node_audit(b, now, "backup.made",
                 id + " (sequence " + std::to_string(sequence) + ")");
  if (auto e = db.write(b))
    log::warn("backup " + id + ": audit entry not written: " + sys.render(e));
  log::info("backup " + id + " made: sequence " + std::to_string(sequence)
            + ", " + std::to_string(files.size()) + " files");
  json::writer w;
  w.begin_object();
  w.key("id").value(id);
  w.key("node").value(info.node_id);
  w.key("sequence").value(sequence);
  w.key("created_at").value(stamp);
  w.key("expires_in_s")
      .value(static_cast<int64_t>(
          std::chrono::duration_cast<std::chrono::seconds>(open_for).count()));
  write_files(w, files);
  w.end_object();
  backup_running = false;
  r->reply(json_response(201, w.take()));
}

void api::impl::install_backup_routes() {
  auto self = shared_from_this();
  if (auto root = backups_root(info); !root.empty()) {
    // Nobody copies across a restart: what an earlier run left goes.
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  routes.add("POST", "/admin/v1/backups",
             [self](request& req, const path_params&, responder_ptr r) {
               if (!self->admin_auth(req, r))
                 return;
               if (!has_root(self->info, r))
                 return;
               if (self->backup_running.exchange(true))
                 return fail(r, 409, "backup_running",
                             "a backup is being made; try again when it is "
                             "done");
               auto open = sweep(backups_root(self->info));
               if (open.size() >= max_open) {
                 self->backup_running = false;
                 return fail(r, 409, "too_many_backups",
                             std::to_string(open.size())
                                 + " backups are open: delete one (DELETE "
                                   "/admin/v1/backups/{id}) or wait until "
                                   "they expire (1 h)");
               }
               // make_backup clears backup_running before it answers.
               bool started
                   = self->spawn_job([self, r] { self->make_backup(r); });
               if (!started) {
                 self->backup_running = false;
                 fail(r, 503, "shutting_down", "the node is stopping");
               }
             });

  routes.add("GET", "/admin/v1/backups",
             [self](request& req, const path_params&, responder_ptr r) {
               if (!self->admin_auth(req, r) || !has_root(self->info, r))
                 return;
               auto root = backups_root(self->info);
               json::writer w;
               w.begin_object();
               w.key("backups").begin_array();
               for (auto& id : sweep(root)) {
                 std::vector<storage::backup_file> files;
                 std::string err;
                 if (!storage::list_backup_files(root + "/" + id, files, err))
                   continue;
                 w.begin_object();
                 w.key("id").value(id);
                 write_files(w, files);
                 w.end_object();
               }
               w.end_array();
               w.end_object();
               r->reply(json_response(200, w.take()));
             });

  routes.add(
      "GET", "/admin/v1/backups/{id}/files/{name}",
      [self](request& req, const path_params& pp, responder_ptr r) {
        if (!self->admin_auth(req, r) || !has_root(self->info, r)
            || !checked(r, pp[0], pp[1]))
          return;
        auto path = backups_root(self->info) + "/" + pp[0] + "/" + pp[1];
        std::error_code ec;
        auto size = fs::file_size(path, ec);
        if (ec)
          return fail(r, 404, "not_found", "no such backup or file");
        query_params q;
        if (!parse_query(req.query, q))
          return fail(r, 400, "invalid_query", "the query is malformed");
        uint64_t offset = 0;
        uint64_t length = max_piece;
        auto number = [&](std::string_view name, uint64_t& out) {
          auto* v = find_param(q, name);
          if (v == nullptr)
            return true;
          if (v->empty() || v->size() > 19
              || v->find_first_not_of("0123456789") != std::string::npos)
            return false;
          out = std::stoull(*v);
          return true;
        };
        if (!number("offset", offset) || offset > size)
          return fail(r, 400, "invalid_offset",
                      "offset must be a number from 0 to the file's size ("
                          + std::to_string(size) + ")",
                      "offset");
        if (!number("length", length) || length == 0 || length > max_piece)
          return fail(r, 400, "invalid_length",
                      "length must be a number from 1 to "
                          + std::to_string(max_piece),
                      "length");
        auto n = std::min(length, size - offset);
        response res;
        res.content_type = "application/octet-stream";
        res.headers.emplace_back("X-Crmsync-File-Bytes", std::to_string(size));
        res.body.resize(n);
        std::ifstream in{path, std::ios::binary};
        in.seekg(static_cast<std::streamoff>(offset));
        if (!in.read(res.body.data(), static_cast<std::streamsize>(n)))
          return fail(r, 500, "backup_unreadable", "the file cannot be read");
        r->reply(std::move(res));
      });

  routes.add("DELETE", "/admin/v1/backups/{id}",
             [self](request& req, const path_params& pp, responder_ptr r) {
               if (!self->admin_auth(req, r) || !has_root(self->info, r)
                   || !checked(r, pp[0]))
                 return;
               auto dir = backups_root(self->info) + "/" + pp[0];
               std::error_code ec;
               if (!fs::is_directory(dir, ec))
                 return fail(r, 404, "not_found", "no such backup");
               fs::remove_all(dir, ec);
               if (ec)
                 return fail(r, 500, "backup_unremovable", ec.message());
               response res;
               res.status = 204;
               r->reply(std::move(res));
             });
}

} // namespace crmsync::http
