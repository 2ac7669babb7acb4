// libFuzzer target: the REST API's request-body decoders
// (protocol/json.hpp), which see every body a client sends.
//
// The first byte picks the decoder, the rest is the body. Where a decoder
// accepts the body, what it produced is encoded again with the API's own
// writer and must be valid JSON (strings from clients are escaped), and an
// e-mail address it normalised must normalise to itself.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "protocol/json.hpp"

namespace {

using namespace crmsync;
using fuzz::require;
using fuzz::require_json;

// The limits the API passes (api/api.hpp, api/office365_api.cpp).
constexpr size_t max_import_events = 5000;
constexpr size_t max_mass_update_ids = 1000;
constexpr size_t max_invitees = 100;

void require_normal(const std::string& email) {
  if (email.empty())
    return;
  std::string again;
  require(json::normalize_email(email, again) && again == email,
          "a normalised e-mail address does not normalise to itself");
}

void written_event(const event_record& e) {
  json::writer w;
  write_event(w, e);
  require_json(w.str(), "write_event wrote invalid JSON");
}

void run(uint8_t which, std::string_view body) {
  switch (which % 14) {
    case 0: {
      json::org_body x;
      if (!json::decode_org_create(body, x))
        require_normal(x.admin_email);
      break;
    }
    case 1: {
      update_org x;
      json::decode_org_patch(body, x);
      break;
    }
    case 2: {
      json::user_body x;
      if (!json::decode_user_create(body, x))
        require_normal(x.email);
      break;
    }
    case 3: {
      event_record x;
      if (!json::decode_event_create(body, x))
        written_event(x);
      break;
    }
    case 4: {
      event_patch x;
      uint64_t version = 0;
      json::decode_event_patch(body, x, version);
      break;
    }
    case 5: {
      user_id owner;
      std::vector<event_record> xs;
      if (!json::decode_import(body, owner, xs, max_import_events)) {
        require(xs.size() <= max_import_events, "import over its limit");
        for (auto& x : xs)
          written_event(x);
      }
      break;
    }
    case 6: {
      std::vector<event_id> ids;
      event_patch x;
      if (!json::decode_mass_update(body, ids, x, max_mass_update_ids))
        require(ids.size() <= max_mass_update_ids,
                "mass update over its limit");
      break;
    }
    case 7: {
      std::vector<std::string> ids;
      if (!json::decode_invites_create(body, ids, max_invitees))
        require(!ids.empty() && ids.size() <= max_invitees,
                "invitees outside 1 to the limit");
      break;
    }
    case 8: {
      json::credentials x;
      if (!json::decode_credentials(body, x))
        require_normal(x.email);
      break;
    }
    case 9: {
      json::accept_body x;
      json::decode_invite_accept(body, x);
      break;
    }
    case 10: {
      json::graph_user x;
      if (json::decode_graph_user(body, x)) {
        json::writer w;
        w.begin_object().key("id").value(x.id);
        w.key("name").value(x.display_name);
        w.key("upn").value(x.user_principal_name);
        w.key("mail").value(x.mail).end_object();
        require_json(w.str(), "a Graph user's fields wrote invalid JSON");
      }
      break;
    }
    case 11: {
      bool enabled = false;
      json::decode_calendar_sync(body, enabled);
      break;
    }
    case 12: {
      std::string to;
      json::decode_shard_move(body, to);
      break;
    }
    default: {
      std::string email;
      if (json::normalize_email(body, email))
        require_normal(email);
      break;
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  run(data[0],
      std::string_view{reinterpret_cast<const char*>(data) + 1, size - 1});
  return 0;
}
