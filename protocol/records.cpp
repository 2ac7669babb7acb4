#include "protocol/records.hpp"

#include <algorithm>

#include "common/crypto.hpp"
#include "protocol/office365.hpp"

namespace crmsync {

const char* to_string(edition x) {
  return x == edition::paid ? "paid" : "free";
}

const char* to_string(profile x) {
  return x == profile::administrator ? "administrator" : "standard";
}

const char* to_string(event_origin x) {
  switch (x) {
    case event_origin::individual:
      return "individual";
    case event_origin::imported:
      return "imported";
    case event_origin::mass_update:
      return "mass_update";
    default:
      return "office365";
  }
}

bool from_string(std::string_view s, edition& x) {
  if (s == "free")
    x = edition::free;
  else if (s == "paid")
    x = edition::paid;
  else
    return false;
  return true;
}

bool from_string(std::string_view s, profile& x) {
  if (s == "standard")
    x = profile::standard;
  else if (s == "administrator")
    x = profile::administrator;
  else
    return false;
  return true;
}

void apply_patch(const event_patch& p, event_record& e) {
  if (p.has(event_patch::f_title))
    e.title = p.title;
  if (p.has(event_patch::f_start))
    e.start_ms = p.start_ms;
  if (p.has(event_patch::f_end))
    e.end_ms = p.end_ms;
  if (p.has(event_patch::f_all_day))
    e.all_day = p.all_day;
  if (p.has(event_patch::f_time_zone))
    e.time_zone = p.time_zone;
  if (p.has(event_patch::f_location))
    e.location = p.location;
  if (p.has(event_patch::f_description))
    e.description = p.description;
  if (p.has(event_patch::f_participants))
    e.participants = p.participants;
}

namespace {

bool is_page_token(std::string_view h) {
  return h.substr(0, page_token_mark.size()) == page_token_mark;
}

std::string_view unmarked(std::string_view h) {
  return is_page_token(h) ? h.substr(page_token_mark.size()) : h;
}

} // namespace

bool user_record::has_token_hash(std::string_view hash) const {
  // Every stored hash is compared, so timing does not tell which matched.
  bool match = crypto::equal_secret(token_hash, hash);
  for (auto& h : signin_token_hashes)
    match = crypto::equal_secret(unmarked(h), hash) || match;
  return match;
}

void user_record::add_signin_token(const std::string& hash, bool page,
                                   size_t keep) {
  signin_token_hashes.push_back(page ? std::string{page_token_mark} + hash
                                     : hash);
  size_t same = 0;
  for (auto& h : signin_token_hashes)
    same += is_page_token(h) == page ? 1 : 0;
  if (same <= keep)
    return;
  for (auto it = signin_token_hashes.begin(); it != signin_token_hashes.end();
       ++it)
    if (is_page_token(*it) == page) {
      signin_token_hashes.erase(it);
      return;
    }
}

bool user_record::remove_signin_token(std::string_view hash) {
  auto before = signin_token_hashes.size();
  signin_token_hashes.erase(
      std::remove_if(signin_token_hashes.begin(), signin_token_hashes.end(),
                     [hash](const std::string& h) {
                       return crypto::equal_secret(unmarked(h), hash);
                     }),
      signin_token_hashes.end());
  return signin_token_hashes.size() != before;
}

const char* to_string(conflict_policy x) {
  switch (x) {
    case conflict_policy::crm:
      return "crm";
    case conflict_policy::office365:
      return "office365";
    default:
      return "latest";
  }
}

bool from_string(std::string_view s, conflict_policy& x) {
  if (s == "latest")
    x = conflict_policy::latest;
  else if (s == "crm")
    x = conflict_policy::crm;
  else if (s == "office365")
    x = conflict_policy::office365;
  else
    return false;
  return true;
}

const char* to_string(invite_status x) {
  switch (x) {
    case invite_status::pending:
      return "pending";
    case invite_status::accepted:
      return "accepted";
    case invite_status::associated:
      return "associated";
    default:
      return "superseded";
  }
}

std::string join_request_page(std::string_view public_url, tenant_id org,
                              uint64_t request) {
  return std::string{public_url} + "/join-requests/" + org.str() + "/"
         + to_hex16(request);
}

bool is_invite_token(std::string_view token) {
  constexpr size_t length = (invite_token_bytes * 4 + 2) / 3;
  if (token.size() != length)
    return false;
  for (char c : token)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
          || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

const char* to_string(join_status x) {
  return x == join_status::approved ? "approved" : "pending";
}

} // namespace crmsync
